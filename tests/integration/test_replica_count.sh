#!/usr/bin/env bash
# SetReplicaCount shrinking an attached volume: the least useful replicas
# go first (a failed one before any RW one), never the last RW replica; the
# data stays as written; the replicas dropped from replicads that answer are
# deleted there. A count of 0 is refused and changes nothing.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
start_cluster r1 r2 r3
a1=$(replica_address r1) a2=$(replica_address r2) a3=$(replica_address r3)
vol=shrink
# shellcheck disable=SC2154  # MiB is lib.sh's
create_replicated_volume "$vol" $((64 * MiB)) "$a1" "$a2" "$a3" >/dev/null
dev=$(attach_volume "$vol")
dd if=/dev/urandom of="$dev" bs=1M count=16 oflag=direct status=none
n1=$(replica_name_at "$vol" "$a1") n2=$(replica_name_at "$vol" "$a2")
n3=$(replica_name_at "$vol" "$a3")

# r3 fails: its replica is ERR (nowhere to rebuild it: every replicad holds one).
stop_daemon replicad-r3
dd if=/dev/urandom of="$dev" bs=1M seek=16 count=1 oflag=direct status=none
wait_replica_mode "$vol" "$a3" ERR 15
want=$(dd if="$dev" bs=1M count=17 iflag=direct status=none | sha256sum)

# 3 -> 2: the ERR replica goes, not an RW one.
volume_call "$vol" SetReplicaCount 'ua{sv}' 2 0 >/dev/null
assert_eq 2 "$(volume_prop "$vol" ReplicaCount)" "ReplicaCount after 3 -> 2"
members=$(replica_modes "$vol")
assert_eq "$a1 $n1 RW"$'\n'"$a2 $n2 RW" "$members" "replicas after 3 -> 2 (r3's ERR replica dropped)"
wait_robustness "$vol" healthy 30
log "ok: 3 -> 2 dropped the ERR replica $n3"

# 2 -> 1: one RW replica goes (the first listed: equal rank), the other stays
# RW and serves the same data; the dropped one is deleted on its replicad.
volume_call "$vol" SetReplicaCount 'ua{sv}' 1 0 >/dev/null
members=$(replica_modes "$vol")
assert_eq "$a2 $n2 RW" "$members" "replicas after 2 -> 1"
[[ ! -e $(replica_dir r1 "$n1") ]] || fail "dropped replica $n1 is still on r1: $(replica_dir r1 "$n1")"
assert_eq "$want" "$(dd if="$dev" bs=1M count=17 iflag=direct status=none | sha256sum)" \
  "the volume's first 17 MiB after 2 -> 1"
log "ok: 2 -> 1 dropped $n1 (deleted on r1); $n2 serves the same data"

# 0 is refused; the last replica stays.
assert_error_name InvalidArgument "SetReplicaCount 0" "$(volume_path "$vol")" \
  "$VOLUME_IFACE.SetReplicaCount" "uint32 0" "@a{sv} {}"
assert_eq 1 "$(volume_prop "$vol" ReplicaCount)" "ReplicaCount after the refused 0"
assert_eq "$a2 $n2 RW" "$(replica_modes "$vol")" "replicas after the refused 0"
detach_volume "$vol"
pass
