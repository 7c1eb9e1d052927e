#!/usr/bin/env bash
# kill -9 of fused with a mounted volume: the harness still cleans up, and a
# new fused on the same state dir serves the volume with its synced data.
#
# Attach, mkfs, mount, write a file, sync, kill -9 fused. Run the harness
# teardown and assert explicitly that no mount under the temp dir, no loop
# device backed by a file under it and no process started by the test remain.
# Then start bus, replicad and fused again on the same directories: the volume
# is listed (detached), Attach and mount work, and the file reads back with
# the same sha256. The final teardown is checked the same way.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
start_cluster r1

vol=kill-1
mnt=$FS_DIR/$vol
path=$(create_volume "$vol" "$GiB" "$(replica_address r1)")
dev=$(attach_volume "$vol")
mkfs.ext4 -q -F "$dev"
mkdir -p "$mnt"
mount "$dev" "$mnt"
write_random_files "$mnt" 3 10
record_checksums "$mnt" "$TEST_DIR/sha256sums"
sync -f "$mnt"
# Writes after the sync that the kill will lose: they must not break anything.
dd if=/dev/urandom of="$mnt/unsynced" bs=1M count=5 status=none

kill_daemon fused KILL
log "fused killed; mounts now:"
grep -F "$TEST_DIR" /proc/self/mountinfo | awk '{ print "  " $5 }' || true

log "tearing down after the kill"
teardown
assert_nothing_left
[[ -z $(_mounts_under all) ]] || fail "mounts remain under $TEST_DIR"
[[ -z $(_loops_under) ]] || fail "loop devices backed by files under $TEST_DIR remain"
[[ -d $FUSED_STATE_DIR ]] || fail "teardown removed the fused state dir"

log "starting again on the same state dir"
start_bus
start_replicad r1
start_fused
assert_eq "$path" "$(list_volumes)" "ListVolumes after kill -9 and restart"
assert_eq detached "$(volume_prop "$vol" State)" "State after kill -9 and restart"
dev=$(attach_volume "$vol")
assert_eq attached "$(volume_prop "$vol" State)" "State after Attach"
# The kill left the journal unreplayed: mount replays it; fsck must then be clean.
mount "$dev" "$mnt"
verify_checksums "$mnt" "$TEST_DIR/sha256sums"
umount "$mnt"
assert_fsck_clean "$dev" "after journal replay"
detach_volume "$vol"

pass
