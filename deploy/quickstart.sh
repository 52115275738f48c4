#!/usr/bin/env bash
# README command 1: a local ccs on this host, from nothing to the example app running.
#
#   installs packages and the venv, starts dockerd if needed, builds the example images,
#   starts ccs-server (embedded etcd) and one ccs-agent on this host, creates the cluster
#   "local", deploys deploy/examples/hello and shows it running.
#
# Idempotent: run it again and it reuses what is already running.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/.venv/bin:$PATH"
STATE=${CCS_SERVER_STATE_DIR:-/var/lib/ccs}  # the server's own name: CCS_STATE_DIR was read by the agent too
LOG=${CCS_LOG_DIR:-/var/log}

bash deploy/install.sh --no-dev
bash deploy/start-docker.sh
echo "==> building the example images (local/webapp, local/busybox)"
bash deploy/images/build.sh >/dev/null

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 7443; then
  echo "==> starting ccs-server (state in $STATE, log $LOG/ccs-server.log)"
  setsid ccs-server --state-dir "$STATE" --log-format json >>"$LOG/ccs-server.log" 2>&1 < /dev/null &
  for _ in $(seq 1 120); do port_open 7443 && break; sleep 0.25; done
  port_open 7443 || { echo "ccs-server did not start; see $LOG/ccs-server.log" >&2; exit 1; }
fi
for _ in $(seq 1 40); do ccs cluster ls >/dev/null 2>&1 && break; sleep 0.25; done

ccs cluster get local >/dev/null 2>&1 || ccs cluster create local --description "this host"
if ! pgrep -f "ccs-agent .*--name $(hostname)" >/dev/null; then
  echo "==> starting ccs-agent for node $(hostname) (log $LOG/ccs-agent.log)"
  TOKEN=$(ccs cluster join-token local)
  # --address/--router-bind 127.0.0.1: a one-host demo publishes ports and the router on
  # loopback only; on a real node, leave them out (the agent uses the address it reaches the
  # server from, and the router listens on every address). The token goes in the environment,
  # not on the command line, where every local user would see it in ps.
  CCS_AGENT_JOIN_TOKEN="$TOKEN" setsid ccs-agent --name "$(hostname)" --address 127.0.0.1 --router-bind 127.0.0.1 \
    --log-format json >>"$LOG/ccs-agent.log" 2>&1 < /dev/null &
fi
for _ in $(seq 1 80); do
  ccs node ls -c local -o json 2>/dev/null | grep -q NODE_STATE_READY && break
  sleep 0.25
done
ccs node ls -c local

if ccs app get -c local hello >/dev/null 2>&1; then
  echo "==> the example app is deployed already; updating it"
  ccs app update -c local hello -f deploy/examples/hello/compose.yaml --wait --timeout 3m
else
  echo "==> ccs app deploy -c local -f deploy/examples/hello/compose.yaml --wait"
  ccs app deploy -c local -f deploy/examples/hello/compose.yaml --wait --timeout 3m
fi
echo
ccs app get -c local hello
echo
ccs ps -c local
echo
echo "==> curl http://127.0.0.1:8080/   (the web service's published port)"
curl -fsS --max-time 5 http://127.0.0.1:8080/ && echo
if port_open 9080; then
  echo "==> curl -H 'Host: hello.local' http://127.0.0.1:9080/   (through the node's router)"
  curl -fsS --max-time 5 -H 'Host: hello.local' http://127.0.0.1:9080/ && echo
fi
