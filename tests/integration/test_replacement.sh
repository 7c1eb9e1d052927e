#!/usr/bin/env bash
# Replacement of failed replicas (issue 21): the wait before a rebuild
# elsewhere, at most N rebuilds onto one replicad, and drain.
#
# Three replicads on three "hosts"; fused with replica-replenishment-wait
# 20 s, concurrent-rebuilds-per-replicad 1 and rebuild-bandwidth 16 MiB/s.
# Three volumes of 256 MiB with two replicas each on r1 and r2, 32 MiB of
# random data in each.
#   1. r2 stopped for ~5 s (< the wait), 1 MiB written to each volume
#      meanwhile: no rebuild starts elsewhere (r3
#      holds nothing), RobustnessReason says until when it may return, and
#      r2 catches up with only what it missed (bytes reported).
#   2. r2 stopped for longer: within the wait still nothing on r3; after
#      it, each volume gets a new replica on r3, and at no time do two
#      rebuilds copy onto r3 at once (the others are "queued"). The full
#      rebuild's bytes are reported next to the catch-up's.
#   3. r2 back; drain of r1 while volume 1 is attached with fio writing and
#      verifying: every replica leaves r1 (the detached volumes are attached
#      in maintenance mode for it), fio verifies, and each volume's data
#      reads back with its checksum.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_root
requires_cmd fio
start_bus
start_replicad r1
start_replicad r2
start_replicad r3
a1=$(replica_address r1) a2=$(replica_address r2) a3=$(replica_address r3)
start_fused_opts --replicads "$a1 $a2 $a3" --replica-replenishment-wait 20 \
  --concurrent-rebuilds-per-replicad 1 --rebuild-bandwidth 16 --replica-timeout 3
VOL_SIZE=$((256 * MiB))
declare -A sums
for v in v1 v2 v3; do
  create_replicated_volume "$v" "$VOL_SIZE" "$a1" "$a2" >/dev/null
  dev=$(attach_volume "$v")
  head -c $((32 * MiB)) /dev/urandom >"$TEST_DIR/$v.data"
  # conv=fsync: flushed, so a catch-up owes only what is written later.
  dd if="$TEST_DIR/$v.data" of="$dev" bs=1M seek=16 oflag=direct conv=fsync status=none
  sums[$v]=$(sha256sum <"$TEST_DIR/$v.data" | cut -d' ' -f1)
done

replicas_on() { find "$REPLICAS_DIR/$1" -mindepth 1 -maxdepth 1 -type d | wc -l; }
# completed_bytes WHAT: the bytes of the newest completed rebuild job of
# each volume, logged, summed.
completed_bytes() {
  local v bytes sum=0
  for v in v1 v2 v3; do
    read -r _ _ bytes _ < <(jobs_of "$v" rebuild | awk '$2 == "completed"' | tail -1) ||
      fail "no completed $1 job for $v"
    log "$1 of $v: $bytes bytes" >&2
    sum=$((sum + bytes))
  done
  echo "$sum"
}

# ---------------------------------------------------------------- 1. short
stop_daemon replicad-r2
for v in v1 v2 v3; do notice_replica_down "$v" "$a2" 16; done
reason=$(volume_prop v1 RobustnessReason)
log "RobustnessReason while r2 is down: $reason"
[[ $reason == *"catches up if it returns before"* ]] ||
  fail "RobustnessReason does not say the replica may still return: $reason"
# 1 MiB more per volume while r2 is away: what the catch-up owes it.
for v in v1 v2 v3; do
  head -c $MiB /dev/urandom | dd of="$(volume_prop "$v" LoopDevice)" bs=1M seek=100 \
    oflag=direct conv=fsync status=none
done
sleep 5
assert_eq 0 "$(replicas_on r3)" "replicas on r3 while r2 was down less than the wait"
start_replicad r2
for v in v1 v2 v3; do wait_robustness "$v" healthy 60; done
assert_eq 0 "$(replicas_on r3)" "replicas on r3 after r2 returned within the wait"
catchup_bytes=$(completed_bytes catch-up)
log "ok: r2 back within the wait: caught up with $catchup_bytes bytes in all, nothing on r3"

# ---------------------------------------------------------------- 2. long
stop_daemon replicad-r2
for v in v1 v2 v3; do notice_replica_down "$v" "$a2" 20; done
down_at=$SECONDS
sleep 10
assert_eq 0 "$(replicas_on r3)" "replicas on r3 10 s into the wait"
log "ok: no rebuild within the wait"
# After the wait: rebuilds onto r3, one at a time: the copies running onto
# r3 (ListReplicads' rebuilds, the slots taken) never exceed 1, and the
# other volumes' rebuild jobs show State "queued" meanwhile.
rebuilds_onto() {
  busctl --system --json=short call "$BUS_NAME" "$MANAGER_PATH" "$MANAGER_IFACE" \
    ListReplicads 'a{sv}' 0 | python3 -c 'import json,sys
for r in json.load(sys.stdin)["data"][0]:
    if r[0] == sys.argv[1]: print(r[8])' "$1"
}
max_running=0 saw_queued=0
while ((SECONDS - down_at < 240)); do
  running=$(rebuilds_onto "$a3")
  ((running > max_running)) && max_running=$running
  for v in v1 v2 v3; do
    jobs_of "$v" rebuild | awk '$2 == "queued"' | grep -q . && saw_queued=1
  done
  healthy=0
  for v in v1 v2 v3; do prop_is "$v" Robustness healthy && healthy=$((healthy + 1)); done
  ((healthy == 3)) && break
  sleep 0.3
done
((healthy == 3)) || fail "the volumes are not all healthy 240 s after r2 stopped"
log "rebuilds after $((SECONDS - down_at)) s; at most $max_running copying onto r3 at once, queued seen: $saw_queued"
((max_running == 1)) || fail "$max_running rebuilds copied onto r3 at once (limit 1; 0: none seen)"
((saw_queued == 1)) || fail "no rebuild was ever queued behind another onto r3"
for v in v1 v2 v3; do
  assert_eq RW "$(replica_mode "$v" "$a3")" "mode of $v's new replica on r3"
done
full_bytes=$(completed_bytes "full rebuild")
log "ok: bytes copied for 3 volumes: catch-up $catchup_bytes, full rebuild $full_bytes"
((catchup_bytes * 4 < full_bytes)) ||
  fail "the catch-ups ($catchup_bytes bytes) copied not much less than the rebuilds ($full_bytes)"

# ---------------------------------------------------------------- 3. drain
start_replicad r2
detach_volume v2
detach_volume v3
dev=$(volume_prop v1 LoopDevice)
# fio writes 32 MiB at random and verifies it (crc32c), again and again,
# until the drain is over.
(
  n=0
  while [[ ! -e $TEST_DIR/fio.stop ]]; do
    fio --name=drain --filename="$dev" --direct=1 --ioengine=libaio --iodepth=8 \
      --rw=randwrite --bs=64k --size=32m --offset=128m --verify=crc32c --do_verify=1 \
      --verify_fatal=1 --randrepeat=0 --output="$TEST_DIR/fio.out" >/dev/null 2>&1 || exit 1
    n=$((n + 1))
  done
  echo "$n" >"$TEST_DIR/fio.rounds"
) &
fio_pid=$!
sleep 1
job=$(manager_call DrainReplicad 'sa{sv}' "$a1" 0 | _unquote)
log "drain job $job"
state=$(wait_job "$job" 300)
assert_eq completed "$state" "drain job state ($(job_prop "$job" Message))"
log "drain: $(job_prop "$job" Message)"
touch "$TEST_DIR/fio.stop"
fio_rc=0
wait "$fio_pid" || fio_rc=$?
assert_eq 0 "$fio_rc" "fio exit status (writes and crc32c verification during the drain; $(tail -5 "$TEST_DIR/fio.out" 2>/dev/null))"
log "ok: fio wrote and verified $(cat "$TEST_DIR/fio.rounds") rounds of 32 MiB during the drain"
for v in v1 v2 v3; do
  assert_eq none "$(replica_mode "$v" "$a1")" "replica of $v on the drained r1"
done
assert_eq 0 "$(replicas_on r1)" "replica directories left on r1"
assert_eq detached "$(volume_prop v2 State)" "volume v2 after the drain (it was detached)"
assert_eq "${sums[v1]}" "$(sha256_range "$dev" 16 32)" "data of v1 after the drain"
detach_volume v1
for v in v2 v3; do
  dev=$(attach_volume "$v")
  assert_eq "${sums[$v]}" "$(sha256_range "$dev" 16 32)" "data of $v after the drain"
  detach_volume "$v"
done
listed=$(busctl --system --json=short call "$BUS_NAME" "$MANAGER_PATH" "$MANAGER_IFACE" \
  ListReplicads 'a{sv}' 0)
[[ $listed == *"\"$a1\",\"draining\""* ]] || fail "r1 is not listed as draining: $listed"
# Nothing new goes to r1 while it drains.
mapfile -t call < <(printf '%s\n' "$MANAGER_PATH" "$MANAGER_IFACE.CreateVolume" "'onr1'" \
  "uint64 $VOL_SIZE" "@as ['$a1']" "@a{sv} {}")
assert_error_name Unavailable "a new volume on the draining r1" "${call[@]}"
manager_call UndrainReplicad 'sa{sv}' "$a1" 0 >/dev/null
create_volume onr1 "$VOL_SIZE" "$a1" >/dev/null
log "ok: undrained r1 takes replicas again"
pass
