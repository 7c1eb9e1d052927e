#!/usr/bin/env bash
# DR standby volumes (issue 18): Manager.CreateStandbyVolume, Volume.Activate.
#
# A 1 GiB source volume with ext4 is backed up three times (b1, b2, b3)
# with changes between; a standby created from the target follows: each
# poll writes no more than the 2 MiB blocks that differ between the backups
# it goes from and to (counted from the backup records). While standby it
# refuses attach, snapshot and backup. A target that disappears shows in
# StandbyError and the standby keeps its data; when it is back the error
# clears. b4 is taken and the standby activated at once: it then holds b4
# (sha256 of the source's device at b4), e2fsck -fn is clean, the files
# read back; the activation time (RTO) is printed. Bad input gets its
# error names.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test python3
start_backup_cluster r1 r2
target_dir=$BACKUP_TARGET_DIR target=$BACKUP_TARGET

src=dr-src
mnt=$FS_DIR/$src
create_replicated_volume "$src" "$GiB" "$(replica_address r1)" "$(replica_address r2)" >/dev/null
dev=$(attach_volume "$src")
mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
mkdir -p "$mnt"

# backup_now N: snapshot sN of the unmounted source, back it up; prints the
# backup's name. (Take the device's sha256 before: this runs in a subshell.)
declare -A SHA
backup_now() {
  volume_call "$src" Snapshot 'sa{sv}' "s$1" 0 >/dev/null
  local url
  url=$(run_job "backup s$1" volume_call "$src" Backup 'sa{sv}' "s$1" 0)
  echo "${url##*backup=}"
}
# change_files N: mount, rewrite N MiB of one file and add a few, record
# the checksums, unmount.
change_files() {
  mount "$dev" "$mnt"
  mkdir -p "$mnt/data"
  dd if=/dev/urandom of="$mnt/data/big" bs=1M count="$1" seek=$((RANDOM % 16)) conv=notrunc \
    status=none
  write_small_files "$mnt/data/more-$RANDOM" 10
  record_checksums "$mnt" "$TEST_DIR/sums"
  umount "$mnt"
}
# differing A B: 2 MiB blocks whose hash differs between backups A and B.
differing() {
  python3 - "$target_dir/volumes/$src/backups" "$1" "$2" <<'EOF'
import json, sys
d, a, b = sys.argv[1:]
x = dict(map(tuple, json.load(open(f"{d}/{a}.json"))["blocks"]))
y = dict(map(tuple, json.load(open(f"{d}/{b}.json"))["blocks"]))
print(sum(1 for o in set(x) | set(y) if x.get(o) != y.get(o)))
EOF
}
dr_prop() { volume_prop dr "$1"; }
holds() { [[ $(dr_prop LastBackup) == "$1" ]]; }
# applied_bytes BACKUP: data and zeros the standby wrote for BACKUP (its log line).
applied_bytes() {
  grep -o "standby volume dr of [^ ]*: applied backup $1 .*" "$LOG_DIR/fused.log" | tail -1 |
    sed -E 's/.*wrote ([0-9]+) bytes in [0-9]+ blocks and ([0-9]+) bytes of zeros.*/\1 \2/'
}

change_files 16
SHA[1]=$(sha256sum "$dev" | cut -d' ' -f1)
b1=$(backup_now 1)
log "b1: $b1"

job=$(manager_call CreateStandbyVolume 'ssasa{sv}' dr "$target?volume=$src" 2 \
  "$(replica_address r1)" "$(replica_address r2)" 1 poll-interval u 2 | _unquote)
state=$(wait_job "$job")
[[ $state == completed ]] || fail "standby restore job $state: $(job_prop "$job" Message)"
assert_eq true "$(dr_prop Standby)" "Standby of dr"
assert_eq "$b1" "$(dr_prop LastBackup)" "LastBackup of dr after its restore"
assert_eq "$target?volume=$src" "$(dr_prop StandbySource)" "StandbySource of dr"
[[ -n $(dr_prop LastBackupCreated) && -n $(dr_prop LastRestoredAt) ]] ||
  fail "LastBackupCreated '$(dr_prop LastBackupCreated)' / LastRestoredAt '$(dr_prop LastRestoredAt)'"
log "ok: standby dr holds $b1 (created $(dr_prop LastBackupCreated))"

assert_error_name Busy "attach of a standby" "$(volume_path dr)" "$VOLUME_IFACE.Attach" "@a{sv} {}"
assert_error_name Busy "attach of a standby in maintenance" "$(volume_path dr)" \
  "$VOLUME_IFACE.Attach" "{'maintenance': <true>}"
assert_error_name Busy "snapshot of a standby" "$(volume_path dr)" "$VOLUME_IFACE.Snapshot" \
  "'x'" "@a{sv} {}"
assert_error_name Busy "backup of a standby" "$(volume_path dr)" "$VOLUME_IFACE.Backup" \
  "'x'" "@a{sv} {}"
assert_error_name Busy "a recurring job on a standby" "$(volume_path dr)" \
  "$VOLUME_IFACE.AddRecurringJob" "'a'" "'snapshot'" "'@daily'" "uint32 1" "@a{sv} {}"

prev=$b1
for n in 2 3; do
  change_files 6
  SHA[$n]=$(sha256sum "$dev" | cut -d' ' -f1)
  bn=$(backup_now "$n")
  wait_until 60 "standby dr applies $bn" holds "$bn" >/dev/null
  diff_blocks=$(differing "$prev" "$bn")
  read -r written zeroed <<<"$(applied_bytes "$bn")"
  log "poll to $bn: $diff_blocks blocks differ from $prev; wrote $written bytes and $zeroed of zeros"
  ((written > 0)) || fail "the apply of $bn wrote nothing"
  ((written + zeroed <= diff_blocks * 2097152)) ||
    fail "the apply of $bn wrote $((written + zeroed)) bytes for $diff_blocks changed blocks"
  prev=$bn
done
assert_eq "" "$(dr_prop StandbyError)" "StandbyError while the target answers"
log "ok: each poll wrote only the blocks that changed"

# The metrics file gives the recovery point, for an alert on the RPO.
metric_is() { grep -qxF "$1 $2" "$METRICS_DIR/shorthorn.prom" 2>/dev/null; }
rp=$(date -u -d "$(dr_prop LastBackupCreated)" +%s)
wait_until 30 "the metrics file shows the standby's recovery point" \
  metric_is 'shorthorn_standby_recovery_point_timestamp_seconds{volume="dr"}' "$rp" >/dev/null
log "ok: shorthorn_standby_recovery_point_timestamp_seconds{volume=\"dr\"} $rp"

# The target disappears: the standby keeps what it holds and says why.
mv "$target_dir" "$target_dir.away"
has_error() { [[ -n $(dr_prop StandbyError) ]]; }
wait_until 30 "StandbyError shows the missing target" has_error >/dev/null
log "ok: with the target gone: StandbyError $(dr_prop StandbyError)"
assert_eq "$prev" "$(dr_prop LastBackup)" "LastBackup while the target is gone"
mv "$target_dir.away" "$target_dir"
wait_until 30 "StandbyError clears" prop_is dr StandbyError "" >/dev/null
log "ok: the error clears when the target is back"

# b4, and activation at once: the standby ends with b4.
change_files 6
SHA[4]=$(sha256sum "$dev" | cut -d' ' -f1)
b4=$(backup_now 4)
start=$(date +%s%N)
volume_call dr Activate 'a{sv}' 0 >/dev/null
rto_ms=$((($(date +%s%N) - start) / 1000000))
assert_eq false "$(dr_prop Standby)" "Standby after Activate"
assert_eq "$b4" "$(dr_prop LastBackup)" "LastBackup after Activate (the backup it was activated with)"
ddev=$(attach_volume dr)
assert_eq "${SHA[4]}" "$(sha256sum "$ddev" | cut -d' ' -f1)" "sha256 of the activated standby (b4)"
assert_fsck_clean "$ddev" "activated standby dr"
mkdir -p "$FS_DIR/dr"
mount -o ro "$ddev" "$FS_DIR/dr"
verify_checksums "$FS_DIR/dr" "$TEST_DIR/sums"
umount "$FS_DIR/dr"
log "ok: activated in $rto_ms ms (RTO, 1 GiB volume, b4 applied by $(grep -c "applied backup $b4" \
  "$LOG_DIR/fused.log") poll); it holds b4: sha256, e2fsck and files"
# An ordinary volume now: a snapshot works.
volume_call dr Snapshot 'sa{sv}' after 0 >/dev/null
detach_volume dr

# ---------------------------------------------------------------- shorthornctl
CTL=$(find_binary shorthornctl)
"$CTL" volume create-standby dr4 "$target?volume=$src" --replica "$(replica_address r1)" \
  --poll-interval 2 --wait >/dev/null || fail "shorthornctl volume create-standby --wait failed"
shown=$("$CTL" --json volume show dr4)
python3 -c '
import json, sys
v = json.loads(sys.argv[1])
assert v["standby"] is True and v["last_backup"] == sys.argv[2], v' "$shown" "$b4" ||
  fail "shorthornctl --json volume show of a standby: $shown"
"$CTL" volume activate dr4 >/dev/null || fail "shorthornctl volume activate failed"
rc=0
"$CTL" volume activate dr4 >/dev/null 2>&1 || rc=$?
assert_eq 5 "$rc" "exit status of shorthornctl volume activate of an ordinary volume"
delete_volume dr4
log "ok: shorthornctl volume create-standby --wait, show --json, activate"

# ---------------------------------------------------------------- bad input
standby() {
  assert_error_name "$1" "$2" "$MANAGER_PATH" "$MANAGER_IFACE.CreateStandbyVolume" "${@:3}"
}
standby InvalidArgument "a source URL with a backup" "'dr2'" \
  "'$target?volume=$src&backup=$b1'" "@as []" "@a{sv} {}"
standby InvalidArgument "a source URL without a volume" "'dr2'" "'$target'" "@as []" "@a{sv} {}"
standby InvalidArgument "poll-interval 0" "'dr2'" "'$target?volume=$src'" "@as []" \
  "{'poll-interval': <uint32 0>}"
standby InvalidArgument "an ftp target" "'dr2'" "'ftp://x/y?volume=$src'" "@as []" "@a{sv} {}"
standby AlreadyExists "a name taken" "'dr'" "'$target?volume=$src'" "@as []" "@a{sv} {}"
msg=$(failed_job "standby of a volume without backups" manager_call CreateStandbyVolume \
  'ssasa{sv}' dr3 "$target?volume=nothing-here" 0 0)
[[ $msg == *"nothing-here"* ]] || fail "standby of a volume without backups: '$msg'"
[[ -z $(list_volumes | grep -F "$(volume_path dr3)" || true) ]] || fail "a failed standby left dr3"
log "ok: a standby of a volume without backups fails: $msg"
assert_error_name InvalidArgument "Activate of an ordinary volume" "$(volume_path dr)" \
  "$VOLUME_IFACE.Activate" "@a{sv} {}"

delete_volume dr
detach_volume "$src"
delete_volume "$src"
pass
