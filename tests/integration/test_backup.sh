#!/usr/bin/env bash
# Backups to a directory target, and restores (issue 14).
#
# ext4 on a 2-replica volume: files, snapshot s1, backup 1 (full); more
# writes, snapshot s2, backup 2 (incremental: what it reads and uploads is
# bounded by the 2 MiB blocks that differ between s1 and s2, compared here
# from device images). Each backup restores to a new volume whose device has
# the snapshot's sha256, passes e2fsck -fn and holds the files. Deleting
# backup 1 removes only its unreferenced blocks: backup 2 still restores.
# Faults: a damaged block and a missing block fail the restore naming the
# block and leave no volume; a full target disk fails the backup, which is
# then not listed; bad input gets the documented D-Bus errors.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd python3 mkfs.ext4
start_backup_cluster r1 r2
target_dir=$BACKUP_TARGET_DIR target=$BACKUP_TARGET

vol=bk-1
mnt=$FS_DIR/$vol
backup() { run_job "backup $1" volume_call "$vol" Backup 'sa{sv}' "$1" 0; }
restore() {
  run_job "restore $1 to $2" manager_call RestoreVolume 'ssasa{sv}' "$2" "$1" 2 \
    "$(replica_address r1)" "$(replica_address r2)" 0
}

dev_sha() { sha256sum "$1" | cut -d' ' -f1; }

# record FIELD BACKUP-URL: a field of the backup's record in the target.
record() {
  local name=${2##*backup=}
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
    "$target_dir/volumes/$vol/backups/$name.json" "$1"
}

# check_restore URL NAME SHA SUMS: restores URL to NAME and checks it.
check_restore() {
  local url=$1 name=$2 sha=$3 sums=$4 dev
  restore "$url" "$name" >/dev/null
  dev=$(attach_volume "$name")
  assert_eq "$sha" "$(dev_sha "$dev")" "sha256 of volume $name restored from $url"
  assert_fsck_clean "$dev" "restored $name"
  mkdir -p "$FS_DIR/$name"
  mount -o ro "$dev" "$FS_DIR/$name"
  verify_checksums "$FS_DIR/$name" "$sums"
  umount "$FS_DIR/$name"
  detach_volume "$name"
  log "ok: $url restores to $name: same sha256, files and a clean e2fsck"
}

create_replicated_volume "$vol" "$GiB" "$(replica_address r1)" "$(replica_address r2)" >/dev/null
dev=$(attach_volume "$vol")
# Inode tables and the journal written now, so later changes are the files'.
mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
mkdir -p "$mnt"
mount "$dev" "$mnt"
write_random_files "$mnt/data" 6 8
write_small_files "$mnt/data" 60
record_checksums "$mnt" "$TEST_DIR/sums-1"
umount "$mnt"
sha1=$(dev_sha "$dev")
cp --sparse=always "$dev" "$TEST_DIR/image-1"
volume_call "$vol" Snapshot 'sa{sv}' s1 0 >/dev/null

url1=$(backup s1)
[[ $url1 == "$target?volume=$vol&backup=backup-"* ]] || fail "backup 1: job message '$url1' is not a backup URL"
log "backup 1: $url1: read $(record bytes_read "$url1") bytes, uploaded $(record bytes_uploaded "$url1")"

# Change a little: one 8 MiB file rewritten, a few small files.
mount "$dev" "$mnt"
dd if=/dev/urandom of="$mnt/data/big-2" bs=1M count=8 conv=notrunc status=none
write_small_files "$mnt/data/more" 5
record_checksums "$mnt" "$TEST_DIR/sums-2"
umount "$mnt"
sha2=$(dev_sha "$dev")
cp --sparse=always "$dev" "$TEST_DIR/image-2"
volume_call "$vol" Snapshot 'sa{sv}' s2 0 >/dev/null
url2=$(backup s2)

# The 2 MiB blocks that differ between the two snapshots.
differing=$(python3 - "$TEST_DIR/image-1" "$TEST_DIR/image-2" <<'EOF'
import sys
a, b = open(sys.argv[1], 'rb'), open(sys.argv[2], 'rb')
n = 0
while True:
    x, y = a.read(2 << 20), b.read(2 << 20)
    if not x and not y:
        break
    n += x != y
print(n)
EOF
)
read1=$(record bytes_read "$url1")
read2=$(record bytes_read "$url2")
uploaded2=$(record blocks_uploaded "$url2")
uploaded_bytes2=$(record bytes_uploaded "$url2")
base2=$(record base "$url2")
log "backup 2: $url2: base $base2, $differing blocks differ; read $read2 bytes, uploaded $uploaded2 blocks ($uploaded_bytes2 bytes)"
assert_eq "${url1##*backup=}" "$base2" "backup 2's base"
assert_ge 1 "$differing" "differing blocks"
((uploaded2 <= differing)) || fail "backup 2 uploaded $uploaded2 blocks but only $differing differ"
((uploaded_bytes2 <= differing * (2097152 + 64))) ||
  fail "backup 2 uploaded $uploaded_bytes2 bytes for $differing changed 2 MiB blocks"
# Incremental: only what changed since s1 is read. The changed blocks
# (8 MiB of file, small files, ext4's metadata and journal) are usually 8 or
# 9 of backup 1's 32, so half is the bound (a quarter failed at 9).
((read2 * 2 <= read1)) || fail "backup 2 read $read2 bytes, backup 1 $read1: not incremental"
log "ok: the incremental backup uploaded $uploaded2 blocks for $differing changed ones"

check_restore "$url1" rs-1 "$sha1" "$TEST_DIR/sums-1"
check_restore "$url2" rs-2 "$sha2" "$TEST_DIR/sums-2"

# backup_object_urls: the URL property of every exported backup object.
backup_object_urls() {
  busctl --system --json=short call "$BUS_NAME" "$ROOT_PATH" org.freedesktop.DBus.ObjectManager \
    GetManagedObjects | python3 -c '
import json, sys
for path, ifaces in sorted(json.load(sys.stdin)["data"][0].items()):
    b = ifaces.get("org.shorthorn.Storage1.Backup")
    if b and path.startswith("/org/shorthorn/Storage1/backups/"):
        print(b["URL"]["data"])'
}
objects=$(backup_object_urls)
[[ $objects == *"$url1"* && $objects == *"$url2"* ]] ||
  fail "backup objects on the bus: want both backups, got: $objects"
log "ok: both backups are objects under the ObjectManager"

# ListBackups names both, oldest first.
listed=$(manager_call ListBackups 'ssa{sv}' "" "$vol" 0)
[[ $listed == *"${url1##*backup=}"*"${url2##*backup=}"* ]] || fail "ListBackups: $listed"

# ---------------------------------------------------------------- bad input
assert_error_name NotFound "backup of an unknown snapshot" "$(volume_path "$vol")" \
  "$VOLUME_IFACE.Backup" "'nope'" "@a{sv} {}"
assert_error_name InvalidArgument "backup to an ftp URL" "$(volume_path "$vol")" \
  "$VOLUME_IFACE.Backup" "'s1'" "{'target': <'ftp://host/x'>}"
assert_error_name InvalidArgument "backup to a relative file URL" "$(volume_path "$vol")" \
  "$VOLUME_IFACE.Backup" "'s1'" "{'target': <'file://relative/dir'>}"
assert_error_name AlreadyExists "restore onto an existing volume" "$MANAGER_PATH" \
  "$MANAGER_IFACE.RestoreVolume" "'$vol'" "$(gv_str "$url1")" "@as []" "@a{sv} {}"
assert_error_name InvalidArgument "restore from a malformed backup URL" "$MANAGER_PATH" \
  "$MANAGER_IFACE.RestoreVolume" "'rs-x'" "'$target'" "@as []" "@a{sv} {}"
assert_error_name InvalidArgument "delete of a malformed backup URL" "$MANAGER_PATH" \
  "$MANAGER_IFACE.DeleteBackup" "'file:///x?volume=v'" "@a{sv} {}"
assert_error_name NotFound "list backups of a volume without any" "$MANAGER_PATH" \
  "$MANAGER_IFACE.ListBackups" "''" "'none-here'" "@a{sv} {}"
assert_error_name --as-nobody NotAuthorized "backup by a caller who is not root" \
  "$(volume_path "$vol")" "$VOLUME_IFACE.Backup" "'s1'" "@a{sv} {}"
msg=$(failed_job "restore of an unknown backup" manager_call RestoreVolume 'ssasa{sv}' rs-x \
  "$target?volume=$vol&backup=backup-20000101T000000Z-00000000" 0 0)
[[ $msg == *"no such backup"* ]] || fail "restore of an unknown backup: message '$msg'"
log "ok: restore of an unknown backup fails: $msg"

# ---------------------------------------------------------------- delete
blocks_before=$(find "$target_dir/volumes/$vol/blocks" -name '*.blk' | wc -l)
run_job "delete backup 1" manager_call DeleteBackup 'sa{sv}' "$url1" 0 >/dev/null
blocks_after=$(find "$target_dir/volumes/$vol/blocks" -name '*.blk' | wc -l)
objects=$(backup_object_urls)
[[ $objects != *"$url1"* && $objects == *"$url2"* ]] ||
  fail "backup objects after deleting backup 1: $objects"
python3 - "$target_dir/volumes/$vol" "${url2##*backup=}" <<'EOF' || fail "blocks after the delete do not match backup 2"
import json, os, sys
root, name = sys.argv[1], sys.argv[2]
want = {h for _, h in json.load(open(f"{root}/backups/{name}.json"))["blocks"]}
have = set()
for d, _, files in os.walk(f"{root}/blocks"):
    have |= {f[:-4] for f in files if f.endswith(".blk")}
assert os.listdir(f"{root}/backups") == [f"{name}.json"], os.listdir(f"{root}/backups")
assert have == want, (len(have - want), len(want - have))
EOF
((blocks_after < blocks_before)) || fail "delete of backup 1 removed no block ($blocks_before before)"
log "ok: delete of backup 1: $blocks_before -> $blocks_after blocks, exactly backup 2's"
check_restore "$url2" rs-3 "$sha2" "$TEST_DIR/sums-2"

# A restarted fused exports the backups of its volumes in the default target.
stop_daemon fused
start_fused_opts --backup-target "$target" --backup-credentials "$CONF_DIR/no-credentials"
for ((i = 0; i < 100; i++)); do
  [[ $(backup_object_urls) != *"$url2"* ]] || break
  sleep 0.1
done
((i < 100)) || fail "after a restart, fused does not export backup 2: $(backup_object_urls)"
log "ok: a restarted fused exports the backups of its volumes"

# ---------------------------------------------------------------- shorthornctl
CTL=$(find_binary shorthornctl)
url3=$("$CTL" backup create "$vol" s2 --wait) || fail "shorthornctl backup create --wait failed"
[[ $url3 == "$target?volume=$vol&backup=backup-"* ]] || fail "shorthornctl backup create printed '$url3'"
count=$("$CTL" --json backup list "$vol" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
assert_eq 2 "$count" "backups listed by shorthornctl --json backup list"
"$CTL" backup show "$url3" | grep -q s2 || fail "shorthornctl backup show $url3 does not name s2"
"$CTL" volume restore rs-ctl "$url3" --replica "$(replica_address r2)" --wait >/dev/null ||
  fail "shorthornctl volume restore --wait failed"
dev=$(attach_volume rs-ctl)
assert_eq "$sha2" "$(dev_sha "$dev")" "sha256 of rs-ctl restored by shorthornctl"
detach_volume rs-ctl
"$CTL" backup delete "$url3" --wait >/dev/null || fail "shorthornctl backup delete --wait failed"
rc=0
"$CTL" backup show "$url3" >/dev/null 2>&1 || rc=$?
assert_eq 3 "$rc" "exit status of shorthornctl backup show of a deleted backup"
log "ok: shorthornctl backup create/list/show/delete and volume restore against the daemons"

# ---------------------------------------------------------------- faults
# A damaged block: the restore fails naming it, and leaves no volume.
some_block=$(find "$target_dir/volumes/$vol/blocks" -name '*.blk' | head -1)
hash=$(basename "$some_block" .blk)
cp "$some_block" "$TEST_DIR/saved-block"
printf 'X' | dd of="$some_block" bs=1 seek=100 conv=notrunc status=none
msg=$(failed_job "restore with a damaged block" manager_call RestoreVolume 'ssasa{sv}' rs-4 \
  "$url2" 0 0)
[[ $msg == *"$hash"*damaged* ]] || fail "restore with a damaged block: message '$msg'"
[[ -z $(list_volumes | grep -F "$(volume_path rs-4)" || true) ]] ||
  fail "the failed restore left volume rs-4 behind"
log "ok: a damaged block fails the restore and leaves no volume: $msg"
rm "$some_block"
msg=$(failed_job "restore with a missing block" manager_call RestoreVolume 'ssasa{sv}' rs-4 \
  "$url2" 0 0)
[[ $msg == *"$hash"*missing* ]] || fail "restore with a missing block: message '$msg'"
log "ok: a missing block fails the restore: $msg"
cp "$TEST_DIR/saved-block" "$some_block"

# A full target disk: the backup fails and is not listed.
small=$TEST_DIR/small-target
mkdir -p "$small"
mount -t tmpfs -o size=8m tmpfs "$small"
msg=$(failed_job "backup to a full disk" volume_call "$vol" Backup 'sa{sv}' s2 1 target s \
  "file://$small")
[[ $msg == *"No space"* || $msg == *"no space"* ]] || fail "backup to a full disk: message '$msg'"
assert_error_name NotFound "a failed backup is not listed" "$MANAGER_PATH" \
  "$MANAGER_IFACE.ListBackups" "$(gv_str "file://$small")" "'$vol'" "@a{sv} {}"
umount "$small"
log "ok: a backup to a full disk fails ($msg) and is not listed"

pass
