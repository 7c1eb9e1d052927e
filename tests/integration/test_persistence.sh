#!/usr/bin/env bash
# Data written to a volume survives detach and a restart of both daemons.
#
# Create a 1 GiB volume with one replica, attach it as a block device, put
# ext4 on it, write 200 MiB of random files plus small ones and record their
# sha256. Unmount, detach, stop fused and replicad (SIGTERM: both must exit
# 0), start them again, check the volume is listed (detached), attach, check
# e2fsck -fn is clean, mount and verify every checksum. While attached the
# <dev-dir>/<volume> symlink points at the loop device; after detach it is gone.
# The replica is on this host, so fused reaches it through the replicad's
# Unix socket (<socket-dir>/<port>.sock), not loopback TCP.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
start_cluster r1

vol=persist-1
mnt=$FS_DIR/$vol
sums=$TEST_DIR/sha256sums

# check_attached DEVICE: properties, FUSE file and dev-dir symlink agree.
check_attached() {
  local dev=$1
  [[ $dev == /dev/loop* && -b $dev ]] || fail "Attach returned '$dev', not a loop device"
  assert_eq attached "$(volume_prop "$vol" State)" "State after Attach"
  assert_eq "$dev" "$(volume_prop "$vol" LoopDevice)" "LoopDevice property"
  assert_eq "$FUSED_MOUNT_POINT/$vol" "$(volume_prop "$vol" FrontendPath)" "FrontendPath property"
  assert_eq "$GiB" "$(stat -c %s "$FUSED_MOUNT_POINT/$vol")" "size of the FUSE file"
  assert_eq "$GiB" "$(blockdev --getsize64 "$dev")" "size of $dev"
  [[ -L $FUSED_DEV_DIR/$vol ]] || fail "no symlink $FUSED_DEV_DIR/$vol while attached"
  assert_eq "$dev" "$(readlink -f "$FUSED_DEV_DIR/$vol")" "target of $FUSED_DEV_DIR/$vol"
  assert_eq "$FUSED_MOUNT_POINT/$vol" "$(losetup -n -O BACK-FILE "$dev" | sed 's/ *$//')" \
    "backing file of $dev"
  local sock=$SOCK_DIR/${REPLICAD_PORTS[r1]}.sock unix tcp
  [[ -S $sock ]] || fail "replicad r1 made no Unix socket $sock"
  unix=$(ss -xH state connected | grep -c -F " $sock " || true)
  tcp=$(ss -tnH state established "( sport = :${REPLICAD_PORTS[r1]} )" | wc -l)
  ((unix >= 4)) || fail "fused has $unix connections on $sock (want the 4 per replica)"
  assert_eq 0 "$tcp" "TCP connections to replicad r1 while its Unix socket serves"
}

check_detached() {
  assert_eq detached "$(volume_prop "$vol" State)" "State after Detach"
  assert_eq "" "$(volume_prop "$vol" LoopDevice)" "LoopDevice after Detach"
  [[ ! -e $FUSED_DEV_DIR/$vol && ! -L $FUSED_DEV_DIR/$vol ]] ||
    fail "$FUSED_DEV_DIR/$vol still exists after Detach"
  [[ ! -e $FUSED_MOUNT_POINT/$vol ]] || fail "$FUSED_MOUNT_POINT/$vol still exists after Detach"
}

path=$(create_volume "$vol" "$GiB" "$(replica_address r1)")
assert_eq "$(volume_path "$vol")" "$path" "object path returned by CreateVolume"
assert_eq "$path" "$(list_volumes)" "ListVolumes after CreateVolume"
assert_eq detached "$(volume_prop "$vol" State)" "State after CreateVolume"
assert_eq "$GiB" "$(volume_prop "$vol" Size)" "Size property"

dev=$(attach_volume "$vol")
log "attached $vol at $dev"
check_attached "$dev"
assert_eq 4096 "$(blockdev --getss "$dev")" "logical sector size of $dev"

mkfs.ext4 -q -F "$dev"
mkdir -p "$mnt"
mount "$dev" "$mnt"
log "writing 200 MiB of random files and 200 small ones"
write_random_files "$mnt" 20 10
write_small_files "$mnt" 200
record_checksums "$mnt" "$sums"
umount "$mnt"

detach_volume "$vol"
check_detached

log "restarting fused and replicad"
stop_daemon fused
assert_eq 0 "$DAEMON_STATUS" "exit status of fused after SIGTERM"
stop_daemon replicad-r1
assert_eq 0 "$DAEMON_STATUS" "exit status of replicad after SIGTERM"
[[ -z $(_mounts_under fuse) ]] || fail "FUSE mount still present after fused exited"
start_replicad r1
start_fused

assert_eq "$path" "$(list_volumes)" "ListVolumes after restart"
assert_eq detached "$(volume_prop "$vol" State)" "State after restart"
assert_eq "$GiB" "$(volume_prop "$vol" Size)" "Size after restart"

dev=$(attach_volume "$vol")
log "attached $vol again at $dev"
check_attached "$dev"
assert_fsck_clean "$dev" "attached again"
mount "$dev" "$mnt"
verify_checksums "$mnt" "$sums"
umount "$mnt"
detach_volume "$vol"
check_detached

pass
