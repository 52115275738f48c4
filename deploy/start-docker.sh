#!/usr/bin/env bash
# Start the Docker Engine if it is not answering (hosts without systemd, like CI containers).
set -euo pipefail
if docker version >/dev/null 2>&1 || DOCKER_HOST=unix:///var/run/docker.sock timeout 5 docker info >/dev/null 2>&1; then
  exit 0
fi
if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
  systemctl start docker
else
  mkdir -p /var/log
  setsid dockerd --host unix:///var/run/docker.sock >/var/log/ccs-dockerd.log 2>&1 < /dev/null &
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "dockerd did not come up; see /var/log/ccs-dockerd.log" >&2
exit 1
