#!/usr/bin/env bash
# The README's first command, scripts/quickstart.sh, works and undoes itself.
#
# Runs it isolated: every directory under the temp dir (SHORTHORN_QS_ROOT), a
# free port, a private bus, and the binaries of this build (no apt, no
# rebuild: SHORTHORN_QS_NO_BUILD). Checks that the printed mount point is a
# mounted ext4 that takes a write read back by sha256; that `up` again says
# "already up"; that `down` keeps the data, so `up` after it brings the same
# file back (without a new mkfs); that after a kill -9 of fused `up` brings
# it back with the file system still mounted; that `down` twice is fine; and that
# `down --purge` leaves nothing: no mount, loop device, process or directory.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd fuser
qs=$REPO_DIR/scripts/quickstart.sh
export SHORTHORN_QS_ROOT=$TEST_DIR/qs
SHORTHORN_QS_PORT=$(free_port)
export SHORTHORN_QS_PORT SHORTHORN_QS_PRIVATE_BUS=1 SHORTHORN_QS_NO_BUILD=1
export SHORTHORN_BUILD_DIR=$BUILD_DIR
unset SHORTHORN_QS_MOUNT DBUS_SYSTEM_BUS_ADDRESS

# On failure: let the script undo what it started before the generic cleanup.
teardown_hook() {
  [[ -e $SHORTHORN_QS_ROOT ]] || return 0
  bash "$qs" down >>"$LOG_DIR/quickstart-hook.log" 2>&1
}

# quickstart NAME ARGS...: runs the script, output in logs/quickstart-NAME.log.
quickstart() {
  local name=$1
  shift
  log "quickstart.sh $*"
  bash "$qs" "$@" >"$LOG_DIR/quickstart-$name.log" 2>&1 ||
    fail "quickstart.sh $* exited with $?: $(cat "$LOG_DIR/quickstart-$name.log")"
  sed 's/^/    | /' "$LOG_DIR/quickstart-$name.log"
}

# check_up: the printed mount point is a mounted ext4; sets mnt.
check_up() {
  local out=$LOG_DIR/quickstart-$1.log address
  mnt=$(sed -n 's/^ *Mounted at: *//p' "$out")
  [[ -n $mnt ]] || fail "quickstart.sh printed no 'Mounted at:' line"
  [[ $mnt == "$SHORTHORN_QS_ROOT"/* ]] || fail "mount point $mnt is not under $SHORTHORN_QS_ROOT"
  assert_mounted_ext4 "$mnt"
  address=$(sed -n 's/^ *export DBUS_SYSTEM_BUS_ADDRESS=//p' "$out")
  [[ $address == "unix:path=$SHORTHORN_QS_ROOT/"* ]] ||
    fail "no export line for a private bus under $SHORTHORN_QS_ROOT (got '$address')"
  export DBUS_SYSTEM_BUS_ADDRESS=$address
  assert_eq attached "$(volume_prop demo State)" "State of demo"
  # Let the harness's leftover check follow this loop device too.
  echo "$(volume_prop demo LoopDevice) demo" >>"$TEST_DIR/attached-loops"
  assert_eq "$(findmnt -n -o SOURCE --mountpoint "$mnt")" "$(volume_prop demo LoopDevice)" \
    "device mounted at $mnt"
  grep -q "quickstart.sh down" "$out" || fail "quickstart.sh printed no teardown command"
  # Exactly one snapshot, "first", however often 'up' ran.
  local snaps
  snaps=$(busctl --system get-property "$BUS_NAME" "$(volume_path demo)" "$VOLUME_IFACE" Snapshots)
  [[ $snaps == 'a(sssbtb) 1 "first" '* ]] || fail "Snapshots of demo: want one, \"first\"; got $snaps"
  # Exactly one backup, of "first", in the quickstart's directory target,
  # and the URL printed is that backup's.
  local backups url
  backups=$(busctl --system call "$BUS_NAME" "$MANAGER_PATH" "$MANAGER_IFACE" ListBackups \
    'ssa{sv}' "file://$SHORTHORN_QS_ROOT/backups" demo 0)
  [[ $backups == 'a(ssssstt) 1 "file://'*'" "demo" "first" '* ]] ||
    fail "backups of demo: want one, of \"first\"; got $backups"
  url=$(sed -n 's/^ *Backup: *//p' "$out")
  [[ -n $url && $backups == *"\"$url\""* ]] || fail "printed backup URL '$url' is not in $backups"
}

quickstart up1 up
check_up up1
dd if=/dev/urandom of="$mnt/hello" bs=1M count=8 status=none
sum=$(sha256sum <"$mnt/hello")
sync -f "$mnt"
assert_eq "$sum" "$(sha256sum <"$mnt/hello")" "sha256 of a file read back"

quickstart up2 up
grep -q "already up" "$LOG_DIR/quickstart-up2.log" || fail "second 'up' did not say it was already up"
check_up up2

quickstart down1 down
[[ -z $(_mounts_under all) ]] || fail "mounts left after 'down': $(_mounts_under all)"
[[ -z $(_loops_under) ]] || fail "loop devices left after 'down': $(_loops_under)"
[[ -z $(_procs_under) ]] || fail "processes left after 'down': $(_procs_under)"
[[ -n $(find "$SHORTHORN_QS_ROOT/replicas" -name replica.json) ]] ||
  fail "'down' deleted the replica data"
quickstart down2 down

quickstart up3 up
check_up up3
grep -qF "already has a filesystem (ext4)" "$LOG_DIR/quickstart-up3.log" ||
  fail "'up' after 'down' did not find the existing filesystem"
assert_eq "$sum" "$(sha256sum <"$mnt/hello")" "sha256 of the file after down and up"
log "ok: the file written before 'down' reads back after 'up'"

# A crash of fused (kill -9) with the file system mounted: `up` brings it
# back, and the file system never noticed (same loop device, still mounted,
# the file reads back, a new write works).
fused_pid=$(sed -n 's/^FUSED_PID=//p' "$SHORTHORN_QS_ROOT/run/state")
[[ -n $fused_pid ]] || fail "no FUSED_PID in the quickstart's state file"
dev_before=$(findmnt -n -o SOURCE --mountpoint "$mnt")
kill -KILL "$fused_pid"
_wait_dead "$fused_pid" 20 || fail "fused (pid $fused_pid) survives SIGKILL"
quickstart up4 up
check_up up4
assert_eq "$dev_before" "$(findmnt -n -o SOURCE --mountpoint "$mnt")" "device of $mnt after the crash"
assert_eq "$sum" "$(sha256sum <"$mnt/hello")" "sha256 of the file after a crash of fused"
dd if=/dev/urandom of="$mnt/after-crash" bs=1M count=4 conv=fsync status=none
log "ok: after kill -9 of fused, 'up' takes the mount over with its data"

quickstart purge down --purge
unset DBUS_SYSTEM_BUS_ADDRESS
assert_nothing_left
[[ ! -e $SHORTHORN_QS_ROOT ]] ||
  fail "'down --purge' left files: $(find "$SHORTHORN_QS_ROOT" | head -20)"

pass
