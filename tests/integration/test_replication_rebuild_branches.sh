#!/usr/bin/env bash
# A full rebuild must copy every snapshot of the source's layer tree, not
# only the chain under the rebuild's system snapshot: after a revert to s1,
# snapshot s2 sits on a branch of its own (the new head's parent is s1) and
# stays readable and a revert target (doc/replica-format.md). Here s1, s2,
# revert to s1 while detached, more writes, then r2 stops and the volume is
# rebuilt onto r3. Checked offline afterwards: every replica the volume keeps
# holds s1 and s2 with the same content, and the same live data.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

vol=branches-1
init_replicated_volume "$vol" s1
volume_call "$vol" Snapshot 'sa{sv}' s2 0 >/dev/null
detach_volume "$vol"
volume_call "$vol" Revert 'sa{sv}' s1 0 >/dev/null
log "reverted to s1: s2 is on a branch of its own"
dev=$(attach_volume "$vol")
dd if=/dev/urandom of="$dev" bs=1M seek=32 count=8 oflag=direct status=none
stop_daemon replicad-r2
notice_replica_down "$vol" "$a2" 64
wait_robustness "$vol" healthy 120
members=$(replica_modes "$vol")
log "replicas after the rebuild:"$'\n'"$members"
grep -q "^$(replica_address r3) " <<<"$members" || fail "no replica was rebuilt onto r3"
detach_volume "$vol"
stop_daemon fused
for r in r1 r3; do stop_daemon "replicad-$r"; done

first=""
while read -r addr name mode; do
  out=$(inspect_replica "$addr" "$name") ||
    fail "replica_tool inspect of $name on $addr failed: $out"
  log "replica $name on $addr ($mode):"$'\n'"$out"
  for s in s1 s2; do
    grep -q "^$s " <<<"$out" || fail "replica $name on $addr has no snapshot $s"
  done
  summary=$(grep -E '^(s1|s2|\(live\)) ' <<<"$out")
  if [[ -z $first ]]; then
    first=$summary
  else
    assert_eq "$first" "$summary" "snapshots s1, s2 and live data of replica $name against the first replica"
  fi
done <<<"$members"
log "ok: every replica holds s1 and s2 (on its branch) and the same data"
pass
