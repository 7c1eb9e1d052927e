#!/usr/bin/env bash
# Snapshots through D-Bus on a mounted ext4 (issue 3).
#
# Write data A, snapshot s1, write B, snapshot s2, write C. Revert while
# attached is refused (Busy). Revert to s1 in maintenance mode -> A by
# sha256; revert to s2 while detached -> B; delete s1 (a job) -> s2 and the
# live data still read back. e2fsck -fn is clean after each step. Then bad
# input (existing name, unknown snapshot, smaller expand, the 251st
# snapshot), Verify finding a damaged snapshot layer, expand of a mounted
# volume, and thin provisioning.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
start_cluster r1

vol=snap-1
mnt=$FS_DIR/$vol
vpath=$(volume_path "$vol")

snapshot() { volume_call "$vol" Snapshot 'sa{sv}' "$1" 0 >/dev/null; }
revert() { volume_call "$vol" Revert 'sa{sv}' "$1" 0 >/dev/null; }
snapshot_names() {
  busctl --system --json=short get-property "$BUS_NAME" "$vpath" "$VOLUME_IFACE" Snapshots |
    python3 -c 'import json,sys; print(" ".join(s[0] for s in json.load(sys.stdin)["data"] if not s[5]))'
}

mount_vol() {
  local dev
  dev=$(attach_volume "$vol")
  assert_fsck_clean "$dev" "after $1"
  mkdir -p "$mnt"
  mount "$dev" "$mnt"
  echo "$dev"
}

unmount_vol() {
  umount "$mnt"
  detach_volume "$vol"
}

# write_generation DIR TAG: rewrites the same files with new random content.
write_generation() {
  write_random_files "$1" 4 8
  write_small_files "$1" 40
  echo "$2" >"$1/generation"
  sync
}

create_volume "$vol" "$GiB" "$(replica_address r1)" >/dev/null
dev=$(attach_volume "$vol")
mkfs.ext4 -q "$dev"
mkdir -p "$mnt"
mount "$dev" "$mnt"

write_generation "$mnt/data" A
record_checksums "$mnt" "$TEST_DIR/sums-A"
snapshot s1
write_generation "$mnt/data" B
record_checksums "$mnt" "$TEST_DIR/sums-B"
snapshot s2
write_generation "$mnt/data" C
record_checksums "$mnt" "$TEST_DIR/sums-C"
assert_eq "s1 s2" "$(snapshot_names)" "Snapshots after two snapshots"

assert_error_name Busy "Revert while attached with a frontend" "$vpath" \
  "$VOLUME_IFACE.Revert" "'s1'" "@a{sv} {}"
verify_checksums "$mnt" "$TEST_DIR/sums-C"
unmount_vol

# Revert to s1 in maintenance mode.
out=$(volume_call "$vol" Attach 'a{sv}' 1 maintenance b true | _unquote)
assert_eq "" "$out" "Attach in maintenance mode returns no device"
assert_eq maintenance "$(volume_prop "$vol" State)" "State in maintenance mode"
assert_error_name NotFound "Revert to an unknown snapshot" "$vpath" \
  "$VOLUME_IFACE.Revert" "'nope'" "@a{sv} {}"
revert s1
detach_volume "$vol"
mount_vol "revert to s1" >/dev/null
verify_checksums "$mnt" "$TEST_DIR/sums-A"
assert_eq A "$(cat "$mnt/data/generation")" "generation after revert to s1"
unmount_vol

# Revert to s2 while detached.
revert s2
mount_vol "revert to s2" >/dev/null
verify_checksums "$mnt" "$TEST_DIR/sums-B"

# Delete s1 while mounted: a job merges it into s2.
job=$(volume_call "$vol" DeleteSnapshot 'sa{sv}' s1 0 | _unquote)
[[ $job == /org/shorthorn/Storage1/jobs/* ]] || fail "DeleteSnapshot returned '$job', not a job"
assert_eq delete-snapshot "$(job_prop "$job" Operation)" "job Operation"
echo "live write during the merge" >"$mnt/during-merge"
assert_eq completed "$(wait_job "$job")" "delete-snapshot job result"
assert_eq s2 "$(snapshot_names)" "Snapshots after deleting s1"
verify_checksums "$mnt" "$TEST_DIR/sums-B"
sync
unmount_vol
mount_vol "delete of s1" >/dev/null
assert_eq "live write during the merge" "$(cat "$mnt/during-merge")" "file written during the merge"
unmount_vol
# s2 itself still holds B.
volume_call "$vol" Attach 'a{sv}' 1 maintenance b true >/dev/null
revert s2
detach_volume "$vol"
mount_vol "revert to s2 after deleting s1" >/dev/null
verify_checksums "$mnt" "$TEST_DIR/sums-B"

# Bad input: each a named error, nothing changed.
assert_error_name AlreadyExists "Snapshot with an existing name" "$vpath" \
  "$VOLUME_IFACE.Snapshot" "'s2'" "@a{sv} {}"
assert_error_name InvalidArgument "Snapshot with a bad name" "$vpath" \
  "$VOLUME_IFACE.Snapshot" "'a/b'" "@a{sv} {}"
assert_error_name NotFound "DeleteSnapshot of an unknown snapshot" "$vpath" \
  "$VOLUME_IFACE.DeleteSnapshot" "'nope'" "@a{sv} {}"
assert_error_name InvalidArgument "Expand to a smaller size" "$vpath" \
  "$VOLUME_IFACE.Expand" "uint64 $((GiB / 2))" "@a{sv} {}"
assert_eq s2 "$(snapshot_names)" "Snapshots after the refused calls"
assert_eq "$GiB" "$(volume_prop "$vol" Size)" "Size after the refused expand"

# Expand while mounted: the block device grows at once; the file system
# follows with resize2fs (online, or offline where the kernel refuses).
volume_call "$vol" Expand 'ta{sv}' $((2 * GiB)) 0 >/dev/null
dev=$(volume_prop "$vol" LoopDevice)
assert_eq $((2 * GiB)) "$(volume_prop "$vol" Size)" "Size after Expand"
assert_eq $((2 * GiB)) "$(blockdev --getsize64 "$dev")" "size of $dev after Expand"
if ! resize2fs "$dev" >"$TEST_DIR/resize.log" 2>&1; then
  # This sandbox lacks CAP_SYS_RESOURCE, which EXT4_IOC_RESIZE_FS needs.
  grep -q "Permission denied" "$TEST_DIR/resize.log" || fail "resize2fs: $(cat "$TEST_DIR/resize.log")"
  log "online resize refused (no CAP_SYS_RESOURCE here): resizing offline"
  umount "$mnt"
  e2fsck -fy "$dev" >/dev/null 2>&1 || true
  assert_fsck_clean "$dev" "after expand"
  resize2fs "$dev" >/dev/null 2>&1 || fail "offline resize2fs failed"
  mount "$dev" "$mnt"
fi
fs_kib=$(df -k --output=size "$mnt" | tail -1 | tr -d ' ')
assert_ge $((1900 * 1024)) "$fs_kib" "file system size (KiB) after resize2fs"
verify_checksums "$mnt" "$TEST_DIR/sums-B"
unmount_vol

# Verify: clean, then a damaged snapshot layer is named.
job=$(volume_call "$vol" Verify 'a{sv}' 0 | _unquote)
assert_eq completed "$(wait_job "$job")" "verify job on intact layers"
replica_dir=$(find "$REPLICAS_DIR/r1" -mindepth 1 -maxdepth 1 -type d | head -1)
layer=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(next(l["file"] for l in m["layers"] if l.get("name")=="s2"))' "$replica_dir/replica.json")
# Flip bytes inside allocated data of the s2 layer (first data extent).
off=$(python3 -c 'import os,sys; fd=os.open(sys.argv[1],os.O_RDONLY); print(os.lseek(fd,0,os.SEEK_DATA))' "$replica_dir/$layer")
printf 'rot' | dd of="$replica_dir/$layer" bs=1 seek=$((off + 100)) conv=notrunc status=none
job=$(volume_call "$vol" Verify 'a{sv}' 0 | _unquote)
assert_eq failed "$(wait_job "$job")" "verify job on a damaged layer"
[[ $(job_prop "$job" Message) == *s2* ]] || fail "verify message does not name s2: $(job_prop "$job" Message)"
damaged=$(replica_name_at "$vol" "$(replica_address r1)")
[[ $(job_prop "$job" Message) == *"on replica $damaged on $(replica_address r1)"* ]] ||
  fail "verify message does not name the replica $damaged: $(job_prop "$job" Message)"
log "ok: verify reports: $(job_prop "$job" Message)"

# Thin provisioning: a 100 GiB volume with 1 GiB written holds about 1 GiB.
thin="thin-1"
create_volume "$thin" $((100 * GiB)) "$(replica_address r1)" >/dev/null
tdev=$(attach_volume "$thin")
dd if=/dev/urandom of="$tdev" bs=1M count=1024 seek=4096 oflag=direct status=none
sync
sleep 6  # the periodic refresh of ActualSize
actual=$(volume_prop "$thin" ActualSize)
assert_ge $GiB "$actual" "ActualSize of the thin volume"
((actual < GiB + 64 * MiB)) || fail "ActualSize $actual is far above the 1 GiB written"
log "ok: 100 GiB volume with 1 GiB written: ActualSize $actual"
detach_volume "$thin"

# At most 250 snapshots per volume: the 251st is refused, nothing changes.
start=$(date +%s)
for ((i = 1; i <= 250; i++)); do
  volume_call "$thin" Snapshot 'sa{sv}' "n$i" 0 >/dev/null
done
log "250 snapshots of a detached volume in $(($(date +%s) - start)) s"
assert_error_name LimitExceeded "the 251st snapshot" "$(volume_path "$thin")" \
  "$VOLUME_IFACE.Snapshot" "'n251'" "@a{sv} {}"
count=$(busctl --system --json=short get-property "$BUS_NAME" "$(volume_path "$thin")" \
  "$VOLUME_IFACE" Snapshots | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]))')
assert_eq 250 "$count" "snapshots after the refused 251st"
delete_volume "$thin"

pass
