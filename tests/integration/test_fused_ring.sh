#!/usr/bin/env bash
# fused with FUSE over io_uring (fused.conf fuse-uring = yes, which sets the
# fuse module's enable_uring to Y before fused mounts; the test starts with
# it N):
#  1. a volume with two replicas, ext4 on it: files, fio's verification of
#     4k writes at QD32, a snapshot and an fstrim while requests come through
#     the ring; after a remount with a cold cache every file reads back;
#  2. SIGTERM: fused stops (exit status 0, no hand-over: a ring session
#     cannot be taken over) and logs how many requests came through the
#     ring, which must be nearly all of them;
#  3. on a new fused on the ring, kill -9 of one replicad under fio's
#     verified writes: the volume goes degraded, fio sees no error;
#  4. kill -9 of fused with the volume mounted: the FUSE connection ends
#     with the process (nothing hangs), the harness cleans up, and a new
#     fused (on /dev/fuse) serves the synced files again.
# The module parameter is set back to what it was, whatever happens.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

param=/sys/module/fuse/parameters/enable_uring
init_test fio
[[ -w $param ]] || skip "this kernel has no FUSE over io_uring ($param)"
was=$(cat "$param")
teardown_hook() { echo "$was" >"$param"; }
echo N >"$param"

vol=ring-1
mnt=$FS_DIR/$vol
start_replicads r1 r2
start_fused_opts --fuse-uring yes
grep -q "FUSE over io_uring: [0-9]* queue(s)" "$LOG_DIR/fused.log" ||
  fail "fused did not start FUSE over io_uring: $(grep -i uring "$LOG_DIR/fused.log")"
assert_eq Y "$(cat "$param")" "enable_uring after fused started with fuse-uring = yes"

create_volume "$vol" "$GiB" "$(replica_address r1)" "$(replica_address r2)" >/dev/null
mount_volume "$vol"
write_random_files "$mnt/data" 4 8
write_small_files "$mnt/data" 60
fio --name=verify --filename="$mnt/fio.dat" --size=$((32 * MiB)) --rw=randwrite --bs=4k \
  --iodepth=32 --ioengine=libaio --direct=1 --verify=crc32c --do_verify=1 --verify_fatal=1 \
  --output="$TEST_DIR/fio.out" || fail "fio verify failed: $(tail -n 20 "$TEST_DIR/fio.out")"
volume_call "$vol" Snapshot 'sa{sv}' s1 0 >/dev/null
rm -f "$mnt/data/big-0"
fstrim "$mnt"
record_checksums "$mnt" "$TEST_DIR/sums"
umount "$mnt"
assert_fsck_clean "$dev" "after writes through the ring"
echo 3 >/proc/sys/vm/drop_caches
mount "$dev" "$mnt"
verify_checksums "$mnt" "$TEST_DIR/sums"
umount "$mnt"
detach_volume "$vol"

# The metrics file says the ring is in use, and counts its requests.
prom() { awk -v k="$1" '$1 == k { print $2 }' "$METRICS_DIR/shorthorn.prom" 2>/dev/null; }
# shellcheck disable=SC2317  # called through wait_until
ring_counted() { [[ $(prom shorthorn_fuse_uring) == 1 ]] && (($(prom shorthorn_fuse_uring_requests_total) >= 8192)); }
wait_until 30 "shorthorn_fuse_uring 1 and >= 8192 ring requests in the metrics file" ring_counted >/dev/null
log "ok: metrics: shorthorn_fuse_uring $(prom shorthorn_fuse_uring), $(prom shorthorn_fuse_uring_requests_total) ring requests"

stop_daemon fused 30
assert_eq 0 "$DAEMON_STATUS" "fused's exit status after SIGTERM (a ring session is not handed over)"
n=$(sed -n 's/.* \([0-9]*\) FUSE requests came through io_uring$/\1/p' "$LOG_DIR/fused.log")
[[ -n $n ]] || fail "fused logged no count of ring requests: $(tail -n 20 "$LOG_DIR/fused.log")"
# 32 MiB of 4k writes alone are 8192 requests.
assert_ge 8192 "$n" "requests through the ring"
log "ok: $n requests came through the ring"

log "kill -9 of fused on the ring with the volume mounted"
: >"$LOG_DIR/fused.log"
start_fused_opts --fuse-uring yes
mount_volume_again() {
  dev=$(attach_volume "$vol")
  mkdir -p "$mnt"
  mount "$dev" "$mnt"
}
mount_volume_again
verify_checksums "$mnt" "$TEST_DIR/sums"

log "kill -9 of replicad r2 under fio through the ring"
fio --name=kill --filename="$mnt/fio2.dat" --size=$((128 * MiB)) --direct=1 --ioengine=libaio \
  --iodepth=16 --rw=randwrite --bssplit=4k/50:64k/50 --verify=crc32c --do_verify=1 \
  --verify_fatal=1 --output="$TEST_DIR/fio2.out" >/dev/null 2>"$TEST_DIR/fio2.err" &
fio_pid=$!
sleep 1
_pid_alive "$fio_pid" || warn "fio ended before the kill: the kill happens after the writes"
kill_daemon replicad-r2 KILL
wait_robustness "$vol" degraded 30
fio_rc=0
wait "$fio_pid" || fio_rc=$?
((fio_rc == 0)) || fail "fio failed ($fio_rc): $(cat "$TEST_DIR/fio2.err" "$TEST_DIR/fio2.out")"
grep -q "err= 0" "$TEST_DIR/fio2.out" || fail "fio reports errors: $(cat "$TEST_DIR/fio2.out")"
log "ok: fio finished with err=0 and verify passed after r2 was killed"

write_random_files "$mnt/more" 2 4
record_checksums "$mnt" "$TEST_DIR/sums2"
sync -f "$mnt"
kill_daemon fused KILL
# The connection ended with the process: the file answers at once, with
# ENOTCONN, or ECONNABORTED for a request the ring's teardown ended (a
# connection kept alive would leave the request unanswered).
rc=0
err=$(timeout 10 stat "$FUSED_MOUNT_POINT/$vol" 2>&1 >/dev/null) || rc=$?
((rc != 124)) || fail "stat of the volume's FUSE file hung after fused was killed"
[[ $err == *"Transport endpoint is not connected"* || $err == *"connection abort"* ]] ||
  fail "stat of the volume's FUSE file after fused was killed: status $rc, '$err'"
teardown
assert_nothing_left

log "starting again (classic /dev/fuse) on the same state dir"
# The kernel offers the ring (enable_uring Y), but fused without
# fuse-uring keeps to /dev/fuse.
echo Y >"$param"
: >"$LOG_DIR/fused.log"
start_replicads r1 r2
start_fused
grep -q "FUSE over io_uring: [0-9]* queue(s)" "$LOG_DIR/fused.log" &&
  fail "fused without fuse-uring started FUSE over io_uring"
mount_volume_again
verify_checksums "$mnt" "$TEST_DIR/sums2"
umount "$mnt"
assert_fsck_clean "$dev" "after the kill and a journal replay"
detach_volume "$vol"
pass
