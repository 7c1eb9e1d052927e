#!/usr/bin/env bash
# FUSE over io_uring (fused/fuse/fuse_ring.h) through bench/fuse_floor, which
# serves one file on fused's own FUSE frontend over a file backend:
#  1. the kernel offers the ring (enable_uring=Y): requests come through it,
#     and a loop device on the file reads back what was written (dd of
#     random data, then fio's own verification under 4k writes at QD32);
#  2. the same with the file backend's I/O on its own thread
#     (--own-io-thread): replies come from that thread and are handed to the
#     queues' threads to commit;
#  3. the kernel does not offer it (enable_uring=N): the same with every
#     request on /dev/fuse, none on the ring.
# The module parameter is set back to what it was, whatever happens.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

param=/sys/module/fuse/parameters/enable_uring
init_test fio
[[ -w $param ]] || skip "this kernel has no FUSE over io_uring ($param)"
FLOOR_BIN=$(find_binary fuse_floor)
was=$(cat "$param")
teardown_hook() { echo "$was" >"$param"; }

# run_case MODE(Y|N) EXPECT(ring|classic) [FUSE_FLOOR_OPTION...]
run_case() {
  local mode=$1 expect=$2 dir=$TEST_DIR/$1${3:-} back mnt log dev want n
  shift 2
  echo "$mode" >"$param"
  mkdir -p "$dir/mnt"
  back=$dir/back.img mnt=$dir/mnt log=$LOG_DIR/floor-$mode${1:-}.log
  truncate -s $((128 * MiB)) "$back"
  "$FLOOR_BIN" --mount "$mnt" --backing "$back" --tmp-dir "$dir" --fuse-uring "$@" \
    >"$log" 2>&1 </dev/null &
  DAEMON_PIDS[floor-$mode]=$!
  for ((i = 0; i < 100; i++)); do
    _check_alive "floor-$mode"
    [[ -f $mnt/floor ]] && break
    sleep 0.1
  done
  ((i < 100)) || fail "fuse_floor did not serve $mnt/floor within 10s"
  dev=$(losetup -f --show --direct-io=on "$mnt/floor")
  echo "$dev floor" >>"$TEST_DIR/attached-loops"
  head -c $((32 * MiB)) /dev/urandom >"$dir/src"
  dd if="$dir/src" of="$dev" bs=1M oflag=direct status=none
  fio --name=verify --filename="$dev" --offset=$((64 * MiB)) --size=$((32 * MiB)) \
    --rw=randwrite --bs=4k --iodepth=32 --ioengine=libaio --direct=1 \
    --verify=crc32c --do_verify=1 --verify_fatal=1 --output="$dir/fio.out" ||
    fail "fio verify failed ($mode): $(tail -n 20 "$dir/fio.out")"
  want=$(sha256sum <"$dir/src")
  assert_eq "$want" "$(dd if="$dev" bs=1M count=32 iflag=direct status=none | sha256sum)" \
    "the first 32 MiB read back through FUSE ($mode)"
  losetup -d "$dev"
  stop_daemon "floor-$mode" 20
  ((DAEMON_STATUS == 0)) || fail "fuse_floor exited with $DAEMON_STATUS ($mode); see $log"
  assert_eq "$want" "$(head -c $((32 * MiB)) "$back" | sha256sum)" \
    "the first 32 MiB of the backing file ($mode)"
  n=$(sed -n 's/^fuse_floor: \([0-9]*\) requests came through FUSE over io_uring$/\1/p' "$log")
  [[ -n $n ]] || fail "fuse_floor printed no ring count ($mode): $(cat "$log")"
  if [[ $expect == ring ]]; then
    # 32 MiB of 1 MiB writes, 8192 4k writes, the reads: nearly all on the ring.
    assert_ge 8000 "$n" "requests through the ring with enable_uring=Y"
  else
    assert_eq 0 "$n" "requests through the ring with enable_uring=N"
  fi
  log "ok: enable_uring=$mode $*: data read back; $n requests through the ring"
}

run_case Y ring
run_case Y ring --own-io-thread
run_case N classic
pass
