#!/usr/bin/env bash
# The delivery pipeline as plain commands: unit test, build, push, trigger, wait.
#
#   deploy/ci/pipeline.sh STAGE...        # stages: test build push trigger wait (or: all)
#
# The Jenkinsfile and the GitHub Actions workflow beside this file only call its stages, so
# what runs in CI is this tested script. Settings (environment):
#
#   SOURCE_DIR         the project to build (default .); its Dockerfile is the image's
#   TEST_CMD           the unit tests, run in SOURCE_DIR (default: ./test.sh); non-zero stops the pipeline
#   IMAGE              the image without its tag, e.g. registry.example:5000/shop/web (build, push)
#   VERSION            the tag (default: the git short sha of SOURCE_DIR, else a content hash)
#   REGISTRY_USER, REGISTRY_PASSWORD   docker login before the push (optional)
#   CCS_TRIGGER_URL, CCS_TRIGGER_SECRET  from `ccs trigger create APP --action update-image --service S`
#   CCS_CA_FILE        the control plane's CA (STATE/ca.crt) for curl --cacert (optional)
#   CCS_DELIVERY       the delivery id (default: random); a repeated one is refused as a replay
#   WAIT_TIMEOUT       seconds the wait stage waits (default 900); POLL: seconds between polls (default 2)
#   PIPELINE_STATE     where the stages leave what the next one needs (default .ccs-pipeline)
#
# Exit codes: 0 done; 1 a stage failed (its command's message above); 2 usage;
# 9 the wait timed out; 10 the release failed, was rolled back or superseded.
set -euo pipefail

SOURCE_DIR=${SOURCE_DIR:-.}
STATE=${PIPELINE_STATE:-.ccs-pipeline}
mkdir -p "$STATE"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'pipeline: %s\n' "$*" >&2; exit "${2:-1}"; }
need() { [ -n "${!1:-}" ] || die "$1 is not set (see the top of $0)" 2; }

version() {
  if [ -n "${VERSION:-}" ]; then printf '%s' "$VERSION"; return; fi
  if [ -f "$STATE/version" ]; then cat "$STATE/version"; return; fi
  local v
  v=$(git -C "$SOURCE_DIR" rev-parse --short HEAD 2>/dev/null) ||
    v=$(tar -C "$SOURCE_DIR" --sort=name --mtime=@0 --owner=0 --group=0 -cf - . | sha256sum | cut -c1-12)
  printf '%s' "$v" | tee "$STATE/version"
}

json_field() {  # json_field NAME FILE: a string or literal field of a one-line JSON object
  sed -n "s/.*\"$1\":\(\"\([^\"]*\)\"\|\([a-z0-9.]*\)\).*/\2\3/p" "$2"
}

curl_tls() {
  if [ -n "${CCS_CA_FILE:-}" ]; then curl --cacert "$CCS_CA_FILE" "$@"; else curl "$@"; fi
}

stage_test() {
  local cmd=${TEST_CMD:-./test.sh}
  say "unit test: $cmd (in $SOURCE_DIR)"
  (cd "$SOURCE_DIR" && sh -c "$cmd") || die "unit tests failed: nothing was built or deployed"
}

stage_build() {
  need IMAGE
  local v; v=$(version)
  say "build $IMAGE:$v"
  docker build -t "$IMAGE:$v" "$SOURCE_DIR"
}

stage_push() {
  need IMAGE
  local v; v=$(version)
  if [ -n "${REGISTRY_USER:-}" ]; then
    need REGISTRY_PASSWORD
    printf '%s' "$REGISTRY_PASSWORD" | docker login "${IMAGE%%/*}" -u "$REGISTRY_USER" --password-stdin
  fi
  say "push $IMAGE:$v"
  docker push "$IMAGE:$v"
}

stage_trigger() {
  need CCS_TRIGGER_URL
  need CCS_TRIGGER_SECRET
  local v body ts sig delivery code
  v=$(version)
  body=$(printf '{"tag": "%s", "version": "%s"}' "$v" "$v")
  [ "${TRIGGER_BODY+set}" = set ] && body=$TRIGGER_BODY
  ts=$(date +%s)
  # The key stays in the environment: on openssl's command line (-hmac) every local user would
  # see it in ps.
  sig=$(printf '%s.%s' "$ts" "$body" | python3 -c 'import hashlib, hmac, os, sys
print(hmac.new(os.environ["CCS_TRIGGER_SECRET"].encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest())')
  delivery=${CCS_DELIVERY:-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}
  say "trigger ${CCS_TRIGGER_URL} (delivery $delivery)"
  code=$(curl_tls -sS -o "$STATE/trigger.json" -w '%{http_code}' -X POST "$CCS_TRIGGER_URL" \
    -H 'content-type: application/json' -H "X-CCS-Timestamp: $ts" -H "X-CCS-Delivery: $delivery" \
    -H "X-CCS-Signature: sha256=$sig" --data-binary "$body")
  cat "$STATE/trigger.json" >&2; echo >&2
  [ "$code" = 200 ] || die "the trigger answered $code"
}

stage_wait() {
  [ -f "$STATE/trigger.json" ] || die "no trigger answer in $STATE (run the trigger stage first)" 2
  local url release deadline doc
  url=$(json_field status_url "$STATE/trigger.json")
  release=$(json_field release "$STATE/trigger.json")
  if [ -z "$release" ]; then
    say "the trigger started no release ($(json_field result "$STATE/trigger.json")): nothing to wait for"
    return 0
  fi
  [ -n "$url" ] || die "release $release has no status URL (the server's --http-listen is off?)"
  deadline=$(( $(date +%s) + ${WAIT_TIMEOUT:-900} ))
  doc="$STATE/status.json"
  while :; do
    if curl_tls -sS -f -o "$doc" "$url"; then
      say "release $release: $(json_field phase "$doc") $(json_field updated "$doc")/$(json_field total "$doc")"
      if [ "$(json_field done "$doc")" = true ]; then
        [ "$(json_field succeeded "$doc")" = true ] && { say "release $release succeeded"; return 0; }
        die "release $release $(json_field phase "$doc"): $(json_field message "$doc")" 10
      fi
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "release $release: still not done after ${WAIT_TIMEOUT:-900}s" 9
    sleep "${POLL:-2}"
  done
}

[ $# -gt 0 ] || die "usage: $0 STAGE... (test build push trigger wait, or all)" 2
stages=("$@")
[ "${stages[*]}" = all ] && stages=(test build push trigger wait)
for s in "${stages[@]}"; do
  case "$s" in
    test|build|push|trigger|wait) "stage_$s" ;;
    *) die "unknown stage '$s' (test build push trigger wait, or all)" 2 ;;
  esac
done
