#!/usr/bin/env bash
# Issue 17: restarts of fused in the middle of a Job leave no Job half-done
# without a state that says so.
#
# Rebuild: a 2-replica volume (ext4 mounted, a 160 MiB file) loses r2; a
# full rebuild onto r3 starts (rebuild-bandwidth 16 MiB/s, so it takes
# seconds). Mid-copy, fused is replaced (--takeover), and during the next
# rebuild killed with SIGKILL and started again. After each restart the
# volume says degraded and a rebuild Job runs again (onto a new replica;
# the copy cut short stays listed as ERR, stale), until it is healthy with
# r1 and r3 RW; the file reads back (sha256) and e2fsck is clean.
#
# Snapshot deletion: a snapshot holding 256 MiB is deleted (the replica
# merges it: a delete-snapshot Job) and fused is killed at once. The new
# fused follows a merge still running with a delete-snapshot Job of its own,
# and the snapshot is gone once it ends; the data reads back.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
start_bus
for r in r1 r2 r3; do start_replicad "$r"; done
start_fused_opts --rebuild-bandwidth 16

planned_restart() { takeover_fused --rebuild-bandwidth 16; }

crash_restart() {
  kill_daemon fused KILL
  start_fused_opts --rebuild-bandwidth 16
}

# shellcheck disable=SC2317  # called through wait_until
rebuild_running() { jobs_of "$1" rebuild | awk '$2 == "running" && $3 > 0 { f = 1 } END { exit !f }'; }
# shellcheck disable=SC2317  # called through wait_until
rebuilding_or_healthy() { rebuild_running "$1" || prop_is "$1" Robustness healthy; }

# ---------------------------------------------------------------- rebuild
vol=rb
create_replicated_volume "$vol" $((256 * MiB)) "$(replica_address r1)" "$(replica_address r2)" \
  >/dev/null
mount_volume "$vol"
dd if=/dev/urandom of="$mnt/data" bs=1M count=160 conv=fsync status=none
want=$(sha256sum <"$mnt/data" | cut -d' ' -f1)

kill_daemon replicad-r2 KILL
t=$(wait_until 60 "a rebuild copying onto r3" rebuild_running "$vol")
log "rebuild running ${t}s after r2 died: $(jobs_of "$vol" rebuild | tail -1)"

planned_restart
log "after the planned restart: $(volume_prop "$vol" Robustness); replicas: $(replica_modes "$vol" | tr '\n' ';')"
t=$(wait_until 60 "a rebuild running again (or done) after the planned restart" \
  rebuilding_or_healthy "$vol")
log "ok: ${t}s after the planned restart: $(jobs_of "$vol" rebuild | tail -1)"
if rebuild_running "$vol"; then
  crash_restart
  log "after kill -9: $(volume_prop "$vol" Robustness); replicas: $(replica_modes "$vol" | tr '\n' ';')"
  t=$(wait_until 60 "a rebuild running again (or done) after kill -9" rebuilding_or_healthy "$vol")
  log "ok: ${t}s after kill -9: $(jobs_of "$vol" rebuild | tail -1)"
else
  warn "the rebuild ended before the kill -9 could interrupt it"
fi
wait_robustness "$vol" healthy 300
# RW: r1 and one replica on r3. The copies the restarts cut short stay
# listed as ERR (stale, deleted after stale-replica-timeout), as does r2's.
log "replicas: $(replica_modes "$vol" | tr '\n' ';')"
assert_eq "$(printf '%s\n' "$(replica_address r1)" "$(replica_address r3)" | sort | xargs)" \
  "$(replica_modes "$vol" | awk '$3 == "RW" { print $1 }' | sort | xargs)" "RW replicas after the rebuild"
echo 3 >/proc/sys/vm/drop_caches
assert_eq "$want" "$(sha256sum <"$mnt/data" | cut -d' ' -f1)" "sha256 of the file after the rebuild"
umount "$mnt"
assert_fsck_clean "$dev" "after restarts during a rebuild"
detach_volume "$vol"
log "ok: the rebuild resumed after both restarts and ended healthy with the data"

# ---------------------------------------------------------------- snapshot deletion
vol=sn
create_volume "$vol" $((512 * MiB)) "$(replica_address r1)" >/dev/null
mount_volume "$vol"
dd if=/dev/urandom of="$mnt/old" bs=1M count=256 conv=fsync status=none
volume_call "$vol" Snapshot 'sa{sv}' s1 0 >/dev/null
dd if=/dev/urandom of="$mnt/new" bs=1M count=32 conv=fsync status=none
want_old=$(sha256sum <"$mnt/old" | cut -d' ' -f1)
want_new=$(sha256sum <"$mnt/new" | cut -d' ' -f1)
job=$(volume_call "$vol" DeleteSnapshot 'sa{sv}' s1 0 | _unquote)
[[ $job == /org/shorthorn/Storage1/jobs/* ]] || fail "DeleteSnapshot returned '$job'"
crash_restart
# shellcheck disable=SC2317  # called through wait_until
s1_gone() {
  busctl --system --json=short get-property "$BUS_NAME" "$(volume_path "$vol")" "$VOLUME_IFACE" \
    Snapshots | python3 -c 'import json,sys; sys.exit(any(s[0] == "s1" for s in json.load(sys.stdin)["data"]))'
}
wait_until 60 "$vol attached again" prop_is "$vol" State attached >/dev/null
if grep -q "the merge of deleted snapshot s1 is still running" "$LOG_DIR/fused.log"; then
  resumed=$(jobs_of "$vol" delete-snapshot | head -1)
  [[ -n $resumed ]] || fail "the new fused said it follows the merge of s1 but shows no delete-snapshot job"
  log "ok: the merge of s1 was still running; the new fused follows it: $resumed"
else
  log "the merge of s1 ended before the new fused attached"
fi
t=$(wait_until 60 "s1 gone from Snapshots" s1_gone)
log "ok: s1 is gone ${t}s after the restart"
echo 3 >/proc/sys/vm/drop_caches
assert_eq "$want_old" "$(sha256sum <"$mnt/old" | cut -d' ' -f1)" "sha256 of the file in s1"
assert_eq "$want_new" "$(sha256sum <"$mnt/new" | cut -d' ' -f1)" "sha256 of the newer file"
umount "$mnt"
assert_fsck_clean "$dev" "after a restart during a snapshot deletion"
detach_volume "$vol"
pass
