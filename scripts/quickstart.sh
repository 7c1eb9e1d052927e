#!/usr/bin/env bash
# Shorthorn on one host in one command, as root on Debian 12.
#
#   scripts/quickstart.sh [up]          install deps, build, start, create and mount "demo"
#   scripts/quickstart.sh status        print what is running and how to look at it
#   scripts/quickstart.sh down          unmount, detach, stop everything (data kept)
#   scripts/quickstart.sh down --purge  the same, and delete the data and logs
#
# `up` runs scripts/install-deps.sh, builds in build/ (both idempotent), then
# brings up, each step only if not already done (so running it twice is fine):
#   * a bus: the system bus when one runs and has Shorthorn's policy
#     installed, otherwise a private dbus-daemon (tests/integration/dbus-test.conf)
#     whose DBUS_SYSTEM_BUS_ADDRESS it prints;
#   * shorthorn-replicad on 127.0.0.1:9500, data in /var/lib/shorthorn/quickstart/replicas;
#   * shorthorn-fused, state in /var/lib/shorthorn/quickstart/fused, FUSE mount
#     /run/shorthorn/volumes, symlinks in /dev/shorthorn;
#   * volume "demo" (1 GiB, one replica), attached as a loop device, ext4 made
#     on it if it has no filesystem yet, mounted at /mnt/shorthorn/demo;
#   * snapshot "first" of it, holding a file README.quickstart;
#   * a backup of that snapshot to the directory target
#     /var/lib/shorthorn/quickstart/backups (file://; no S3 needed).
# The daemons keep running in the background (setsid); their logs are in
# /var/log/shorthorn-quickstart/, their PIDs in /run/shorthorn-quickstart/state.
#
# Environment overrides (the integration test uses them to stay isolated):
#   SHORTHORN_QS_ROOT     put every directory above under this one instead
#   SHORTHORN_QS_PORT     replicad port (default 9500)
#   SHORTHORN_QS_MOUNT    where to mount the volume (default /mnt/shorthorn/demo,
#                         or $SHORTHORN_QS_ROOT/mnt/demo)
#   SHORTHORN_QS_PRIVATE_BUS=1  always use a private bus
#   SHORTHORN_QS_NO_BUILD=1     skip install-deps and the build; use the
#                         binaries in $SHORTHORN_BUILD_DIR (default build/)
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${SHORTHORN_BUILD_DIR:-$REPO_DIR/build}
VOLUME=demo
SNAPSHOT=first
SIZE=1073741824
PORT=${SHORTHORN_QS_PORT:-9500}
ROOT=${SHORTHORN_QS_ROOT:-}
if [[ -n $ROOT ]]; then
  ROOT=$(realpath -m "$ROOT")
  DATA_DIR=$ROOT/replicas
  STATE_DIR=$ROOT/fused
  BACKUP_DIR=$ROOT/backups
  VOLUMES_DIR=$ROOT/volumes
  DEV_DIR=$ROOT/dev
  LOG_DIR=$ROOT/log
  RUN_DIR=$ROOT/run
  KEY_FILE=$ROOT/cluster.key
  MOUNT=${SHORTHORN_QS_MOUNT:-$ROOT/mnt/$VOLUME}
else
  DATA_DIR=/var/lib/shorthorn/quickstart/replicas
  STATE_DIR=/var/lib/shorthorn/quickstart/fused
  BACKUP_DIR=/var/lib/shorthorn/quickstart/backups
  VOLUMES_DIR=/run/shorthorn/volumes
  DEV_DIR=/dev/shorthorn
  LOG_DIR=/var/log/shorthorn-quickstart
  RUN_DIR=/run/shorthorn-quickstart
  KEY_FILE=/var/lib/shorthorn/quickstart/cluster.key
  MOUNT=${SHORTHORN_QS_MOUNT:-/mnt/shorthorn/$VOLUME}
fi
STATE_FILE=$RUN_DIR/state
SYSTEM_BUS_SOCKET=/run/dbus/system_bus_socket
BUS_NAME=org.shorthorn.Storage1
MANAGER_PATH=/org/shorthorn/Storage1/Manager
MANAGER_IFACE=org.shorthorn.Storage1.Manager
VOLUME_IFACE=org.shorthorn.Storage1.Volume

# Filled from the state file.
BUS_PID="" BUS_ADDRESS="" REPLICAD_PID="" FUSED_PID=""

say() { printf 'quickstart: %s\n' "$*"; }
die() {
  printf 'quickstart: error: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

# ---------------------------------------------------------------- helpers

# volume_path NAME: the D-Bus object path.
# shellcheck source=SCRIPTDIR/lib_volume_path.sh
source "$REPO_DIR/scripts/lib_volume_path.sh"
VOLUME_PATH=$(volume_path "$VOLUME")

# running PID: true while PID exists and is not a zombie.
running() {
  local stat
  [[ -n $1 ]] || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# alive PID PROGRAM: true when PID runs PROGRAM (argv[0]'s base name), so a
# PID from the state file that was reused by something else does not count.
# Only for PIDs whose exec is done: right after `setsid prog &` the child may
# still be the forked shell; the start-up loops use `running`.
alive() {
  local pid=$1 prog=$2 argv0
  running "$pid" || return 1
  argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n1)
  [[ $(basename -- "$argv0") == "$prog" ]]
}

# fuse_mounted: true when the FUSE mount is there. Reads mountinfo only: a
# stat of a FUSE mount that no fused serves would wait.
fuse_mounted() {
  awk -v m="$VOLUMES_DIR" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# stop_holder: ends the process that keeps fused's FUSE connection across
# restarts (it exits by itself once the mount is gone).
stop_holder() {
  local pid
  for pid in $(pgrep -f -x -- "shorthorn-fuse-holder --fuse-fd-holder $STATE_DIR/fuse-holder.sock"); do
    say "ending the FUSE connection kept by pid $pid (no shorthorn-fused serves it)"
    kill -TERM "$pid" 2>/dev/null || true
  done
}

# stop PID PROGRAM WHAT: SIGTERM, SIGKILL after 30 s.
stop() {
  local pid=$1 prog=$2 what=$3 i
  alive "$pid" "$prog" || return 0
  say "stopping $what (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    alive "$pid" "$prog" || return 0
    sleep 0.1
  done
  say "$what did not stop within 30 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

load_state() {
  local key value
  [[ -f $STATE_FILE ]] || return 0
  while IFS='=' read -r key value; do
    case $key in
      BUS_PID | BUS_ADDRESS | REPLICAD_PID | FUSED_PID) printf -v "$key" '%s' "$value" ;;
    esac
  done <"$STATE_FILE"
}

save_state() {
  mkdir -p "$RUN_DIR"
  printf '%s\n' "BUS_PID=$BUS_PID" "BUS_ADDRESS=$BUS_ADDRESS" \
    "REPLICAD_PID=$REPLICAD_PID" "FUSED_PID=$FUSED_PID" >"$STATE_FILE.tmp"
  mv "$STATE_FILE.tmp" "$STATE_FILE"
}

find_binary() {
  local path
  path=$(find "$BUILD_DIR" -name "$1" -type f -executable -print -quit 2>/dev/null || true)
  [[ -n $path ]] || die "$1 not found under $BUILD_DIR (did the build succeed?)"
  echo "$path"
}

bus_ok() {
  DBUS_SYSTEM_BUS_ADDRESS=$BUS_ADDRESS busctl --system status org.freedesktop.DBus >/dev/null 2>&1
}

fused_ok() {
  [[ -n $BUS_ADDRESS ]] &&
    DBUS_SYSTEM_BUS_ADDRESS=$BUS_ADDRESS busctl --system call "$BUS_NAME" "$MANAGER_PATH" \
      "$MANAGER_IFACE" ListVolumes >/dev/null 2>&1
}

# volume_prop PROPERTY: the demo volume's property, unquoted.
volume_prop() {
  busctl --system get-property "$BUS_NAME" "$VOLUME_PATH" "$VOLUME_IFACE" "$1" |
    sed -E 's/^[a-z]+ //; s/^"(.*)"$/\1/'
}

# The environment prefix that points a later command at the same instance.
env_prefix() {
  local v out=""
  for v in SHORTHORN_QS_ROOT SHORTHORN_QS_PORT SHORTHORN_QS_MOUNT SHORTHORN_QS_PRIVATE_BUS; do
    [[ -z ${!v:-} ]] || out+="$v=${!v} "
  done
  echo "$out"
}

# ---------------------------------------------------------------- up

build() {
  if [[ -n ${SHORTHORN_QS_NO_BUILD:-} ]]; then
    say "SHORTHORN_QS_NO_BUILD set: using the binaries in $BUILD_DIR"
    return
  fi
  bash "$REPO_DIR/scripts/install-deps.sh"
  say "building in $BUILD_DIR"
  cmake -S "$REPO_DIR" -B "$BUILD_DIR" >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)"
}

system_bus_usable() {
  local f
  [[ -z ${SHORTHORN_QS_PRIVATE_BUS:-} && -S $SYSTEM_BUS_SOCKET ]] || return 1
  for f in /etc/dbus-1/system.d/org.shorthorn.Storage1.conf \
    /usr/share/dbus-1/system.d/org.shorthorn.Storage1.conf; do
    [[ -f $f ]] && return 0
  done
  say "the system bus has no policy for $BUS_NAME (install the package, or copy"
  say "  dbus/org.shorthorn.Storage1.conf to /etc/dbus-1/system.d/); using a private bus"
  return 1
}

ensure_bus() {
  local socket=$RUN_DIR/bus/system_bus_socket i
  if [[ -n $BUS_ADDRESS ]] && { [[ -z $BUS_PID ]] || alive "$BUS_PID" dbus-daemon; } && bus_ok; then
    say "bus already up at $BUS_ADDRESS"
  elif system_bus_usable; then
    BUS_PID="" BUS_ADDRESS=unix:path=$SYSTEM_BUS_SOCKET
    say "using the system bus"
  else
    mkdir -p "$RUN_DIR/bus"
    chmod 0755 "$RUN_DIR" "$RUN_DIR/bus"
    rm -f "$socket"
    setsid dbus-daemon --config-file="$REPO_DIR/tests/integration/dbus-test.conf" \
      --address="unix:path=$socket" --nofork --nopidfile \
      >>"$LOG_DIR/dbus.log" 2>&1 </dev/null &
    BUS_PID=$! BUS_ADDRESS=unix:path=$socket
    save_state
    for ((i = 0; i < 100; i++)); do
      bus_ok && break
      running "$BUS_PID" || die "dbus-daemon exited; see $LOG_DIR/dbus.log"
      sleep 0.1
    done
    bus_ok || die "private dbus-daemon does not answer; see $LOG_DIR/dbus.log"
    say "started a private dbus-daemon (pid $BUS_PID) at $BUS_ADDRESS"
  fi
  export DBUS_SYSTEM_BUS_ADDRESS=$BUS_ADDRESS
  save_state
}

# The key both daemons authenticate their connections with (a package
# install keeps its own in /etc/shorthorn/cluster.key); made once, mode 0600.
ensure_key() {
  [[ -s $KEY_FILE ]] && return
  mkdir -p "$(dirname "$KEY_FILE")"
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$KEY_FILE")
  say "made the cluster key $KEY_FILE"
}

ensure_replicad() {
  local bin i
  if alive "$REPLICAD_PID" shorthorn-replicad; then
    say "shorthorn-replicad already running (pid $REPLICAD_PID)"
    return
  fi
  if [[ -n $(ss -Hltn "sport = :$PORT") ]]; then
    die "TCP port $PORT is in use by another program; set SHORTHORN_QS_PORT"
  fi
  bin=$(find_binary shorthorn-replicad)
  mkdir -p "$DATA_DIR"
  : >"$RUN_DIR/replicad.conf"
  setsid "$bin" --config "$RUN_DIR/replicad.conf" --listen 127.0.0.1 --port "$PORT" \
    --data-dir "$DATA_DIR" --socket-dir "$RUN_DIR/sock" --cluster-key "$KEY_FILE" \
    >>"$LOG_DIR/replicad.log" 2>&1 </dev/null &
  REPLICAD_PID=$!
  save_state
  for ((i = 0; i < 300; i++)); do
    running "$REPLICAD_PID" || die "shorthorn-replicad exited; see $LOG_DIR/replicad.log"
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
  done
  ((i < 300)) || die "shorthorn-replicad does not listen on 127.0.0.1:$PORT; see $LOG_DIR/replicad.log"
  say "started shorthorn-replicad (pid $REPLICAD_PID) on 127.0.0.1:$PORT"
}

ensure_fused() {
  local bin i
  if alive "$FUSED_PID" shorthorn-fused && fused_ok; then
    say "shorthorn-fused already running (pid $FUSED_PID)"
    return
  fi
  if fused_ok; then
    die "another shorthorn-fused already owns $BUS_NAME on this bus; stop it first"
  fi
  # After a crash the FUSE mount is either kept alive for the new fused (by
  # shorthorn-fuse-holder), which takes it over with the volume still
  # attached and mounted, or dead, and fused clears it itself.
  bin=$(find_binary shorthorn-fused)
  # Not $VOLUMES_DIR itself: fused makes it, and a stat of a kept FUSE mount
  # waits until fused serves it again.
  mkdir -p "$STATE_DIR" "$(dirname "$VOLUMES_DIR")"
  : >"$RUN_DIR/fused.conf"
  setsid "$bin" --config "$RUN_DIR/fused.conf" --state-dir "$STATE_DIR" \
    --mount-point "$VOLUMES_DIR" --dev-dir "$DEV_DIR" --replicads "127.0.0.1:$PORT" \
    --replicad-socket-dir "$RUN_DIR/sock" --backup-target "file://$BACKUP_DIR" \
    --backup-credentials "$RUN_DIR/backup-credentials" --cluster-key "$KEY_FILE" \
    >>"$LOG_DIR/fused.log" 2>&1 </dev/null &
  FUSED_PID=$!
  save_state
  for ((i = 0; i < 300; i++)); do
    running "$FUSED_PID" || die "shorthorn-fused exited; see $LOG_DIR/fused.log"
    fused_ok && break
    sleep 0.1
  done
  ((i < 300)) || die "shorthorn-fused does not answer on the bus; see $LOG_DIR/fused.log"
  say "started shorthorn-fused (pid $FUSED_PID)"
}

ensure_volume() {
  if busctl --system get-property "$BUS_NAME" "$VOLUME_PATH" "$VOLUME_IFACE" Name >/dev/null 2>&1; then
    say "volume $VOLUME exists"
    return
  fi
  busctl --system call "$BUS_NAME" "$MANAGER_PATH" "$MANAGER_IFACE" CreateVolume 'stasa{sv}' \
    "$VOLUME" "$SIZE" 1 "127.0.0.1:$PORT" 0 >/dev/null
  say "created volume $VOLUME (1 GiB, one replica on 127.0.0.1:$PORT)"
}

# ensure_attached: prints the loop device.
ensure_attached() {
  local dev
  if [[ $(volume_prop State) == attached ]]; then
    dev=$(volume_prop LoopDevice)
    [[ -n $dev ]] || die "volume $VOLUME is attached without a block device; detach it first"
    say "volume $VOLUME already attached at $dev" >&2
  elif dev=$(busctl --system call "$BUS_NAME" "$VOLUME_PATH" "$VOLUME_IFACE" Attach 'a{sv}' 0 |
    sed -E 's/^s "(.*)"$/\1/') && [[ -n $dev ]]; then
    say "attached volume $VOLUME at $dev" >&2
  elif [[ $(volume_prop State) == attached ]]; then
    # fused attached it again by itself meanwhile (after a restart).
    dev=$(volume_prop LoopDevice)
    say "volume $VOLUME attached again by shorthorn-fused at $dev" >&2
  else
    die "cannot attach volume $VOLUME; see $LOG_DIR/fused.log"
  fi
  echo "$dev"
}

ensure_mounted() {
  local dev=$1 fstype source
  if mountpoint -q "$MOUNT"; then
    source=$(findmnt -n -o SOURCE --mountpoint "$MOUNT")
    [[ $source == "$dev" || $(realpath "$source") == "$(realpath "$dev")" ]] ||
      die "$MOUNT is already in use by $source"
    say "$dev already mounted at $MOUNT"
    return
  fi
  fstype=$(blkid -p -o value -s TYPE "$dev" 2>/dev/null || true)
  if [[ -z $fstype ]]; then
    say "making an ext4 filesystem on $dev"
    mkfs.ext4 -q "$dev"
  else
    say "$dev already has a filesystem ($fstype); keeping it"
  fi
  mkdir -p "$MOUNT"
  mount "$dev" "$MOUNT"
  say "mounted $dev at $MOUNT"
}

ensure_snapshot() {
  if busctl --system get-property "$BUS_NAME" "$VOLUME_PATH" "$VOLUME_IFACE" Snapshots |
    grep -qF "\"$SNAPSHOT\""; then
    say "snapshot $SNAPSHOT of $VOLUME already taken"
    return
  fi
  if [[ ! -e $MOUNT/README.quickstart ]]; then
    echo "Written by scripts/quickstart.sh before it took snapshot $SNAPSHOT." >"$MOUNT/README.quickstart"
  fi
  sync -f "$MOUNT/README.quickstart"
  busctl --system call "$BUS_NAME" "$VOLUME_PATH" "$VOLUME_IFACE" Snapshot 'sa{sv}' "$SNAPSHOT" 0 \
    >/dev/null
  say "took snapshot $SNAPSHOT of $VOLUME"
}

# backup_url: the URL of the newest backup of $VOLUME's snapshot $SNAPSHOT in
# the quickstart's target, or "".
backup_url() {
  busctl --system --json=short call "$BUS_NAME" "$MANAGER_PATH" "$MANAGER_IFACE" ListBackups \
    'ssa{sv}' "file://$BACKUP_DIR" "$VOLUME" 0 2>/dev/null |
    python3 -c 'import json,sys
found = [b[0] for b in json.load(sys.stdin)["data"][0] if b[3] == sys.argv[1]]
print(found[-1] if found else "")' "$SNAPSHOT" || true
}

ensure_backup() {
  local url job state i
  url=$(backup_url)
  if [[ -n $url ]]; then
    say "backup of snapshot $SNAPSHOT already taken: $url"
    return
  fi
  job=$(busctl --system call "$BUS_NAME" "$VOLUME_PATH" "$VOLUME_IFACE" Backup 'sa{sv}' \
    "$SNAPSHOT" 0 | sed -E 's/^o "(.*)"$/\1/')
  for ((i = 0; i < 3000; i++)); do
    state=$(busctl --system get-property "$BUS_NAME" "$job" org.shorthorn.Storage1.Job State |
      sed -E 's/^s "(.*)"$/\1/')
    [[ $state == running ]] || break
    sleep 0.1
  done
  url=$(busctl --system get-property "$BUS_NAME" "$job" org.shorthorn.Storage1.Job Message |
    sed -E 's/^s "(.*)"$/\1/')
  [[ $state == completed ]] || die "backup of snapshot $SNAPSHOT: job $job $state: $url"
  say "backed up snapshot $SNAPSHOT to $url"
}

print_info() {
  local dev=$1 prefix
  prefix=$(env_prefix)
  cat <<EOF

  Volume:       $VOLUME (1 GiB, one replica on 127.0.0.1:$PORT)
  Block device: $dev (symlink $DEV_DIR/$VOLUME)
  Mounted at:   $MOUNT
  Snapshot:     $SNAPSHOT
  Backup:       $(backup_url)
  Volume file:  $VOLUMES_DIR/$VOLUME (FUSE)
  Logs:         $LOG_DIR/*.log
  Data:         $DATA_DIR (replica), $STATE_DIR (registry)

EOF
  if [[ $BUS_ADDRESS != "unix:path=$SYSTEM_BUS_SOCKET" ]]; then
    cat <<EOF
The bus is a private dbus-daemon. In your shell, first:
  export DBUS_SYSTEM_BUS_ADDRESS=$BUS_ADDRESS

EOF
  fi
  cat <<EOF
Look at it:
  busctl --system tree $BUS_NAME
  busctl --system introspect $BUS_NAME $VOLUME_PATH
  busctl --system get-property $BUS_NAME $VOLUME_PATH $VOLUME_IFACE State
  busctl --system get-property $BUS_NAME $VOLUME_PATH $VOLUME_IFACE Snapshots
  busctl --system call $BUS_NAME $MANAGER_PATH $MANAGER_IFACE ListBackups 'ssa{sv}' file://$BACKUP_DIR $VOLUME 0

Restore the backup into a new volume (a job; then attach and mount it):
  busctl --system call $BUS_NAME $MANAGER_PATH $MANAGER_IFACE RestoreVolume 'ssasa{sv}' \\
    demo-restored '$(backup_url)' 0 0

Tear it down (data kept; add --purge to delete it):
  ${prefix}$REPO_DIR/scripts/quickstart.sh down
EOF
}

cmd_up() {
  local dev was_up=0
  mkdir -p "$LOG_DIR" "$RUN_DIR"
  load_state
  if alive "$REPLICAD_PID" shorthorn-replicad && alive "$FUSED_PID" shorthorn-fused &&
    [[ -n $BUS_ADDRESS ]] && bus_ok && mountpoint -q "$MOUNT"; then
    was_up=1
    say "already up; checking every step"
  else
    build
  fi
  ensure_bus
  ensure_key
  ensure_replicad
  ensure_fused
  ensure_volume
  dev=$(ensure_attached)
  ensure_mounted "$dev"
  ensure_snapshot
  ensure_backup
  echo
  if ((was_up)); then
    echo "Shorthorn quickstart was already up."
  else
    echo "Shorthorn quickstart is up."
  fi
  print_info "$dev"
}

cmd_status() {
  load_state
  if ! alive "$FUSED_PID" shorthorn-fused; then
    echo "Shorthorn quickstart is not running."
    return 0
  fi
  export DBUS_SYSTEM_BUS_ADDRESS=$BUS_ADDRESS
  echo "Shorthorn quickstart is up: bus ${BUS_PID:-(system)}, replicad $REPLICAD_PID, fused $FUSED_PID."
  print_info "$(volume_prop LoopDevice 2>/dev/null || true)"
}

# ---------------------------------------------------------------- down

cmd_down() {
  local purge=0 dev
  [[ ${1:-} != --purge ]] || purge=1
  [[ $# -eq 0 || $purge -eq 1 ]] || die "usage: $0 down [--purge]"
  load_state
  local was_running=0
  if [[ -f $STATE_FILE ]] || mountpoint -q "$MOUNT" || fuse_mounted; then
    was_running=1
  fi
  if ! alive "$FUSED_PID" shorthorn-fused; then
    # fused died: nothing would answer the FUSE connection its holder kept,
    # and unmounting the file system on it would wait forever. End it (the
    # file system loses what was not yet synced, as at a power cut).
    stop_holder
  fi
  if mountpoint -q "$MOUNT"; then
    say "unmounting $MOUNT"
    if ! umount "$MOUNT"; then
      say "$MOUNT is busy (processes using it: $(fuser -m "$MOUNT" 2>/dev/null || true)); lazy unmount"
      umount -l "$MOUNT"
    fi
  fi
  if alive "$FUSED_PID" shorthorn-fused; then
    export DBUS_SYSTEM_BUS_ADDRESS=$BUS_ADDRESS
    if [[ $(volume_prop State 2>/dev/null) == attached ]]; then
      say "detaching volume $VOLUME"
      busctl --system call "$BUS_NAME" "$VOLUME_PATH" "$VOLUME_IFACE" Detach 'a{sv}' 0 ||
        say "Detach failed; stopping shorthorn-fused anyway"
    fi
  fi
  stop "$FUSED_PID" shorthorn-fused shorthorn-fused
  # What a fused that died could not undo: its loop devices, FUSE mount, symlink.
  for dev in $(losetup -l -n --raw -O NAME,BACK-FILE 2>/dev/null |
    awk -v f="$VOLUMES_DIR/" '{ n = $1; sub(/^[^ ]+ /, ""); if (index($0, f) == 1) print n }'); do
    say "detaching leftover loop device $dev"
    losetup -d "$dev" || true
  done
  stop_holder
  if fuse_mounted; then
    say "unmounting the leftover FUSE mount $VOLUMES_DIR"
    fusermount3 -uz "$VOLUMES_DIR" 2>/dev/null || umount -l "$VOLUMES_DIR" || true
  fi
  if [[ -L $DEV_DIR/$VOLUME ]]; then
    say "removing the leftover symlink $DEV_DIR/$VOLUME"
    rm -f "$DEV_DIR/$VOLUME"
  fi
  stop "$REPLICAD_PID" shorthorn-replicad shorthorn-replicad
  stop "$BUS_PID" dbus-daemon "the private dbus-daemon"
  rm -rf "$RUN_DIR"
  # Empty directories this script made (rmdir leaves anything non-empty).
  rmdir "$DEV_DIR" "$MOUNT" "$VOLUMES_DIR" "$(dirname "$VOLUMES_DIR")" 2>/dev/null || true
  [[ -n ${SHORTHORN_QS_MOUNT:-} ]] || rmdir "$(dirname "$MOUNT")" 2>/dev/null || true
  if ((purge)); then
    say "deleting $DATA_DIR $STATE_DIR $BACKUP_DIR $LOG_DIR $KEY_FILE"
    rm -rf --one-file-system "$DATA_DIR" "$STATE_DIR" "$BACKUP_DIR" "$LOG_DIR" "$KEY_FILE"
    if [[ -n $ROOT ]]; then
      rmdir "$ROOT" 2>/dev/null || true
    else
      rmdir /var/lib/shorthorn/quickstart /var/lib/shorthorn 2>/dev/null || true
    fi
    echo "Shorthorn quickstart is down; its data is deleted."
  elif ((!was_running)); then
    echo "Shorthorn quickstart was not running. Data, if any, is in $DATA_DIR and $STATE_DIR."
  else
    echo "Shorthorn quickstart is down. Data kept in $DATA_DIR and $STATE_DIR;"
    echo "'$(env_prefix)$REPO_DIR/scripts/quickstart.sh' brings the volume back,"
    echo "'$(env_prefix)$REPO_DIR/scripts/quickstart.sh down --purge' deletes it."
  fi
}

main() {
  local cmd=${1:-up}
  [[ $# -eq 0 ]] || shift
  case $cmd in
    -h | --help | help) usage; return 0 ;;
  esac
  ((EUID == 0)) || die "run as root (FUSE, loop devices, mount)"
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
