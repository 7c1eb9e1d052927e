#!/usr/bin/env bash
# Issue 15, hole 3: a revert of a detached volume that cannot reach every
# replica must not leave the unreached ones looking current (they keep the
# old data with the same generation, and the next attach would trust them).
# Here r2 is down during the revert; after it is back, the attach trusts only
# the reverted replica and rebuilds the other (onto r3). Checked offline
# afterwards: every replica the volume keeps has the live data of s1.
# Part 2, the same for a snapshot deletion and a snapshot taken while a
# replica is down and the volume detached (the fault schedule found a
# replica set whose snapshots differed after a delete reached only some):
# both succeed, the replica that missed them is rebuilt at the next attach,
# and every replica kept holds exactly the snapshots the volume lists.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

vol=revert-1
init_replicated_volume "$vol" s1
detach_volume "$vol"
stop_daemon replicad-r2
if out=$(volume_call "$vol" Revert 'sa{sv}' s1 0 2>&1); then
  log "Revert with r2 down: OK"
else
  log "Revert with r2 down failed: $out"
fi
start_replicad r2
dev=$(attach_volume "$vol")
wait_robustness "$vol" healthy 120
members=$(replica_modes "$vol")
log "replicas after the attach:"$'\n'"$members"
detach_volume "$vol"

vol2=snapdel-1
create_replicated_volume "$vol2" $((64 * MiB)) "$a1" "$a2" >/dev/null
dev=$(attach_volume "$vol2")
dd if=/dev/urandom of="$dev" bs=1M count=8 oflag=direct status=none
volume_call "$vol2" Snapshot 'sa{sv}' s1 0 >/dev/null
dd if=/dev/urandom of="$dev" bs=1M seek=4 count=8 oflag=direct status=none
volume_call "$vol2" Snapshot 'sa{sv}' s2 0 >/dev/null
detach_volume "$vol2"
missed=$(replica_name_at "$vol2" "$a2")
stop_daemon replicad-r2
job=$(volume_call "$vol2" DeleteSnapshot 'sa{sv}' s1 0 | _unquote) ||
  fail "DeleteSnapshot s1 with r2 down failed"
assert_eq completed "$(wait_job "$job" 60)" "the delete job of s1 with r2 down"
volume_call "$vol2" Snapshot 'sa{sv}' s3 0 >/dev/null || fail "Snapshot s3 with r2 down failed"
log "ok: DeleteSnapshot s1 and Snapshot s3 of the detached $vol2 succeeded with r2 down"
start_replicad r2
dev=$(attach_volume "$vol2")
wait_robustness "$vol2" healthy 120
snaps=$(volume_prop "$vol2" Snapshots)
[[ $snaps != *'"s1"'* && $snaps == *'"s2"'* && $snaps == *'"s3"'* ]] ||
  fail "snapshots of $vol2 after the attach: $snaps"
members2=$(replica_modes "$vol2")
log "replicas of $vol2 after the attach:"$'\n'"$members2"
! grep -qw "$missed" <<<"$members2" || fail "replica $missed, which missed the delete, is kept"
detach_volume "$vol2"
stop_daemon fused
for r in r1 r2 r3; do stop_daemon "replicad-$r"; done

while read -r addr name mode; do
  out=$(inspect_replica "$addr" "$name") ||
    fail "replica_tool inspect of $name on $addr failed: $out"
  log "replica $name on $addr ($mode):"$'\n'"$out"
  s1=$(awk '$1 == "s1" { print $2 }' <<<"$out")
  live=$(awk '$1 == "(live)" { print $2 }' <<<"$out")
  [[ -n $s1 ]] || fail "replica $name on $addr has no snapshot s1"
  assert_eq "$s1" "$live" "live data of replica $name on $addr (must be s1's after the revert)"
done <<<"$members"
log "ok: every replica the volume keeps holds s1's data"
while read -r addr name mode; do
  out=$(inspect_replica "$addr" "$name") ||
    fail "replica_tool inspect of $name on $addr failed: $out"
  have=$(awk '$1 != "(live)" && $1 != "layer-files" { print $1 }' <<<"$out" | sort | xargs)
  assert_eq "s2 s3" "$have" "snapshots held by replica $name of $vol2 on $addr"
done <<<"$members2"
log "ok: every replica of $vol2 holds exactly s2 and s3"
pass
