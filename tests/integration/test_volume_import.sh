#!/usr/bin/env bash
# Issue 17, "a volume moves to another host": two fused instances ("hosts" A
# and B: separate state directory, bus, mount point and device directory)
# share three replicads. A creates a 2-replica volume, attaches it, puts
# ext4 and a file on it and is killed (-9) with the volume attached. B
# imports the volume from the replicads (Manager.ImportVolume through
# `shorthornctl volume import`), attaches it and reads the same bytes
# (sha256 of the whole device and of the file; e2fsck clean), and writes.
# A restarts: it takes its FUSE connection over, tries to attach the volume
# again and is refused: the volume shows "moved", Attach fails with Moved
# (shorthornctl exit 14), A's kept file and loop device are gone, the
# replicas' epoch and B's data are untouched, and DeleteVolume on A forgets
# the volume without deleting its replicas. Bad imports get clear errors.
# Prints how long the import took.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd python3
CTL_BIN=$(find_binary shorthornctl)

# Host A: lib.sh's directories and bus. Host B: its own.
A_STATE=$FUSED_STATE_DIR A_MOUNT=$FUSED_MOUNT_POINT A_DEV=$FUSED_DEV_DIR
B_STATE=$TEST_DIR/b/state B_MOUNT=$TEST_DIR/b/volumes B_DEV=$TEST_DIR/b/dev
mkdir -p "$B_STATE" "$B_MOUNT" "$B_DEV"

start_bus
A_BUS=$DBUS_SYSTEM_BUS_ADDRESS
start_replicad r1
start_replicad r2
start_replicad r3
BUS_DIR=$TEST_DIR/bus-b
mkdir -m 0755 "$BUS_DIR"
DAEMON_PIDS[dbus-a]=${DAEMON_PIDS[dbus]}
unset "DAEMON_PIDS[dbus]"
start_bus
B_BUS=$DBUS_SYSTEM_BUS_ADDRESS
DAEMON_PIDS[dbus-b]=${DAEMON_PIDS[dbus]}
unset "DAEMON_PIDS[dbus]"

# on_host A|B: the following commands talk to that host's fused.
on_host() {
  local h=$1
  if [[ $h == A ]]; then
    FUSED_STATE_DIR=$A_STATE FUSED_MOUNT_POINT=$A_MOUNT FUSED_DEV_DIR=$A_DEV
    export DBUS_SYSTEM_BUS_ADDRESS=$A_BUS
  else
    FUSED_STATE_DIR=$B_STATE FUSED_MOUNT_POINT=$B_MOUNT FUSED_DEV_DIR=$B_DEV
    export DBUS_SYSTEM_BUS_ADDRESS=$B_BUS
  fi
  HOST=$h
}

# start_host A|B: that host's fused (auto-attach on, as installed).
start_host() {
  on_host "$1"
  FUSED_AUTO_ATTACH=yes start_fused
  DAEMON_PIDS[fused-$1]=${DAEMON_PIDS[fused]}
  unset "DAEMON_PIDS[fused]"
}

# stop_host A|B: stops that host's fused (SIGTERM).
stop_host() {
  on_host "$1"
  DAEMON_PIDS[fused]=${DAEMON_PIDS[fused-$1]}
  unset "DAEMON_PIDS[fused-$1]"
  stop_daemon fused 30
}

# Whatever happens: each fused stopped on its own bus before lib.sh's
# teardown ends the rest.
teardown_hook() {
  local h
  for h in B A; do
    if [[ -n ${DAEMON_PIDS[fused-$h]:-} ]]; then
      on_host "$h"
      DAEMON_PIDS[fused]=${DAEMON_PIDS[fused-$h]}
      unset "DAEMON_PIDS[fused-$h]"
      _abort_unserved_fuse quiet
      for mnt in $(_mounts_under other); do umount -l "$mnt" 2>/dev/null || true; done
      stop_daemon fused 30
    fi
  done
}

# ---------------------------------------------------------------- host A
start_host A
vol=moving
create_replicated_volume "$vol" $((256 * MiB)) "$(replica_address r1)" \
  "$(replica_address r2)" >/dev/null
mount_volume "$vol"
dev_a=$dev
head -c $((16 * MiB)) /dev/urandom >"$mnt/data"
want_file=$(sha256sum <"$mnt/data" | cut -d' ' -f1)
umount "$mnt"
want_dev=$(sha256sum <"$dev_a" | cut -d' ' -f1)
log "host A wrote the volume on $dev_a (device sha256 ${want_dev:0:16}...)"
# The host dies with the volume attached.
kill -KILL "${DAEMON_PIDS[fused-A]}"
_wait_dead "${DAEMON_PIDS[fused-A]}" 10 || fail "fused A did not die"
unset "DAEMON_PIDS[fused-A]"

# ---------------------------------------------------------------- host B
start_host B
a1=$(replica_address r1)
a2=$(replica_address r2)
mp=$MANAGER_PATH
assert_error_name NotFound "import of a volume no replicad holds" "$mp" \
  org.shorthorn.Storage1.Manager.ImportVolume "'nosuch'" "@as ['$a1', '$a2']" "@a{sv} {}"
assert_error_name Unavailable "import naming a replicad that does not answer" "$mp" \
  org.shorthorn.Storage1.Manager.ImportVolume "'$vol'" "@as ['$a1', '127.0.0.1:$(free_port)']" \
  "@a{sv} {}"
assert_error_name InvalidArgument "import without a replicad" "$mp" \
  org.shorthorn.Storage1.Manager.ImportVolume "'$vol'" "@as []" "@a{sv} {}"
assert_error_name InvalidArgument "import naming a replicad twice" "$mp" \
  org.shorthorn.Storage1.Manager.ImportVolume "'$vol'" "@as ['$a1', '$a1']" "@a{sv} {}"
[[ -z $(list_volumes) ]] || fail "a failed import left a volume on host B: $(list_volumes)"

start=$(date +%s%N)
"$CTL_BIN" volume import "$vol" -r "$a1" -r "$a2" -r "$(replica_address r3)" ||
  fail "shorthornctl volume import failed"
import_ms=$((($(date +%s%N) - start) / 1000000))
log "ok: import of $vol onto host B took $import_ms ms"
assert_eq detached "$(volume_prop "$vol" State)" "State on host B after the import"
assert_error_name AlreadyExists "a second import" "$mp" \
  org.shorthorn.Storage1.Manager.ImportVolume "'$vol'" "@as ['$a1', '$a2']" "@a{sv} {}"

dev_b=$(attach_volume "$vol")
wait_until 60 "the volume on host B is healthy" prop_is "$vol" Robustness healthy >/dev/null
assert_eq "$want_dev" "$(sha256sum <"$dev_b" | cut -d' ' -f1)" "sha256 of the device on host B"
assert_fsck_clean "$dev_b" "on host B"
mount "$dev_b" "$mnt"
assert_eq "$want_file" "$(sha256sum <"$mnt/data" | cut -d' ' -f1)" "sha256 of the file on host B"
head -c $((4 * MiB)) /dev/urandom >"$mnt/from-b"
want_b=$(sha256sum <"$mnt/from-b" | cut -d' ' -f1)
sync -f "$mnt"
epoch_b=$(volume_epoch "$vol")
replica_epochs() {
  local r name
  for r in r1 r2; do
    for name in "$REPLICAS_DIR/$r"/"$vol"-*; do
      python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["epoch"])' "$name/replica.json"
    done
  done | sort -u | tr '\n' ' '
}
epochs_before=$(replica_epochs)
log "ok: host B attached $vol at epoch $epoch_b (replica epochs: $epochs_before) with host A's data"

# ---------------------------------------------------------------- host A again
start_host A
wait_until 60 "host A shows $vol as moved" prop_is "$vol" State moved >/dev/null
reason=$(volume_prop "$vol" StateReason)
[[ $reason == *"belongs to fused"* ]] || fail "host A's StateReason does not say why: $reason"
log "ok: host A: $vol is moved: $reason"
assert_error_name Moved "Attach on host A" "$(volume_path "$vol")" \
  org.shorthorn.Storage1.Volume.Attach "@a{sv} {}"
rc=0
"$CTL_BIN" volume attach "$vol" >/dev/null 2>&1 || rc=$?
assert_eq 14 "$rc" "shorthornctl volume attach exit status on host A (Moved)"
[[ ! -e $A_MOUNT/$vol ]] || fail "host A still has the file $A_MOUNT/$vol"
# (Its number may have gone to host B's device since.)
for f in /sys/block/loop*/loop/backing_file; do
  [[ ! -e $f || $(cat "$f") != "$A_MOUNT/$vol"* ]] ||
    fail "host A's loop device ${f#/sys/block/} is still attached to $(cat "$f")"
done
assert_eq "$epochs_before" "$(replica_epochs)" "the replicas' epochs after host A came back"

# Host A forgets it; the replicas stay, host B goes on.
manager_call DeleteVolume 'sa{sv}' "$vol" 0 >/dev/null || fail "DeleteVolume on host A failed"
[[ -z $(list_volumes) ]] || fail "host A still lists a volume: $(list_volumes)"
stop_host A

on_host B
assert_eq healthy "$(volume_prop "$vol" Robustness)" "Robustness on host B after host A came back"
head -c $((4 * MiB)) /dev/urandom >"$mnt/after-a"
want_after=$(sha256sum <"$mnt/after-a" | cut -d' ' -f1)
sync -f "$mnt"
umount "$mnt"
echo 3 >/proc/sys/vm/drop_caches
mount "$dev_b" "$mnt"
assert_eq "$want_file" "$(sha256sum <"$mnt/data" | cut -d' ' -f1)" "sha256 of host A's file at the end"
assert_eq "$want_b" "$(sha256sum <"$mnt/from-b" | cut -d' ' -f1)" "sha256 of host B's file at the end"
assert_eq "$want_after" "$(sha256sum <"$mnt/after-a" | cut -d' ' -f1)" \
  "sha256 of the file written after host A came back"
umount "$mnt"
detach_volume "$vol"
stop_host B
log "import time: $import_ms ms"
pass
