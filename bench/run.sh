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

# The configurations, and the timings besides fio.
# shellcheck source=lib_configs.sh
source "$BENCH_DIR/lib_configs.sh"
# shellcheck source=lib_timings.sh
source "$BENCH_DIR/lib_timings.sh"
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
FUSED_OPTS=""
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
  --fused-opts "OPTS"   extra shorthorn-fused options for the shorthorn
                        configs (e.g. "--fuse-uring yes")
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
      --fused-opts) FUSED_OPTS=$2; shift ;;
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
 "fused_opts": $(python3 -c "$json_list" "$FUSED_OPTS"),
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
