#!/usr/bin/env bash
# The Debian packages, as an operator meets them: build shorthorn and
# shorthorn-replicad with dpkg-buildpackage from a copy of the tree, check
# them with lintian (no E: or W:), install both with apt-get, start the
# installed daemons the way their systemd units would (there is no systemd
# as PID 1 here: ExecStart=, User=, Group=, StateDirectory=,
# RuntimeDirectory=, CapabilityBoundingSet=, AmbientCapabilities= and
# NoNewPrivileges= are read from the installed unit files and applied with
# setpriv), drive create -> attach -> mkfs.ext4 -> mount -> write -> verify
# -> detach -> delete through the installed shorthornctl, checking exit
# codes and --json output, then stop the daemons, purge both packages and
# check that nothing of them is left (files, /etc/shorthorn, mounts, loop
# devices, processes; the system user and group may stay, as Debian policy
# allows).
#
# The bus is a private dbus-daemon started with Debian's own system bus
# configuration (/usr/share/dbus-1/system.conf), so the installed policy
# /usr/share/dbus-1/system.d/org.shorthorn.Storage1.conf is what decides who
# may own and call org.shorthorn.Storage1.
#
# Needs root, dpkg-buildpackage, lintian and the build dependencies
# (scripts/install-deps.sh installs them); exits 77 (skipped) otherwise, or
# when the packages are already installed, port 9500 is taken or
# /run/shorthorn/volumes is mounted (e.g. by scripts/quickstart.sh), since the
# installed daemons use their default paths. Everything is undone on exit,
# also after a failure. Most of its time is the build: about 5 minutes in
# quick mode (CI=true, no unit tests in the package build), 15 by hand.
set -euo pipefail

TEST_NAME=test_package
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VOLUME=pkgtest
SIZE=256M
SIZE_BYTES=$((256 * 1024 * 1024))
PORT=9500
FUSE_MOUNT=/run/shorthorn/volumes
DEV_DIR=/dev/shorthorn
BUS_SOCKET=""
WORK=""
INSTALLED=0
declare -A PIDS=()
declare -a CREATED_DIRS=()  # directories this test made in place of systemd

log() { printf '[%s %s] %s\n' "$TEST_NAME" "$(date +%T)" "$*"; }
warn() { printf '[%s %s] WARNING: %s\n' "$TEST_NAME" "$(date +%T)" "$*" >&2; }
fail() {
  printf 'FAIL %s: %s\n' "$TEST_NAME" "$*" >&2
  exit 1
}
skip() {
  printf 'SKIP %s: %s\n' "$TEST_NAME" "$*"
  exit 77
}

# ---------------------------------------------------------------- preconditions

((EUID == 0)) || skip "needs root (installs packages, mounts, loop devices)"
# One run at a time on a machine: they would share the packages, port 9500
# and /run/shorthorn.
exec 9>/run/lock/shorthorn-package-test.lock
flock -n 9 || skip "another run of this test holds /run/lock/shorthorn-package-test.lock"
for cmd in dpkg-buildpackage dpkg-checkbuilddeps lintian apt-get dbus-daemon setpriv \
  mkfs.ext4 mount umount losetup sha256sum ss findmnt fusermount3; do
  command -v "$cmd" >/dev/null 2>&1 || skip "needs '$cmd' (scripts/install-deps.sh installs it)"
done
for dev in /dev/fuse /dev/loop-control; do
  [[ -e $dev ]] || skip "needs $dev, which this machine does not have"
done
[[ -f /usr/share/dbus-1/system.conf ]] || skip "needs /usr/share/dbus-1/system.conf (package dbus)"
if (cd "$REPO_DIR" && ! dpkg-checkbuilddeps >/dev/null 2>&1); then
  skip "build dependencies missing: $(cd "$REPO_DIR" && dpkg-checkbuilddeps 2>&1 | sed 's/.*Unmet build dependencies: //')"
fi
for pkg in shorthorn shorthorn-replicad; do
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'installed'; then
    skip "package $pkg is already installed here; this test would replace and purge it"
  fi
done
[[ -z $(ss -Hltn "sport = :$PORT") ]] ||
  skip "port $PORT is in use (a replicad from scripts/quickstart.sh?); the installed replicad needs it"
! mountpoint -q "$FUSE_MOUNT" 2>/dev/null ||
  skip "$FUSE_MOUNT is mounted (scripts/quickstart.sh?); the installed fused needs it"
for dir in /var/lib/shorthorn/fused /var/lib/shorthorn/replicas /etc/shorthorn; do
  [[ ! -e $dir ]] || skip "$dir exists; this test would use and then remove it"
done

# ---------------------------------------------------------------- cleanup

_pid_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# stop NAME [TIMEOUT]: SIGTERM, SIGKILL after TIMEOUT seconds; sets STATUS.
STATUS=""
stop() {
  local name=$1 timeout=${2:-30} pid i
  pid=${PIDS[$name]:-}
  [[ -n $pid ]] || { STATUS=""; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    _pid_alive "$pid" || break
    sleep 0.1
  done
  if _pid_alive "$pid"; then
    warn "$name (pid $pid) still running ${timeout}s after SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  STATUS=0
  wait "$pid" 2>/dev/null || STATUS=$?
  unset "PIDS[$name]"
  log "stopped $name (pid $pid, exit status $STATUS)"
}

# Loop devices whose backing file is the FUSE file of our volume (as the
# kernel shows it once the mount is gone: "/pkgtest") or lies on the mount.
our_loops() {
  losetup -l -n --raw -O NAME,BACK-FILE 2>/dev/null |
    awk -v vol="/$VOLUME" -v mnt="$FUSE_MOUNT/" \
      '{ n = $1; sub(/^[^ ]+ /, ""); if ($0 == vol || index($0, mnt) == 1) print n }'
}

print_logs() {
  local f
  [[ -n $WORK && -d $WORK/logs ]] || return 0
  for f in "$WORK"/logs/*.log; do
    [[ -s $f ]] || continue
    printf '\n----- %s (last 80 lines) -----\n' "$(basename "$f")" >&2
    tail -n 80 "$f" >&2
  done
}

cleanup() {
  local rc=$? dev mnt pid
  set +e
  trap - EXIT ERR
  cd /
  ((rc == 0 || rc == 77)) || print_logs
  if [[ -n $WORK ]] && mountpoint -q "$WORK/mnt"; then
    umount "$WORK/mnt" || umount -l "$WORK/mnt"
  fi
  stop fused 60
  # A fused stopped with volumes attached hands them over: end the kept
  # connection, or the checks below would wait on a mount nobody serves.
  for pid in $(pgrep -f '^shorthorn-fuse-holder '); do kill -TERM "$pid"; done
  for dev in $(our_loops); do
    warn "detaching leftover loop device $dev"
    losetup -d "$dev"
  done
  if mountpoint -q "$FUSE_MOUNT" 2>/dev/null; then
    warn "unmounting leftover FUSE mount $FUSE_MOUNT"
    fusermount3 -uz "$FUSE_MOUNT" 2>/dev/null || umount -l "$FUSE_MOUNT"
  fi
  stop replicad 30
  stop dbus 10
  if ((INSTALLED)); then
    log "purging the packages"
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q shorthorn shorthorn-replicad \
      >>"$WORK/logs/apt.log" 2>&1 || warn "apt-get purge failed; see $WORK/logs/apt.log"
  fi
  # What systemd would remove (RuntimeDirectory=) or what this test made.
  for ((i = ${#CREATED_DIRS[@]} - 1; i >= 0; i--)); do
    mnt=${CREATED_DIRS[i]}
    [[ -d $mnt ]] || continue
    if [[ $mnt == /run/* ]]; then rm -rf --one-file-system "$mnt"; else rmdir "$mnt" 2>/dev/null; fi
  done
  [[ -d $DEV_DIR ]] && rmdir "$DEV_DIR" 2>/dev/null
  for pid in $(pgrep -f '^(/usr/sbin/shorthorn-(fused|replicad)|shorthorn-fuse-holder) '); do
    warn "killing leftover daemon $pid"
    kill -KILL "$pid"
  done
  if [[ -n $WORK ]]; then
    if ((rc != 0 && rc != 77)) && [[ -n ${SHORTHORN_TEST_KEEP:-} ]]; then
      echo "keeping $WORK (SHORTHORN_TEST_KEEP)" >&2
    else
      rm -rf --one-file-system "$WORK"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'printf "FAIL %s: command failed (exit %s) at line %s: %s\n" "$TEST_NAME" "$?" "$LINENO" "$BASH_COMMAND" >&2' ERR

WORK=$(mktemp -d /tmp/shorthorn-pkg.XXXXXX)
chmod 0755 "$WORK"
mkdir -p "$WORK/logs" "$WORK/src" "$WORK/mnt" "$WORK/bus"
log "work dir $WORK"

# ---------------------------------------------------------------- build

# dpkg-buildpackage writes into the parent of the tree; build in a copy.
tar -C "$REPO_DIR" --exclude='./build*' --exclude=./.git --exclude='./obj-*' \
  --exclude=./debian/.debhelper --exclude=./debian/tmp --exclude='./debian/shorthorn' \
  --exclude='./debian/shorthorn-replicad' --exclude=./debian/files \
  --exclude='./debian/*.substvars' --exclude='./debian/*.log' --exclude='./debian/debhelper-build-stamp' \
  -cf - . | tar -C "$WORK/src" -xf -
# Quick mode (CI=true or SHORTHORN_QUICK=1, as the suite runs it) builds
# with DEB_BUILD_OPTIONS=nocheck: the unit tests dh_auto_test would build and
# run are the ones this same suite has built and run already, and building
# them is most of the package build. By hand the package runs its own.
build_options=${DEB_BUILD_OPTIONS:-}
if [[ ${CI:-} == true || ${SHORTHORN_QUICK:-} == 1 ]]; then
  build_options="${build_options:+$build_options }nocheck"
fi
log "building the packages (DEB_BUILD_OPTIONS='$build_options' dpkg-buildpackage -us -uc -b; log: logs/build.log)"
if ! (cd "$WORK/src" && DEB_BUILD_OPTIONS=$build_options dpkg-buildpackage -us -uc -b -j"$(nproc)") \
  >"$WORK/logs/build.log" 2>&1; then
  tail -n 60 "$WORK/logs/build.log" >&2
  fail "dpkg-buildpackage failed"
fi
grep -E '(tests passed|tests failed)' "$WORK/logs/build.log" | sed 's/^/  build: /' || true
debs=("$WORK"/shorthorn_*.deb "$WORK"/shorthorn-replicad_*.deb)
for deb in "${debs[@]}"; do [[ -f $deb ]] || fail "missing $deb after the build"; done
log "built $(basename -a "${debs[@]}" | tr '\n' ' ')"

# The replica host's package must not pull in FUSE.
replicad_depends=$(dpkg-deb -f "$WORK"/shorthorn-replicad_*.deb Depends)
[[ $replicad_depends != *fuse* ]] || fail "shorthorn-replicad depends on FUSE: $replicad_depends"
fused_depends=$(dpkg-deb -f "$WORK"/shorthorn_*.deb Depends)
[[ $fused_depends == *fuse3* && $fused_depends == *dbus* ]] ||
  fail "shorthorn must depend on fuse3 and dbus: $fused_depends"

# ---------------------------------------------------------------- lintian

log "running lintian"
lintian_out=$(lintian --info "$WORK"/*.changes 2>&1) || true
printf '%s\n' "$lintian_out" | sed 's/^/  lintian: /'
if grep -qE '^[EW]: ' <<<"$lintian_out"; then
  fail "lintian reports errors or warnings (above)"
fi
log "ok: lintian reports no errors and no warnings"

# ---------------------------------------------------------------- install

log "installing with apt-get"
INSTALLED=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${debs[@]}" \
  >"$WORK/logs/apt.log" 2>&1 || { tail -n 30 "$WORK/logs/apt.log" >&2; fail "apt-get install failed"; }
dpkg -L shorthorn shorthorn-replicad | sort -u >"$WORK/files.txt"
log "installed $(wc -l <"$WORK/files.txt") paths"

for path in /usr/sbin/shorthorn-fused /usr/sbin/shorthorn-replicad /usr/bin/shorthornctl \
  /etc/shorthorn/fused.conf /etc/shorthorn/replicad.conf \
  /usr/share/dbus-1/system.d/org.shorthorn.Storage1.conf \
  /usr/share/dbus-1/interfaces/org.shorthorn.Storage1.Manager.xml \
  /usr/share/dbus-1/interfaces/org.shorthorn.Storage1.Volume.xml \
  /usr/share/bash-completion/completions/shorthornctl \
  /usr/share/man/man1/shorthornctl.1.gz /usr/share/man/man8/shorthorn-fused.8.gz \
  /usr/share/man/man8/shorthorn-replicad.8.gz /usr/share/man/man5/shorthorn-fused.conf.5.gz \
  /usr/share/man/man5/shorthorn-replicad.conf.5.gz; do
  grep -qxF "$path" "$WORK/files.txt" || fail "$path is not in the packages"
  [[ -e $path ]] || fail "$path is listed but not installed"
done
for conf in /etc/shorthorn/fused.conf /etc/shorthorn/replicad.conf; do
  dpkg-query -W -f='${Conffiles}\n' shorthorn shorthorn-replicad | grep -q " $conf " ||
    fail "$conf is not a conffile"
done
getent passwd shorthorn-replicad >/dev/null || fail "system user shorthorn-replicad was not created"
getent group shorthorn >/dev/null || fail "group shorthorn was not created"
[[ -f /etc/shorthorn/cluster.key ]] || fail "postinst did not make /etc/shorthorn/cluster.key"
key_mode=$(stat -c '%a %U' /etc/shorthorn/cluster.key)
[[ $key_mode == "600 root" ]] || fail "/etc/shorthorn/cluster.key is '$key_mode', expected '600 root'"
log "ok: binaries, conffiles, man pages, completion, D-Bus files, user and group in place"

unit_file() {
  local path
  path=$(grep -E "/systemd/system/$1\$" "$WORK/files.txt" | head -n 1)
  [[ -n $path && -f $path ]] || fail "unit $1 is not installed"
  echo "$path"
}
# unit_value UNIT KEY: the last value of KEY= in the installed unit.
unit_value() { sed -n "s/^$2=//p" "$(unit_file "$1")" | tail -n 1; }

# ---------------------------------------------------------------- the bus

# Debian's system bus configuration with our own socket: the installed
# policy file is read from /usr/share/dbus-1/system.d as on a real host.
BUS_SOCKET=$WORK/bus/system_bus_socket
dbus-daemon --config-file=/usr/share/dbus-1/system.conf --address="unix:path=$BUS_SOCKET" \
  --nofork --nopidfile --nosyslog >"$WORK/logs/dbus.log" 2>&1 </dev/null 9>&- &
PIDS[dbus]=$!
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$BUS_SOCKET"
for ((i = 0; i < 100; i++)); do
  [[ -S $BUS_SOCKET ]] && busctl --system status org.freedesktop.DBus >/dev/null 2>&1 && break
  _pid_alive "${PIDS[dbus]}" || fail "dbus-daemon exited; see logs/dbus.log"
  sleep 0.1
done
((i < 100)) || fail "the private system bus did not come up"
log "system bus (Debian's system.conf) at $DBUS_SYSTEM_BUS_ADDRESS"

# ---------------------------------------------------------------- daemons

# caps_available "CAP_A CAP_B": those of the capabilities (as a unit names
# them) that the bounding set of this shell still has, as setpriv names them
# (containers may lack some, e.g. cap_sys_resource).
caps_available() {
  local cap out=() names
  read -r -a names <<<"${1//CAP_/}"
  for cap in "${names[@]}"; do
    cap=${cap,,}
    if setpriv --bounding-set=-all,+"$cap" -- grep -q '^CapBnd:[[:space:]]*0*[1-9a-f]' /proc/self/status 2>/dev/null; then
      out+=("$cap")
    else
      warn "this machine's bounding set lacks $cap; starting without it"
    fi
  done
  echo "${out[*]}"
}

# cap_list CAP...: "-all,+cap1,+cap2" for setpriv ("-all" for none).
cap_list() {
  local cap text=-all
  for cap in "$@"; do text+=",+$cap"; done
  echo "$text"
}

# start_unit NAME UNIT: runs the unit's ExecStart= as the unit would.
start_unit() {
  local name=$1 unit=$2 exec user group dir mode nnp runner=() caps=() ambient=()
  exec=$(unit_value "$unit" ExecStart)
  [[ -n $exec ]] || fail "$unit has no ExecStart="
  user=$(unit_value "$unit" User)
  group=$(unit_value "$unit" Group)
  # StateDirectory= and RuntimeDirectory=: parents root-owned 0755, the
  # directory itself with the given mode, owned by User=/Group=.
  local kind base
  for kind in State Runtime; do
    [[ $kind == State ]] && base=/var/lib || base=/run
    for dir in $(unit_value "$unit" "${kind}Directory"); do
      mode=$(unit_value "$unit" "${kind}DirectoryMode")
      local path=$base/$dir part=$base
      for segment in ${dir//\// }; do
        part=$part/$segment
        if [[ ! -d $part ]]; then
          mkdir -m 0755 "$part"
          CREATED_DIRS+=("$part")
        fi
      done
      chmod "${mode:-0755}" "$path"
      [[ -z $user ]] || chown "$user:${group:-$user}" "$path"
    done
  done
  nnp=$(unit_value "$unit" NoNewPrivileges)
  read -r -a caps <<<"$(caps_available "$(unit_value "$unit" CapabilityBoundingSet)")"
  read -r -a ambient <<<"$(caps_available "$(unit_value "$unit" AmbientCapabilities)")"
  # LoadCredential=ID:PATH: a copy of PATH readable by the service's user
  # only, in the directory $CREDENTIALS_DIRECTORY names.
  local creds credential env=(env)
  creds=$(unit_value "$unit" LoadCredential)
  if [[ -n $creds ]]; then
    local cred_dir=$WORK/credentials/$name
    mkdir -p "$cred_dir"
    for credential in $creds; do
      [[ -r ${credential#*:} ]] || fail "$unit: LoadCredential= source ${credential#*:} is missing"
      install -m 0400 "${credential#*:}" "$cred_dir/${credential%%:*}"
    done
    chmod 0500 "$cred_dir"
    [[ -z $user ]] || chown -R "$user:${group:-$user}" "$cred_dir"
    env+=("CREDENTIALS_DIRECTORY=$cred_dir")
  fi
  local extra_groups
  extra_groups=$(unit_value "$unit" SupplementaryGroups)
  runner=(setpriv)
  [[ $nnp != yes ]] || runner+=(--no-new-privs)
  runner+=("--bounding-set=$(cap_list "${caps[@]}")")
  if [[ -n $extra_groups ]]; then
    runner+=("--groups=${extra_groups// /,}")
    [[ -n $user ]] || runner+=(--regid=0 --reuid=0)
  fi
  if [[ -n $user ]]; then
    runner+=(--reuid="$user" --regid="${group:-$user}")
    [[ -n $extra_groups ]] || runner+=(--init-groups)
    if ((${#ambient[@]})); then
      runner+=("--inh-caps=$(cap_list "${ambient[@]}")" "--ambient-caps=$(cap_list "${ambient[@]}")")
    fi
  fi
  log "starting $unit: ${runner[*]} -- $exec"
  # shellcheck disable=SC2086  # ExecStart= is split into words, as systemd does
  "${env[@]}" "${runner[@]}" -- $exec >"$WORK/logs/$name.log" 2>&1 </dev/null 9>&- &
  PIDS[$name]=$!
}

start_unit replicad shorthorn-replicad.service
for ((i = 0; i < 300; i++)); do
  _pid_alive "${PIDS[replicad]}" || fail "shorthorn-replicad exited; see logs/replicad.log"
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
((i < 300)) || fail "shorthorn-replicad does not listen on 127.0.0.1:$PORT"
replicad_user=$(ps -o user= -p "${PIDS[replicad]}" | tr -d ' ')
[[ $replicad_user == shorthorn-replicad ]] || fail "replicad runs as '$replicad_user'"
grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/${PIDS[replicad]}/status" || fail "replicad lacks NoNewPrivs"
log "ok: shorthorn-replicad (pid ${PIDS[replicad]}) runs as $replicad_user on port $PORT"

start_unit fused shorthorn-fused.service
for ((i = 0; i < 300; i++)); do
  _pid_alive "${PIDS[fused]}" || fail "shorthorn-fused exited; see logs/fused.log"
  shorthornctl volume list >/dev/null 2>&1 && break
  sleep 0.1
done
((i < 300)) || fail "shorthorn-fused does not answer on the bus"
log "ok: shorthorn-fused (pid ${PIDS[fused]}) owns org.shorthorn.Storage1 under the installed policy"

# ---------------------------------------------------------------- the cycle

# ctl EXPECTED_STATUS ARGS...: runs the installed shorthornctl; its stdout
# is in OUT, its stderr in ERR.
OUT="" ERR=""
ctl() {
  local expected=$1 rc=0
  shift
  OUT=$(shorthornctl "$@" 2>"$WORK/stderr") || rc=$?
  ERR=$(cat "$WORK/stderr")
  ((rc == expected)) || fail "shorthornctl $*: exit status $rc, expected $expected; stderr: $ERR"
  if ((expected != 0)); then
    [[ $ERR == "shorthornctl: "* ]] || fail "shorthornctl $*: stderr '$ERR' lacks 'shorthornctl: '"
    log "ok: shorthornctl $* -> exit $rc: ${ERR#shorthornctl: }"
  fi
}
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }

ctl 0 --version
[[ $OUT == "shorthornctl 0.1.0" ]] || fail "--version printed '$OUT'"
ctl 2 volume create "$VOLUME" --size 10GB
ctl 0 --json volume list
[[ $OUT == "[]" ]] || fail "volume list --json on an empty daemon printed '$OUT'"

ctl 0 volume create "$VOLUME" --size "$SIZE" --replica "127.0.0.1:$PORT"
log "ok: $OUT"
ctl 4 volume create "$VOLUME" --size "$SIZE"
ctl 0 --json volume show "$VOLUME"
for want in "\"name\":\"$VOLUME\"" "\"size\":$SIZE_BYTES" '"state":"detached"' \
  "\"address\":\"127.0.0.1:$PORT\""; do
  [[ $OUT == *"$want"* ]] || fail "volume show --json lacks $want: $OUT"
done

# Authorization through the installed bus policy: anyone reads, only root or
# group shorthorn changes.
rc=0
as_nobody shorthornctl volume list >/dev/null 2>&1 || rc=$?
((rc == 0)) || fail "user nobody cannot list volumes (exit $rc)"
rc=0
as_nobody shorthornctl volume attach "$VOLUME" >/dev/null 2>"$WORK/stderr" || rc=$?
((rc == 7)) || fail "user nobody attaching: exit $rc, expected 7 (NotAuthorized): $(cat "$WORK/stderr")"
log "ok: user nobody may list but not attach (exit 7: $(cat "$WORK/stderr"))"
gid=$(getent group shorthorn | cut -d: -f3)
rc=0
setpriv --reuid=65534 --regid=65534 --groups="$gid" -- \
  shorthornctl volume create "${VOLUME}-grp" --size 16M >/dev/null 2>"$WORK/stderr" || rc=$?
((rc == 0)) || fail "a member of group shorthorn cannot create a volume (exit $rc): $(cat "$WORK/stderr")"
ctl 0 volume delete "${VOLUME}-grp"
log "ok: a member of group shorthorn may create volumes"

ctl 0 volume attach "$VOLUME" --wait
dev=$OUT
# The installed units: replicad's Unix socket in its RuntimeDirectory, and
# fused (without CAP_DAC_OVERRIDE) connected through it rather than TCP.
sock=/run/shorthorn-replicad/$PORT.sock
[[ -S $sock ]] || fail "shorthorn-replicad made no Unix socket $sock"
unix=$(ss -xH state connected | grep -c -F " $sock " || true)
((unix >= 4)) || fail "fused has $unix connections on $sock, want 4 (connections-per-replica)"
log "ok: fused reaches the local replicad through $sock ($unix connections)"
[[ $dev == /dev/loop* && -b $dev ]] || fail "volume attach printed '$dev', not a loop device"
[[ $(readlink -f "$DEV_DIR/$VOLUME") == "$dev" ]] || fail "$DEV_DIR/$VOLUME does not point to $dev"
ctl 0 --json volume show "$VOLUME"
[[ $OUT == *'"state":"attached"'* && $OUT == *"\"loop_device\":\"$dev\""* ]] ||
  fail "volume show --json after attach: $OUT"
log "ok: attached as $dev"

mkfs.ext4 -q -F "$dev"
mount "$dev" "$WORK/mnt"
dd if=/dev/urandom of="$WORK/mnt/data" bs=1M count=32 status=none
mkdir "$WORK/mnt/dir" && echo "hello from the package test" >"$WORK/mnt/dir/note"
(cd "$WORK/mnt" && sha256sum data dir/note) >"$WORK/sums"
sync
ctl 6 volume detach "$VOLUME"  # mounted: Busy
ctl 6 volume delete "$VOLUME"  # attached: Busy
umount "$WORK/mnt"
ctl 0 volume detach "$VOLUME"

# Read back through a fresh attach: the data came from the replica.
ctl 0 volume attach "$VOLUME"
dev=$OUT
mount "$dev" "$WORK/mnt"
(cd "$WORK/mnt" && sha256sum -c --quiet "$WORK/sums") || fail "data read back differs"
umount "$WORK/mnt"
log "ok: 32 MiB and a small file read back with the same sha256 after detach and attach"
ctl 0 --json volume detach "$VOLUME"
[[ $OUT == *'"state":"detached"'* ]] || fail "volume detach --json printed $OUT"

ctl 0 volume list
log "volume list:"
printf '%s\n' "$OUT" | sed 's/^/  /'
[[ $OUT == *"$VOLUME"*"256 MiB"*detached* ]] || fail "volume list does not show the volume: $OUT"
ctl 0 --json volume delete "$VOLUME"
[[ $OUT == *'"deleted":true'* ]] || fail "volume delete --json printed $OUT"
ctl 3 volume show "$VOLUME"
ctl 3 --json volume attach "$VOLUME"
[[ $OUT == *'"kind":"NotFound"'* ]] || fail "--json error output: $OUT"

# ---------------------------------------------------------------- stop, purge

stop fused 60
((STATUS == 0)) || fail "shorthorn-fused exited with status $STATUS on SIGTERM"
stop replicad 30
((STATUS == 0)) || fail "shorthorn-replicad exited with status $STATUS on SIGTERM"
# What systemd does when the units stop: RuntimeDirectory= goes.
for dir in $(unit_value shorthorn-fused.service RuntimeDirectory); do
  mountpoint -q "/run/$dir/volumes" && fail "FUSE mount still there after fused stopped"
  rm -rf --one-file-system "/run/${dir%%/*}"
done

log "purging the packages"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q shorthorn shorthorn-replicad \
  >>"$WORK/logs/apt.log" 2>&1 || fail "apt-get purge failed; see logs/apt.log"
INSTALLED=0
stop dbus 10

left=()
while read -r path; do
  [[ -n $path ]] || continue
  # Shared directories (/usr, /etc, /lib, /usr/share/man/man1, ...) stay.
  if [[ ! -d $path ]] && [[ -e $path || -L $path ]]; then left+=("$path"); fi
  case $path in
    /etc/shorthorn | /usr/share/doc/shorthorn | /usr/share/doc/shorthorn-replicad)
      [[ ! -e $path ]] || left+=("$path") ;;
  esac
done <"$WORK/files.txt"
for path in /etc/shorthorn /var/lib/shorthorn/fused /var/lib/shorthorn/replicas \
  /etc/systemd/system/multi-user.target.wants/shorthorn-fused.service \
  /etc/systemd/system/multi-user.target.wants/shorthorn-replicad.service \
  /var/lib/systemd/deb-systemd-helper-enabled/shorthorn-fused.service.dsh-also \
  /var/lib/systemd/deb-systemd-helper-enabled/shorthorn-replicad.service.dsh-also; do
  [[ ! -e $path && ! -L $path ]] || left+=("$path")
done
mountpoint -q "$FUSE_MOUNT" 2>/dev/null && left+=("mount $FUSE_MOUNT")
[[ -z $(our_loops) ]] || left+=("loop devices $(our_loops | tr '\n' ' ')")
pgrep -f '^(/usr/sbin/shorthorn-(fused|replicad)|shorthorn-fuse-holder) ' >/dev/null &&
  left+=("a shorthorn daemon process")
[[ -z $(find "$DEV_DIR" -mindepth 1 2>/dev/null) ]] || left+=("links in $DEV_DIR")
((${#left[@]} == 0)) || fail "left after purge: ${left[*]}"
log "ok: nothing of the packages is left after purge (user shorthorn-replicad and group shorthorn stay, as Debian policy allows)"

echo "PASS $TEST_NAME"
