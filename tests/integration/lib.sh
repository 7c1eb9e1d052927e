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

# init_test [CMD...]: the preamble of every test. Skips when the test cannot
# run (also when a CMD it names is missing), creates the temp dir and
# installs the cleanup trap.
# shellcheck disable=SC2120  # most tests name no CMD
init_test() {
  requires_root
  requires_dev /dev/fuse /dev/loop-control
  requires_cmd dbus-daemon busctl gdbus setpriv losetup mkfs.ext4 e2fsck blkid \
    blockdev mount umount mountpoint fusermount3 fuser sha256sum ss findmnt "$@"
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

# start_replicads NAME...: the private bus and one replicad per NAME (r1,
# r2, ...), for a test that starts fused its own way.
start_replicads() {
  local name
  start_bus
  for name in "$@"; do start_replicad "$name"; done
}

# start_cluster NAME...: start_replicads, then fused with them as its
# replicads: the start of most tests.
start_cluster() {
  start_replicads "$@"
  start_fused
}

# start_backup_cluster NAME...: as start_cluster, with a directory target
# as fused's default backup target (no credentials): BACKUP_TARGET_DIR
# ($TEST_DIR/backups) and BACKUP_TARGET (its file:// URL) say where.
start_backup_cluster() {
  start_replicads "$@"
  BACKUP_TARGET_DIR=$TEST_DIR/backups
  BACKUP_TARGET="file://$BACKUP_TARGET_DIR"
  start_fused_opts --backup-target "$BACKUP_TARGET" --backup-credentials "$CONF_DIR/no-credentials"
}

# start_fused: fused on the test's state dir, mount point and dev dir, with
# every replicad started so far as its default replica set; waits until it
# answers ListVolumes on the bus. Volumes start detached (auto-attach no)
# unless the test sets FUSED_AUTO_ATTACH=yes.
# shellcheck disable=SC2119  # no options: that is the point
start_fused() { start_fused_opts; }

# ---------------------------------------------------------------- D-Bus helpers

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }

# volume_path NAME: the object path of volume NAME (one copy for the
# quickstart too).
# shellcheck source=SCRIPTDIR/../../scripts/lib_volume_path.sh
source "$REPO_DIR/scripts/lib_volume_path.sh"

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

# mount_volume NAME: attaches volume NAME, makes ext4 on it and mounts it at
# $FS_DIR/NAME; sets dev (its loop device) and mnt.
mount_volume() {
  mnt=$FS_DIR/$1
  dev=$(attach_volume "$1")
  mkfs.ext4 -q -F "$dev"
  mkdir -p "$mnt"
  mount "$dev" "$mnt"
}

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

# The cleanup (teardown, the EXIT trap, pass) and the helpers of the
# replication, job and fault tests live in files of their own.
# shellcheck source=lib_cleanup.sh
source "$LIB_DIR/lib_cleanup.sh"
# shellcheck source=lib_replication.sh
source "$LIB_DIR/lib_replication.sh"
