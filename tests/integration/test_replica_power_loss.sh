#!/usr/bin/env bash
# Issue 15: a replica that lost what it wrote after its last FLUSH (a power
# cut) is caught up before it is trusted again.
#
# Two replicads; r2 runs in replicad's power-loss test mode
# (SHORTHORN_TEST_POWER_LOSS=1: each replica keeps an undo log of what it
# changed since its last flush, and SIGUSR2 drops those changes from the
# files and exits 137, as a power cut followed by a reboot would leave
# them). On the attached block device (O_DIRECT, no fsync after the first
# write, so no FLUSH reaches the replicas):
#
#   A  16 MiB at [16, 32) MiB, then fsync (FLUSH)
#   B   8 MiB at [24, 32) MiB (over A's second half)   } not flushed
#   C   8 MiB at [64, 72) MiB (never written before)   }
#   discard of [16, 20) MiB (part of A)                }
#
# Then SIGUSR2 to r2. Checked offline: r2's head file holds A at [16, 32)
# and nothing at [64, 72) (B, C and the discard are gone). r2 is started
# again (normal mode); fused must catch it up (its engine adds what r2
# acknowledged after its last flush to the record of what r2 missed), after
# which the device reads zeros, A, B, C where they belong, and after a
# detach both replicas hold the same live data (replica_tool inspect).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd blkdiscard python3
find_binary replica_tool >/dev/null
start_bus
start_replicad r1
SHORTHORN_TEST_POWER_LOSS=1 start_replicad r2
grep -q "TEST MODE: SHORTHORN_TEST_POWER_LOSS=1" "$LOG_DIR/replicad-r2.log" ||
  fail "replicad r2 does not warn that it runs in power-loss test mode"
start_fused

vol=powerloss-1
a1=$(replica_address r1) a2=$(replica_address r2)
create_replicated_volume "$vol" $((256 * MiB)) "$a1" "$a2" >/dev/null
dev=$(attach_volume "$vol")
assert_eq healthy "$(volume_prop "$vol" Robustness)" "Robustness after attach"
r2_name=$(replica_name_at "$vol" "$a2")

for part in A:16 B:8 C:8; do
  head -c $((${part#*:} * MiB)) /dev/urandom >"$TEST_DIR/${part%:*}"
done
# sum FILE SKIP_MIB COUNT_MIB: sha256 of a slice of a data file.
sum() { dd if="$1" bs=1M skip="$2" count="$3" status=none | sha256sum | cut -d' ' -f1; }
zeros() { head -c $(($1 * MiB)) /dev/zero | sha256sum | cut -d' ' -f1; }

dd if="$TEST_DIR/A" of="$dev" bs=1M seek=16 oflag=direct conv=fsync status=none
log "A written and flushed"
dd if="$TEST_DIR/B" of="$dev" bs=1M seek=24 oflag=direct status=none
dd if="$TEST_DIR/C" of="$dev" bs=1M seek=64 oflag=direct status=none
blkdiscard -o $((16 * MiB)) -l $((4 * MiB)) "$dev"
log "B, C and a discard written, not flushed"
assert_eq "$(sum "$TEST_DIR/B" 0 8)" "$(sha256_range "$dev" 24 8)" "sha256 of B before the power loss"

kill_daemon replicad-r2 USR2
assert_eq 137 "$DAEMON_STATUS" "exit status of replicad r2 after SIGUSR2"
line=$(grep "power loss simulated: replica $r2_name: dropped" "$LOG_DIR/replicad-r2.log") ||
  fail "replicad r2 logged no power loss for replica $r2_name"
log "r2: ${line#*] }"
[[ $line =~ dropped\ ([0-9]+)\ changes\ \(([0-9]+)\ bytes\) ]] || fail "cannot parse: $line"
dropped_changes=${BASH_REMATCH[1]} dropped_bytes=${BASH_REMATCH[2]}
((dropped_changes >= 3 && dropped_bytes >= 20 * MiB)) ||
  fail "r2 dropped $dropped_changes changes ($dropped_bytes bytes): expected B, C and the discard"

# r2's files now hold what the flush made durable, nothing after it.
head_file=$(python3 -c 'import json,sys
m = json.load(open(sys.argv[1]))
print([l["file"] for l in m["layers"] if l["id"] == m["head"]][0])' \
  "$(replica_dir r2 "$r2_name")/replica.json")
head_path=$(replica_dir r2 "$r2_name")/$head_file
assert_eq "$(sum "$TEST_DIR/A" 0 16)" "$(sum "$head_path" 16 16)" "r2's [16,32) MiB after the power loss (A)"
assert_eq "$(zeros 8)" "$(sum "$head_path" 64 8)" "r2's [64,72) MiB after the power loss (never written)"
allocated=$(python3 -c 'import os,sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    print(os.lseek(fd, 64 << 20, os.SEEK_DATA) < 72 << 20)
except OSError:
    print(False)' "$head_path")
assert_eq False "$allocated" "data in r2's head at [64,72) MiB after the power loss"
log "ok: r2 lost exactly what it had not flushed"

notice_replica_down "$vol" "$a2" 128
start_replicad r2
wait_robustness "$vol" healthy 90
assert_eq "RW RW" "$(replica_modes "$vol" | awk '{print $3}' | xargs)" "replica modes after the catch-up"
jobs=$(jobs_of "$vol" rebuild)
log "rebuild jobs:"$'\n'"$jobs"
read -r _ _ bytes _ < <(awk '$2 == "completed"' <<<"$jobs" | tail -1) ||
  fail "no completed rebuild job: $jobs"
((bytes >= 16 * MiB)) || fail "the catch-up copied $bytes bytes: less than B and C"

assert_eq "$(zeros 4)" "$(sha256_range "$dev" 16 4)" "sha256 of [16,20) MiB (discarded)"
assert_eq "$(sum "$TEST_DIR/A" 4 4)" "$(sha256_range "$dev" 20 4)" "sha256 of [20,24) MiB (A)"
assert_eq "$(sum "$TEST_DIR/B" 0 8)" "$(sha256_range "$dev" 24 8)" "sha256 of [24,32) MiB (B)"
assert_eq "$(sum "$TEST_DIR/C" 0 8)" "$(sha256_range "$dev" 64 8)" "sha256 of [64,72) MiB (C)"
log "ok: the volume reads back what was written"

members=$(replica_modes "$vol")
detach_volume "$vol"
stop_daemon fused
for r in r1 r2; do stop_daemon "replicad-$r"; done
first=""
while read -r addr name mode; do
  out=$(inspect_replica "$addr" "$name") || fail "replica_tool inspect of $name on $addr failed"
  out=$(grep -v '^layer-files' <<<"$out")
  log "replica $name on $addr ($mode): $(tr '\n' ' ' <<<"$out")"
  if [[ -z $first ]]; then
    first=$out
  else
    assert_eq "$first" "$out" "content hashes of replica $name on $addr against the first replica"
  fi
done <<<"$members"
log "ok: both replicas hold the same data"
pass
