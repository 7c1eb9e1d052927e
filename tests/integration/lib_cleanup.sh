# shellcheck shell=bash
# Part of lib.sh (sourced by it, never on its own): the cleanup that leaves
# nothing behind (mounts, loop devices, daemons, the FUSE mount, the temp
# dir), the EXIT trap, and pass.

# ---------------------------------------------------------------- cleanup

# _mounts_under [fuse|other|all]: mount points under TEST_DIR, deepest first.
_mounts_under() {
  local want=${1:-all}
  [[ -n $TEST_DIR ]] || return 0
  awk -v pfx="$TEST_DIR/" -v want="$want" '
    index($5, pfx) == 1 {
      for (i = 7; i <= NF; i++) if ($i == "-") { fs = $(i + 1); break }
      isfuse = (fs ~ /^fuse/)
      if (want == "all" || (want == "fuse" && isfuse) || (want == "other" && !isfuse))
        print length($5), $5
    }' /proc/self/mountinfo | sort -rn | cut -d' ' -f2-
}

# _loops_under: loop devices whose backing file is under TEST_DIR, or is
# the file of a volume this test attached on a FUSE mount that is gone.
_loops_under() {
  local dev vol file
  [[ -n $TEST_DIR ]] || return 0
  {
    losetup -l -n --raw -O NAME,BACK-FILE 2>/dev/null |
      awk -v pfx="$TEST_DIR/" '{ n = $1; sub(/^[^ ]+ /, ""); if (index($0, pfx) == 1) print n }'
    if [[ -f $TEST_DIR/attached-loops ]]; then
      while read -r dev vol; do
        file=$(cat "/sys/block/${dev#/dev/}/loop/backing_file" 2>/dev/null) || continue
        [[ $file != "/$vol" ]] || echo "$dev"
      done <"$TEST_DIR/attached-loops"
    fi
  } | sort -u
}

# _kill_users DIR|DEVICE: kills the processes that use the filesystem mounted
# at DIR (a shell left in it, a writer still running) or hold DEVICE open, so
# it can be unmounted or detached.
_kill_users() {
  local pid args=(-M -m "$1")
  [[ -d $1 ]] || args=("$1")
  for pid in $(fuser "${args[@]}" 2>/dev/null); do
    pid=${pid//[^0-9]/}
    [[ -n $pid && $pid != "$$" && $pid != "$BASHPID" ]] || continue
    warn "killing pid $pid, which uses $1: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# _procs_under: pids of processes whose command line names TEST_DIR.
_procs_under() {
  [[ -n $TEST_DIR ]] || return 0
  pgrep -f -- "$TEST_DIR" | grep -vx -e "$$" -e "$BASHPID" || true
}

# _abort_fuse [warn|quiet] [unserved]: aborts the FUSE connections of the
# mounts under TEST_DIR, so that I/O stuck on a hung daemon fails at once;
# with "unserved", only those of mount points no running fused serves.
_abort_fuse() {
  local mnt dev mounted_ctl=0 say=${1:-warn} only_unserved=${2:-}
  if ! mountpoint -q /sys/fs/fuse/connections; then
    mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null && mounted_ctl=1
  fi
  for mnt in $(_mounts_under fuse); do
    [[ -n $only_unserved ]] && _fuse_served "$mnt" && continue
    dev=$(awk -v m="$mnt" '$5 == m { split($3, d, ":"); print d[2] }' /proc/self/mountinfo)
    if [[ -n $dev && -w /sys/fs/fuse/connections/$dev/abort ]]; then
      if [[ $say == quiet ]]; then log "ending FUSE connection $dev of $mnt"; else warn "aborting FUSE connection $dev of $mnt"; fi
      echo 1 >"/sys/fs/fuse/connections/$dev/abort" || true
    fi
  done
  ((mounted_ctl == 0)) || umount /sys/fs/fuse/connections || true
}

# _fuse_served MOUNT: true when a running fused of this test serves MOUNT
# (one started without --mount-point, e.g. from a config file, counts as
# serving every mount).
_fuse_served() {
  local pid cmd
  for pid in $(pgrep -f -- "^[^ ]*shorthorn-fused .*$TEST_DIR"); do
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
    [[ $cmd == *" --mount-point "* ]] || return 0
    [[ $cmd == *" --mount-point $1 "* ]] && return 0
  done
  return 1
}

# _abort_unserved_fuse: a FUSE mount under TEST_DIR that no fused serves
# (fused was killed; its connection is kept for a successor that the test
# will not start now) makes every stat of it wait: end its connection.
_abort_unserved_fuse() {
  [[ -n $(_mounts_under fuse) ]] || return 0
  _abort_fuse "${1:-warn}" unserved
}

# _umount_with_deadline DIR SECONDS: umount; if it hangs (a daemon stuck),
# abort the FUSE connections; at last, a lazy umount.
_umount_with_deadline() {
  local dir=$1 secs=$2 pid
  umount "$dir" 2>/dev/null &
  pid=$!
  if ! _wait_dead "$pid" "$secs"; then
    warn "umount $dir hangs after ${secs}s"
    _abort_fuse
    _wait_dead "$pid" 10 || warn "umount $dir still hangs after aborting FUSE"
  fi
  _pid_alive "$pid" || wait "$pid" 2>/dev/null || true
  if mountpoint -q "$dir"; then
    umount -l "$dir" || warn "umount -l $dir failed"
  fi
}

# teardown: stops everything the test started and undoes its mounts and loop
# devices; keeps TEST_DIR. Idempotent; safe at any point of a test.
teardown() {
  local - mnt dev name pid
  [[ -n $TEST_DIR ]] || return 0
  set +e  # undo as much as possible, whatever fails (restored on return)
  IN_TEARDOWN=1
  cd / || true
  # 0. A test's own undo (e.g. a script's "down"), when it defines one.
  if declare -F teardown_hook >/dev/null; then teardown_hook || warn "teardown_hook failed"; fi
  # 1. Filesystems on volumes (ext4 on /dev/loopN), deepest first (after
  # ending a FUSE connection no fused serves: their unmount would wait).
  _abort_unserved_fuse
  for mnt in $(_mounts_under other); do
    _kill_users "$mnt"
    _umount_with_deadline "$mnt" 30
  done
  # 2. fused, so that it releases its loop devices and FUSE mount itself
  # (volumes still attached are handed over to a successor that will not
  # come: end the connection it kept).
  stop_daemon fused 30
  _abort_unserved_fuse quiet
  # 3. Loop devices it left (killed, crashed): the backing file is on our
  # FUSE mount. A busy one is marked autoclear by the kernel.
  for dev in $(_loops_under); do
    warn "detaching leftover loop device $dev ($(losetup -n -O BACK-FILE "$dev" 2>/dev/null))"
    _kill_users "$dev"
    losetup -d "$dev" 2>/dev/null || [[ ! -e /sys/block/${dev#/dev/}/loop/backing_file ]] ||
      warn "losetup -d $dev failed"
  done
  # 4. The FUSE mount of a dead fused.
  for mnt in $(_mounts_under fuse); do
    warn "unmounting leftover FUSE mount $mnt"
    fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" || warn "cannot unmount $mnt"
  done
  # 5. The other daemons; the bus last.
  for name in "${!DAEMON_PIDS[@]}"; do
    [[ $name == dbus ]] || stop_daemon "$name" 20
  done
  stop_daemon dbus 10
  # 6. Anything else naming our temp dir (a script's daemons): report, kill.
  for pid in $(_procs_under); do
    warn "killing leftover process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    kill -KILL "$pid" 2>/dev/null || true
  done
  for dev in $(_loops_under); do
    losetup -d "$dev" 2>/dev/null || true
  done
  # shellcheck disable=SC2034  # read by _on_err in lib.sh
  IN_TEARDOWN=0
}

# leftovers: prints what the test left behind (mounts, loop devices,
# processes); nothing when clean.
leftovers() {
  local m d p
  for m in $(_mounts_under all); do echo "mount $m"; done
  for d in $(_loops_under); do echo "loop device $d"; done
  for p in "${DAEMON_PIDS[@]}" $(_procs_under); do
    _pid_alive "$p" && echo "process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
  done
  return 0
}

# assert_nothing_left: after teardown, no mount under the temp dir, no loop
# device backed by a file under it, no process the test started.
assert_nothing_left() {
  local left
  left=$(leftovers)
  [[ -z $left ]] || fail "left behind after cleanup: $left"
  log "ok: no mount, loop device or process left"
}

print_logs() {
  local f
  [[ -n $TEST_DIR && -d $TEST_DIR ]] || return 0
  _abort_unserved_fuse  # find would wait on it
  for f in $(find "$TEST_DIR" -xdev -name '*.log' -type f -size +0 | sort); do
    printf '\n----- %s (last 150 lines) -----\n' "${f#"$TEST_DIR"/}" >&2
    tail -n 150 "$f" >&2
  done
  printf '\n----- dmesg (last 30 lines) -----\n' >&2
  dmesg 2>/dev/null | tail -n 30 >&2 || true
  printf -- '-----\n' >&2
}

_on_exit() {
  local rc=$?
  set +e
  trap - ERR
  # 77 means skipped only when skip() said so; from anything else it is a failure.
  if ((rc == 77 && SKIPPING == 0)); then rc=1; fi
  ((CLEANUP_DONE == 0)) || exit "$rc"
  CLEANUP_DONE=1
  if ((rc != 0 && rc != 77)); then print_logs; fi
  teardown
  local left
  left=$(leftovers)
  if [[ -n $left ]]; then
    printf 'FAIL %s: cleanup left behind:\n%s\n' "$TEST_NAME" "$left" >&2
    ((rc != 0)) || rc=1
    echo "keeping $TEST_DIR" >&2
  elif [[ -n $TEST_DIR && -d $TEST_DIR ]]; then
    if [[ -n ${SHORTHORN_TEST_KEEP:-} && $rc != 0 ]]; then
      echo "keeping $TEST_DIR (SHORTHORN_TEST_KEEP)" >&2
    else
      rm -rf --one-file-system "$TEST_DIR"
    fi
  fi
  exit "$rc"
}

# pass: tears down, checks nothing is left, prints "PASS <test>".
pass() {
  teardown
  assert_nothing_left
  echo "PASS $TEST_NAME"
  exit 0
}
