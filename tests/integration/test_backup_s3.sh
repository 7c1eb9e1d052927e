#!/usr/bin/env bash
# Backups to S3 (a private s3rver started here), and restores (issue 14).
#
# ext4 on a 2-replica volume: backup 1 of s1 to s3://<bucket>/<prefix>,
# restored to a new volume with the snapshot's sha256 and a clean e2fsck.
# Then 96 MiB more data and snapshot s2: s3rver is killed while backup 2
# uploads; the job fails, nothing new is listed, and after s3rver is back a
# retry completes uploading fewer blocks than the failed attempt needed (it
# reuses what reached the store) and restores to s2's sha256. Faults that
# need no data: an unknown access key (NotAuthorized), a missing bucket
# (NotFound), an unreachable endpoint (Unavailable).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test python3
start_replicads r1 r2
start_s3rver
target="s3://$S3_BUCKET/site-a/backups"
start_fused_opts --backup-target "$target" --backup-credentials "$CONF_DIR/no-credentials" \
  --backup-workers 2

vol=bk-s3
mnt=$FS_DIR/$vol

dev_sha() { sha256sum "$1" | cut -d' ' -f1; }
backup_job() { volume_call "$vol" Backup 'sa{sv}' "$1" 0; }
restore_job() { manager_call RestoreVolume 'ssasa{sv}' "$2" "$1" 1 "$(replica_address r1)" 0; }
# s3_record FIELD NAME: a field of backup NAME's record, from s3rver's files.
s3_record() {
  python3 - "$TEST_DIR/s3/$S3_BUCKET" "$vol" "$2" "$1" <<'EOF'
import json, os, sys
root, vol, name, field = sys.argv[1:]
base = os.path.join(root, "site-a/backups/volumes", vol, "backups", name + ".json")
for candidate in (base, base + "._S3rver_object"):
    if os.path.exists(candidate):
        print(json.load(open(candidate))[field])
        break
else:
    sys.exit(f"no record file for {name} under {root}")
EOF
}

create_replicated_volume "$vol" "$GiB" "$(replica_address r1)" "$(replica_address r2)" >/dev/null
dev=$(attach_volume "$vol")
mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
mkdir -p "$mnt"
mount "$dev" "$mnt"
write_random_files "$mnt/data" 4 8
write_small_files "$mnt/data" 30
umount "$mnt"
sha1=$(dev_sha "$dev")
volume_call "$vol" Snapshot 'sa{sv}' s1 0 >/dev/null

url1=$(run_job "backup 1 to S3" backup_job s1)
[[ $url1 == "$target?volume=$vol&backup=backup-"* ]] || fail "backup 1: message '$url1' is not a backup URL"
log "backup 1: $url1"
run_job "restore backup 1" restore_job "$url1" rs-1 >/dev/null
rdev=$(attach_volume rs-1)
assert_eq "$sha1" "$(dev_sha "$rdev")" "sha256 of rs-1 restored from S3"
assert_fsck_clean "$rdev" "rs-1 restored from S3"
detach_volume rs-1
log "ok: backup 1 restores from S3 with the snapshot's sha256 and a clean e2fsck"

# ---------------------------------------------------------------- s3rver killed mid-backup
mount "$dev" "$mnt"
write_random_files "$mnt/more" 12 8
umount "$mnt"
sha2=$(dev_sha "$dev")
volume_call "$vol" Snapshot 'sa{sv}' s2 0 >/dev/null
job=$(backup_job s2 | _unquote)
for ((i = 0; i < 600; i++)); do
  bytes=$(job_prop "$job" Bytes)
  ((bytes < 16 * MiB)) || break
  [[ $(job_prop "$job" State) == running ]] || fail "backup 2 ended before s3rver was killed ($(job_prop "$job" Message))"
  sleep 0.05
done
kill_daemon s3rver
state=$(wait_job "$job")
msg=$(job_prop "$job" Message)
[[ $state == failed ]] || fail "backup 2 with s3rver killed: job $state: $msg"
log "ok: backup 2 fails when s3rver dies mid-way: $msg"
assert_error_name Unavailable "ListBackups with s3rver down" "$MANAGER_PATH" \
  "$MANAGER_IFACE.ListBackups" "''" "'$vol'" "@a{sv} {}"
start_s3rver
listed=$(manager_call ListBackups 'ssa{sv}' "" "$vol" 0)
[[ $listed == 'a(ssssstt) 1 '* ]] || fail "after the failed backup 2, ListBackups shows: $listed"
log "ok: the failed backup is not listed"

url2=$(run_job "backup 2, again" backup_job s2)
name2=${url2##*backup=}
read2=$(s3_record bytes_read "$name2")
uploaded2=$(s3_record blocks_uploaded "$name2")
needed=$((read2 / (2 * MiB)))
log "backup 2 retry: read $read2 bytes ($needed blocks), uploaded $uploaded2 blocks"
((uploaded2 < needed)) || fail "the retry uploaded $uploaded2 of $needed blocks: nothing was reused"
run_job "restore backup 2" restore_job "$url2" rs-2 >/dev/null
rdev=$(attach_volume rs-2)
assert_eq "$sha2" "$(dev_sha "$rdev")" "sha256 of rs-2 restored from S3"
detach_volume rs-2
log "ok: the retry reused the blocks already uploaded and restores to s2"

# Delete backup 1 on S3: its unreferenced blocks go, backup 2 still restores.
blocks() { find "$TEST_DIR/s3/$S3_BUCKET/site-a/backups/volumes/$vol/blocks" -name '*.blk*' | wc -l; }
before=$(blocks)
run_job "delete backup 1 on S3" manager_call DeleteBackup 'sa{sv}' "$url1" 0 >/dev/null
after=$(blocks)
((after < before)) || fail "delete of backup 1 on S3 removed no block ($before before, $after after)"
run_job "restore backup 2 after the delete" restore_job "$url2" rs-3 >/dev/null
rdev=$(attach_volume rs-3)
assert_eq "$sha2" "$(dev_sha "$rdev")" "sha256 of rs-3 restored from S3 after deleting backup 1"
detach_volume rs-3
log "ok: deleting backup 1 on S3 removed blocks ($before -> $after); backup 2 still restores"

# ---------------------------------------------------------------- faults without data
assert_error_name NotFound "a bucket that does not exist" "$MANAGER_PATH" \
  "$MANAGER_IFACE.ListBackups" "'s3://no-such-bucket/x'" "'$vol'" "@a{sv} {}"
[[ $DBUS_ERROR_MESSAGE == *no-such-bucket* ]] || fail "missing bucket: message does not name it"
stop_daemon fused
SHORTHORN_S3_ACCESS_KEY=NOT-A-KEY start_fused_opts --backup-target "$target" \
  --backup-credentials "$CONF_DIR/no-credentials"
assert_error_name NotAuthorized "an unknown access key" "$MANAGER_PATH" \
  "$MANAGER_IFACE.ListBackups" "''" "'$vol'" "@a{sv} {}"
stop_daemon fused
SHORTHORN_S3_ENDPOINT=127.0.0.1:$(free_port) start_fused_opts --backup-target "$target" \
  --backup-credentials "$CONF_DIR/no-credentials"
assert_error_name Unavailable "an endpoint nothing listens on" "$MANAGER_PATH" \
  "$MANAGER_IFACE.ListBackups" "''" "'$vol'" "@a{sv} {}"

pass
