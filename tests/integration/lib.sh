# shellcheck shell=bash
# Shared harness of the Shorthorn integration tests. A test sources it, calls
# init_test, starts what it needs (start_bus, start_replicad, start_fused),
# does its work through the D-Bus helpers, asserts on data and error names,
# and ends with `pass`.
#
# What it promises:
#  * exit 77 (CTest: skipped) with a "SKIP <test>: <reason>" line when the
#    test cannot run here (not root, no /dev/fuse, a missing tool);
#  * everything lives in one temp dir /tmp/shorthorn-it.<test>.XXXXXX (mode
#    0755, so user nobody reaches the bus socket): bus socket, replica data,
#    fused state, FUSE mount point, dev dir, ext4 mount points, logs;
#  * one cleanup (trap on EXIT, INT, TERM) that leaves nothing behind, even
#    after a failure or a kill -9 of a daemon: ext4 mounts under the temp dir,
#    then the daemons (SIGTERM, SIGKILL after a timeout), loop devices backed
#    by files under the temp dir, the FUSE mount, the dbus-daemon, the temp
#    dir. On failure it prints the daemon logs first.
#
# Nothing here touches /etc/shorthorn, /var/lib/shorthorn, /run/shorthorn or
# /dev/shorthorn: every daemon gets a temp --config and temp directories.
# Traffic goes to 127.0.0.1 only.
#
# A test may define teardown_hook (run first by teardown) to undo what it
# started outside the harness. `teardown` may also be called mid-test (after
# a kill -9, say) and followed by new start_* calls on the same directories.
#
# Environment: SHORTHORN_BUILD_DIR (where the daemons are built; CTest sets
# it), SHORTHORN_TEST_LOG_LEVEL (daemon log level, default info),
# SHORTHORN_TEST_KEEP=1 (keep the temp dir of a failed test).

set -euo pipefail
set -E  # the ERR trap also fires inside functions

TEST_NAME=$(basename "$0" .sh)
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LIB_DIR/../.." && pwd)
BUILD_DIR=${SHORTHORN_BUILD_DIR:-$REPO_DIR/build}
LOG_LEVEL=${SHORTHORN_TEST_LOG_LEVEL:-info}

readonly BUS_NAME=org.shorthorn.Storage1
readonly ROOT_PATH=/org/shorthorn/Storage1
readonly MANAGER_PATH=/org/shorthorn/Storage1/Manager
readonly MANAGER_IFACE=org.shorthorn.Storage1.Manager
readonly VOLUME_IFACE=org.shorthorn.Storage1.Volume
readonly ERROR_PREFIX=org.shorthorn.Storage1.Error.
# shellcheck disable=SC2034  # used by the tests
readonly GiB=1073741824 MiB=1048576

TEST_DIR=""                   # set by init_test
declare -A DAEMON_PIDS=()     # daemon name -> pid (children of this shell)
declare -A REPLICAD_PORTS=()  # replicad name -> port
# replicad name -> host id (default test-host-NAME: each test replicad acts
# as a host of its own). A test sets REPLICAD_HOST_IDS[r2]=same-as-r1 to
# put two replicads on one "host".
declare -A REPLICAD_HOST_IDS=()
REPLICAD_EXTRA_ARGS=()        # more options for every start_replicad
DAEMON_STATUS=""              # exit status of the last daemon stopped
CLEANUP_DONE=0

# ---------------------------------------------------------------- messages

log() { printf '[%s %s] %s\n' "$TEST_NAME" "$(date +%T)" "$*"; }
warn() { printf '[%s %s] WARNING: %s\n' "$TEST_NAME" "$(date +%T)" "$*" >&2; }

# fail MESSAGE...: the test failed; the EXIT trap prints logs and cleans up.
fail() {
  printf 'FAIL %s: %s\n' "$TEST_NAME" "$*" >&2
  exit 1
}

SKIPPING=0
skip() {
  printf 'SKIP %s: %s\n' "$TEST_NAME" "$*"
  SKIPPING=1
  exit 77
}

# ---------------------------------------------------------------- preconditions

requires_root() {
  ((EUID == 0)) || skip "needs root (FUSE mount, loop devices, mkfs, mount); run as root"
}

requires_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || skip "needs '$c' (scripts/install-deps.sh installs it)"
  done
}

requires_dev() {
  local d
  for d in "$@"; do
    [[ -e $d ]] || skip "needs $d, which this machine does not have"
  done
}

# find_binary NAME: prints the path of the built daemon NAME under BUILD_DIR.
find_binary() {
  local name=$1 path
  for path in "$BUILD_DIR/replicad/$name" "$BUILD_DIR/fused/$name"; do
    [[ -x $path ]] && { echo "$path"; return 0; }
  done
  path=$(find "$BUILD_DIR" -name "$name" -type f -executable -print -quit 2>/dev/null || true)
  [[ -n $path ]] || fail "$name not found under $BUILD_DIR (build first, or set SHORTHORN_BUILD_DIR)"
  echo "$path"
}

# init_test: the preamble of every test. Skips when the test cannot run,
# set_test_dirs: the directories under TEST_DIR that the daemons use, made
# (shared by init_test and bench/run.sh).
set_test_dirs() {
  chmod 0755 "$TEST_DIR"
  LOG_DIR=$TEST_DIR/logs
  CONF_DIR=$TEST_DIR/conf
  BUS_DIR=$TEST_DIR/bus
  REPLICAS_DIR=$TEST_DIR/replicas
  FUSED_STATE_DIR=$TEST_DIR/fused/state
  FUSED_MOUNT_POINT=$TEST_DIR/fused/volumes
  FUSED_DEV_DIR=$TEST_DIR/dev
  FS_DIR=$TEST_DIR/fs
  SOCK_DIR=$TEST_DIR/sock # replicads' Unix sockets (<port>.sock), made by them
  METRICS_DIR=$TEST_DIR/metrics # fused's metrics-file
  mkdir -p "$LOG_DIR" "$CONF_DIR" "$REPLICAS_DIR" "$FUSED_STATE_DIR" \
    "$FUSED_MOUNT_POINT" "$FUSED_DEV_DIR" "$FS_DIR" "$METRICS_DIR"
  mkdir -m 0755 "$BUS_DIR"
  # The test cluster's key (doc/protocol.md, "Authentication"); replica_tool
  # and the test clients read it from SHORTHORN_CLUSTER_KEY.
  CLUSTER_KEY=$CONF_DIR/cluster.key
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$CLUSTER_KEY")
  export SHORTHORN_CLUSTER_KEY=$CLUSTER_KEY
}

# creates the temp dir and installs the cleanup trap.
init_test() {
  requires_root
  requires_dev /dev/fuse /dev/loop-control
  requires_cmd dbus-daemon busctl gdbus setpriv losetup mkfs.ext4 e2fsck blkid \
    blockdev mount umount mountpoint fusermount3 fuser sha256sum ss findmnt
  REPLICAD_BIN=$(find_binary shorthorn-replicad)
  FUSED_BIN=$(find_binary shorthorn-fused)

  TEST_DIR=$(mktemp -d "/tmp/shorthorn-it.$TEST_NAME.XXXXXX")
  set_test_dirs

  trap _on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap '_on_err "$?" "$LINENO" "$BASH_COMMAND"' ERR
  log "temp dir $TEST_DIR, binaries from $BUILD_DIR"
}

IN_TEARDOWN=0
_on_err() {
  # Command substitutions inherit the trap too; report from the top shell
  # only, and not from teardown, which tolerates failures.
  [[ $BASHPID == "$$" && $IN_TEARDOWN == 0 ]] || return 0
  printf 'FAIL %s: command failed (exit %s) at line %s: %s\n' "$TEST_NAME" "$1" "$2" "$3" >&2
}

# ---------------------------------------------------------------- processes

# _pid_alive PID: true while PID runs (a zombie counts as dead).
_pid_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# _wait_dead PID SECONDS: waits until PID is dead; false on timeout.
_wait_dead() {
  local pid=$1 i
  for ((i = 0; i < $2 * 10; i++)); do
    _pid_alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

# _reap PID: collects the exit status of a child into DAEMON_STATUS.
_reap() {
  DAEMON_STATUS=0
  wait "$1" 2>/dev/null || DAEMON_STATUS=$?
}

# stop_daemon NAME [TIMEOUT]: SIGTERM, then SIGKILL after TIMEOUT seconds
# (default 20). Sets DAEMON_STATUS to its exit status (137 when killed).
stop_daemon() {
  local name=$1 timeout=${2:-20} pid
  pid=${DAEMON_PIDS[$name]:-}
  [[ -n $pid ]] || { DAEMON_STATUS=""; return 0; }
  if _pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! _wait_dead "$pid" "$timeout"; then
      warn "$name (pid $pid) still running ${timeout}s after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      _wait_dead "$pid" 10 || warn "$name (pid $pid) survives SIGKILL"
    fi
  fi
  _reap "$pid"
  unset "DAEMON_PIDS[$name]"
  log "stopped $name (pid $pid, exit status $DAEMON_STATUS)"
}

# kill_daemon NAME [SIGNAL]: sends SIGNAL (default KILL) and reaps it.
kill_daemon() {
  local name=$1 sig=${2:-KILL} pid
  pid=${DAEMON_PIDS[$name]:-}
  [[ -n $pid ]] || fail "kill_daemon: no daemon named $name"
  kill "-$sig" "$pid"
  _wait_dead "$pid" 20 || fail "$name (pid $pid) still alive 20s after SIG$sig"
  _reap "$pid"
  unset "DAEMON_PIDS[$name]"
  log "killed $name (pid $pid) with SIG$sig"
}

# _check_alive NAME: fails with the daemon's log when it has exited.
_check_alive() {
  local name=$1 pid=${DAEMON_PIDS[$1]}
  if ! _pid_alive "$pid"; then
    _reap "$pid"
    unset "DAEMON_PIDS[$name]"
    fail "$name (pid $pid) exited with status $DAEMON_STATUS; see $LOG_DIR/$name.log"
  fi
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  local port i
  for ((i = 0; i < 100; i++)); do
    port=$((20000 + RANDOM % 12000))
    if [[ -z $(ss -Hltn "sport = :$port") ]]; then
      echo "$port"
      return 0
    fi
  done
  fail "no free TCP port found"
}

# ---------------------------------------------------------------- daemons

# start_bus [CONFIG]: a private dbus-daemon (default configuration
# tests/integration/dbus-test.conf) on a socket in the temp dir; exports
# DBUS_SYSTEM_BUS_ADDRESS.
start_bus() {
  local socket=$BUS_DIR/system_bus_socket i config=${1:-$LIB_DIR/dbus-test.conf}
  rm -f "$socket"
  dbus-daemon --config-file="$config" --address="unix:path=$socket" \
    --nofork --nopidfile >>"$LOG_DIR/dbus.log" 2>&1 </dev/null &
  DAEMON_PIDS[dbus]=$!
  export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$socket"
  for ((i = 0; i < 100; i++)); do
    _check_alive dbus
    busctl --system status org.freedesktop.DBus >/dev/null 2>&1 && break
    sleep 0.1
  done
  ((i < 100)) || fail "private dbus-daemon did not answer within 10s"
  # The daemon checks who may change volumes; the bus must let anyone in.
  # (start_bus CONFIG: another bus configuration, e.g. a system-like one.)
  as_nobody busctl --system call org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus GetId >/dev/null ||
    fail "user nobody cannot use the private bus at $socket"
  log "dbus-daemon pid ${DAEMON_PIDS[dbus]} at $DBUS_SYSTEM_BUS_ADDRESS"
}

# start_replicad NAME [PORT]: a replicad with data dir $REPLICAS_DIR/NAME on
# 127.0.0.1:PORT; waits until the port accepts connections. Restarting NAME
# reuses its port and data dir. Its host id is REPLICAD_HOST_IDS[NAME],
# default test-host-NAME (set it there: replicad refuses an option given
# twice, so REPLICAD_EXTRA_ARGS must not hold --host-id). Extra
# command-line options: the array REPLICAD_EXTRA_ARGS.
start_replicad() {
  local name=$1 port=${2:-${REPLICAD_PORTS[$1]:-}} daemon="replicad-$1" i
  [[ -n $port ]] || port=$(free_port)
  [[ -z ${DAEMON_PIDS[$daemon]:-} ]] || fail "$daemon already running"
  REPLICAD_PORTS[$name]=$port
  mkdir -p "$REPLICAS_DIR/$name"
  : >"$CONF_DIR/$daemon.conf"
  "$REPLICAD_BIN" --config "$CONF_DIR/$daemon.conf" --listen 127.0.0.1 --port "$port" \
    --data-dir "$REPLICAS_DIR/$name" --socket-dir "$SOCK_DIR" --cluster-key "$CLUSTER_KEY" \
    --metrics-file "$METRICS_DIR/replicad-$name.prom" \
    --host-id "${REPLICAD_HOST_IDS[$name]:-test-host-$name}" \
    --log-level "$LOG_LEVEL" "${REPLICAD_EXTRA_ARGS[@]}" >>"$LOG_DIR/$daemon.log" 2>&1 </dev/null &
  DAEMON_PIDS[$daemon]=$!
  for ((i = 0; i < 300; i++)); do
    _check_alive "$daemon"
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  ((i < 300)) || fail "$daemon does not accept connections on 127.0.0.1:$port after 30s"
  log "$daemon pid ${DAEMON_PIDS[$daemon]} on 127.0.0.1:$port, data $REPLICAS_DIR/$name"
}

# replica_address NAME: "127.0.0.1:PORT" of replicad NAME.
replica_address() { echo "127.0.0.1:${REPLICAD_PORTS[$1]}"; }

# assert_fsck_clean DEV WHAT: e2fsck -fn of DEV finds nothing (its output
# in the failure), WHAT says when.
assert_fsck_clean() {
  e2fsck -fn "$1" >"$TEST_DIR/fsck.log" 2>&1 ||
    fail "e2fsck -fn $1 ($2) is not clean: $(cat "$TEST_DIR/fsck.log")"
  log "ok: e2fsck -fn $1 clean ($2)"
}

# start_cluster NAME...: the private bus, one replicad per NAME (r1, r2, ...)
# and fused with them as its replicads: the start of most tests.
start_cluster() {
  local name
  start_bus
  for name in "$@"; do start_replicad "$name"; done
  start_fused
}

# start_fused: fused on the test's state dir, mount point and dev dir, with
# every replicad started so far as its default replica set; waits until it
# answers ListVolumes on the bus. Volumes start detached (auto-attach no)
# unless the test sets FUSED_AUTO_ATTACH=yes.
# shellcheck disable=SC2119  # no options: that is the point
start_fused() { start_fused_opts; }

# ---------------------------------------------------------------- D-Bus helpers

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }

# volume_path NAME: the object path of volume NAME (systemd's escaping:
# every byte but [A-Za-z0-9], and a leading digit, becomes _xx).
volume_path() {
  local name=$1 out="" c i
  [[ -n $name ]] || { echo "$ROOT_PATH/volumes/_"; return; }
  for ((i = 0; i < ${#name}; i++)); do
    c=${name:i:1}
    if [[ $c == [A-Za-z] || ($i -gt 0 && $c == [0-9]) ]]; then
      out+=$c
    else
      out+=$(printf '_%02x' "'$c")
    fi
  done
  echo "$ROOT_PATH/volumes/$out"
}

# _unquote: busctl's "t 42" / 's "x"' / 'o "/a"' -> the bare value.
_unquote() { sed -E 's/^[a-z]+ //; s/^"(.*)"$/\1/'; }

# manager_call METHOD SIGNATURE ARGS...: busctl call on the Manager.
manager_call() {
  busctl --system call "$BUS_NAME" "$MANAGER_PATH" "$MANAGER_IFACE" "$@"
}

# volume_call NAME METHOD SIGNATURE ARGS...: busctl call on a Volume.
volume_call() {
  local name=$1
  shift
  busctl --system call "$BUS_NAME" "$(volume_path "$name")" "$VOLUME_IFACE" "$@"
}

# create_volume NAME SIZE ADDRESS...: prints the new object path.
create_volume() {
  local name=$1 size=$2
  shift 2
  manager_call CreateVolume 'stasa{sv}' "$name" "$size" "$#" "$@" 0 | _unquote
}

delete_volume() { manager_call DeleteVolume 'sa{sv}' "$1" 0 >/dev/null; }

# attach_volume NAME [FRONTEND]: prints the device (or file) path.
attach_volume() {
  local out
  if [[ -n ${2:-} ]]; then
    out=$(volume_call "$1" Attach 'a{sv}' 1 frontend s "$2" | _unquote)
  else
    out=$(volume_call "$1" Attach 'a{sv}' 0 | _unquote)
  fi
  # Remembered for cleanup: once the FUSE mount is gone the loop device's
  # backing file reads "/<volume>", no longer a path under TEST_DIR.
  [[ $out != /dev/loop* ]] || echo "$out $1" >>"$TEST_DIR/attached-loops"
  echo "$out"
}

detach_volume() { volume_call "$1" Detach 'a{sv}' 0 >/dev/null; }

# list_volumes: the volume object paths, one a line, sorted.
list_volumes() {
  local out
  out=$(manager_call ListVolumes) || fail "ListVolumes failed"
  grep -o '"[^"]*"' <<<"$out" | tr -d '"' | sort || true
}

# volume_prop NAME PROPERTY: the property's value (strings unquoted).
volume_prop() {
  busctl --system get-property "$BUS_NAME" "$(volume_path "$1")" "$VOLUME_IFACE" "$2" | _unquote
}

# gv_str TEXT: TEXT as a GVariant string literal, for gdbus.
gv_str() {
  local s=${1//\\/\\\\}
  printf "'%s'" "${s//\'/\\\'}"
}

# dbus_try [--as-nobody] OBJECT IFACE.METHOD GVARIANT-ARGS...: calls the
# method with gdbus (busctl prints the error message but not its name) and
# sets DBUS_ERROR to the D-Bus error name, or "OK" when the call succeeded,
# and DBUS_ERROR_MESSAGE to the message (or the reply). Never fails itself.
# Arguments are GVariant text: "'name'" (or gv_str), "uint64 4096",
# "@as ['127.0.0.1:9500']", "@a{sv} {}".
DBUS_ERROR=""
DBUS_ERROR_MESSAGE=""
dbus_try() {
  local runner=() out rc=0
  if [[ $1 == --as-nobody ]]; then
    runner=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
    shift
  fi
  local object=$1 method=$2
  shift 2
  out=$("${runner[@]}" gdbus call --system --dest "$BUS_NAME" --object-path "$object" \
    --method "$method" "$@" 2>&1) || rc=$?
  DBUS_ERROR_MESSAGE=$out
  if ((rc == 0)); then
    DBUS_ERROR=OK
  elif [[ $out =~ GDBus\.Error:([A-Za-z0-9_.]+):\ ?(.*) ]]; then
    DBUS_ERROR=${BASH_REMATCH[1]}
    DBUS_ERROR_MESSAGE=${BASH_REMATCH[2]}
  else
    DBUS_ERROR="UNPARSED"
  fi
}

# assert_error_name [--as-nobody] EXPECTED WHAT OBJECT IFACE.METHOD ARGS...:
# the call must fail with the D-Bus error EXPECTED (a bare kind such as
# "AlreadyExists" means org.shorthorn.Storage1.Error.AlreadyExists).
assert_error_name() {
  local nobody=()
  if [[ $1 == --as-nobody ]]; then nobody=(--as-nobody); shift; fi
  local expected=$1 what=$2
  shift 2
  [[ $expected == *.* ]] || expected=$ERROR_PREFIX$expected
  dbus_try "${nobody[@]}" "$@"
  [[ $DBUS_ERROR == "$expected" ]] ||
    fail "$what: expected D-Bus error $expected, got $DBUS_ERROR: $DBUS_ERROR_MESSAGE"
  log "ok: $what -> ${DBUS_ERROR#"$ERROR_PREFIX"}: $DBUS_ERROR_MESSAGE"
}

# ---------------------------------------------------------------- assertions

assert_eq() {
  local expected=$1 actual=$2 what=${3:-value}
  [[ $expected == "$actual" ]] || fail "$what: expected '$expected', got '$actual'"
}

# assert_ge MIN ACTUAL [WHAT]: ACTUAL >= MIN.
assert_ge() {
  local min=$1 actual=$2 what=${3:-value}
  ((actual >= min)) || fail "$what: expected at least $min, got $actual"
}

# assert_mounted_ext4 DIR
assert_mounted_ext4() {
  local fstype
  fstype=$(findmnt -n -o FSTYPE --mountpoint "$1" || true)
  assert_eq ext4 "$fstype" "filesystem type mounted at $1"
}

# ---------------------------------------------------------------- files

# write_random_files DIR COUNT SIZE_MIB: COUNT files of SIZE_MIB random MiB.
write_random_files() {
  local dir=$1 count=$2 size=$3 i
  mkdir -p "$dir"
  for ((i = 0; i < count; i++)); do
    dd if=/dev/urandom of="$dir/big-$i" bs=1M count="$size" status=none
  done
}

# write_small_files DIR COUNT: COUNT files of 1..64 KiB in a few subdirs.
write_small_files() {
  local dir=$1 count=$2 i
  for ((i = 0; i < count; i++)); do
    mkdir -p "$dir/small/d$((i % 5))"
    head -c $((1 + RANDOM % 65536)) /dev/urandom >"$dir/small/d$((i % 5))/f$i"
  done
}

# record_checksums DIR SUMFILE / verify_checksums DIR SUMFILE
record_checksums() {
  (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$2"
}

verify_checksums() {
  (cd "$1" && sha256sum -c --quiet "$2") || fail "checksums under $1 differ from $2"
  log "ok: $(wc -l <"$2") files under $1 read back with the recorded sha256"
}

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

# ---------------------------------------------------------------- replication (issue 4)
# Helpers of the test_replication_*.sh tests. Appended; nothing above uses them.

# quick_mode: true when the tests should be short (CI=true or SHORTHORN_QUICK=1).
quick_mode() { [[ ${CI:-} == true || ${SHORTHORN_QUICK:-0} == 1 ]]; }

# start_fused_opts [--replicads "A B"] OPTION...: start_fused with extra
# command-line options (--replica-timeout 2, ...). Without --replicads, every
# replicad started so far is a candidate, as with start_fused.
# shellcheck disable=SC2120  # tests pass options; start_fused passes none
start_fused_opts() {
  local i
  [[ -z ${DAEMON_PIDS[fused]:-} ]] || fail "fused already running"
  fused_command "$@"
  "${FUSED_CMD[@]}" >>"$LOG_DIR/fused.log" 2>&1 </dev/null &
  DAEMON_PIDS[fused]=$!
  for ((i = 0; i < 300; i++)); do
    _check_alive fused
    busctl --system call "$BUS_NAME" "$MANAGER_PATH" "$MANAGER_IFACE" ListVolumes \
      >/dev/null 2>&1 && break
    sleep 0.1
  done
  ((i < 300)) || fail "fused does not answer ListVolumes on the bus after 30s"
  log "fused pid ${DAEMON_PIDS[fused]} ($*), replicads: $FUSED_REPLICADS"
}

# fused_answers: true when a fused answers ListVolumes on the test bus.
fused_answers() {
  busctl --system call "$BUS_NAME" "$MANAGER_PATH" "$MANAGER_IFACE" ListVolumes >/dev/null 2>&1
}

# takeover_fused OPTION...: a planned restart: a new fused started with
# --takeover and OPTION... replaces the running one, which must hand over
# (exit status 3) within 60 s; returns once the new one answers.
takeover_fused() {
  local old=${DAEMON_PIDS[fused]}
  unset "DAEMON_PIDS[fused]"
  start_fused_opts "$@" --takeover
  _wait_dead "$old" 60 || fail "the old fused (pid $old) did not hand over within 60 s"
  _reap "$old"
  # 3: handed over (the unit restarts fused on it even unasked).
  [[ $DAEMON_STATUS == 3 ]] || fail "the old fused exited with status $DAEMON_STATUS, not 3"
  wait_until 60 "the new fused answers" fused_answers >/dev/null
}

# fused_command [--replicads "A B"] OPTION...: sets FUSED_CMD to the command
# line start_fused_opts runs (for a test that runs fused its own way).
fused_command() {
  local rlist="" name
  if [[ ${1:-} == --replicads ]]; then
    rlist=$2
    shift 2
  else
    for name in "${!REPLICAD_PORTS[@]}"; do rlist+="${rlist:+ }$(replica_address "$name")"; done
  fi
  local args=()
  [[ -z $rlist ]] || args=(--replicads "$rlist")
  # Tests replace a failed replica at once unless they test the wait
  # (a --replica-replenishment-wait option wins over the file).
  echo "replica-replenishment-wait = ${FUSED_REPLENISHMENT_WAIT:-0}" >"$CONF_DIR/fused.conf"
  FUSED_REPLICADS=$rlist
  FUSED_CMD=("$FUSED_BIN" --config "$CONF_DIR/fused.conf" --state-dir "$FUSED_STATE_DIR"
    --mount-point "$FUSED_MOUNT_POINT" --dev-dir "$FUSED_DEV_DIR" --replicad-socket-dir "$SOCK_DIR"
    --cluster-key "$CLUSTER_KEY" --auto-attach "${FUSED_AUTO_ATTACH:-no}" "${args[@]}"
    --metrics-file "$METRICS_DIR/shorthorn.prom"
    --log-level "$LOG_LEVEL" "$@")
}

# start_s3rver: an S3 server (the s3rver npm package, installed by
# scripts/install-deps.sh) on 127.0.0.1, data in $TEST_DIR/s3, bucket
# $S3_BUCKET made at start; exports SHORTHORN_S3_* (endpoint, http, path
# style, its one account S3RVER/S3RVER) so that a fused started afterwards
# uses it. Restarting reuses the port and the data. Skips the test when
# s3rver is not installed. --allow-mismatched-signatures: s3rver 3.7.1 signs
# bucket-level requests as "/<bucket>" where libs3 2.0 signs "/<bucket>/",
# so every LIST would fail; unknown access keys are still refused.
S3RVER_BIN=${S3RVER_BIN:-/opt/shorthorn-test/s3rver/node_modules/.bin/s3rver}
S3_BUCKET=shorthorn-test
S3RVER_PORT=""
start_s3rver() {
  local i status_line
  [[ -x $S3RVER_BIN ]] && command -v node >/dev/null || skip "s3rver is not installed ($S3RVER_BIN)"
  [[ -z ${DAEMON_PIDS[s3rver]:-} ]] || fail "s3rver already running"
  [[ -n $S3RVER_PORT ]] || S3RVER_PORT=$(free_port)
  mkdir -p "$TEST_DIR/s3"
  "$S3RVER_BIN" --directory "$TEST_DIR/s3" --address 127.0.0.1 --port "$S3RVER_PORT" --silent \
    --allow-mismatched-signatures --configure-bucket "$S3_BUCKET" \
    >>"$LOG_DIR/s3rver.log" 2>&1 </dev/null &
  DAEMON_PIDS[s3rver]=$!
  for ((i = 0; i < 300; i++)); do
    _check_alive s3rver
    if { exec 7<>"/dev/tcp/127.0.0.1/$S3RVER_PORT"; } 2>/dev/null; then
      printf 'GET /%s?max-keys=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' \
        "$S3_BUCKET" >&7
      status_line=$(timeout 5 head -n 1 <&7 || true)
      exec 7<&- 7>&-
      [[ $status_line != "HTTP/1.1 200"* ]] || break
    fi
    sleep 0.1
  done
  ((i < 300)) || fail "s3rver on port $S3RVER_PORT does not answer for bucket $S3_BUCKET"
  export SHORTHORN_S3_ENDPOINT=127.0.0.1:$S3RVER_PORT SHORTHORN_S3_PROTOCOL=http \
    SHORTHORN_S3_URI_STYLE=path SHORTHORN_S3_ACCESS_KEY=S3RVER SHORTHORN_S3_SECRET_KEY=S3RVER
  log "s3rver pid ${DAEMON_PIDS[s3rver]} at http://127.0.0.1:$S3RVER_PORT, bucket $S3_BUCKET"
}

# wait_job PATH [SECONDS]: waits for a job to end (default 180 s); prints its
# final State. job_prop PATH PROPERTY: a property of a job.
wait_job() {
  local path=$1 limit=$((${2:-180} * 10)) state i
  for ((i = 0; i < limit; i++)); do
    state=$(busctl --system get-property "$BUS_NAME" "$path" org.shorthorn.Storage1.Job State |
      _unquote)
    [[ $state == running ]] || { echo "$state"; return; }
    sleep 0.1
  done
  fail "job $path still running after $((limit / 10)) s"
}
job_prop() { busctl --system get-property "$BUS_NAME" "$1" org.shorthorn.Storage1.Job "$2" | _unquote; }

# run_job WHAT CALL...: starts a job with CALL, waits; fails unless it
# completed; prints its Message. failed_job WHAT CALL...: the job must fail;
# prints its Message.
run_job() {
  local what=$1 path state
  shift
  path=$("$@" | _unquote)
  state=$(wait_job "$path")
  [[ $state == completed ]] || fail "$what: job $path $state: $(job_prop "$path" Message)"
  job_prop "$path" Message
}
failed_job() {
  local what=$1 path state
  shift
  path=$("$@" | _unquote)
  state=$(wait_job "$path")
  [[ $state == failed ]] || fail "$what: expected the job to fail, it is $state"
  job_prop "$path" Message
}

# inspect_replica ADDRESS NAME: replica_tool inspect of replica NAME of the
# replicad at ADDRESS (one this test started; it must be stopped): "<snapshot>
# <hash>" lines, "(live) <hash>", "layer-files <n> layers <m>".
inspect_replica() {
  local addr=$1 name=$2 r
  for r in "${!REPLICAD_PORTS[@]}"; do
    if [[ $(replica_address "$r") == "$addr" ]]; then
      "$(find_binary replica_tool)" inspect "$REPLICAS_DIR/$r/$name"
      return
    fi
  done
  fail "inspect_replica: no replicad of this test at $addr"
}

# create_replicated_volume NAME SIZE ADDRESS...: one replica per address,
# replica-count = the number of addresses; prints the object path.
create_replicated_volume() {
  local name=$1 size=$2
  shift 2
  manager_call CreateVolume 'stasa{sv}' "$name" "$size" "$#" "$@" 1 replica-count u "$#" | _unquote
}

# replica_modes NAME: the Replicas property, one "address name mode" a line.
replica_modes() {
  busctl --system --json=short get-property "$BUS_NAME" "$(volume_path "$1")" "$VOLUME_IFACE" \
    Replicas | python3 -c 'import json,sys
for a, n, m in json.load(sys.stdin)["data"]: print(a, n, m or "-")'
}

# replica_mode NAME ADDRESS: the mode of the volume's replica at ADDRESS
# ("none" when the volume has no replica there).
replica_mode() {
  local m
  m=$(replica_modes "$1" | awk -v a="$2" '$1 == a { print $3; exit }')
  echo "${m:-none}"
}

# replica_name_at NAME ADDRESS: the name of the volume's replica at ADDRESS.
replica_name_at() {
  replica_modes "$1" | awk -v a="$2" '$1 == a { print $2; exit }'
}

# wait_until SECONDS WHAT COMMAND...: runs COMMAND every 0.2 s until it
# succeeds; fails naming WHAT after SECONDS. Prints the seconds it took.
wait_until() {
  local secs=$1 what=$2 start=$SECONDS i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then
      echo $((SECONDS - start))
      return 0
    fi
    sleep 0.2
  done
  fail "$what: not reached within ${secs}s"
}

# prop_is NAME PROPERTY VALUE: true when the volume's PROPERTY is VALUE.
prop_is() { [[ $(volume_prop "$1" "$2" 2>/dev/null) == "$3" ]]; }

# wait_robustness NAME VALUE SECONDS: waits until Robustness is VALUE; fails
# (with the replica modes) after SECONDS.
wait_robustness() {
  local name=$1 want=$2 secs=$3 i start=$SECONDS
  for ((i = 0; i < secs * 5; i++)); do
    if prop_is "$name" Robustness "$want"; then
      log "Robustness of $name is $want after $((SECONDS - start))s"
      return 0
    fi
    sleep 0.2
  done
  fail "Robustness of $name is '$(volume_prop "$name" Robustness)', not '$want', after ${secs}s; replicas: $(replica_modes "$name" | tr '\n' ';')"
}

# wait_replica_mode NAME ADDRESS MODE SECONDS: waits until the replica at
# ADDRESS has MODE ("none": no replica there any more).
wait_replica_mode() {
  local name=$1 addr=$2 want=$3 secs=$4 i start=$SECONDS
  for ((i = 0; i < secs * 5; i++)); do
    if [[ $(replica_mode "$name" "$addr" 2>/dev/null) == "$want" ]]; then
      log "replica of $name at $addr is $want after $((SECONDS - start))s"
      return 0
    fi
    sleep 0.2
  done
  fail "replica of $name at $addr is '$(replica_mode "$name" "$addr")', not '$want', after ${secs}s; replicas: $(replica_modes "$name" | tr '\n' ';')"
}

# jobs_of NAME OPERATION: the volume's jobs of OPERATION, running or ended
# (an ended job stays listed for about a minute), one
# "path state bytes total_bytes message" a line, oldest first.
jobs_of() {
  busctl --system --json=short call "$BUS_NAME" "$ROOT_PATH" org.freedesktop.DBus.ObjectManager \
    GetManagedObjects | python3 -c '
import json, sys
vol, op = sys.argv[1], sys.argv[2]
objs = json.load(sys.stdin)["data"][0]
rows = []
for path, ifaces in objs.items():
    j = ifaces.get("org.shorthorn.Storage1.Job")
    if not j: continue
    g = lambda k: j.get(k, {}).get("data")
    if g("Volume") != vol or g("Operation") != op: continue
    rows.append((int(path.rsplit("/", 1)[1]), path, g("State"), g("Bytes"), g("TotalBytes"),
                 (g("Message") or "").replace("\n", " ")))
for r in sorted(rows): print(*r[1:])' "$(volume_path "$1")" "$2"
}

# replica_dir REPLICAD NAME: the directory of replica NAME on replicad REPLICAD.
replica_dir() { echo "$REPLICAS_DIR/$1/$2"; }

# volume_epoch NAME: the last epoch fused handed out for the volume.
volume_epoch() {
  python3 -c 'import json,sys
for v in json.load(open(sys.argv[1]))["volumes"]:
    if v["name"] == sys.argv[2]: print(v["epoch"])' "$FUSED_STATE_DIR/volumes.json" "$1"
}

# replicad_of ADDRESS: the name of the replicad started on ADDRESS.
replicad_of() {
  local n
  for n in "${!REPLICAD_PORTS[@]}"; do
    [[ $(replica_address "$n") == "$1" ]] && { echo "$n"; return 0; }
  done
  return 1
}

# sha256_range FILE OFFSET_MIB COUNT_MIB: sha256 of COUNT_MIB MiB of FILE
# (a block device or the FUSE file) from OFFSET_MIB, read with O_DIRECT.
sha256_range() {
  dd if="$1" bs=1M skip="$2" count="$3" iflag=direct status=none | sha256sum | cut -d' ' -f1
}

# notice_replica_down NAME ADDRESS OFFSET_MIB: after a replicad was stopped,
# waits up to 10 s for the idle volume to mark its replica ERR on its own;
# if it does not (fused learns of a closed connection only from the next
# request to that replica), reads 1 MiB at OFFSET_MIB and writes it back
# (O_DIRECT, the FrontendPath) so the engine finds out, then waits for ERR.
notice_replica_down() {
  local name=$1 addr=$2 off=$3 file deadline=$((SECONDS + 10))
  while ((SECONDS < deadline)); do
    [[ $(replica_mode "$name" "$addr") == ERR ]] && return 0
    sleep 0.2
  done
  warn "idle volume $name did not mark its replica at $addr ERR within 10 s of the replicad stopping (fused notices only on the next I/O); issuing I/O"
  file=$(volume_prop "$name" FrontendPath)
  dd if="$file" of="$TEST_DIR/notice.tmp" bs=1M skip="$off" count=1 iflag=direct status=none
  dd if="$TEST_DIR/notice.tmp" of="$file" bs=1M seek="$off" count=1 oflag=direct conv=notrunc \
    status=none
  wait_replica_mode "$name" "$addr" ERR 30
}

# statistic VOLUME KEY: one figure of the volume's Statistics property
# (read_requests, write_bytes, ...).
statistic() {
  local stats
  stats=$(busctl --system --json=short get-property "$BUS_NAME" "$(volume_path "$1")" \
    "$VOLUME_IFACE" Statistics)
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])["data"][sys.argv[2]])' "$stats" "$2"
}

# _wakeups PID: how often the process went to sleep and was woken (voluntary
# and involuntary context switches).
_wakeups() {
  awk '/ctxt_switches/ {n += $2} END {print n + 0}' "/proc/$1/status"
}

# assert_not_woken_per_request PID WHAT VOLUME DEVICE: PID (WHAT: the
# holder, the service manager) keeps the FUSE connection; it must not be
# woken by the requests on it. 20,000 4 KiB direct reads of DEVICE (each one
# FUSE read request, checked with VOLUME's Statistics) may wake it at most
# 2,000 times (its own timers: a few per second).
assert_not_woken_per_request() {
  local pid=$1 what=$2 vol=$3 dev=$4 n=20000 w0 w1 r0 r1
  r0=$(statistic "$vol" read_requests)
  w0=$(_wakeups "$pid")
  dd if="$dev" of=/dev/null bs=4k count=$n iflag=direct status=none || fail "reading $dev failed"
  w1=$(_wakeups "$pid")
  r1=$(statistic "$vol" read_requests)
  assert_ge "$n" "$((r1 - r0))" "FUSE read requests made by $n direct reads of $dev"
  (((w1 - w0) <= n / 10)) ||
    fail "$what (pid $pid) was woken $((w1 - w0)) times by $((r1 - r0)) FUSE requests"
  log "ok: $what (pid $pid) woken $((w1 - w0)) times by $((r1 - r0)) FUSE requests"
}
