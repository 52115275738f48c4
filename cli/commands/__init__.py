"""One module per resource kind; each exposes a ``typer.Typer`` named ``app``."""
