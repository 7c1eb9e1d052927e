#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# bench/run.sh: Shorthorn's side-by-side benchmark (issue 5, DESIGN §12). As
# root, in one run on one machine, it measures with the fio jobs of
# ../shared/bench (iops, bandwidth, latency, flush):
#
#   raw          a preconditioned file on the local disk (the work dir's disk)
#   loop         a loop device (direct I/O, 4096-byte sectors) on that file
#   fuse-null    a loop device on bench/fuse_floor's FUSE file with its null
#                backend (no I/O, reads return zeros): the ceiling, what
#                fused's FUSE frontend, FUSE and the loop device cost alone
#   fuse-floor   a loop device on bench/fuse_floor's FUSE file (fused's own
#                FUSE frontend) backed through io_uring by a file on the same
#                disk (the best a loop on Shorthorn's FUSE file does)
#   shorthorn-N  a volume with N = 1, 2, 3 replicas (replicads on 127.0.0.1,
#                data on the same disk; private dbus-daemon; fused)
#
# each on the block device ("blk") and on a file in ext4 mounted on it ("fs");
# raw only as the file, fuse-null only as the device (ext4 cannot live on a
# device that reads zeros). It prints ONE table (IOPS, MiB/s, mean and p99
# latency, ratio to raw and to the FUSE floor, daemon CPU seconds per GiB
# and microseconds per I/O, the machine's context switches per I/O),
# other timings (snapshot create, the disk's sequential write speed), and
# writes the same as JSON to <results-dir>/<timestamp>.json.
#
#   sudo bench/run.sh            full: 4 GiB per target, the jobs' own 5 s
#                                ramp / 20 s run, every job and config (~1 h)
#   sudo bench/run.sh --quick    CI: 256 MiB, 1 s ramp / 2 s run, 4k
#                                randwrite QD64 and 128k read, raw,
#                                fuse-null, fuse-floor, shorthorn-1/2
#                                (< 3 min)
#   bench/run.sh --help          every option
#
# Exits 0 when every fio run finished with 0 errors and non-zero IOPS and the
# JSON was written and parses; 77 (skipped) when not root or fio is missing;
# 1 otherwise. Everything (files, mounts, loop devices, daemons) lives under
# one temp dir in --work-dir and is torn down by a trap, even on failure.
# The daemons are managed with tests/integration/lib.sh.
#
# Environment: SHORTHORN_BUILD_DIR (default <repo>/build; built with
# scripts/install-deps.sh + cmake when a binary is missing),
# SHORTHORN_BENCH_JOBS (the fio job dir; default <repo>/../shared/bench),
# SHORTHORN_TEST_LOG_LEVEL (daemon log level, default warning here).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_REPO=$(cd "$BENCH_DIR/.." && pwd)
export SHORTHORN_TEST_LOG_LEVEL=${SHORTHORN_TEST_LOG_LEVEL:-warning}
# shellcheck source=../tests/integration/lib.sh
source "$BENCH_REPO/tests/integration/lib.sh"
TEST_NAME=bench

# ---------------------------------------------------------------- options

MODE=full
SIZE_MIB=""
RESULTS_DIR=$BENCH_DIR/results
WORK_PARENT=/var/tmp
CONFIGS=""
JOBS=""
RAMP_OVERRIDE=""
RUNTIME_OVERRIDE=""
DO_BUILD=1
DROP_CACHES=1
FLOOR_OPTS=""
SNAPSHOTS=""

usage() {
  cat <<EOF
usage: sudo bench/run.sh [--quick] [options]
  --quick               CI mode: 256 MiB, ramp 1 s, runtime 2 s, jobs
                        iops/randwrite and bandwidth/read, configs raw,
                        fuse-null, fuse-floor, shorthorn-1, shorthorn-2
  --size MIB            test size per target (default 4096, quick 256)
  --configs LIST        comma-separated subset of raw,loop,fuse-null,
                        fuse-floor,shorthorn-1,shorthorn-2,shorthorn-3
  --jobs LIST           comma-separated profile/section, e.g.
                        iops/randwrite,latency/randwrite (profiles: iops,
                        bandwidth, latency, flush)
  --ramp SEC, --runtime SEC
                        override the job files' ramp_time/runtime (printed)
  --results-dir DIR     where <timestamp>.json goes (default bench/results)
  --work-dir DIR        parent of the temp dir holding every test file; its
                        disk is the one measured (default /var/tmp)
  --floor-opts "OPTS"   extra fuse_floor options for fuse-floor and
                        fuse-null (e.g. "--threads 16")
  --snapshots N         snapshot-create samples (default 10, quick 3)
  --no-build            never build; fail if a binary is missing
  --no-drop-caches      do not sync and drop the page cache before each job
EOF
}

parse_args() {
  while (($#)); do
    case $1 in
      --quick) MODE=quick ;;
      --size) SIZE_MIB=$2; shift ;;
      --configs) CONFIGS=$2; shift ;;
      --jobs) JOBS=$2; shift ;;
      --ramp) RAMP_OVERRIDE=$2; shift ;;
      --runtime) RUNTIME_OVERRIDE=$2; shift ;;
      --results-dir) RESULTS_DIR=$2; shift ;;
      --work-dir) WORK_PARENT=$2; shift ;;
      --floor-opts) FLOOR_OPTS=$2; shift ;;
      --snapshots) SNAPSHOTS=$2; shift ;;
      --no-build) DO_BUILD=0 ;;
      --no-drop-caches) DROP_CACHES=0 ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; printf 'run.sh: unknown option %s\n' "$1" >&2; exit 2 ;;
    esac
    shift
  done
  if [[ $MODE == quick ]]; then
    SIZE_MIB=${SIZE_MIB:-256}
    CONFIGS=${CONFIGS:-raw,fuse-null,fuse-floor,shorthorn-1,shorthorn-2}
    JOBS=${JOBS:-iops/randwrite,bandwidth/read}
    RAMP_OVERRIDE=${RAMP_OVERRIDE:-1}
    RUNTIME_OVERRIDE=${RUNTIME_OVERRIDE:-2}
    SNAPSHOTS=${SNAPSHOTS:-3}
  else
    SIZE_MIB=${SIZE_MIB:-4096}
    CONFIGS=${CONFIGS:-raw,loop,fuse-null,fuse-floor,shorthorn-1,shorthorn-2,shorthorn-3}
    SNAPSHOTS=${SNAPSHOTS:-10}
  fi
  if ! [[ $SIZE_MIB =~ ^[0-9]+$ ]] || ((SIZE_MIB < 64)); then
    echo "run.sh: --size must be a number of MiB >= 64" >&2
    exit 2
  fi
  [[ -z $RAMP_OVERRIDE || $RAMP_OVERRIDE =~ ^[0-9]+$ ]] || { echo "run.sh: bad --ramp" >&2; exit 2; }
  [[ -z $RUNTIME_OVERRIDE || $RUNTIME_OVERRIDE =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: bad --runtime" >&2; exit 2; }
  [[ $SNAPSHOTS =~ ^[0-9]+$ ]] || { echo "run.sh: bad --snapshots" >&2; exit 2; }
  local c
  IFS=, read -r -a CONFIG_LIST <<<"$CONFIGS"
  for c in "${CONFIG_LIST[@]}"; do
    [[ $c =~ ^(raw|loop|fuse-null|fuse-floor|shorthorn-[123])$ ]] || { echo "run.sh: unknown config '$c'" >&2; exit 2; }
  done
}

# ---------------------------------------------------------------- set-up

# The fio job files: ../shared/bench from the repository root.
locate_jobs() {
  JOBS_SRC=${SHORTHORN_BENCH_JOBS:-$BENCH_REPO/../shared/bench}
  local f p s j
  for f in iops.fio bandwidth.fio latency.fio flush.fio common.fio.inc; do
    if [[ ! -f $JOBS_SRC/$f ]]; then
      printf 'FAIL bench: fio job file %s not found in %s (expected ../shared/bench next to the repository; set SHORTHORN_BENCH_JOBS=DIR)\n' \
        "$f" "$JOBS_SRC" >&2
      exit 1
    fi
  done
  JOBS_SRC=$(cd "$JOBS_SRC" && pwd)
  if [[ -z $JOBS ]]; then
    # Every job of every profile, in the files' order.
    local list=()
    for p in iops bandwidth latency flush; do
      while read -r s; do
        [[ $s == global ]] || list+=("$p/$s")
      done < <(sed -n 's/^\[\(.*\)\]$/\1/p' "$JOBS_SRC/$p.fio")
    done
    JOBS=$(IFS=,; echo "${list[*]}")
  fi
  IFS=, read -r -a JOB_LIST <<<"$JOBS"
  for j in "${JOB_LIST[@]}"; do
    p=${j%%/*} s=${j#*/}
    if ! [[ -f $JOBS_SRC/$p.fio ]] || ! grep -qx "\[$s\]" "$JOBS_SRC/$p.fio"; then
      echo "run.sh: no job [$s] in $JOBS_SRC/$p.fio" >&2
      exit 2
    fi
  done
}

# Builds what the configs need (the daemons, fuse_floor) when missing.
ensure_built() {
  BUILD_DIR=${SHORTHORN_BUILD_DIR:-$BENCH_REPO/build}
  NEED_DAEMONS=0 NEED_FLOOR=0
  local missing=() c
  for c in "${CONFIG_LIST[@]}"; do
    case $c in
      shorthorn-*) NEED_DAEMONS=1 ;;
      fuse-*) NEED_FLOOR=1 ;;
    esac
  done
  if ((NEED_DAEMONS)); then
    [[ -x $BUILD_DIR/fused/shorthorn-fused ]] || missing+=(shorthorn-fused)
    [[ -x $BUILD_DIR/replicad/shorthorn-replicad ]] || missing+=(shorthorn-replicad)
  fi
  if ((NEED_FLOOR)); then
    [[ -x $BUILD_DIR/bench/fuse_floor ]] || missing+=(fuse_floor)
  fi
  if ((${#missing[@]})); then
    ((DO_BUILD)) || { echo "FAIL bench: ${missing[*]} missing under $BUILD_DIR and --no-build" >&2; exit 1; }
    echo "bench: building ${missing[*]} in $BUILD_DIR (scripts/install-deps.sh, cmake)"
    bash "$BENCH_REPO/scripts/install-deps.sh"
    cmake -S "$BENCH_REPO" -B "$BUILD_DIR"
    cmake --build "$BUILD_DIR" -j"$(nproc)" --target "${missing[@]}"
  fi
  FLOOR_BIN=$BUILD_DIR/bench/fuse_floor
}

# Like lib.sh's init_test, but the temp dir is on the disk under test.
bench_init() {
  requires_root
  requires_dev /dev/fuse /dev/loop-control
  requires_cmd fio python3 dbus-daemon busctl gdbus setpriv losetup mkfs.ext4 blockdev \
    mount umount mountpoint fusermount3 fuser ss findmnt fallocate
  locate_jobs
  ensure_built
  if ((NEED_DAEMONS)); then
    REPLICAD_BIN=$(find_binary shorthorn-replicad)
    FUSED_BIN=$(find_binary shorthorn-fused)
  fi
  mkdir -p "$WORK_PARENT" "$RESULTS_DIR"
  [[ $(findmnt -n -o FSTYPE --target "$WORK_PARENT") != tmpfs ]] ||
    { echo "FAIL bench: $WORK_PARENT is on tmpfs; choose a disk with --work-dir" >&2; exit 1; }

  TEST_DIR=$(mktemp -d "$WORK_PARENT/shorthorn-bench.XXXXXX")
  set_test_dirs
  DATA_DIR=$TEST_DIR/data
  FIO_DIR=$TEST_DIR/fio
  mkdir -p "$DATA_DIR" "$FIO_DIR" "$TEST_DIR/jobs"
  trap _on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap '_on_err "$?" "$LINENO" "$BASH_COMMAND"' ERR

  # The job files, copied; --quick (or --ramp/--runtime) rewrites the copy.
  cp "$JOBS_SRC"/*.fio "$JOBS_SRC"/common.fio.inc "$TEST_DIR/jobs/"
  [[ -z $RAMP_OVERRIDE ]] || sed -i "s/^ramp_time=.*/ramp_time=${RAMP_OVERRIDE}s/" "$TEST_DIR/jobs/common.fio.inc"
  [[ -z $RUNTIME_OVERRIDE ]] || sed -i "s/^runtime=.*/runtime=${RUNTIME_OVERRIDE}s/" "$TEST_DIR/jobs/common.fio.inc"
  RAMP_S=$(sed -n 's/^ramp_time=\([0-9]*\)s\?$/\1/p' "$TEST_DIR/jobs/common.fio.inc")
  RUNTIME_S=$(sed -n 's/^runtime=\([0-9]*\)s\?$/\1/p' "$TEST_DIR/jobs/common.fio.inc")
  [[ -n $RAMP_S && -n $RUNTIME_S ]] || fail "cannot read ramp_time/runtime (in seconds) from common.fio.inc"

  # Sizes: the test region is SIZE; devices are larger so ext4 on them holds
  # a SIZE file.
  SIZE=$((SIZE_MIB * MiB))
  local head=$((SIZE_MIB / 8))
  ((head >= 128)) || head=128
  DEV_SIZE=$(((SIZE_MIB + head) * MiB))
  local need_mib=$(((SIZE_MIB + head) * 4 + 1024)) avail_mib
  avail_mib=$(($(df --output=avail -k "$TEST_DIR" | tail -1) / 1024))
  ((avail_mib >= need_mib)) || fail "needs ${need_mib} MiB free under $WORK_PARENT, has ${avail_mib} MiB"
  : >"$TEST_DIR/runs.jsonl"
  : >"$TEST_DIR/timings.jsonl"
}

# ---------------------------------------------------------------- measuring

# cpu_ticks NAME...: JSON object {name: utime+stime ticks} of the daemons.
cpu_ticks() {
  local name pid stat fields sep="" out="{"
  for name in "$@"; do
    pid=${DAEMON_PIDS[$name]}
    stat=$(cat "/proc/$pid/stat")
    read -r -a fields <<<"${stat##*) }"
    # fields[0] is state (field 3); utime and stime are fields 14 and 15.
    out+="$sep\"$name\": $((fields[11] + fields[12]))"
    sep=", "
  done
  echo "$out}"
}

drop_caches() {
  ((DROP_CACHES)) || return 0
  sync
  echo 3 >/proc/sys/vm/drop_caches
}

# assert_daemons_alive NAME...: fails at once (with logs) if one died.
assert_daemons_alive() {
  local name
  for name in "$@"; do _check_alive "$name"; done
}

# context_switches: the machine's context switches since boot (/proc/stat).
context_switches() { awk '$1 == "ctxt" { print $2 }' /proc/stat; }

# run_job CONFIG TARGET FILE PROFILE SECTION DAEMON...: one fio job; records
# its JSON, the daemons' CPU ticks and the machine's context switches over
# the measured window (sampled when the ramp ends and when fio ends).
run_job() {
  local config=$1 target=$2 file=$3 profile=$4 section=$5
  shift 5
  local out="$FIO_DIR/$config.$target.$profile.$section.json" pid status=0 c0="" c1="" cpu=null load
  local cs0 cs1
  drop_caches
  load=$(cut -d' ' -f1 /proc/loadavg)
  fio --output-format=json --output="$out" --filename="$file" --size="$SIZE" \
    --lat_percentiles=1 --section="$section" "$TEST_DIR/jobs/$profile.fio" \
    >"$out.log" 2>&1 </dev/null &
  pid=$!
  sleep "$RAMP_S"
  cs0=$(context_switches)
  (($# == 0)) || c0=$(cpu_ticks "$@")
  wait "$pid" || status=$?
  cs1=$(context_switches)
  if (($#)); then
    c1=$(cpu_ticks "$@")
    cpu=$(python3 -c 'import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); print(json.dumps({k:b[k]-a[k] for k in a}))' "$c0" "$c1")
  fi
  printf '{"config": "%s", "target": "%s", "profile": "%s", "section": "%s", "fio_json": "%s", "status": %d, "cpu_ticks": %s, "ctxt": %d, "load1": %s}\n' \
    "$config" "$target" "$profile" "$section" "$out" "$status" "$cpu" "$((cs1 - cs0))" "$load" >>"$TEST_DIR/runs.jsonl"
  local summary
  summary=$(python3 -c '
import json,sys
t=open(sys.argv[1]).read(); d=json.loads(t[t.find("{"):])["jobs"][0]
iops=d["read"]["iops"]+d["write"]["iops"]; e=d["error"]; print(f"{iops:,.0f} IOPS, error {e}")' "$out" 2>/dev/null) ||
    summary="no result (fio status $status; see below)"
  log "$config $target $profile/$section: $summary"
  if ((status != 0)); then
    warn "fio exited with status $status: $(tail -n 5 "$out.log")"
  fi
  (($# == 0)) || assert_daemons_alive "$@"
}

# precondition CONFIG TARGET FILE BYTES: sequential 1 MiB direct write of the
# whole region, so read jobs read data, not holes.
precondition() {
  local config=$1 target=$2 file=$3 bytes=$4
  local out="$FIO_DIR/$config.$target.precondition.json"
  fio --name=precondition --filename="$file" --size="$bytes" --rw=write --bs=1M \
    --iodepth=16 --ioengine=libaio --direct=1 --end_fsync=1 \
    --output-format=json --output="$out" >"$out.log" 2>&1 </dev/null ||
    fail "precondition of $config $target ($file) failed: $(tail -n 5 "$out.log")"
  log "$config $target: preconditioned $((bytes / MiB)) MiB"
  PRECONDITION_JSON=$out
}

# run_target CONFIG TARGET FILE DAEMON...: precondition, then every job.
run_target() {
  local config=$1 target=$2 file=$3 job
  shift 3
  precondition "$config" "$target" "$file" "$SIZE"
  for job in "${JOB_LIST[@]}"; do
    run_job "$config" "$target" "$file" "${job%%/*}" "${job#*/}" "$@"
  done
}

# make_fs DEVICE DIR: ext4 (no discard at mkfs, tables written now so no
# lazy init runs during the jobs), mounted at DIR.
make_fs() {
  local dev=$1 dir=$2
  mkfs.ext4 -q -F -b 4096 -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$dev" ||
    fail "mkfs.ext4 $dev failed"
  mkdir -p "$dir"
  mount "$dev" "$dir" || fail "mount $dev at $dir failed"
}

# run_device CONFIG DEVICE DAEMON...: the blk target, then ext4 and the fs
# target; leaves the filesystem mounted at $FS_DIR/CONFIG.
run_device() {
  local config=$1 dev=$2
  shift 2
  run_target "$config" blk "$dev" "$@"
  make_fs "$dev" "$FS_DIR/$config"
  run_target "$config" fs "$FS_DIR/$config/fio.dat" "$@"
}

unmount_fs() {
  local dir=$FS_DIR/$1
  if mountpoint -q "$dir"; then
    umount "$dir" || fail "umount $dir failed"
  fi
}

# ---------------------------------------------------------------- configurations

config_raw() {
  local file=$DATA_DIR/raw.img
  fallocate -l "$DEV_SIZE" "$file"
  # The whole file: it is the loop config's device too. Its speed is the
  # disk's sequential write speed in this run.
  precondition raw file "$file" "$DEV_SIZE"
  printf '{"label": "raw disk sequential write (1 MiB, QD16, O_DIRECT, %d MiB, end fsync)", "kind": "fio_throughput", "fio_json": "%s", "required": true}\n' \
    "$((DEV_SIZE / MiB))" "$PRECONDITION_JSON" >>"$TEST_DIR/timings.jsonl"
  local job
  for job in "${JOB_LIST[@]}"; do
    run_job raw file "$file" "${job%%/*}" "${job#*/}"
  done
}

config_loop() {
  local file=$DATA_DIR/raw.img dev
  [[ -f $file ]] || { fallocate -l "$DEV_SIZE" "$file"; precondition loop file "$file" "$DEV_SIZE"; }
  dev=$(losetup -f --show --direct-io=on --sector-size 4096 "$file") || fail "losetup on $file failed"
  log "loop: $dev on $file"
  run_device loop "$dev"
  unmount_fs loop
  losetup -d "$dev" || fail "losetup -d $dev failed"
  rm -f "$file"
}

# config_fuse CONFIG: fuse_floor serving one file through fused's FUSE
# frontend, a loop device on it, the jobs. fuse-floor: the io_uring file
# backend on a file of the work disk, blk and fs targets. fuse-null: the
# null backend (no I/O, reads return zeros), blk only (ext4 would read back
# zeros). Its temp state dir and its descriptor holder live under
# TEST_DIR/CONFIG, so lib.sh's leftover check sees them; both must be gone
# after it stops.
config_fuse() {
  local config=$1 dir=$TEST_DIR/$1 file="" backend name dev i
  local mnt=$dir/mnt log=$LOG_DIR/$1.log args
  if [[ $config == fuse-null ]]; then
    backend=null name=null
    args=(--backend null --size "$DEV_SIZE")
  else
    backend=file name=floor file=$DATA_DIR/floor.img
    rm -f "$DATA_DIR/raw.img"  # done with raw and loop: keep the disk's free space
    fallocate -l "$DEV_SIZE" "$file"
    args=(--backend file --backing "$file")
  fi
  mkdir -p "$mnt"
  # shellcheck disable=SC2086  # FLOOR_OPTS is a list of options
  "$FLOOR_BIN" --mount "$mnt" --name "$name" --tmp-dir "$dir" "${args[@]}" $FLOOR_OPTS \
    >>"$log" 2>&1 </dev/null &
  DAEMON_PIDS[$config]=$!
  for ((i = 0; i < 100; i++)); do
    _check_alive "$config"
    [[ -f $mnt/$name ]] && break
    sleep 0.1
  done
  ((i < 100)) || fail "fuse_floor ($backend) did not serve $mnt/$name within 10s"
  log "$config: $(grep -m 1 'fuse_floor: serving' "$log")"
  dev=$(losetup -f --show --direct-io=on --sector-size 4096 "$mnt/$name") ||
    fail "losetup on $mnt/$name failed"
  # For lib.sh's cleanup: once the FUSE mount is gone, the loop device's
  # backing file reads "/$name", no longer a path under TEST_DIR.
  echo "$dev $name" >>"$TEST_DIR/attached-loops"
  if [[ $config == fuse-null ]]; then
    run_target "$config" blk "$dev" "$config"
  else
    run_device "$config" "$dev" "$config"
    unmount_fs "$config"
  fi
  losetup -d "$dev" || fail "losetup -d $dev failed"
  stop_daemon "$config" 20
  ((DAEMON_STATUS == 0)) || fail "fuse_floor ($backend) exited with status $DAEMON_STATUS; see $log"
  log "$config: $(tail -n 1 "$log")"
  # Nothing of it may stay: the mount, the holder of its /dev/fuse
  # descriptor (which exits when released), its state dir.
  ! mountpoint -q "$mnt" || fail "$config: $mnt still mounted after fuse_floor exited"
  for ((i = 0; i < 30; i++)); do
    [[ -n $(pgrep -f -- "--fuse-fd-holder $dir/") ]] || break
    sleep 0.1
  done
  ((i < 30)) || fail "$config: the FUSE descriptor holder outlived fuse_floor: $(pgrep -fa -- "--fuse-fd-holder $dir/")"
  [[ -z $(find "$dir" -mindepth 1 -maxdepth 1 -name 'fuse_floor.*') ]] ||
    fail "$config: fuse_floor left its state dir under $dir"
  [[ -z $file ]] || rm -f "$file"
}

SHORTHORN_UP=0
start_shorthorn() {
  ((SHORTHORN_UP == 0)) || return 0
  start_bus
  start_replicad r1
  start_replicad r2
  start_replicad r3
  # An S3 server for the backup rate to S3, when installed (its settings
  # reach fused through the environment, so it starts first).
  if [[ -x $S3RVER_BIN ]] && command -v node >/dev/null; then start_s3rver; fi
  start_fused
  SHORTHORN_UP=1
}

# now_us: microseconds, for timing a D-Bus call.
now_us() { echo $(($(date +%s%N) / 1000)); }

# time_snapshots VOLUME: SNAPSHOTS snapshot-create calls on the attached,
# mounted volume, each timed around busctl; beside it busctl's own round
# trip on a property read.
time_snapshots() {
  local vol=$1 i t0 samples=() base=() sep
  for ((i = 0; i < SNAPSHOTS; i++)); do
    t0=$(now_us)
    volume_prop "$vol" Size >/dev/null
    base+=("$(($(now_us) - t0))")
    t0=$(now_us)
    volume_call "$vol" Snapshot 'sa{sv}' "bench-$i" 0 >/dev/null || fail "Snapshot bench-$i of $vol failed"
    samples+=("$(($(now_us) - t0))")
  done
  local to_ms='import sys; print(", ".join(f"{int(x)/1000:.3f}" for x in sys.argv[1:]))'
  printf '{"label": "snapshot create (D-Bus Snapshot on attached %s, ext4 mounted, %d MiB of data; timed around busctl)", "kind": "samples_ms", "samples_ms": [%s], "required": true}\n' \
    "$vol" "$((2 * SIZE_MIB))" "$(python3 -c "$to_ms" "${samples[@]}")" >>"$TEST_DIR/timings.jsonl"
  printf '{"label": "busctl round trip (get-property Size), for comparison", "kind": "samples_ms", "samples_ms": [%s]}\n' \
    "$(python3 -c "$to_ms" "${base[@]}")" >>"$TEST_DIR/timings.jsonl"
  sep=${samples[*]}
  log "snapshot create (us): $sep"
}

# time_rebuild VOLUME: on the attached shorthorn-1 volume with its data and
# snapshots, SetReplicaCount 2 starts a full rebuild onto another replicad;
# timed from the call until Robustness is healthy again, with the bytes the
# rebuild job reports. A fused without SetReplicaCount gets a note instead.
time_rebuild() {
  local vol=$1 t0 secs bytes i methods
  methods=$(busctl --system introspect "$BUS_NAME" "$(volume_path "$vol")" "$VOLUME_IFACE" 2>/dev/null || true)
  if [[ $methods != *SetReplicaCount* ]]; then
    printf '{"label": "rebuild", "kind": "placeholder", "note": "not measured: this shorthorn-fused has no SetReplicaCount"}\n' \
      >>"$TEST_DIR/timings.jsonl"
    return 0
  fi
  t0=$(now_us)
  volume_call "$vol" SetReplicaCount 'ua{sv}' 2 0 >/dev/null || fail "SetReplicaCount 2 on $vol failed"
  for ((i = 0; i < 6000; i++)); do
    [[ $(volume_prop "$vol" Robustness 2>/dev/null) != healthy ]] || break
    sleep 0.1
  done
  ((i < 6000)) || fail "rebuild of $vol not done after 600 s: $(volume_prop "$vol" Replicas)"
  secs=$(python3 -c 'import sys; print((int(sys.argv[2]) - int(sys.argv[1])) / 1e6)' "$t0" "$(now_us)")
  bytes=$(busctl --system --json=short call "$BUS_NAME" "$ROOT_PATH" org.freedesktop.DBus.ObjectManager \
    GetManagedObjects | python3 -c '
import json, sys
total = 0
for path, ifaces in json.load(sys.stdin)["data"][0].items():
    j = ifaces.get("org.shorthorn.Storage1.Job")
    if j and j.get("Volume", {}).get("data") == sys.argv[1] and j.get("Operation", {}).get("data") == "rebuild":
        total += j.get("Bytes", {}).get("data") or 0
print(total)' "$(volume_path "$vol")")
  local source="the rebuild job's Bytes"
  if ((bytes == 0)); then
    # The job does not count bytes (yet): a rebuild copies the allocated
    # extents of the layer chain, which is what ActualSize measures.
    bytes=$(volume_prop "$vol" ActualSize)
    source="ActualSize (the job reported 0 bytes)"
  fi
  log "rebuild of $vol: $bytes bytes ($source) in $secs s"
  printf '{"label": "rebuild (SetReplicaCount 1 -> 2 on attached shorthorn-1, ext4 mounted, idle; bytes from %s)", "kind": "rate", "seconds": %s, "bytes": %s, "required": true}\n' \
    "$source" "$secs" "$bytes" >>"$TEST_DIR/timings.jsonl"
}

# timed_job LABEL CALL...: starts a job, waits for it to complete; sets
# JOB_SECS, JOB_MESSAGE and JOB_TOTAL (its TotalBytes).
timed_job() {
  local label=$1 path t0 state
  shift
  t0=$(now_us)
  path=$("$@" | _unquote) || fail "$label: the call failed"
  state=$(wait_job "$path" 1800)
  JOB_SECS=$(python3 -c 'import sys; print((int(sys.argv[2]) - int(sys.argv[1])) / 1e6)' "$t0" "$(now_us)")
  JOB_MESSAGE=$(busctl --system get-property "$BUS_NAME" "$path" org.shorthorn.Storage1.Job Message | _unquote)
  JOB_TOTAL=$(busctl --system get-property "$BUS_NAME" "$path" org.shorthorn.Storage1.Job TotalBytes | _unquote)
  [[ $state == completed ]] || fail "$label: job $path $state: $JOB_MESSAGE"
}

# time_backup VOLUME DEVICE: fills the (unmounted) volume with SIZE_MIB of
# incompressible data, then times a full backup to a directory target on
# the work disk, an incremental one after 64 MiB more, and a restore of the
# full one into a new volume. Bytes are volume data (what the jobs read or
# wrote), so the rates compare with the raw disk's sequential write.
time_backup() {
  local vol=$1 dev=$2 target="file://$TEST_DIR/backups" url full_url restored=bench-restored
  fio --name=fill --filename="$dev" --rw=write --bs=1M --size="${SIZE_MIB}M" --direct=1 \
    --ioengine=libaio --iodepth=8 --refill_buffers=1 --buffer_compress_percentage=0 \
    --output="$TEST_DIR/fill.out" >/dev/null || fail "filling $vol with fio failed"
  volume_call "$vol" Snapshot 'sa{sv}' bk-full 0 >/dev/null || fail "Snapshot bk-full of $vol failed"
  drop_caches
  timed_job "full backup" volume_call "$vol" Backup 'sa{sv}' bk-full 1 target s "$target"
  full_url=$JOB_MESSAGE
  log "full backup of $vol: $JOB_TOTAL bytes in $JOB_SECS s ($full_url)"
  printf '{"label": "full backup to a directory on the work disk (%d MiB incompressible, shorthorn-1 after its rebuild)", "kind": "rate", "seconds": %s, "bytes": %s, "compare_raw": true, "required": true}\n' \
    "$SIZE_MIB" "$JOB_SECS" "$JOB_TOTAL" >>"$TEST_DIR/timings.jsonl"
  # The same into memory (tmpfs): what the backup does when the disk only
  # has to read, to show what bounds the row above.
  mkdir -p "$TEST_DIR/backups-mem"
  mount -t tmpfs -o size=$((SIZE_MIB * 2 + 256))m tmpfs "$TEST_DIR/backups-mem"
  drop_caches
  timed_job "full backup to tmpfs" volume_call "$vol" Backup 'sa{sv}' bk-full 1 target s \
    "file://$TEST_DIR/backups-mem"
  printf '{"label": "the same full backup to a tmpfs directory (the disk only reads)", "kind": "rate", "seconds": %s, "bytes": %s, "compare_raw": true}\n' \
    "$JOB_SECS" "$JOB_TOTAL" >>"$TEST_DIR/timings.jsonl"
  umount "$TEST_DIR/backups-mem"
  fio --name=more --filename="$dev" --rw=write --bs=1M --size=64M --offset=0 --direct=1 \
    --ioengine=libaio --iodepth=8 --refill_buffers=1 --buffer_compress_percentage=0 \
    --output="$TEST_DIR/more.out" >/dev/null || fail "writing 64 MiB more to $vol failed"
  volume_call "$vol" Snapshot 'sa{sv}' bk-inc 0 >/dev/null || fail "Snapshot bk-inc of $vol failed"
  drop_caches
  timed_job "incremental backup" volume_call "$vol" Backup 'sa{sv}' bk-inc 1 target s "$target"
  url=$JOB_MESSAGE
  log "incremental backup of $vol: $JOB_TOTAL bytes read in $JOB_SECS s ($url)"
  printf '{"label": "incremental backup after 64 MiB rewritten (bytes read: the changed 2 MiB blocks)", "kind": "rate", "seconds": %s, "bytes": %s, "compare_raw": true, "required": true}\n' \
    "$JOB_SECS" "$JOB_TOTAL" >>"$TEST_DIR/timings.jsonl"
  drop_caches
  timed_job "restore" manager_call RestoreVolume 'ssasa{sv}' "$restored" "$full_url" 1 \
    "$(replica_address r1)" 0
  log "restore of $full_url into $restored: $JOB_TOTAL bytes in $JOB_SECS s"
  printf '{"label": "restore of the full backup into a new 1-replica volume", "kind": "rate", "seconds": %s, "bytes": %s, "compare_raw": true, "required": true}\n' \
    "$JOB_SECS" "$JOB_TOTAL" >>"$TEST_DIR/timings.jsonl"
  delete_volume "$restored" || fail "DeleteVolume $restored failed"
  rm -rf "$TEST_DIR/backups"
  if [[ -n ${DAEMON_PIDS[s3rver]:-} ]]; then
    drop_caches
    timed_job "full backup to s3rver" volume_call "$vol" Backup 'sa{sv}' bk-inc 1 target s \
      "s3://$S3_BUCKET/bench"
    log "full backup of $vol to s3rver: $JOB_TOTAL bytes in $JOB_SECS s"
    printf '{"label": "full backup to s3rver (Node.js, on 127.0.0.1, data on the work disk)", "kind": "rate", "seconds": %s, "bytes": %s, "compare_raw": true}\n' \
      "$JOB_SECS" "$JOB_TOTAL" >>"$TEST_DIR/timings.jsonl"
  fi
}

config_shorthorn() {
  local n=$1 config="shorthorn-$1" vol="bench-$1" addrs=() daemons=(fused) i dev
  start_shorthorn
  for ((i = 1; i <= n; i++)); do
    addrs+=("$(replica_address "r$i")")
    daemons+=("replicad-r$i")
  done
  create_volume "$vol" "$DEV_SIZE" "${addrs[@]}" >/dev/null || fail "CreateVolume $vol failed"
  dev=$(attach_volume "$vol") || fail "Attach $vol failed"
  log "$config: volume $vol on ${addrs[*]}, $dev"
  run_device "$config" "$dev" "${daemons[@]}"
  if ((n == 1 && SNAPSHOTS > 0)); then time_snapshots "$vol"; fi
  if ((n == 1)); then time_rebuild "$vol"; fi
  unmount_fs "$config"
  if ((n == 1)); then time_backup "$vol" "$dev"; fi
  detach_volume "$vol" || fail "Detach $vol failed"
  delete_volume "$vol" || fail "DeleteVolume $vol failed"
}

# ---------------------------------------------------------------- main

estimate_minutes() {
  local runs=0 targets=0 c
  for c in "${CONFIG_LIST[@]}"; do
    case $c in
      raw | fuse-null) targets=$((targets + 1)) ;;
      *) targets=$((targets + 2)) ;;
    esac
  done
  runs=$((targets * ${#JOB_LIST[@]}))
  # fio: ramp + run + ~2 s (drop caches, start); precondition at ~300 MiB/s.
  echo $(((runs * (RAMP_S + RUNTIME_S + 2) + targets * (SIZE_MIB / 300 + 5) + 60) / 60 + 1))
}

write_meta() {
  local targets=() c commit dirty=""
  for c in "${CONFIG_LIST[@]}"; do
    case $c in
      raw) targets+=("[\"raw\", \"file\"]") ;;
      fuse-null) targets+=("[\"$c\", \"blk\"]") ;;
      *) targets+=("[\"$c\", \"blk\"]" "[\"$c\", \"fs\"]") ;;
    esac
  done
  local jobs=() j
  for j in "${JOB_LIST[@]}"; do jobs+=("[\"${j%%/*}\", \"${j#*/}\"]"); done
  commit=$(git -C "$BENCH_REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
  [[ -z $(git -C "$BENCH_REPO" status --porcelain 2>/dev/null) ]] || dirty="+dirty"
  local json_list='import json,sys; print(json.dumps(sys.argv[1:]))'
  cat >"$TEST_DIR/meta.json" <<EOF
{"mode": "$MODE", "ramp_runtime_overridden": $([[ -n $RAMP_OVERRIDE$RUNTIME_OVERRIDE ]] && echo true || echo false), "timestamp": "$STAMP", "size_mib": $SIZE_MIB, "device_mib": $((DEV_SIZE / MiB)),
 "ramp": "${RAMP_S}s", "runtime": "${RUNTIME_S}s", "nproc": $(nproc),
 "mem_mib": $(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024)),
 "kernel": "$(uname -r)", "fio": "$(fio --version)", "commit": "$commit$dirty",
 "work_dir": "$TEST_DIR", "work_disk": "$(findmnt -n -o SOURCE --target "$TEST_DIR")",
 "jobs_dir": "$JOBS_SRC", "drop_caches": $DROP_CACHES, "clk_tck": $(getconf CLK_TCK),
 "floor_opts": $(python3 -c "$json_list" "$FLOOR_OPTS"),
 "configs": $(python3 -c "$json_list" "${CONFIG_LIST[@]}"),
 "targets": [$(IFS=,; echo "${targets[*]}")], "jobs": [$(IFS=,; echo "${jobs[*]}")]}
EOF
}

main() {
  parse_args "$@"
  bench_init
  STAMP=$(date +%Y%m%d-%H%M%S)
  write_meta
  local mode=$MODE
  if [[ $MODE == full && -n $RAMP_OVERRIDE$RUNTIME_OVERRIDE ]]; then
    mode="full with ramp/runtime overridden (not the job files' values)"
  fi
  log "mode $mode: ${#CONFIG_LIST[@]} configs (${CONFIGS}), ${#JOB_LIST[@]} jobs, ${SIZE_MIB} MiB per target, ramp ${RAMP_S}s, runtime ${RUNTIME_S}s"
  log "jobs from $JOBS_SRC; work dir $TEST_DIR on $(findmnt -n -o SOURCE --target "$TEST_DIR"); binaries from $BUILD_DIR"
  log "estimated duration: ~$(estimate_minutes) min"
  local c
  for c in "${CONFIG_LIST[@]}"; do
    case $c in
      raw) config_raw ;;
      loop) config_loop ;;
      fuse-null | fuse-floor) config_fuse "$c" ;;
      shorthorn-*) config_shorthorn "${c#shorthorn-}" ;;
    esac
  done
  # Rebuild, backup and restore are timed in config_shorthorn, on shorthorn-1.

  local out=$RESULTS_DIR/$STAMP.json rc=0
  python3 "$BENCH_DIR/report.py" --work "$TEST_DIR" --out "$out" --check || rc=$?
  ((rc == 0)) || fail "the run is not sound (see CHECK FAILED above)"
  pass
}

main "$@"
