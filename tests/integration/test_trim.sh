#!/usr/bin/env bash
# Deleted files give their space back on the replica.
#
# On a mounted 1 GiB volume (one replica), write 300 MiB, sync and measure the
# replica's disk usage (du -sk of its directory in the replicad data dir).
# Delete the files, fstrim the filesystem (discard -> loop -> FUSE fallocate
# PUNCH_HOLE -> UNMAP on the replica), sync, measure again: the usage must
# drop by at least 200 MiB.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd fstrim du
start_cluster r1

vol=trim-1
mnt=$FS_DIR/$vol

# replica_kib: disk usage of the volume's replica directory, in KiB.
replica_kib() {
  sync
  du -sk "$replica_dir" | cut -f1
}

create_volume "$vol" "$GiB" "$(replica_address r1)" >/dev/null
dev=$(attach_volume "$vol")
# The replica directory: the one new directory in r1's data dir.
mapfile -t dirs < <(find "$REPLICAS_DIR/r1" -mindepth 1 -maxdepth 1 -type d)
assert_eq 1 "${#dirs[@]}" "replica directories in $REPLICAS_DIR/r1"
replica_dir=${dirs[0]}
[[ -f $replica_dir/replica.json ]] || fail "no replica.json in $replica_dir"

mkfs.ext4 -q -F "$dev"
mkdir -p "$mnt"
mount "$dev" "$mnt"
empty_kib=$(replica_kib)
log "replica usage after mkfs: $empty_kib KiB"

log "writing 300 MiB"
write_random_files "$mnt" 30 10
sync -f "$mnt"
full_kib=$(replica_kib)
log "replica usage with 300 MiB of files: $full_kib KiB"
assert_ge $((empty_kib + 280 * 1024)) "$full_kib" "replica usage (KiB) after writing 300 MiB"

rm -f "$mnt"/big-*
sync -f "$mnt"
fstrim -v "$mnt"
sync -f "$mnt"
trimmed_kib=$(replica_kib)
log "replica usage after rm + fstrim: $trimmed_kib KiB (freed $(((full_kib - trimmed_kib) / 1024)) MiB)"
assert_ge $((200 * 1024)) $((full_kib - trimmed_kib)) "KiB freed on the replica by fstrim"

umount "$mnt"
detach_volume "$vol"
pass
