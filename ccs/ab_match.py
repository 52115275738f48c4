"""What an A/B canary may match on: a header or cookie name, and the value to match.

Both end up inside the HAProxy configuration of every router (``req.hdr(NAME) -m str VALUE``),
so the control plane refuses anything else when a release is requested and the agent checks
again before rendering; one definition serves both. ``fullmatch`` only: ``re.match`` with
``$`` lets a trailing newline through, which would split the configuration line and make
every router's reload fail. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["HTTP_TOKEN", "MATCH_VALUE"]

#: An RFC 9110 token: a header or cookie name.
HTTP_TOKEN: Final = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,256}")
#: The value to match: characters HAProxy takes unquoted in ``-m str``.
MATCH_VALUE: Final = re.compile(r"[A-Za-z0-9._~:/+=@-]{1,1024}")
