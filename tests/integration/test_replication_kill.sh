#!/usr/bin/env bash
# kill -9 of one of three replicas during fio --verify=crc32c writes on a
# mounted ext4 (issue 4).
#
# Replicads r1 r2 r3 hold the volume's three replicas; r4 is a spare. fio
# writes (random 4k and 64k, O_DIRECT) a file in the ext4 and verifies every
# block (crc32c) at the end. A few seconds in, r2 gets SIGKILL. fio must
# finish with no error and verify; Robustness goes degraded, then healthy
# once a full rebuild onto r4 (r2 is dead) is done; r2's replica leaves the
# volume. Afterwards the three replicas must hold identical data:
#
#   How this is checked: a replica can only be read alone through fused by
#   attaching with the others down, which the generation rule forbids (and
#   would change generations). So the test detaches, waits for the system
#   snapshot of the rebuild to be merged away, stops the replicads and runs
#   `replica_tool inspect` on each replica directory: it opens the replica
#   offline (as replicad would, without the background worker) and prints
#   the xxh3 of every snapshot's full content and of the live head (the
#   volume as that replica alone would serve it). All three outputs must be
#   equal line for line (same snapshot names, same content hashes, same live
#   data). replica.json's layer names/parents are compared too. Then the
#   volume is attached again and every file's sha256 and e2fsck are checked.
#
# Quick mode (CI=true or SHORTHORN_QUICK=1): 1 GiB volume, 256 MiB fio file.
# Full: 2 GiB volume, 1 GiB fio file.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd fio
TOOL=$(find_binary replica_tool)
if quick_mode; then
  VOL_SIZE=$GiB FIO_MIB=256
else
  VOL_SIZE=$((2 * GiB)) FIO_MIB=1024
fi
FIO_SIZE=${FIO_MIB}M

start_bus
for r in r1 r2 r3 r4; do start_replicad "$r"; done
start_fused

vol=kill-1
mnt=$FS_DIR/$vol
create_replicated_volume "$vol" "$VOL_SIZE" "$(replica_address r1)" "$(replica_address r2)" \
  "$(replica_address r3)" >/dev/null
assert_eq 3 "$(volume_prop "$vol" ReplicaCount)" "ReplicaCount"
dev=$(attach_volume "$vol")
assert_eq healthy "$(volume_prop "$vol" Robustness)" "Robustness after attach"
assert_eq "RW RW RW" "$(replica_modes "$vol" | awk '{print $3}' | xargs)" "replica modes after attach"
mkfs.ext4 -q "$dev"
mkdir -p "$mnt"
mount "$dev" "$mnt"
write_random_files "$mnt/pre" 4 8
write_small_files "$mnt/pre" 50
sync

base=$(du -s -B1 "$REPLICAS_DIR/r1" | cut -f1)
log "fio: randwrite 4k+64k, $FIO_SIZE, O_DIRECT, verify crc32c"
fio --name=kill --filename="$mnt/fio.dat" --size="$FIO_SIZE" --direct=1 --ioengine=libaio \
  --iodepth=16 --rw=randwrite --bssplit=4k/50:64k/50 --verify=crc32c --do_verify=1 \
  --verify_fatal=1 --randrepeat=0 --output="$TEST_DIR/fio.out" >/dev/null 2>"$TEST_DIR/fio.err" &
fio_pid=$!
# Kill r2 in the write phase: once a quarter of the file has reached r1's
# disk (fio's verify phase only reads, and reads go to one replica).
r1_bytes() { du -s -B1 "$REPLICAS_DIR/r1" | cut -f1; }
quarter_written() { (($(r1_bytes) - base >= FIO_MIB * MiB / 4)); }
t=$(wait_until 120 "a quarter of the fio file written" quarter_written)
written=$(($(r1_bytes) - base))
log "fio wrote $((written / MiB)) MiB in ${t}s; killing r2 now"
_pid_alive "$fio_pid" || warn "fio ended before the kill: the kill happens after the writes"
((written < FIO_MIB * MiB * 9 / 10)) || warn "the kill comes late in fio's write phase"
killed_at=$SECONDS
kill_daemon replicad-r2 KILL
t=$(wait_until 30 "Robustness degraded after kill -9 of r2" prop_is "$vol" Robustness degraded)
log "ok: degraded ${t}s after the kill; replicas: $(replica_modes "$vol" | tr '\n' ';')"
[[ $(replica_mode "$vol" "$(replica_address r2)") == ERR ||
   $(replica_mode "$vol" "$(replica_address r2)") == none ]] ||
  fail "replica on r2 is $(replica_mode "$vol" "$(replica_address r2)") after kill -9"

fio_rc=0
wait "$fio_pid" || fio_rc=$?
log "fio exit status $fio_rc, $((SECONDS - killed_at))s after the kill"
((fio_rc == 0)) || fail "fio failed ($fio_rc): $(cat "$TEST_DIR/fio.err" "$TEST_DIR/fio.out")"
grep -q "err= 0" "$TEST_DIR/fio.out" || fail "fio reports errors: $(cat "$TEST_DIR/fio.out")"
grep -qi "verify" "$TEST_DIR/fio.err" && fail "fio verify messages: $(cat "$TEST_DIR/fio.err")"
log "ok: fio finished with err=0 and verify passed"

wait_robustness "$vol" healthy 300
log "replicas now: $(replica_modes "$vol" | tr '\n' ';')"
assert_eq "RW RW RW" "$(replica_modes "$vol" | awk '{print $3}' | xargs)" "replica modes after rebuild"
assert_eq none "$(replica_mode "$vol" "$(replica_address r2)")" "replica on r2 after the rebuild"
assert_eq RW "$(replica_mode "$vol" "$(replica_address r4)")" "replica on the spare r4"
jobs_of "$vol" rebuild | while read -r path state bytes total msg; do
  log "rebuild job $path: $state, $bytes of $total bytes: $msg"
done
read -r _ _ bytes total _ < <(jobs_of "$vol" rebuild | awk '$2 == "completed"' | tail -1) ||
  fail "no completed rebuild job"
# The full rebuild copied at least the data written before the kill.
# (Checked at the end, so that a wrong count does not hide the data checks.)
job_problem=""
((bytes >= 32 * MiB && total >= bytes)) ||
  job_problem="the completed rebuild job reports Bytes $bytes of TotalBytes $total"

record_checksums "$mnt" "$TEST_DIR/sums"
umount "$mnt"
# The rebuild's system snapshot is merged away in the background.
no_snapshots() { [[ $(volume_prop "$vol" Snapshots) == "a(sssbtb) 0" ]]; }
wait_until 120 "system snapshot merged away" no_snapshots >/dev/null
detach_volume "$vol"

# Identical data on the three replicas (see the header).
declare -A inspected=()
while read -r addr name mode; do
  rd=$(replicad_of "$addr") || fail "no replicad at $addr"
  inspected[$rd]=$name
done < <(replica_modes "$vol")
assert_eq 3 "${#inspected[@]}" "replicas listed after detach"
for rd in r1 r3 r4; do stop_daemon "replicad-$rd"; done
ref=""
for rd in r1 r3 r4; do
  [[ -n ${inspected[$rd]:-} ]] || fail "no replica of $vol on $rd: $(replica_modes "$vol")"
  dir=$(replica_dir "$rd" "${inspected[$rd]}")
  out=$("$TOOL" inspect "$dir") || fail "replica_tool inspect $dir failed"
  out=$(grep -v '^layer-files' <<<"$out")
  layers=$(python3 -c 'import json,sys
m = json.load(open(sys.argv[1]))
names = {l["id"]: l.get("name") or "(head)" for l in m["layers"]}
print(" ".join(sorted("%s<-%s" % (names[l["id"]], names.get(l.get("parent"), "")) for l in m["layers"])))' \
    "$dir/replica.json")
  log "replica ${inspected[$rd]} on $rd: $(tr '\n' ' ' <<<"$out")| layers: $layers"
  if [[ -z $ref ]]; then
    ref=$out ref_layers=$layers
  else
    assert_eq "$ref" "$out" "content hashes of replica ${inspected[$rd]} on $rd"
    assert_eq "$ref_layers" "$layers" "layer names/parents of replica ${inspected[$rd]} on $rd"
  fi
done
log "ok: the three replicas hold identical layers and live data"

for rd in r1 r3 r4; do start_replicad "$rd"; done
dev=$(attach_volume "$vol")
assert_eq healthy "$(volume_prop "$vol" Robustness)" "Robustness after re-attach"
assert_fsck_clean "$dev" "after re-attach"
mount "$dev" "$mnt"
verify_checksums "$mnt" "$TEST_DIR/sums"
umount "$mnt"
detach_volume "$vol"
[[ -z $job_problem ]] || fail "$job_problem"
pass
