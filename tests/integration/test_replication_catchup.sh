#!/usr/bin/env bash
# A replica stopped for ~5 s during writes catches up with only what it
# missed (issue 4).
#
# Two replicads r1 r2, a volume with two replicas (no spare replicad, so a
# full rebuild has nowhere to go). 64 MiB of random data is written at
# [64 MiB, 128 MiB) of the block device; then a writer puts another 64 MiB
# at [512 MiB, 576 MiB) in 4 MiB O_DIRECT pieces spread over ~8 s, and r2 is
# stopped (SIGTERM) for 5 s in the middle of it, then started again on the
# same port and data dir. Expected: r2 goes ERR, the writes go on; a rebuild
# job catches r2 up with 0 < Bytes < 25% of the volume; Robustness is
# healthy again. Then r1 is stopped, so every read comes from r2 alone: both
# ranges read back with the sha256 written.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
VOL_SIZE=$GiB
quick_mode || VOL_SIZE=$((4 * GiB))
start_cluster r1 r2

vol=catchup-1
a1=$(replica_address r1) a2=$(replica_address r2)
create_replicated_volume "$vol" "$VOL_SIZE" "$a1" "$a2" >/dev/null
dev=$(attach_volume "$vol")
assert_eq healthy "$(volume_prop "$vol" Robustness)" "Robustness after attach"

head -c $((64 * MiB)) /dev/urandom >"$TEST_DIR/d1"
head -c $((64 * MiB)) /dev/urandom >"$TEST_DIR/d2"
dd if="$TEST_DIR/d1" of="$dev" bs=1M seek=64 oflag=direct status=none
sum1=$(sha256sum <"$TEST_DIR/d1" | cut -d' ' -f1)
sum2=$(sha256sum <"$TEST_DIR/d2" | cut -d' ' -f1)

# The writer: 16 pieces of 4 MiB with 0.5 s between them.
(
  for ((i = 0; i < 16; i++)); do
    dd if="$TEST_DIR/d2" of="$dev" bs=4M skip="$i" seek=$((128 + i)) count=1 oflag=direct \
      status=none
    sleep 0.5
  done
) &
writer=$!
sleep 1.5
stop_daemon replicad-r2
wait_replica_mode "$vol" "$a2" ERR 15
assert_eq degraded "$(volume_prop "$vol" Robustness)" "Robustness with r2 down"
sleep 5
start_replicad r2
writer_rc=0
wait "$writer" || writer_rc=$?
assert_eq 0 "$writer_rc" "exit status of the writer (no I/O error while r2 was down)"
log "ok: every write completed while r2 was down"

wait_caught_up "$vol" "$a2"
log "catch-up job $path: $bytes bytes of $total ($msg)"
((bytes > 0)) || fail "catch-up job copied $bytes bytes"
((bytes * 4 < VOL_SIZE)) || fail "catch-up job copied $bytes bytes, not a small fraction of $VOL_SIZE"
((bytes <= 64 * MiB + 16 * MiB)) ||
  warn "catch-up copied $bytes bytes, more than the 64 MiB written (whole writer range at most)"

assert_eq "$sum1" "$(sha256_range "$dev" 64 64)" "sha256 of [64,128) MiB (both replicas)"
assert_eq "$sum2" "$(sha256_range "$dev" 512 64)" "sha256 of [512,576) MiB (both replicas)"

# Only the caught-up replica serves now.
stop_daemon replicad-r1
notice_replica_down "$vol" "$a1" 900
assert_eq RW "$(replica_mode "$vol" "$a2")" "mode of r2's replica with r1 down"
assert_eq "$sum1" "$(sha256_range "$dev" 64 64)" "sha256 of [64,128) MiB read from r2 alone"
assert_eq "$sum2" "$(sha256_range "$dev" 512 64)" "sha256 of [512,576) MiB read from r2 alone"
log "ok: r2 alone serves exactly the data written, including what it missed"
detach_volume "$vol"
pass
