#!/usr/bin/env bash
# Build the local test images on the daemon named by DOCKER_HOST (default: the local socket).
#
# No registry is reachable from CI, so every image is made from the host's static busybox with
# `docker import` (no `docker build`: it needs no base image, no BuildKit and takes ~1 s).
#
#   local/busybox:1     busybox with every applet linked; default command `sh`.
#   local/webapp:v1/v2  busybox httpd on :8080; GET / answers "v1" / "v2", GET /health answers 200.
#   local/webapp:bad    GET / answers "bad", GET /health answers 500 (for release-failure tests).
#   local/webapp:err    GET / answers 500 "err", GET /health answers 200 (a healthy but failing canary).
#   local/netcheck:1    busybox plus /bin/udpecho (udpecho.c, compiled statically here with gcc):
#                       the UDP server and client of the network tests (busybox nc has no UDP mode).
#
# All webapp images run a tiny sh entrypoint as PID 1 that traps SIGTERM and stops the server,
# because PID 1 in a container ignores signals it has no handler for: a bare `httpd -f` would
# sit out the whole stop grace period and be SIGKILLed.
#
# Idempotent and fast: each image carries the hash of this script (label ccs-test.image-hash);
# an image whose hash matches is left alone, so a second run costs a few `docker image inspect`.
set -euo pipefail

BUSYBOX=${BUSYBOX:-/bin/busybox}
here=$(cd "$(dirname "$0")" && pwd)
hash=$(cat "$0" "$BUSYBOX" "$(dirname "$0")/udpecho.c" | sha256sum | cut -c1-16)

if [ ! -x "$BUSYBOX" ]; then
  echo "build.sh: $BUSYBOX not found: apt-get install -y busybox-static" >&2
  exit 1
fi

current() {  # current IMAGE -> succeeds when IMAGE exists and was built from this script
  [ "$(docker image inspect -f '{{index .Config.Labels "ccs-test.image-hash"}}' "$1" 2>/dev/null)" = "$hash" ]
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

make_root() {  # make_root DIR: a busybox root file system with every applet as a symlink
  local root=$1
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/www"
  cp "$BUSYBOX" "$root/bin/busybox"
  for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  chmod 1777 "$root/tmp"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

import() {  # import DIR IMAGE CHANGES...
  local root=$1 image=$2
  shift 2
  local args=(--change "LABEL ccs-test.image-hash=$hash" --change 'ENV PATH=/bin')
  for c in "$@"; do args+=(--change "$c"); done
  tar -C "$root" -c . | docker import "${args[@]}" - "$image" >/dev/null
  echo "built $image"
}

# --- local/busybox:1
if ! current local/busybox:1; then
  make_root "$work/busybox"
  import "$work/busybox" local/busybox:1 'CMD ["sh"]'
fi

# --- local/webapp:v1, :v2 (busybox httpd)
for version in v1 v2; do
  image=local/webapp:$version
  current "$image" && continue
  root=$work/webapp-$version
  make_root "$root"
  echo "$version" >"$root/www/index.html"
  echo ok >"$root/www/health"
  cat >"$root/bin/serve" <<'SH'
#!/bin/sh
# PID 1: run httpd in the foreground and stop it promptly on SIGTERM/SIGINT.
httpd -f -p "${PORT:-8080}" -h /www &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
wait "$pid"
SH
  chmod +x "$root/bin/serve"
  import "$root" "$image" "ENV VERSION=$version" 'EXPOSE 8080' 'CMD ["/bin/serve"]'
done

# --- local/webapp:bad and :err (nc-driven responder; the status of / and /health come from the env)
for variant in bad err; do
  image=local/webapp:$variant
  current "$image" && continue
  root=$work/webapp-$variant
  make_root "$root"
  cat >"$root/bin/respond" <<'SH'
#!/bin/sh
# One HTTP exchange on stdin/stdout (run by `nc -ll -e`): read the request, answer, close.
read -r _method path _proto
while read -r line; do
  line=$(printf '%s' "$line" | tr -d '\r')
  [ -z "$line" ] && break
done
case "$path" in
  /health*) code=$HEALTH_STATUS ;;
  *) code=$ROOT_STATUS ;;
esac
if [ "$code" = 200 ]; then status='200 OK'; else status="$code Internal Server Error"; fi
body=$VERSION
printf 'HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n' \
  "$status" $((${#body} + 1)) "$body"
SH
  cat >"$root/bin/serve" <<'SH'
#!/bin/sh
# PID 1: a persistent nc listener, stopped promptly on SIGTERM/SIGINT.
nc -ll -p "${PORT:-8080}" -e /bin/respond &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
wait "$pid"
SH
  chmod +x "$root/bin/respond" "$root/bin/serve"
  if [ "$variant" = bad ]; then
    statuses=('ENV ROOT_STATUS=200' 'ENV HEALTH_STATUS=500')
  else
    statuses=('ENV ROOT_STATUS=500' 'ENV HEALTH_STATUS=200')
  fi
  import "$root" "$image" "ENV VERSION=$variant" "${statuses[@]}" 'EXPOSE 8080' 'CMD ["/bin/serve"]'
done

# --- local/netcheck:1 (busybox + a static UDP echo server and client)
if ! current local/netcheck:1; then
  root=$work/netcheck
  make_root "$root"
  if ! gcc -O2 -static -o "$root/bin/udpecho" "$here/udpecho.c" 2>"$work/gcc.log"; then
    cat "$work/gcc.log" >&2
    echo "build.sh: cannot compile udpecho.c: apt-get install -y gcc libc6-dev" >&2
    exit 1
  fi
  import "$root" local/netcheck:1 'CMD ["sh"]'
fi
