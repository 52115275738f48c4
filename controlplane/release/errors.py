"""The one error the release planner raises: the input cannot be planned (a bug or bad data)."""


class ReleaseError(ValueError):
    """Invalid release input; the message names the field and why."""
