#!/usr/bin/env bash
# Issue 16: hostile clients of one replicad while a real volume on it keeps
# serving. Replicad r1 holds the only replica of a volume; fio writes and
# verifies (crc32c) its device the whole time, while hostile_client.py
# sends random bytes, malformed frames, requests without authentication,
# the wrong key, forged proofs, old epochs, REPLICAD_INFO with payloads that
# are not JSON objects (and good ones: r1 reports host id test-host-r1), a
# flood of unauthenticated connections, many idle authenticated ones, and a
# client that asks for 256 MiB of reads and never reads the replies. Then: fio passed, the
# volume is healthy, nothing of it was touched, and replicad's resident
# memory (sampled every 0.2 s) stayed under RSS_BOUND_MIB.
#
# The bound: replicad's RSS before the attack plus 160 MiB, which holds the
# stalled reader's 64 MiB of reads in flight (per connection), 64
# connections in the handshake (a thread each, nothing else allocated) and
# the idle authenticated ones (two threads and the touched pages of a
# frame buffer each). Measured: 6 MiB before, 76 MiB at most (full mode).
#
# Quick (CI=true or SHORTHORN_QUICK=1): 1,000 flood connections, 200 idle
# ones, 300 garbage connections. Full: 4,000, 500 and 2,000.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd fio python3
HOSTILE=(python3 "$LIB_DIR/hostile_client.py")
if quick_mode; then
  FLOOD=1000 IDLE=200 GARBAGE=300
else
  FLOOD=4000 IDLE=500 GARBAGE=2000
fi

start_bus
# Short timeouts so that the test sees them act.
REPLICAD_EXTRA_ARGS=(--auth-timeout 2 --send-timeout 3)
start_replicad r1
REPLICAD_EXTRA_ARGS=()
start_fused
addr=$(replica_address r1)
vol=hostile-1
create_volume "$vol" $((256 * MiB)) "$addr" >/dev/null
dev=$(attach_volume "$vol")
name=$(replica_name_at "$vol" "$addr")
[[ -n $name ]] || fail "no replica of $vol on r1"
pid=${DAEMON_PIDS[replicad-r1]}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }
base_kib=$(rss_kib)
RSS_BOUND_MIB=$((base_kib / 1024 + 160))
log "replicad r1 (pid $pid): RSS ${base_kib} KiB before the attack; bound ${RSS_BOUND_MIB} MiB"

# RSS sampler: the highest value seen, in $TEST_DIR/rss.max.
echo 0 >"$TEST_DIR/rss.max"
(
  max=0
  while [[ -e /proc/$pid/status ]]; do
    v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
    if ((v > max)); then max=$v && echo "$max" >"$TEST_DIR/rss.max"; fi
    sleep 0.2
  done
) &
sampler=$!

# fio: write and verify the device in rounds until the attack is over.
touch "$TEST_DIR/attacking"
(
  round=0
  while [[ -e $TEST_DIR/attacking || $round -eq 0 ]]; do
    round=$((round + 1))
    fio --name=hostile --filename="$dev" --size=64M --offset=$(((round % 3) * 64))M --direct=1 \
      --ioengine=libaio --iodepth=16 --rw=randwrite --bs=4k --verify=crc32c --verify_fatal=1 \
      --randrepeat=0 --output="$TEST_DIR/fio.$round.out" >/dev/null 2>"$TEST_DIR/fio.$round.err" ||
      { echo "round $round failed" >"$TEST_DIR/fio.failed"; exit 1; }
    grep -q "err= 0" "$TEST_DIR/fio.$round.out" || { echo "round $round: errors" >"$TEST_DIR/fio.failed"; exit 1; }
    echo "$round" >"$TEST_DIR/fio.rounds"
  done
) &
fio_loop=$!

attack() {
  local what=$1 out
  shift
  out=$("${HOSTILE[@]}" "$what" "$addr" "$@" 2>&1) || fail "hostile client '$what': $out"
  log "ok: $out"
}
attack garbage "$GARBAGE"
attack malformed
attack unauth "$vol" "$name"
attack wrongkey
attack stale "$vol" "$name"
attack info test-host-r1
attack flood "$FLOOD" 3
attack idle "$IDLE" 4
attack noread 30
# The unauthenticated flood is closed after auth-timeout: connections drop
# back to fused's own.
# shellcheck disable=SC2317  # called through wait_until
settled() { (($(ss -Htn state established "sport = :${addr##*:}" | wc -l) < 20)); }
t=$(wait_until 30 "replicad's connections back to fused's own" settled)
log "connections settled after ${t}s: $(ss -Htn state established "sport = :${addr##*:}" | wc -l)"

rm -f "$TEST_DIR/attacking"
fio_rc=0
wait "$fio_loop" || fio_rc=$?
[[ ! -e $TEST_DIR/fio.failed ]] || fail "fio: $(cat "$TEST_DIR/fio.failed"): $(cat "$TEST_DIR"/fio.*.err)"
((fio_rc == 0)) || fail "the fio loop exited with $fio_rc"
log "ok: fio wrote and verified $(cat "$TEST_DIR/fio.rounds") rounds of 64 MiB during the attack"

max_kib=$(cat "$TEST_DIR/rss.max")
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
log "replicad RSS: ${base_kib} KiB before, ${max_kib} KiB at most during the attack (bound ${RSS_BOUND_MIB} MiB)"
((max_kib <= RSS_BOUND_MIB * 1024)) ||
  fail "replicad's RSS reached ${max_kib} KiB, over the bound of ${RSS_BOUND_MIB} MiB"

_pid_alive "$pid" || fail "replicad r1 died"
assert_eq healthy "$(volume_prop "$vol" Robustness)" "Robustness after the attack"
assert_eq RW "$(replica_mode "$vol" "$addr")" "the replica's mode after the attack"
grep -q "refused connection from" "$LOG_DIR/replicad-r1.log" ||
  fail "replicad logged no refused connection"
grep -q "refusing connections" "$LOG_DIR/replicad-r1.log" ||
  fail "replicad did not log the connection limit"
# The attacker's own replica was deleted by its client; fused's is there.
[[ -d $REPLICAS_DIR/r1/$name ]] || fail "the volume's replica directory is gone"
[[ -z $(find "$REPLICAS_DIR/r1" -maxdepth 1 -name 'attacker-*') ]] || fail "the attacker's replica is left"
detach_volume "$vol"
pass
