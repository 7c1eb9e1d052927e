#!/usr/bin/env bash
# Issue 15, hole 3: a revert of a detached volume that cannot reach every
# replica must not leave the unreached ones looking current (they keep the
# old data with the same generation, and the next attach would trust them).
# Here r2 is down during the revert; after it is back, the attach trusts only
# the reverted replica and rebuilds the other (onto r3). Checked offline
# afterwards: every replica the volume keeps has the live data of s1.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
start_bus
start_replicad r1
start_replicad r2
start_replicad r3
start_fused

vol=revert-1
a1=$(replica_address r1) a2=$(replica_address r2)
create_replicated_volume "$vol" $((256 * MiB)) "$a1" "$a2" >/dev/null
dev=$(attach_volume "$vol")
dd if=/dev/urandom of="$dev" bs=1M count=16 oflag=direct status=none
volume_call "$vol" Snapshot 'sa{sv}' s1 0 >/dev/null
dd if=/dev/urandom of="$dev" bs=1M seek=8 count=16 oflag=direct status=none
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
pass
