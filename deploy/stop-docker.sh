#!/usr/bin/env bash
# Stop the Docker Engine that deploy/start-docker.sh started (hosts without systemd).
set -euo pipefail
if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
  systemctl stop docker docker.socket 2>/dev/null || true
  exit 0
fi
pid=$(cat /var/run/docker.pid 2>/dev/null || true)
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || exit 0
echo "==> stopping the Docker Engine this run started (pid $pid)"
kill -TERM "$pid"
for _ in $(seq 1 60); do
  kill -0 "$pid" 2>/dev/null || exit 0
  sleep 0.5
done
echo "dockerd (pid $pid) did not stop within 30 s" >&2
exit 1
