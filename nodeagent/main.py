"""``ccs-agent``: the node agent."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    print(
        "ccs-agent: the node agent is not implemented yet (see the project's issues); "
        "this entry point is reserved.",
        file=sys.stderr,
    )
    sys.exit(2)


if __name__ == "__main__":
    main()
