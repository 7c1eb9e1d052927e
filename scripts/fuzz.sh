#!/usr/bin/env bash
# Fuzzes the parsers of bytes from the network and from files
# (tests/fuzz/, doc/fuzzing.md) with libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer.
#
#   scripts/fuzz.sh [--seconds N] [--build-dir DIR] [TARGET...]
#
# Configures a clang build of its own (default build-fuzz/, never build/)
# with SHORTHORN_FUZZ=ON, builds the targets (only the libraries they
# need), then runs each TARGET (default: every directory of
# tests/fuzz/corpus/) for N seconds (default 60) on a copy of its corpus in
# DIR/corpus/<target> (what a run finds stays there for the next run; the
# committed corpus is never written). Prints per target the executions, the
# CPU seconds and whether it stayed clean. Exit status: 0 all clean, 1 a
# target crashed or a sanitizer or property check fired (the input is kept
# as DIR/crashes/<target>/{crash,timeout,oom}-*, and its path and the report are
# printed), 2 bad usage or a failed build, 77 clang or its libFuzzer
# runtime is missing (CTest reports the test as skipped).
#
# Runs SHORTHORN_FUZZ_PARALLEL targets at a time (default: one per core)
# and at most SHORTHORN_FUZZ_JOBS (default 2) compile jobs, all under
# `nice -n 19`: it shares the machine with builds and tests.
# Reproduce a crash: DIR/tests/fuzz/fuzz_<target> DIR/crashes/<target>/crash-...
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=60
build=$repo/build-fuzz
targets=()

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

while (($#)); do
  case $1 in
    --seconds)
      [[ ${2:-} =~ ^[0-9]+$ ]] && (($2 > 0)) || usage
      seconds=$2
      shift 2
      ;;
    --build-dir)
      [[ -n ${2:-} ]] || usage
      build=$2
      shift 2
      ;;
    -h | --help) usage ;;
    -*) usage ;;
    *)
      targets+=("$1")
      shift
      ;;
  esac
done

corpus_root=$repo/tests/fuzz/corpus
all_targets=()
for d in "$corpus_root"/*/; do all_targets+=("$(basename "$d")"); done
((${#targets[@]})) || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ -d $corpus_root/$t ]] || {
    echo "fuzz.sh: unknown target '$t' (targets: ${all_targets[*]})" >&2
    exit 2
  }
done

# clang with the libFuzzer and sanitizer runtimes (Debian: clang,
# libclang-rt-14-dev; scripts/install-deps.sh installs them).
cxx=${SHORTHORN_FUZZ_CXX:-clang++}
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
  'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' >"$probe/p.cc"
if ! command -v "$cxx" >/dev/null 2>&1 ||
  ! nice -n 19 "$cxx" -fsanitize=fuzzer,address,undefined "$probe/p.cc" -o "$probe/p" >"$probe/log" 2>&1; then
  echo "fuzz.sh: skipped: $cxx cannot build a libFuzzer target with ASan and UBSan" \
    "(install clang and libclang-rt-14-dev: scripts/install-deps.sh)" >&2
  cat "$probe/log" >&2 2>/dev/null || true
  exit 77
fi

# Never reconfigure another build (build/, say) as a clang fuzz build.
if [[ -f $build/CMakeCache.txt ]] && ! grep -q '^SHORTHORN_FUZZ:BOOL=ON$' "$build/CMakeCache.txt"; then
  echo "fuzz.sh: $build is not a fuzz build directory; choose another --build-dir" >&2
  exit 2
fi

flags="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined"
flags+=" -fno-sanitize-recover=all -D_GLIBCXX_ASSERTIONS"
echo "fuzz.sh: configuring $build ($cxx, $flags)"
nice -n 19 cmake -S "$repo" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Fuzz \
  -DSHORTHORN_FUZZ=ON -DSHORTHORN_BUILD_TESTS=OFF -DCMAKE_CXX_FLAGS="$flags" \
  >"$probe/configure.log" 2>&1 || {
  tail -n 40 "$probe/configure.log" >&2
  echo "fuzz.sh: configure failed" >&2
  exit 2
}
build_targets=()
for t in "${targets[@]}"; do build_targets+=(--target "fuzz_$t"); done
started=$SECONDS
echo "fuzz.sh: building ${targets[*]}"
mkdir -p "$build/logs"
nice -n 19 cmake --build "$build" -j"${SHORTHORN_FUZZ_JOBS:-2}" "${build_targets[@]}" \
  >"$build/logs/build.log" 2>&1 || {
  tail -n 60 "$build/logs/build.log" >&2
  echo "fuzz.sh: build failed (log $build/logs/build.log)" >&2
  exit 2
}
echo "fuzz.sh: built in $((SECONDS - started)) s"

# Sets cpu_now to the CPU seconds (user + system) the children of the
# calling shell have used so far. Not in a command substitution: `times`
# must run in the calling shell.
read_child_cpu() {
  local file=$probe/times.$BASHPID
  times >"$file"  # line 2: "<user>m<s>s <sys>m<s>s" of the children
  cpu_now=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
    printf "%.1f", t }' "$file")
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Runs target $1 (in a subshell of its own: `times` then counts its fuzzer
# only) and writes its summary line to DIR/logs/<target>.result: the
# executions, the CPU seconds, "clean" or the crash's input.
run_target() {
  local t=$1 work=$build/corpus/$1 crashes=$build/crashes/$1 log=$build/logs/$1.log
  mkdir -p "$work" "$crashes"
  cp -n "$corpus_root/$t"/* "$work"/ 2>/dev/null || true
  local args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=2048
    -artifact_prefix="$crashes/")
  [[ -f $repo/tests/fuzz/$t.dict ]] && args+=(-dict="$repo/tests/fuzz/$t.dict")
  # The target's scratch files, removed even when it crashed.
  SHORTHORN_FUZZ_SCRATCH=$(mktemp -d /dev/shm/shorthorn-fuzz.XXXXXX 2>/dev/null || mktemp -d)
  export SHORTHORN_FUZZ_SCRATCH
  trap 'rm -rf "$SHORTHORN_FUZZ_SCRATCH"' EXIT
  local rc=0
  nice -n 19 "$build/tests/fuzz/fuzz_$t" "${args[@]}" "$work" >"$log" 2>&1 || rc=$?
  read_child_cpu
  local execs artifact result
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
  if ((rc == 0)) && [[ -z $artifact ]]; then
    result=clean
  else
    result="CRASH (exit $rc): ${artifact:-no input written, see the log}"
  fi
  printf '%-18s %12s %8s  %s\n' "$t" "${execs:-?}" "$cpu_now" "$result" >"$build/logs/$t.result"
}

# SHORTHORN_FUZZ_PARALLEL targets at a time (default: one per core).
parallel=${SHORTHORN_FUZZ_PARALLEL:-$(nproc)}
[[ $parallel =~ ^[1-9][0-9]*$ ]] || parallel=1
echo "fuzz.sh: running ${#targets[@]} targets for $seconds s each, $parallel at a time (logs $build/logs/)"
running=0
for t in "${targets[@]}"; do
  rm -f "$build/logs/$t.result"
  if ((running >= parallel)); then
    wait -n || true
    running=$((running - 1))
  fi
  (run_target "$t") &
  running=$((running + 1))
done
wait || true

failed=()
summary=()
for t in "${targets[@]}"; do
  log=$build/logs/$t.log
  line=$(cat "$build/logs/$t.result" 2>/dev/null) || line=$(printf '%-18s %12s %8s  %s' "$t" '?' '?' \
    "CRASH: the run left no result, see $log")
  summary+=("$line")
  [[ $line == *CRASH* ]] || continue
  failed+=("$t")
  echo "---- $t: report (from $log) ----"
  grep -m1 -n -E '^==[0-9]+== ?ERROR|runtime error:|fuzz check failed|terminate called|deadly signal' "$log" |
    cut -d: -f1 | { read -r first || first=1; tail -n +"$((first > 5 ? first - 5 : 1))" "$log" | head -n 60; }
  echo "---- reproduce: $build/tests/fuzz/fuzz_$t <the input named above>"
done

echo
printf 'fuzz.sh: %-18s %12s %8s  %s\n' target execs cpu_s result
for line in "${summary[@]}"; do echo "fuzz.sh: $line"; done
if ((${#failed[@]})); then
  echo "fuzz.sh: FAILED: ${failed[*]} (inputs under $build/crashes/)"
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets clean after $seconds s each"
