#!/usr/bin/env bash
# Install the systemd units of ccs-server and ccs-agent (run by `bash deploy/install.sh --systemd`,
# as root, after the venv exists). Idempotent: the units are rewritten, the env files in /etc/ccs
# are created (0600) only when absent, so an operator's settings survive a re-install.
# The units are checked with `systemd-analyze verify` before anything is loaded; with systemd
# running they are loaded (daemon-reload), never enabled or started: that is the operator's call.
# CCS_INSTALL_UNIT_DIR / CCS_INSTALL_ETC_DIR change where they go (the tests install into a
# temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(pwd)
unit_dir=${CCS_INSTALL_UNIT_DIR:-/etc/systemd/system}
etc_dir=${CCS_INSTALL_ETC_DIR:-/etc/ccs}

for bin in ccs-server ccs-agent; do
  [ -x ".venv/bin/$bin" ] || { echo "install-systemd: .venv/bin/$bin is missing: run bash deploy/install.sh first" >&2; exit 1; }
done
command -v systemd-analyze >/dev/null || { echo "install-systemd: systemd-analyze not found (apt-get install systemd)" >&2; exit 1; }

install -d -m 0755 "$unit_dir"
install -d -m 0700 "$etc_dir"
for unit in ccs-server ccs-agent; do
  sed -e "s#@PREFIX@#${prefix}#g" -e "s#@ETC@#${etc_dir}#g" "deploy/systemd/$unit.service" >"$unit_dir/$unit.service.tmp"
  chmod 0644 "$unit_dir/$unit.service.tmp"
  mv "$unit_dir/$unit.service.tmp" "$unit_dir/$unit.service"
  echo "==> $unit_dir/$unit.service"
done
for env in server agent; do
  if [ ! -e "$etc_dir/$env.env" ]; then
    install -m 0600 "deploy/systemd/$env.env" "$etc_dir/$env.env"
    echo "==> $etc_dir/$env.env (new: set the options there)"
  else
    echo "==> $etc_dir/$env.env kept"
  fi
done

# verify prints problems (unknown keys, bad values) as warnings with exit 0: any output fails.
out=$(systemd-analyze verify --man=no "$unit_dir/ccs-server.service" "$unit_dir/ccs-agent.service" 2>&1) || {
  echo "$out" >&2; echo "install-systemd: systemd-analyze verify failed" >&2; exit 1; }
if [ -n "$out" ]; then
  echo "$out" >&2; echo "install-systemd: systemd-analyze verify reported problems" >&2; exit 1
fi
echo "==> systemd-analyze verify: ok"

if [ -d /run/systemd/system ] && [ "$unit_dir" = /etc/systemd/system ]; then
  systemctl daemon-reload
  echo "==> loaded; start with: systemctl enable --now ccs-server (control plane) / ccs-agent (every node)"
else
  echo "==> systemd is not running here (or the units went elsewhere): installed, not loaded"
fi
