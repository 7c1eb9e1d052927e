#!/usr/bin/env bash
# Runs a command next to a private s3rver (an S3 server in Node.js; its one
# account has the access key S3RVER and the secret S3RVER):
#
#   tests/integration/s3rver.sh COMMAND [ARGS...]
#
# It starts s3rver on 127.0.0.1, on a port the kernel picks, with its data
# in a new temp dir and one bucket made at start, waits until it answers,
# prints the endpoint, runs COMMAND with
#   SHORTHORN_TEST_S3_ENDPOINT=127.0.0.1:<port>  SHORTHORN_TEST_S3_BUCKET
#   SHORTHORN_TEST_S3_ACCESS_KEY  SHORTHORN_TEST_S3_SECRET_KEY
#   SHORTHORN_TEST_S3_PROTOCOL=http  SHORTHORN_TEST_S3_VERIFIES_SIGNATURES=0
# and exits with COMMAND's status. On any exit (also INT, TERM, a failure to
# start) it stops s3rver (TERM, then KILL) and removes the temp dir; s3rver
# and COMMAND run with a parent-death signal, so they end even if this script
# is killed with SIGKILL (only the temp dir is left then). Exit 77 (CTest:
# skipped) when s3rver or node is missing (scripts/install-deps.sh installs
# them).
#
# Environment: S3RVER_BIN (default /opt/shorthorn-test/s3rver/node_modules/
# .bin/s3rver), SHORTHORN_TEST_KEEP=1 (keep the temp dir and log).
set -euo pipefail

readonly S3RVER_BIN=${S3RVER_BIN:-/opt/shorthorn-test/s3rver/node_modules/.bin/s3rver}
readonly BUCKET=shorthorn-test
readonly START_TIMEOUT_S=30

say() { printf 's3rver.sh: %s\n' "$*" >&2; }

(($# > 0)) || { say "usage: s3rver.sh COMMAND [ARGS...]"; exit 2; }
if [[ ! -x $S3RVER_BIN ]] || ! command -v node >/dev/null 2>&1; then
  printf 'SKIP s3rver: %s is not installed (run scripts/install-deps.sh as root)\n' "$S3RVER_BIN"
  exit 77
fi
command -v setpriv >/dev/null 2>&1 || { printf 'SKIP s3rver: needs setpriv (util-linux)\n'; exit 77; }

work_dir=$(mktemp -d /tmp/shorthorn-s3rver.XXXXXX)
s3rver_pid=""

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $s3rver_pid ]] && kill -0 "$s3rver_pid" 2>/dev/null; then
    kill -TERM "$s3rver_pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$s3rver_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$s3rver_pid" 2>/dev/null || true
  fi
  [[ -n $s3rver_pid ]] && { wait "$s3rver_pid" 2>/dev/null || true; }
  if ((rc != 0 && rc != 77)) && [[ -s $work_dir/s3rver.log ]]; then
    say "exit $rc; s3rver log:"
    tail -n 50 "$work_dir/s3rver.log" >&2 || true
  fi
  if [[ ${SHORTHORN_TEST_KEEP:-0} == 1 ]]; then
    say "kept $work_dir"
  else
    rm -rf "$work_dir"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir "$work_dir/data"
# --port 0: the kernel picks a free port, and s3rver prints it once it
# listens. --allow-mismatched-signatures: s3rver 3.7.1 checks V2 signatures,
# but for bucket-level requests (LIST, GET ?location) it signs the resource
# "/<bucket>" while libs3 2.0 signs the path it sends, "/<bucket>/", so every
# LIST from libs3 would fail with SignatureDoesNotMatch. In this mode s3rver
# still refuses an unknown access key (InvalidAccessKeyId) but accepts any
# signature, so a wrong secret goes unnoticed: the tests that need that skip
# (SHORTHORN_TEST_S3_VERIFIES_SIGNATURES=0).
setpriv --pdeathsig KILL -- "$S3RVER_BIN" --directory "$work_dir/data" --address 127.0.0.1 \
  --port 0 --silent --allow-mismatched-signatures --configure-bucket "$BUCKET" \
  >"$work_dir/s3rver.log" 2>&1 &
s3rver_pid=$!

port=""
for ((i = 0; i < START_TIMEOUT_S * 10; i++)); do
  kill -0 "$s3rver_pid" 2>/dev/null || { say "s3rver exited at start"; exit 1; }
  port=$(sed -n 's/^S3rver listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$work_dir/s3rver.log")
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || { say "s3rver did not listen within ${START_TIMEOUT_S}s"; exit 1; }

# It answers: an anonymous GET of the bucket (s3rver lets it through) gets
# an HTTP status line back.
answered=0
for ((i = 0; i < START_TIMEOUT_S * 10; i++)); do
  # (The group keeps "2>/dev/null" from sticking to the shell, as it would
  # on a bare exec.)
  if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
    printf 'GET /%s?max-keys=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' \
      "$BUCKET" >&3
    status_line=$(timeout 5 head -n 1 <&3 || true)
    exec 3<&- 3>&-
    if [[ $status_line == "HTTP/1.1 200"* ]]; then
      answered=1
      break
    fi
  fi
  sleep 0.1
done
((answered)) || { say "s3rver on port $port does not answer for bucket $BUCKET"; exit 1; }

export SHORTHORN_TEST_S3_ENDPOINT=127.0.0.1:$port
export SHORTHORN_TEST_S3_BUCKET=$BUCKET
export SHORTHORN_TEST_S3_ACCESS_KEY=S3RVER
export SHORTHORN_TEST_S3_SECRET_KEY=S3RVER
export SHORTHORN_TEST_S3_PROTOCOL=http
export SHORTHORN_TEST_S3_VERIFIES_SIGNATURES=0
say "s3rver $("$S3RVER_BIN" --version) at http://$SHORTHORN_TEST_S3_ENDPOINT, bucket $BUCKET"
echo "SHORTHORN_TEST_S3_ENDPOINT=$SHORTHORN_TEST_S3_ENDPOINT"

# The command, too, ends with this script.
rc=0
setpriv --pdeathsig TERM -- "$@" || rc=$?
exit "$rc"
