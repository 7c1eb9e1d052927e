#!/usr/bin/env bash
# Issue 15, hole 2: a replica that was ERR while a snapshot was taken must not
# come back by a catch-up of the ranges it missed (it would be RW without the
# snapshot, and later rebuilds could take it as a source): its record of
# missed ranges is no longer enough, so it gets a full rebuild (here onto a
# third replicad). Checked offline afterwards: every replica the volume keeps
# holds snapshot s1 with the same content, and the same live data.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

vol=missed-1
init_replicated_volume "$vol"
stop_daemon replicad-r2
dd if=/dev/urandom of="$dev" bs=1M seek=32 count=4 oflag=direct status=none
wait_replica_mode "$vol" "$a2" ERR 15
# Tests replace a failed replica at once: a full rebuild onto r3 may start
# before the snapshot, which is then refused until it ends. r2 stays down
# (ERR) all the while, so whenever s1 is taken, r2 misses it.
for ((i = 0; ; i++)); do
  out=$(volume_call "$vol" Snapshot 'sa{sv}' s1 0 2>&1) && break
  [[ $out == *"being rebuilt"* ]] || fail "Snapshot s1: $out"
  ((i < 600)) || fail "Snapshot s1 still refused after 120 s: $out"
  sleep 0.2
done
log "snapshot s1 taken (refused $i time(s) first while a rebuild ran)"
dd if=/dev/urandom of="$dev" bs=1M seek=64 count=8 oflag=direct status=none
log "snapshot s1 taken and 8 MiB written while r2 was down"
start_replicad r2
wait_robustness "$vol" healthy 120
members=$(replica_modes "$vol")
log "replicas after the rebuild:"$'\n'"$members"
detach_volume "$vol"
stop_daemon fused
for r in r1 r2 r3; do stop_daemon "replicad-$r"; done

# Every replica of the volume (by address: its replicad's data dir) holds s1
# and the live data with the same hashes.
first=""
while read -r addr name mode; do
  out=$(inspect_replica "$addr" "$name") ||
    fail "replica_tool inspect of $name on $addr failed: $out"
  log "replica $name on $addr ($mode):"$'\n'"$out"
  grep -q '^s1 ' <<<"$out" || fail "replica $name on $addr has no snapshot s1: it came back without it"
  summary=$(grep -E '^(s1|\(live\)) ' <<<"$out")
  if [[ -z $first ]]; then
    first=$summary
  else
    assert_eq "$first" "$summary" "snapshot s1 and live data of replica $name against the first replica"
  fi
done <<<"$members"
log "ok: every replica holds s1 and the same data"
pass
