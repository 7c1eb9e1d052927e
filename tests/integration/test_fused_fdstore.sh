#!/usr/bin/env bash
# Issue 17: the systemd path of "restart without an I/O error". There is no
# systemd as PID 1 here, so fake_service_manager.py plays its part: it gives
# fused a NOTIFY_SOCKET, keeps what fused stores (FDSTORE=1, FDNAME=fuse),
# hands it back in LISTEN_FDS on the next start, restarts fused when it is
# killed (Restart=on-failure), on SIGHUP (systemctl restart) and drops the
# store on SIGTERM (systemctl stop).
#
# ext4 on a mounted volume: after a kill -9 and after a planned restart the
# new fused took the connection from the store (no holder process is
# started), the file system is still mounted on the same loop device, a file
# written before reads back (sha256) and new writes with fsync succeed. At
# the end (unmounted, detached) a stop drops the descriptor and the FUSE
# mount is gone.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test python3
start_replicads r1
fused_command
python3 "$LIB_DIR/fake_service_manager.py" "$TEST_DIR/sm" -- "${FUSED_CMD[@]}" \
  >>"$LOG_DIR/fused.log" 2>&1 </dev/null &
DAEMON_PIDS[sm]=$!

main_pid() { cat "$TEST_DIR/sm/main.pid" 2>/dev/null; }
wait_until 30 "fused under the fake service manager answers" fused_answers >/dev/null

vol=sd
create_volume "$vol" $((256 * MiB)) "$(replica_address r1)" >/dev/null
mount_volume "$vol"
head -c $((8 * MiB)) /dev/urandom >"$mnt/before"
sync -f "$mnt"
want=$(sha256sum <"$mnt/before" | cut -d' ' -f1)
grep -q "fake-systemd: stored 1 descriptor(s) as fuse" "$LOG_DIR/fused.log" ||
  fail "fused did not store its FUSE descriptor (FDSTORE=1, FDNAME=fuse)"
# systemd watches what is stored; that watch must not wake it (PID 1) on
# every FUSE request, as a stored /dev/fuse descriptor would.
assert_not_woken_per_request "${DAEMON_PIDS[sm]}" "the service manager" "$vol" "$dev"

# check_back WHEN: the volume is attached again, the file system never
# noticed, no holder process was needed.
check_back() {
  wait_until 60 "$vol attached again $1" prop_is "$vol" State attached >/dev/null
  assert_eq "$dev" "$(volume_prop "$vol" LoopDevice)" "LoopDevice $1"
  assert_eq "$dev" "$(findmnt -n -o SOURCE "$mnt")" "the device of $mnt $1"
  [[ $(findmnt -n -o OPTIONS "$mnt") == rw,* ]] || fail "ext4 is read-only $1"
  assert_eq "$want" "$(sha256sum <"$mnt/before" | cut -d' ' -f1)" "sha256 of a file $1"
  dd if=/dev/urandom of="$mnt/after.$2" bs=1M count=4 conv=fsync status=none ||
    fail "a write with fsync failed $1"
  [[ -z $(pgrep -f -- "shorthorn-fuse-holder .*$TEST_DIR") ]] ||
    fail "a holder process runs although fused has a descriptor store"
  log "ok: $1 the mount works on $dev with its data"
}

old=$(main_pid)
kill -KILL "$old"
wait_until 30 "a new fused after kill -9" bash -c "[[ \$(cat '$TEST_DIR/sm/main.pid') != $old ]]" \
  >/dev/null
wait_until 30 "the new fused answers" fused_answers >/dev/null
check_back "after kill -9" 1

old=$(main_pid)
kill -HUP "${DAEMON_PIDS[sm]}"  # systemctl restart
wait_until 60 "a new fused after a restart" \
  bash -c "[[ \$(cat '$TEST_DIR/sm/main.pid') != $old ]]" >/dev/null
wait_until 30 "the new fused answers" fused_answers >/dev/null
grep -q "fake-systemd: pid $old exited with status 3" "$LOG_DIR/fused.log" ||
  fail "the old fused did not exit with status 3 (handed over) on the restart"
check_back "after a planned restart" 2
n=$(grep -c "took the FUSE connection from systemd's descriptor store" "$LOG_DIR/fused.log")
assert_eq 2 "$n" "takeovers from the descriptor store"

umount "$mnt"
assert_fsck_clean "$dev" "after two restarts"
detach_volume "$vol"

# The store does not notice a connection that ended (it keeps a socket, not
# the descriptor): the next fused must, drop it and mount again.
old=$(main_pid)
kill -STOP "$old"
_abort_fuse quiet
kill -KILL "$old"
kill -CONT "$old" 2>/dev/null || true
wait_until 30 "a new fused after the connection ended" \
  bash -c "[[ \$(cat '$TEST_DIR/sm/main.pid') != $old ]]" >/dev/null
wait_until 30 "the new fused answers" fused_answers >/dev/null
grep -q "the kept FUSE connection has ended" "$LOG_DIR/fused.log" ||
  fail "the new fused did not notice that the kept connection had ended"
dev=$(attach_volume "$vol")
mount "$dev" "$mnt"
assert_eq "$want" "$(sha256sum <"$mnt/before" | cut -d' ' -f1)" "sha256 of a file on a new mount"
umount "$mnt"
detach_volume "$vol"
stop_daemon sm 30
grep -q "fake-systemd: removed descriptor fuse from the store" "$LOG_DIR/fused.log" ||
  fail "fused did not drop its descriptor when it stopped with nothing attached"
[[ -z $(_mounts_under fuse) ]] || fail "the FUSE mount is left after a stop"
pass
