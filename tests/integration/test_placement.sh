#!/usr/bin/env bash
# Replica placement (issue 21): different hosts, free space, tags.
#
# Four replicads: r1 and r2 report the same host id (one "host"), r3 its
# own host and the tag ssd, r4 its own host on a 64 MiB tmpfs filled to
# 60 MiB (under the 10% reserve). Expected, with the default rules
# (replica-anti-affinity hard):
#   * a volume with replica-count 2 lands on two different hosts, never on
#     r1 and r2 together, never on r4;
#   * naming r1 and r2 explicitly is refused (Unavailable) naming the host;
#   * replica-count 3 is refused with a message that lists every candidate
#     and why (r4: its free space and the reserve; r1/r2: the shared host);
#   * replica-tags=ssd places only on r3, and count 2 with it is refused;
#   * SetReplicaCount beyond what fits is refused and changes nothing;
#   * ListReplicads shows each replicad's host, tags and space;
#   * under replica-anti-affinity soft, r1 and r2 together are allowed,
#     with a warning in the log.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_root
start_bus
REPLICAD_HOST_IDS[r1]=test-host-shared
REPLICAD_HOST_IDS[r2]=test-host-shared
start_replicad r1
start_replicad r2
REPLICAD_EXTRA_ARGS=(--tags "ssd zone=z3")
start_replicad r3
REPLICAD_EXTRA_ARGS=()
mkdir -p "$REPLICAS_DIR/r4"
mount -t tmpfs -o size=64m shorthorn-test-full "$REPLICAS_DIR/r4"
head -c $((60 * MiB)) /dev/zero >"$REPLICAS_DIR/r4/filler"
start_replicad r4
start_fused
a1=$(replica_address r1) a2=$(replica_address r2) a3=$(replica_address r3) a4=$(replica_address r4)
size=$((64 * MiB))
# create_call NAME ADDRESSES OPTIONS: CreateVolume's arguments for
# assert_error_name / dbus_try (ADDRESSES and OPTIONS as GVariant text
# inside the brackets, e.g. "'a:1', 'b:1'" and "'replica-count': <uint32 3>").
create_call() {
  printf '%s\n' "$MANAGER_PATH" "$MANAGER_IFACE.CreateVolume" "$(gv_str "$1")" "uint64 $size" \
    "@as [$2]" "@a{sv} {$3}"
}

# --- ListReplicads: host, tags, space.
listed=$(busctl --system --json=short call "$BUS_NAME" "$MANAGER_PATH" "$MANAGER_IFACE" \
  ListReplicads 'a{sv}' 0)
row() {
  python3 -c 'import json,sys
for r in json.loads(sys.argv[1])["data"][0]:
    if r[0] == sys.argv[2]: print(r[1], r[2], ",".join(r[3]) or "-", r[4], r[5], r[6], r[7])' \
    "$listed" "$1"
}
log "ListReplicads: $listed"
read -r st host tags total free prov count < <(row "$a1")
assert_eq "up test-host-shared -" "$st $host $tags" "r1 in ListReplicads"
read -r st host tags total free prov count < <(row "$a3")
assert_eq "up test-host-r3 ssd,zone=z3" "$st $host $tags" "r3 in ListReplicads"
read -r st host tags total free prov count < <(row "$a4")
assert_eq "up test-host-r4 $((64 * MiB))" "$st $host $total" "r4 (tmpfs) in ListReplicads"
((free <= 4 * MiB)) || fail "r4 reports $free bytes free, more than the 4 MiB left on its tmpfs"
log "ok: ListReplicads reports host ids, tags and space"

# --- replica-count 2: two hosts, never r4.
manager_call CreateVolume 'stasa{sv}' spread "$size" 0 1 replica-count u 2 >/dev/null
mapfile -t addrs < <(replica_modes spread | awk '{ print $1 }')
log "volume spread placed on: ${addrs[*]}"
assert_eq 2 "${#addrs[@]}" "replicas of volume spread"
[[ " ${addrs[*]} " != *" $a4 "* ]] || fail "volume spread has a replica on the full replicad r4"
if [[ " ${addrs[*]} " == *" $a1 "* && " ${addrs[*]} " == *" $a2 "* ]]; then
  fail "volume spread has replicas on r1 and r2, which share host test-host-shared"
fi
log "ok: replica-count 2 placed on two hosts, not on the full replicad"

# --- r1 and r2 named together: refused naming the host.
mapfile -t call < <(create_call same-host "'$a1', '$a2'" "")
assert_error_name Unavailable "create on r1 and r2 (one host)" "${call[@]}"
[[ $DBUS_ERROR_MESSAGE == *"on host test-host-shared"* ]] ||
  fail "refusal does not name the host: $DBUS_ERROR_MESSAGE"

# --- three replicas do not fit: every candidate and why.
mapfile -t call < <(create_call three "" "'replica-count': <uint32 3>")
assert_error_name Unavailable "replica-count 3 with two usable hosts" "${call[@]}"
[[ $DBUS_ERROR_MESSAGE == *"$a4: 4 MiB free of 64 MiB, under the reserve of 10%"* ]] ||
  fail "refusal does not give r4's space and the reserve: $DBUS_ERROR_MESSAGE"
[[ $DBUS_ERROR_MESSAGE == *"(replica-anti-affinity hard)"* ]] ||
  fail "refusal does not name the anti-affinity rule: $DBUS_ERROR_MESSAGE"
! list_volumes | grep -qF "$(volume_path three)" || fail "refused volume three exists"
for r in r1 r2 r3; do
  [[ -z $(find "$REPLICAS_DIR/$r" -maxdepth 1 -name 'three-*') ]] ||
    fail "a refused create left a replica of volume three on $r"
done
log "ok: no replica left behind by the refused create"

# --- tags.
manager_call CreateVolume 'stasa{sv}' fast "$size" 0 2 replica-count u 1 replica-tags s ssd \
  >/dev/null
assert_eq "$a3" "$(replica_modes fast | awk '{ print $1 }')" "replica of volume fast (ssd)"
assert_eq '["ssd"]' "$(busctl --system --json=short get-property "$BUS_NAME" \
  "$(volume_path fast)" "$VOLUME_IFACE" ReplicaTags | python3 -c 'import json,sys
print(json.dumps(json.load(sys.stdin)["data"]))')" "ReplicaTags of volume fast"
mapfile -t call < <(create_call fast2 "" "'replica-count': <uint32 2>, 'replica-tags': <'ssd'>")
assert_error_name Unavailable "two ssd replicas with one ssd replicad" "${call[@]}"
[[ $DBUS_ERROR_MESSAGE == *"lacks tag(s) ssd"* ]] ||
  fail "refusal does not say which tag: $DBUS_ERROR_MESSAGE"
mapfile -t call < <(create_call badtag "" "'replica-tags': <'ssd,no spaces'>")
assert_error_name InvalidArgument "a malformed tag" "${call[@]}"
log "ok: replica-tags honoured and checked"

# --- SetReplicaCount beyond what fits.
assert_error_name Unavailable "SetReplicaCount 3 of volume spread" "$(volume_path spread)" \
  "$VOLUME_IFACE.SetReplicaCount" "uint32 3" "@a{sv} {}"
assert_eq 2 "$(volume_prop spread ReplicaCount)" "ReplicaCount after the refused change"

# --- soft anti-affinity: one host allowed, with a warning.
stop_daemon fused
start_fused_opts --replica-anti-affinity soft
manager_call CreateVolume 'stasa{sv}' soft-pair "$size" 2 "$a1" "$a2" 0 >/dev/null ||
  fail "the soft rule refused r1 and r2"
grep -q "soft-pair: replica on .* shares host test-host-shared .*(replica-anti-affinity soft)" \
  "$LOG_DIR/fused.log" || fail "no warning about the shared host in fused.log"
log "ok: soft rule places on one host with a warning"
dev=$(attach_volume soft-pair)
head -c $((8 * MiB)) /dev/urandom >"$TEST_DIR/d"
dd if="$TEST_DIR/d" of="$dev" bs=1M oflag=direct status=none
assert_eq "$(sha256sum <"$TEST_DIR/d" | cut -d' ' -f1)" "$(sha256_range "$dev" 0 8)" \
  "data of volume soft-pair"
detach_volume soft-pair
pass
