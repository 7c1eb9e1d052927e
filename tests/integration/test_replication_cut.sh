#!/usr/bin/env bash
# A replica cut off by the network (issue 4), with a fault-injecting TCP
# proxy (fault_proxy.py) between fused and replicad r2.
#
# fused runs with --replica-timeout 2 and knows only r1 and the proxy (so a
# full rebuild has nowhere else to go). The volume's replicas: r1 and the
# proxy's address. A writer overwrites the same 16 MiB range again and
# again with new random data; meanwhile the proxy is switched to blackhole
# (connections stay open, nothing moves). Expected: the replica behind the
# proxy is ERR within the timeout plus slack, the writes go on (each write
# completes), Robustness is degraded. Then the cut heals (the bytes held
# during the cut are delivered, as TCP would retransmit them): the replica
# catches up (a small rebuild job) and Robustness is healthy. Last, r1 is
# stopped so the replica behind the proxy serves alone: the range reads back
# as last written (a write in flight at the cut, delivered late, must not
# have overwritten newer data).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd python3
TIMEOUT_S=2
start_bus
start_replicad r1
start_replicad r2
a1=$(replica_address r1)
pport=$(free_port)
pa=127.0.0.1:$pport
python3 "$LIB_DIR/fault_proxy.py" --listen "$pport" --target "$(replica_address r2)" \
  --state-file "$TEST_DIR/proxy.state" >>"$LOG_DIR/fault_proxy.log" 2>&1 </dev/null &
DAEMON_PIDS[fault_proxy]=$!
proxy_is() { [[ $(cat "$TEST_DIR/proxy.state" 2>/dev/null) == "$1" ]]; }
wait_until 10 "fault proxy listening" proxy_is pass >/dev/null
start_fused_opts --replicads "$a1 $pa" --replica-timeout "$TIMEOUT_S"

vol=cut-1
VOL_SIZE=$((512 * MiB))
create_replicated_volume "$vol" "$VOL_SIZE" "$a1" "$pa" >/dev/null
dev=$(attach_volume "$vol")
assert_eq RW "$(replica_mode "$vol" "$pa")" "replica behind the proxy"
dd if=/dev/urandom of="$dev" bs=1M seek=0 count=64 oflag=direct status=none

# The writer: generation g writes 16 MiB of fresh data at [128, 144) MiB in
# 1 MiB pieces, keeping a copy of what it wrote last.
stop_file=$TEST_DIR/stop-writer
(
  g=0
  while [[ ! -e $stop_file ]]; do
    head -c $((16 * MiB)) /dev/urandom >"$TEST_DIR/gen.tmp"
    dd if="$TEST_DIR/gen.tmp" of="$dev" bs=1M seek=128 oflag=direct status=none || exit 1
    mv "$TEST_DIR/gen.tmp" "$TEST_DIR/gen.last"
    g=$((g + 1))
    echo "$g" >"$TEST_DIR/gen.count"
  done
) &
writer=$!
sleep 2
kill -USR1 "${DAEMON_PIDS[fault_proxy]}"
wait_until 5 "proxy in blackhole mode" proxy_is blackhole >/dev/null
cut_at=$(date +%s.%N)
proxied_is_err() { [[ $(replica_mode "$vol" "$pa") == ERR ]]; }
wait_until $((TIMEOUT_S + 15)) "replica behind the proxy ERR after the cut" proxied_is_err >/dev/null
err_after=$(python3 -c "import time; print('%.1f' % (time.time() - $cut_at))")
log "replica behind the proxy is ERR ${err_after}s after the cut (timeout ${TIMEOUT_S}s)"
assert_eq ERR "$(replica_mode "$vol" "$pa")" "replica behind the proxy after the cut"
python3 -c "import sys; sys.exit(0 if $err_after <= $TIMEOUT_S + 6 else 1)" ||
  fail "ERR only ${err_after}s after the cut, timeout is ${TIMEOUT_S}s"
assert_eq degraded "$(volume_prop "$vol" Robustness)" "Robustness during the cut"
g0=$(cat "$TEST_DIR/gen.count")
sleep 3
g1=$(cat "$TEST_DIR/gen.count")
((g1 > g0)) || fail "no write completed during the cut (generation $g0 -> $g1)"
log "ok: I/O goes on during the cut ($((g1 - g0)) x 16 MiB written in 3 s)"
# A plain write during the cut completes too.
dd if=/dev/urandom of="$dev" bs=1M seek=256 count=8 oflag=direct status=none ||
  fail "dd during the cut failed"
sleep 2

kill -USR2 "${DAEMON_PIDS[fault_proxy]}"
wait_until 5 "proxy passing again" proxy_is pass >/dev/null
log "cut healed"
wait_caught_up "$vol" "$pa"
((bytes > 0 && bytes * 4 < VOL_SIZE)) ||
  fail "rejoin copied $bytes bytes: not a catch-up (volume $VOL_SIZE)"
log "ok: rejoined by catch-up, $bytes bytes"

sleep 2
touch "$stop_file"
wait "$writer" || fail "the writer failed"
want=$(sha256sum <"$TEST_DIR/gen.last" | cut -d' ' -f1)
assert_eq "$want" "$(sha256_range "$dev" 128 16)" "last generation (both replicas)"
stop_daemon replicad-r1
notice_replica_down "$vol" "$a1" 0
assert_eq RW "$(replica_mode "$vol" "$pa")" "replica behind the proxy with r1 down"
assert_eq "$want" "$(sha256_range "$dev" 128 16)" "last generation read from the rejoined replica alone"
log "ok: the rejoined replica alone serves the newest data"
detach_volume "$vol"
# Replica directories on r2 that the volume does not know (a CREATE_REPLICA
# of a rebuild attempt held by the cut and applied after it healed).
known=$(replica_name_at "$vol" "$pa")
for d in "$REPLICAS_DIR"/r2/*/; do
  d=$(basename "$d")
  [[ $d == "$known" ]] ||
    warn "orphaned replica $d on r2 (not in volume $vol's replicas, which name $known there)"
done
pass
