"""``python -m cli``: the same as the ``ccs`` console script."""

from cli.main import main

main()
