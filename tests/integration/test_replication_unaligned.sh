#!/usr/bin/env bash
# A full rebuild under 512-byte and unaligned writes, then everything read
# from the rebuilt replica alone (issue 4).
#
# The volume (two replicas on r1 r2; r3 is a spare) is attached with
# frontend "file": fio writes the FUSE file directly, so the writes reach
# the engine with their own sizes and offsets (the FUSE file is direct_io),
# not rounded to 4 KiB by a loop device. Two fio jobs run for a while: one
# random 512-byte writes in the first half, one random writes of 1k..9k at
# unaligned offsets (bs_unaligned) in the second half. Two seconds in, r2 is
# killed (-9); a full rebuild onto r3 runs (bandwidth-limited so that it
# overlaps the writes). After fio ends and the volume is healthy, the whole
# file's sha256 is taken; then r1 is stopped, so the rebuilt replica on r3
# serves every read, and the sha256 must be the same.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd fio
if quick_mode; then
  VOL_MIB=256 RUNTIME=15
else
  VOL_MIB=1024 RUNTIME=60
fi
start_bus
for r in r1 r2 r3; do start_replicad "$r"; done
start_fused_opts --rebuild-bandwidth 16
a1=$(replica_address r1) a2=$(replica_address r2) a3=$(replica_address r3)

vol=unaligned-1
create_replicated_volume "$vol" $((VOL_MIB * MiB)) "$a1" "$a2" >/dev/null
file=$(attach_volume "$vol" file)
assert_eq "$FUSED_MOUNT_POINT/$vol" "$file" "FUSE file of $vol"
# Some data for the rebuild to copy.
dd if=/dev/urandom of="$file" bs=1M count=$((VOL_MIB / 4)) conv=notrunc,fsync status=none

half=$((VOL_MIB / 2))
log "fio: 512-byte and unaligned 1k-9k random writes for ${RUNTIME}s"
fio --filename="$file" --ioengine=psync --time_based --runtime="$RUNTIME" --randrepeat=0 \
  --name=b512 --rw=randwrite --bs=512 --offset=0 --size=$((half - 1))M \
  --name=unaligned --rw=randwrite --bsrange=1k-9k --bs_unaligned --offset=$((half))M \
  --size=$((half - 1))M --output="$TEST_DIR/fio.out" >/dev/null 2>"$TEST_DIR/fio.err" &
fio_pid=$!
sleep 2
kill_daemon replicad-r2 KILL
has_replica_on_r3() { [[ $(replica_mode "$vol" "$a3") != none ]]; }
t=$(wait_until 60 "a new replica on r3" has_replica_on_r3)
log "new replica on r3 ${t}s after the kill: $(replica_modes "$vol" | tr '\n' ';')"
_pid_alive "$fio_pid" || warn "fio already ended when the rebuild started"
fio_rc=0
wait "$fio_pid" || fio_rc=$?
((fio_rc == 0)) || fail "fio failed ($fio_rc): $(cat "$TEST_DIR/fio.err" "$TEST_DIR/fio.out")"
grep -c "err= 0" "$TEST_DIR/fio.out" | grep -qx 2 || fail "fio reports errors: $(cat "$TEST_DIR/fio.out")"
log "ok: fio ended without error: $(grep -E 'WRITE:' "$TEST_DIR/fio.out" | xargs)"
jobs_of "$vol" rebuild | while read -r path state bytes total msg; do
  log "rebuild job $path: $state, $bytes of $total bytes: $msg"
done

wait_robustness "$vol" healthy 300
assert_eq RW "$(replica_mode "$vol" "$a3")" "rebuilt replica on r3"
before=$(sha256sum <"$file" | cut -d' ' -f1)
stop_daemon replicad-r1
notice_replica_down "$vol" "$a1" 0
assert_eq RW "$(replica_mode "$vol" "$a3")" "rebuilt replica on r3 with r1 down"
after=$(sha256sum <"$file" | cut -d' ' -f1)
assert_eq "$before" "$after" "sha256 of the whole volume read from the rebuilt replica alone"
log "ok: the rebuilt replica alone serves identical data"
detach_volume "$vol"
pass
