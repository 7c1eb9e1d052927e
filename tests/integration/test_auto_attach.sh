#!/usr/bin/env bash
# Issue 17, "volumes come back by themselves": with auto-attach, a volume
# that was attached when fused stopped is attached again when fused starts,
# with the same frontend, and retried with backoff while its replicad is
# down; its StateReason says why meanwhile. Detach stops it; a volume that
# was detached stays detached.
#
# Volume "back" (one replica on r1, block frontend) gets 8 MiB of random
# data and stays attached; volume "idle" is created and left detached;
# volume "stopped" is attached, then detached; volume "given-up" stays
# attached (FUSE file). fused stops (SIGTERM: it
# detaches everything but remembers), r1 stops, fused starts again: "back"
# fails to attach and says so (StateReason), r1 starts, and "back" comes
# back attached as a block device within the backoff ("given-up", detached
# while waiting, does not); the data reads back
# with the same sha256. "idle" and "stopped" stay detached. After a kill -9
# of fused "back" comes back again. Then "back" is detached and fused
# restarted once more: now it stays detached.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
FUSED_AUTO_ATTACH=yes

# wait_attached NAME WHEN: waits up to 30 s for State attached.
wait_attached() {
  local state="" i
  for ((i = 0; i < 300; i++)); do
    state=$(volume_prop "$1" State)
    [[ $state != attached ]] || return 0
    sleep 0.1
  done
  fail "State of $1 $2: $state after 30 s, expected attached"
}

start_cluster r1

addr=$(replica_address r1)
create_volume back $((64 * MiB)) "$addr" >/dev/null
create_volume idle $((64 * MiB)) "$addr" >/dev/null
create_volume stopped $((64 * MiB)) "$addr" >/dev/null
dev=$(attach_volume back)
head -c $((8 * MiB)) /dev/urandom >"$TEST_DIR/data"
dd if="$TEST_DIR/data" of="$dev" bs=1M oflag=direct status=none
want=$(sha256sum <"$TEST_DIR/data" | cut -d' ' -f1)
attach_volume stopped file >/dev/null
detach_volume stopped
create_volume given-up $((64 * MiB)) "$addr" >/dev/null
attach_volume given-up file >/dev/null
assert_eq "" "$(volume_prop back StateReason)" "StateReason while attached"

stop_daemon fused
stop_daemon replicad-r1
start_fused
# r1 is down: the first tries fail and StateReason says so.
reason=""
for ((i = 0; i < 100; i++)); do
  reason=$(volume_prop back StateReason)
  [[ $reason != "attach at start failed:"* ]] || break
  sleep 0.1
done
[[ $reason == "attach at start failed:"*"next try in"* ]] ||
  fail "StateReason of back while r1 is down: '$reason'"
log "ok: while r1 is down, StateReason is '$reason'"
assert_eq detached "$(volume_prop back State)" "State while r1 is down"
grep -q "auto-attach: volume back: " "$LOG_DIR/fused.log" || fail "no log line for the failed auto-attach"
# Detach while it is still trying: it stops trying.
detach_volume given-up
assert_eq "" "$(volume_prop given-up StateReason)" "StateReason of given-up after Detach"

start_replicad r1 "${REPLICAD_PORTS[r1]}"
wait_attached back "after r1 came back"
assert_eq "" "$(volume_prop back StateReason)" "StateReason once attached"
dev=$(volume_prop back LoopDevice)
[[ $dev == /dev/loop* ]] || fail "back came back without its block device: '$dev'"
echo "$dev back" >>"$TEST_DIR/attached-loops"
got=$(head -c $((8 * MiB)) "$dev" | sha256sum | cut -d' ' -f1)
assert_eq "$want" "$got" "sha256 of the data read back after auto-attach"
log "ok: back attached again at $dev with its data"
assert_eq detached "$(volume_prop idle State)" "State of idle (never attached)"
assert_eq detached "$(volume_prop stopped State)" "State of stopped (detached before the stop)"
assert_eq detached "$(volume_prop given-up State)" "State of given-up (detached while waiting)"

# A crash (kill -9) of fused: the volume comes back too (on a new loop
# device: keeping the old one across a restart is still to come).
kill_daemon fused
start_fused
wait_attached back "after kill -9 of fused"
dev=$(volume_prop back LoopDevice)
echo "$dev back" >>"$TEST_DIR/attached-loops"
got=$(head -c $((8 * MiB)) "$dev" | sha256sum | cut -d' ' -f1)
assert_eq "$want" "$got" "sha256 after kill -9 of fused and auto-attach"
log "ok: back attached again at $dev after kill -9 of fused"

# Detached by hand: not attached at the next start.
detach_volume back
stop_daemon fused
start_fused
sleep 2
assert_eq detached "$(volume_prop back State)" "State of back after Detach and a restart"
assert_eq "" "$(volume_prop back StateReason)" "StateReason of back after Detach"
pass
