#!/usr/bin/env bash
# README command 2: install everything the tests need, then lint, type-check and test.
# The test fixtures start their own etcd, ccs-server and simulated hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install.sh
bash deploy/start-docker.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "==> generated code is current";  python protos/generate.py --check
echo "==> ruff";                         ruff check .
echo "==> mypy";                         mypy
echo "==> import layers";                lint-imports
echo "==> pytest"
exec python -m pytest -p no:cacheprovider -q "$@"
