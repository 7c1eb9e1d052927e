#!/usr/bin/env bash
# Bad requests get the right D-Bus error and change nothing.
#
# Each bad call below must fail with the named error, and afterwards
# ListVolumes and the replicad's data dir must be exactly as before (no
# half-created volume, no stray replica directory). Callers that are not root
# (user nobody) get NotAuthorized for changes but may still read.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
start_cluster r1

addr=$(replica_address r1)
manager=$MANAGER_IFACE

# snapshot: what must not change — the volume list and the replica dirs.
snapshot() {
  list_volumes
  echo "--"
  find "$REPLICAS_DIR/r1" -mindepth 1 -maxdepth 1 | sort
}

# bad EXPECTED WHAT ARGS...: assert_error_name, then nothing changed.
bad() {
  assert_error_name "$@"
  local after
  after=$(snapshot)
  [[ $after == "$before" ]] || fail "$2 changed state:
before:
$before
after:
$after"
}

# create_args NAME SIZE ADDRESS: CreateVolume's arguments as GVariant text.
create_args() {
  printf '%s\n' "$(gv_str "$1")" "uint64 $2" "@as [$(gv_str "$3")]" '@a{sv} {}'
}

bad_create() {
  local expected=$1 what=$2 args
  mapfile -t args < <(create_args "$3" "$4" "$5")
  bad "$expected" "$what" "$MANAGER_PATH" "$manager.CreateVolume" "${args[@]}"
}

# A volume to collide with and to poke at.
create_volume dup "$GiB" "$addr" >/dev/null
before=$(snapshot)
log "state before the bad calls:"
printf '%s\n' "$before"

bad_create AlreadyExists "duplicate name" dup "$GiB" "$addr"
bad_create InvalidArgument "empty name" "" "$GiB" "$addr"
bad_create InvalidArgument "64-character name" "$(printf 'a%.0s' {1..64})" "$GiB" "$addr"
bad_create InvalidArgument "name with '/'" "a/b" "$GiB" "$addr"
bad_create InvalidArgument "name '..'" ".." "$GiB" "$addr"
bad_create InvalidArgument "name with a space" "a b" "$GiB" "$addr"
bad_create InvalidArgument "size 0" ok-name 0 "$addr"
bad_create InvalidArgument "size 4097" ok-name 4097 "$addr"
bad_create InvalidArgument "malformed replica address" ok-name "$GiB" "not-an-address"
bad_create Unavailable "unreachable replica 127.0.0.1:1" ok-name "$GiB" "127.0.0.1:1"

# A 63-character name is fine (the limit is inclusive); delete it again.
name63=$(printf 'b%.0s' {1..63})
create_volume "$name63" "$GiB" "$addr" >/dev/null
delete_volume "$name63"
assert_eq "$before" "$(snapshot)" "state after creating and deleting a 63-character name"

# A name with a leading digit: the path CreateVolume returns is the one the
# documented escaping (systemd's, as in volume_path) gives, "_31db".
path=$(create_volume 1db "$GiB" "$addr")
assert_eq "$(volume_path 1db)" "$path" "object path of volume 1db"
assert_eq 1db "$(volume_prop 1db Name)" "Name of volume 1db read at its documented path"
delete_volume 1db
assert_eq "$before" "$(snapshot)" "state after creating and deleting volume 1db"

# Unknown volumes: there is no object to call.
missing=$(volume_path missing)
dbus_try "$missing" "$VOLUME_IFACE.Attach" '@a{sv} {}'
case $DBUS_ERROR in
  org.freedesktop.DBus.Error.UnknownObject | org.freedesktop.DBus.Error.UnknownMethod | \
    "${ERROR_PREFIX}NotFound") log "ok: Attach of an unknown volume -> $DBUS_ERROR" ;;
  *) fail "Attach of an unknown volume: expected UnknownObject or NotFound, got $DBUS_ERROR: $DBUS_ERROR_MESSAGE" ;;
esac
bad NotFound "DeleteVolume of an unknown volume" "$MANAGER_PATH" "$manager.DeleteVolume" \
  "'missing'" '@a{sv} {}'

dup=$(volume_path dup)
bad InvalidArgument "Attach with frontend 'bogus'" "$dup" "$VOLUME_IFACE.Attach" \
  "@a{sv} {'frontend': <'bogus'>}"
assert_eq detached "$(volume_prop dup State)" "State after the bad Attach"
# Detach of a detached volume: the daemon answers InvalidArgument.
bad InvalidArgument "Detach of a detached volume" "$dup" "$VOLUME_IFACE.Detach" '@a{sv} {}'

# Not root, not in group shorthorn: no changes, but reading is allowed.
mapfile -t args < <(create_args nobodys "$GiB" "$addr")
bad --as-nobody NotAuthorized "CreateVolume as nobody" "$MANAGER_PATH" "$manager.CreateVolume" \
  "${args[@]}"
bad --as-nobody NotAuthorized "DeleteVolume as nobody" "$MANAGER_PATH" "$manager.DeleteVolume" \
  "'dup'" '@a{sv} {}'
bad --as-nobody NotAuthorized "Attach as nobody" "$dup" "$VOLUME_IFACE.Attach" '@a{sv} {}'
assert_eq detached "$(volume_prop dup State)" "State after Attach as nobody"

nobody_list=$(as_nobody busctl --system call "$BUS_NAME" "$MANAGER_PATH" "$manager" ListVolumes) ||
  fail "ListVolumes as nobody failed"
assert_eq "ao 1 \"$dup\"" "$nobody_list" "ListVolumes as nobody"
nobody_size=$(as_nobody busctl --system get-property "$BUS_NAME" "$dup" "$VOLUME_IFACE" Size) ||
  fail "reading Size as nobody failed"
assert_eq "t $GiB" "$nobody_size" "Size read as nobody"
as_nobody busctl --system introspect "$BUS_NAME" "$dup" >/dev/null ||
  fail "introspecting $dup as nobody failed"
log "ok: nobody can list, read properties and introspect"

# In use: no second Attach, no Detach while mounted, no Delete while attached.
dev=$(attach_volume dup)
mkfs.ext4 -q -F "$dev"
mkdir -p "$FS_DIR/dup"
mount "$dev" "$FS_DIR/dup"
bad Busy "Attach of an attached volume" "$dup" "$VOLUME_IFACE.Attach" '@a{sv} {}'
bad Busy "Detach while mounted" "$dup" "$VOLUME_IFACE.Detach" '@a{sv} {}'
bad Busy "DeleteVolume while attached" "$MANAGER_PATH" "$manager.DeleteVolume" "'dup'" '@a{sv} {}'
assert_eq attached "$(volume_prop dup State)" "State after the refused Detach"
umount "$FS_DIR/dup"
detach_volume dup
assert_eq detached "$(volume_prop dup State)" "State after Detach"

# Cleaning up through the API leaves an empty registry and data dir.
delete_volume dup
assert_eq "" "$(list_volumes)" "ListVolumes after deleting dup"
assert_eq "" "$(find "$REPLICAS_DIR/r1" -mindepth 1 -maxdepth 1)" "replicad data dir after DeleteVolume"

pass
