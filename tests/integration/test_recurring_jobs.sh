#!/usr/bin/env bash
# Recurring jobs (issue 18): Volume.AddRecurringJob / RemoveRecurringJob,
# the RecurringJobs property, shorthornctl recurring.
#
# * A snapshot job (@every 2s, retain 3) runs 6 times while files are
#   written to the mounted ext4: exactly its 3 newest snapshots are left,
#   the files read back and e2fsck is clean.
# * A backup job (@every 3s, retain 2) while the device changes between
#   runs: exactly 2 of its backups are left, the target holds exactly their
#   blocks (the delete's garbage collection ran), one snapshot of the job is
#   left (the next backup's base), and the newest backup restores to the
#   device's sha256.
# * A failed run (a target that cannot be created) shows "failed: ..." in
#   the property and leaves no snapshot.
# * Runs missed while fused was down: one run at start, not one per slot.
# * Bad input gets its error name.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test python3
start_backup_cluster r1 r2
target_dir=$BACKUP_TARGET_DIR target=$BACKUP_TARGET
fused_opts=(--backup-target "$target" --backup-credentials "$CONF_DIR/no-credentials")
CTL=$(find_binary shorthornctl)

vol=rj
mnt=$FS_DIR/$vol
create_replicated_volume "$vol" "$((256 * MiB))" "$(replica_address r1)" "$(replica_address r2)" \
  >/dev/null
vpath=$(volume_path "$vol")

# jobs_json: the RecurringJobs property as JSON, one object per job.
jobs_json() {
  busctl --system --json=short get-property "$BUS_NAME" "$vpath" "$VOLUME_IFACE" RecurringJobs |
    python3 -c '
import json, sys
keys = ["name", "kind", "schedule", "retain", "target", "last_run", "last_result", "next_run"]
print(json.dumps([dict(zip(keys, j)) for j in json.load(sys.stdin)["data"]]))'
}
# job_field JOB FIELD
job_field() {
  jobs_json | python3 -c '
import json, sys
for j in json.load(sys.stdin):
    if j["name"] == sys.argv[1]:
        print(j[sys.argv[2]])' "$1" "$2"
}
# snapshots_of JOB: the volume's snapshots of JOB that are not being deleted.
snapshots_of() {
  busctl --system --json=short get-property "$BUS_NAME" "$vpath" "$VOLUME_IFACE" Snapshots |
    python3 -c '
import json, re, sys
for s in json.load(sys.stdin)["data"]:
    if re.fullmatch(re.escape(sys.argv[1]) + r"-\d{8}T\d{6}Z", s[0]) and not s[5]:
        print(s[0])' "$1"
}
# runs JOB RESULT: how many runs of JOB this test's fused logs have ended
# with RESULT (ok or failed).
runs() { grep -c "recurring job $1 of volume $vol: $2" "$LOG_DIR/fused.log" || true; }
runs_at_least() { (($(runs "$1" "$2") >= $3)); }
no_removed_snapshots() {
  busctl --system --json=short get-property "$BUS_NAME" "$vpath" "$VOLUME_IFACE" Snapshots |
    python3 -c 'import json,sys; sys.exit(any(s[5] for s in json.load(sys.stdin)["data"]))'
}
add_job() { volume_call "$vol" AddRecurringJob 'sssua{sv}' "$@" >/dev/null; }
remove_job() { volume_call "$vol" RemoveRecurringJob 'sa{sv}' "$1" 0 >/dev/null; }

# ---------------------------------------------------------------- snapshot job
dev=$(attach_volume "$vol")
mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
mkdir -p "$mnt"
mount "$dev" "$mnt"
add_job snap snapshot "@every 2s" 3 0
next=$(job_field snap next_run)
[[ $next =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] ||
  fail "next_run of a new job: '$next'"
i=0
while ! runs_at_least snap ok 6; do
  ((i < 60)) || fail "snapshot job: $(runs snap ok) runs in 60 s: $(jobs_json)"
  write_small_files "$mnt/data/$i" 20
  sleep 1
  i=$((i + 1))
done
remove_job snap
wait_until 120 "the old snapshots are merged away" no_removed_snapshots >/dev/null
mapfile -t left < <(snapshots_of snap)
last3=$(grep -o "recurring job snap of volume $vol: ok: snapshot snap-[0-9TZ]*" "$LOG_DIR/fused.log" |
  sed 's/.*snapshot //' | tail -3 | tr '\n' ' ')
assert_eq 3 "${#left[@]}" "snapshots of the snapshot job after $(runs snap ok) runs (retain 3)"
assert_eq "$last3" "$(printf '%s ' "${left[@]}")" "the snapshots left are the 3 newest"
[[ $(job_field snap name 2>/dev/null) == "" ]] || fail "job snap is still listed after its removal"
record_checksums "$mnt" "$TEST_DIR/sums"
umount "$mnt"
assert_fsck_clean "$dev" "volume $vol after 6 snapshot runs and their merges"
mount -o ro "$dev" "$mnt"
verify_checksums "$mnt" "$TEST_DIR/sums"
umount "$mnt"
log "ok: snapshot job: $(runs snap ok) runs left ${left[*]}; files and e2fsck clean"

# ---------------------------------------------------------------- backup job
add_job nightly backup "@every 3s" 2 0
for ((round = 0; round < 4; round++)); do
  before=$(runs nightly ok)
  # New data for each backup: 4 MiB at a different place.
  dd if=/dev/urandom of="$dev" bs=1M count=4 seek=$((16 + round * 8)) conv=notrunc,fsync \
    status=none
  wait_until 60 "backup run $round" runs_at_least nightly ok $((before + 2)) >/dev/null
done
remove_job nightly
wait_until 60 "the backup job's snapshots are merged away" no_removed_snapshots >/dev/null
sha=$(sha256sum "$dev" | cut -d' ' -f1)
python3 - "$target_dir/volumes/$vol" <<'EOF' || fail "the target after the backup job"
import json, os, re, sys
root = sys.argv[1]
backups = sorted(os.listdir(f"{root}/backups"))
assert len(backups) == 2, backups
want = set()
for b in backups:
    rec = json.load(open(f"{root}/backups/{b}"))
    assert re.fullmatch(r"nightly-\d{8}T\d{6}Z", rec["snapshot"]), rec["snapshot"]
    want |= {h for _, h in rec["blocks"]}
have = set()
for d, _, files in os.walk(f"{root}/blocks"):
    have |= {f[:-4] for f in files if f.endswith(".blk")}
assert have == want, ("blocks not in any backup:", len(have - want), "missing:", len(want - have))
EOF
mapfile -t left < <(snapshots_of nightly)
assert_eq 1 "${#left[@]}" "snapshots of the backup job left (the base of the next backup)"
newest=$(manager_call ListBackups 'ssa{sv}' "" "$vol" 0 | grep -o "$target?volume=$vol&backup=[^\"]*" |
  tail -1)
[[ -n $newest ]] || fail "ListBackups names no backup of $vol"
log "backup job: $(runs nightly ok) runs; newest backup $newest"
run_job "restore the newest backup" manager_call RestoreVolume 'ssasa{sv}' rj-back "$newest" 1 \
  "$(replica_address r1)" 0 >/dev/null
rdev=$(attach_volume rj-back)
assert_eq "$sha" "$(sha256sum "$rdev" | cut -d' ' -f1)" "sha256 of the newest backup, restored"
detach_volume rj-back
delete_volume rj-back
log "ok: backup job: 2 backups left, the target holds exactly their blocks, the newest restores"

# ---------------------------------------------------------------- a failed run
touch "$TEST_DIR/not-a-dir"
add_job broken backup "@every 2s" 1 1 target s "file://$TEST_DIR/not-a-dir/sub"
wait_until 60 "a failed run of job broken" runs_at_least broken failed 1 >/dev/null
result=$(job_field broken last_result)
remove_job broken
[[ $result == failed:* && $result == *not-a-dir* ]] ||
  fail "last_result of a backup run to a target that cannot be made: '$result'"
wait_until 60 "the failed runs' snapshots are merged away" no_removed_snapshots >/dev/null
mapfile -t left < <(snapshots_of broken)
assert_eq 0 "${#left[@]}" "snapshots left by failed backup runs"
log "ok: a failed run is shown ($result) and leaves no snapshot"

# Never run: next_run is the first slot after the job was added.
added=$(date -u +%s)
add_job lonely snapshot "@every 1h" 1 0
next=$(date -u -d "$(job_field lonely next_run)" +%s)
((next >= added + 3600 && next <= added + 3610)) || fail "next_run of @every 1h: $next, added $added"
remove_job lonely

# ---------------------------------------------------------------- missed runs
add_job miss snapshot "@every 4s" 10 0
wait_until 30 "the first run of job miss" runs_at_least miss ok 1 >/dev/null
stop_daemon fused
cp "$LOG_DIR/fused.log" "$TEST_DIR/fused-before.log"
: >"$LOG_DIR/fused.log"
sleep 13 # three slots missed
start_fused_opts "${fused_opts[@]}"
sleep 2.5
assert_eq 1 "$(runs miss ok)" "runs of job miss in the 2.5 s after a start that missed 3 slots"
wait_until 30 "the next slot's run" runs_at_least miss ok 2 >/dev/null
mapfile -t left < <(snapshots_of miss)
[[ ${#left[@]} -ge 3 ]] || fail "snapshots of job miss: ${left[*]}"
log "ok: three missed slots gave one run at start, then the schedule went on"
# The jobs persisted (the registry) and remove works after a restart.
assert_eq miss "$(jobs_json | python3 -c 'import json,sys; print(",".join(j["name"] for j in json.load(sys.stdin)))')" \
  "recurring jobs after a restart"
remove_job miss

# ---------------------------------------------------------------- shorthornctl
"$CTL" recurring add "$vol" daily --kind snapshot --schedule '0 3 * * *' --retain 7 >/dev/null
listed=$("$CTL" --json recurring list "$vol")
python3 -c '
import json, sys
jobs = json.loads(sys.argv[1])
assert [(j["name"], j["kind"], j["schedule"], j["retain"]) for j in jobs] == \
    [("daily", "snapshot", "0 3 * * *", 7)], jobs
assert jobs[0]["next_run"].endswith(":03:00:00Z") or jobs[0]["next_run"], jobs' "$listed" ||
  fail "shorthornctl --json recurring list: $listed"
rc=0
"$CTL" recurring add "$vol" daily --kind snapshot --schedule '@daily' --retain 1 >/dev/null 2>&1 ||
  rc=$?
assert_eq 4 "$rc" "exit status of shorthornctl recurring add of a taken name (AlreadyExists)"
"$CTL" recurring remove "$vol" daily >/dev/null
rc=0
"$CTL" recurring remove "$vol" daily >/dev/null 2>&1 || rc=$?
assert_eq 3 "$rc" "exit status of shorthornctl recurring remove of an unknown job (NotFound)"
log "ok: shorthornctl recurring add, list --json, remove"

# ---------------------------------------------------------------- bad input
add() { assert_error_name "$1" "$2" "$vpath" "$VOLUME_IFACE.AddRecurringJob" "${@:3}"; }
add InvalidArgument "a schedule with a minute of 60" "'a'" "'snapshot'" "'60 * * * *'" \
  "uint32 3" "@a{sv} {}"
add InvalidArgument "a schedule that never fires" "'a'" "'snapshot'" "'0 0 31 2 *'" "uint32 3" \
  "@a{sv} {}"
add InvalidArgument "retain 0" "'a'" "'snapshot'" "'@daily'" "uint32 0" "@a{sv} {}"
add InvalidArgument "retain 101" "'a'" "'snapshot'" "'@daily'" "uint32 101" "@a{sv} {}"
add InvalidArgument "kind clone" "'a'" "'clone'" "'@daily'" "uint32 3" "@a{sv} {}"
add InvalidArgument "a name with a slash" "'a/b'" "'snapshot'" "'@daily'" "uint32 3" "@a{sv} {}"
add InvalidArgument "a name of 47 characters" "'$(printf 'j%.0s' {1..47})'" "'snapshot'" \
  "'@daily'" "uint32 3" "@a{sv} {}"
add InvalidArgument "a target for a snapshot job" "'a'" "'snapshot'" "'@daily'" "uint32 3" \
  "{'target': <'file:///x'>}"
add InvalidArgument "an ftp target" "'a'" "'backup'" "'@daily'" "uint32 3" \
  "{'target': <'ftp://x/y'>}"
add InvalidArgument "an unknown option" "'a'" "'snapshot'" "'@daily'" "uint32 3" \
  "{'when': <'now'>}"
assert_error_name --as-nobody NotAuthorized "AddRecurringJob by a caller who is not root" \
  "$vpath" "$VOLUME_IFACE.AddRecurringJob" "'a'" "'snapshot'" "'@daily'" "uint32 3" "@a{sv} {}"
for ((n = 0; n < 16; n++)); do add_job "j$n" snapshot "@yearly" 1 0; done
add LimitExceeded "a 17th job" "'j16'" "'snapshot'" "'@yearly'" "uint32 1" "@a{sv} {}"
add AlreadyExists "a name taken" "'j3'" "'snapshot'" "'@daily'" "uint32 1" "@a{sv} {}"
assert_error_name NotFound "remove of an unknown job" "$vpath" "$VOLUME_IFACE.RemoveRecurringJob" \
  "'nope'" "@a{sv} {}"
# Deleting the volume takes its jobs with it. (The restart handed the
# volume's file over: the new fused attached it again.)
detach_volume "$vol"
delete_volume "$vol"
[[ -z $(list_volumes | grep -F "$vpath" || true) ]] || fail "volume $vol not deleted"
grep -q '"recurring"' "$FUSED_STATE_DIR/volumes.json" &&
  fail "the registry still holds recurring jobs after the volume was deleted"

pass
