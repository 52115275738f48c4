#!/usr/bin/env bash
# Install what ccs needs on a Debian 12 host (as root) and create the project venv.
# Idempotent: safe to run again. Usage: bash deploy/install.sh [--no-dev] [--systemd]
#   --no-dev   without the development tools (ruff, mypy, pytest, ...)
#   --systemd  also install the ccs-server and ccs-agent units (deploy/install-systemd.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

dev=1
systemd=0
for arg in "$@"; do
  case "$arg" in
    --no-dev) dev=0 ;;
    --systemd) systemd=1 ;;
    *) echo "install.sh: unknown option $arg (usage: bash deploy/install.sh [--no-dev] [--systemd])" >&2; exit 2 ;;
  esac
done

PKGS=(etcd-server etcd-client docker.io haproxy docker-registry busybox-static apache2-utils
      iproute2 iptables ipset procps util-linux curl ca-certificates python3 python3-venv python3-dev gcc
      libc6-dev systemd)  # systemd: systemd-analyze checks the units (it need not be PID 1)
if [ "$dev" = 1 ]; then
  PKGS+=(chromium fonts-liberation)  # the web console's browser tests (playwright drives it); not for nodes
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PY --version)"
  $PY -m venv .venv
fi
extra='[dev]'
[ "$dev" = 0 ] && extra=''
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
echo "==> pip install -e .${extra} (log: .venv/pip-install.log)"
if ! .venv/bin/pip install -q -e ".${extra}" >.venv/pip-install.log 2>&1; then
  cat .venv/pip-install.log >&2
  exit 1
fi
.venv/bin/python -c "import ccs, controlplane, cli" >/dev/null
if [ "$systemd" = 1 ]; then
  bash deploy/install-systemd.sh
fi
