#!/bin/sh
# Thin wrapper: the testbed is plain-stdlib Python, so any python3 >= 3.11 runs it as root.
exec python3 "$(dirname "$0")/testbed.py" "$@"
