#!/usr/bin/env bash
# README command 2: install everything the tests need, then lint, type-check and test.
# The test fixtures start their own etcd, ccs-server and simulated hosts, and remove them.
# A Docker Engine that this script had to start is stopped again at the end, so a run leaves
# the machine as it found it (an engine that was already running is left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install.sh

engine_was_up=1
docker info >/dev/null 2>&1 || engine_was_up=0
bash deploy/start-docker.sh
if [ "$engine_was_up" = 0 ]; then
  trap 'bash deploy/stop-docker.sh || true' EXIT  # a slow stop is reported, never fails the run
fi
export PATH="$PWD/.venv/bin:$PATH"

echo "==> generated code is current";  python protos/generate.py --check
echo "==> ruff";                         ruff check .
echo "==> mypy";                         mypy
echo "==> import layers";                lint-imports
echo "==> pytest"
python -m pytest -p no:cacheprovider -q -rs "$@"  # -rs: every skip is listed with its reason
