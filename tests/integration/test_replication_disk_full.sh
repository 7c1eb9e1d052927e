#!/usr/bin/env bash
# A replicad whose disk fills up errors cleanly (issue 4).
#
# Replicad "small" keeps its data on a 64 MiB ext4 (an image file on a loop
# device this test creates and removes); r1 on the normal disk. A 256 MiB
# volume with one replica on each gets 200 MiB of random data: the small
# one runs out of space and goes ERR, every write still completes (on r1),
# Robustness is degraded, the data reads back by sha256, fused, r1 and the
# small replicad are still running, and the small replicad still serves a
# volume that fits.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
start_bus
small_img=$TEST_DIR/small.img
small_dir=$REPLICAS_DIR/small
truncate -s 64M "$small_img"
mkfs.ext4 -q -F "$small_img"
small_loop=$(losetup --find --show "$small_img")
mkdir -p "$small_dir"
mount "$small_loop" "$small_dir"
# Before the harness's teardown: the replicad first, then its file system.
teardown_hook() {
  stop_daemon replicad-small 20
  if mountpoint -q "$small_dir"; then umount "$small_dir" || umount -l "$small_dir"; fi
  losetup -d "$small_loop" 2>/dev/null || true
}
log "replicad 'small' on a 64 MiB ext4 ($small_loop)"
start_replicad r1
start_replicad small
# A 256 MiB replica on a 64 MiB disk is what placement refuses by default
# (replica-over-provisioning 100): this test overcommits on purpose.
start_fused_opts --replica-over-provisioning 1000
a1=$(replica_address r1) as=$(replica_address small)

vol=full-1
create_replicated_volume "$vol" $((256 * MiB)) "$a1" "$as" >/dev/null
dev=$(attach_volume "$vol")
head -c $((200 * MiB)) /dev/urandom >"$TEST_DIR/data"
want=$(sha256sum <"$TEST_DIR/data" | cut -d' ' -f1)
rc=0
dd if="$TEST_DIR/data" of="$dev" bs=1M oflag=direct status=none 2>"$TEST_DIR/dd.err" || rc=$?
((rc == 0)) || fail "writing 200 MiB failed ($rc): $(cat "$TEST_DIR/dd.err")"
log "ok: 200 MiB written without error; small fs: $(df -h --output=used,avail "$small_dir" | tail -1)"
# ERR, or WO while fused tries to catch it up (which fails for lack of space).
mode=$(replica_mode "$vol" "$as")
[[ $mode == ERR || $mode == WO ]] || fail "replica on the full disk: expected ERR (or WO), got '$mode'"
assert_eq RW "$(replica_mode "$vol" "$a1")" "replica on r1"
assert_eq degraded "$(volume_prop "$vol" Robustness)" "Robustness"
grep -i -E "no space|ENOSPC|NoSpace" "$LOG_DIR/fused.log" | head -3 | while read -r l; do log "fused: $l"; done
grep -q -i -E "no space|ENOSPC|NoSpace" "$LOG_DIR/fused.log" "$LOG_DIR/replicad-small.log" ||
  fail "neither fused's nor the small replicad's log says the disk is full"
assert_eq "$want" "$(sha256_range "$dev" 0 200)" "200 MiB read back"
# More I/O goes on, and the full replica stays ERR (catch-up cannot fit).
dd if=/dev/urandom of="$dev" bs=1M seek=220 count=16 oflag=direct status=none ||
  fail "write after the disk filled up"
sleep 5
assert_eq "$want" "$(sha256_range "$dev" 0 200)" "200 MiB read back again"
[[ $(replica_mode "$vol" "$as") != RW ]] || fail "the full replica is RW again"
for d in fused replicad-r1 replicad-small; do _check_alive "$d"; done
log "ok: fused, r1 and the small replicad are still running"
detach_volume "$vol"
# The small replicad still serves what fits: delete the big volume (frees
# its space), then a small volume on it alone works.
delete_volume "$vol"
create_volume small-1 $((16 * MiB)) "$as" >/dev/null
dev=$(attach_volume small-1)
head -c $((8 * MiB)) /dev/urandom >"$TEST_DIR/small-data"
dd if="$TEST_DIR/small-data" of="$dev" bs=1M oflag=direct status=none
assert_eq "$(sha256sum <"$TEST_DIR/small-data" | cut -d' ' -f1)" "$(sha256_range "$dev" 0 8)" \
  "data on the small replicad after the disk was full"
detach_volume small-1
pass
