#!/usr/bin/env bash
# One multi-GiB discard (blkdiscard of a whole 6 GiB volume), first over a
# snapshot, then during a full rebuild.
#
# The engine sends an unmap to the replicas in 64 MiB pieces, one after the
# other; where a snapshot under its head holds data, a replica records zero
# runs in the head's zero map (no data written), and a rebuilding replica
# records the whole piece as a zero run (its head has no parent yet). Each piece
# must end well within the replica timeout, and the replica's other
# requests must not wait behind it.
#
# Three replicads, a volume of 6 GiB with three replicas:
#  1. 1 GiB of random data at [0, 1) GiB, snapshot s1, 256 MiB more at
#     [2, 2.25) GiB (in the heads only); blkdiscard of the whole device.
#     No replica goes ERR; the device reads zeros; in every head, the
#     256 MiB are punched (no data left there), s1's gigabyte is hidden by
#     the head's zero map (replica.json names it) and the head occupies at
#     most 16 MiB (it occupied the gigabyte of zeros before zero maps).
#  2. r3 stopped, snapshot s2 taken while its replica is ERR (so a catch-up
#     is not enough), r3 started again: a full rebuild onto a new replica on
#     r3 (rebuild bandwidth limited so that it lasts ~10 s). While
#     it runs (the new replica is WO), blkdiscard of the whole device again.
#     No replica goes ERR (no request times out), the rebuild completes, the
#     volume is healthy, the device reads zeros, and the rebuilt replica's
#     head holds a zero map and at most 16 MiB.
#  3. Detached: the three replicas hold s1, s2 and live data with the same
#     hashes (replica_tool inspect), and s2's hash is the live data's (both
#     are all zeros).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd blkdiscard python3 cmp
find_binary replica_tool >/dev/null
VOL_SIZE=$((6 * GiB))
start_bus
for r in r1 r2 r3; do start_replicad "$r"; done
start_fused_opts --rebuild-bandwidth 200

vol=discard-1
a1=$(replica_address r1) a2=$(replica_address r2) a3=$(replica_address r3)
create_replicated_volume "$vol" "$VOL_SIZE" "$a1" "$a2" "$a3" >/dev/null
dev=$(attach_volume "$vol")
assert_eq "RW RW RW" "$(replica_modes "$vol" | awk '{print $3}' | xargs)" "replica modes after attach"

# head_of REPLICAD NAME: the path of the replica's head file.
head_of() {
  local dir
  dir=$(replica_dir "$1" "$2")
  python3 -c 'import json,sys
m = json.load(open(sys.argv[1] + "/replica.json"))
print(sys.argv[1] + "/" + [l["file"] for l in m["layers"] if l["id"] == m["head"]][0])' "$dir"
}
# data_bytes FILE START END: bytes of FILE's data extents (SEEK_DATA) in [START, END).
data_bytes() {
  python3 -c 'import os,sys
fd = os.open(sys.argv[1], os.O_RDONLY)
pos, end, n = int(sys.argv[2]), int(sys.argv[3]), 0
while pos < end:
    try:
        d = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    if d >= end:
        break
    h = min(os.lseek(fd, d, os.SEEK_HOLE), end)
    n += h - d
    pos = h
print(n)' "$@"
}
allocated() { echo $(($(stat -c %b "$1") * 512)); }
# reads_zeros START_MIB COUNT_MIB: the device reads zeros there (O_DIRECT).
reads_zeros() {
  dd if="$dev" bs=16M iflag=direct,skip_bytes,count_bytes skip=$(($1 * MiB)) \
    count=$(($2 * MiB)) status=none | cmp -s -n $(($2 * MiB)) - /dev/zero
}
# no_err [NAME...]: every replica of the volume but NAMEs is RW or WO.
no_err() {
  ! replica_modes "$vol" | awk -v skip=" $* " 'index(skip, " " $2 " ") == 0 { print $3 }' |
    grep -qv -e RW -e WO
}

# 1. Data, a snapshot, more data; one discard of everything.
head -c $((64 * MiB)) /dev/urandom >"$TEST_DIR/chunk"
t0=$SECONDS
for ((i = 0; i < 16; i++)); do
  dd if="$TEST_DIR/chunk" of="$dev" bs=16M seek=$((i * 4)) oflag=direct status=none
done
volume_call "$vol" Snapshot 'sa{sv}' s1 0 >/dev/null
for ((i = 0; i < 4; i++)); do
  dd if="$TEST_DIR/chunk" of="$dev" bs=16M seek=$((128 + i * 4)) oflag=direct status=none
done
log "1.25 GiB written, s1 between, in $((SECONDS - t0))s"
declare -A heads=()
while read -r addr name _; do
  rd=$(replicad_of "$addr")
  heads[$rd]=$(head_of "$rd" "$name")
  before=$(data_bytes "${heads[$rd]}" $((2 * GiB)) $((2 * GiB + 256 * MiB)))
  assert_eq $((256 * MiB)) "$before" "data in $rd's head at [2, 2.25) GiB before the discard"
done < <(replica_modes "$vol")

t0=$SECONDS
blkdiscard "$dev"
log "blkdiscard of $((VOL_SIZE / GiB)) GiB (s1 holds 1 GiB) took $((SECONDS - t0))s"
assert_eq "RW RW RW" "$(replica_modes "$vol" | awk '{print $3}' | xargs)" "replica modes after the discard"
assert_eq healthy "$(volume_prop "$vol" Robustness)" "Robustness after the discard"
reads_zeros 0 1024 || fail "[0, 1) GiB does not read zeros after the discard"
reads_zeros 2048 256 || fail "[2, 2.25) GiB does not read zeros after the discard"
reads_zeros $((VOL_SIZE / MiB - 64)) 64 || fail "the last 64 MiB do not read zeros after the discard"
for rd in r1 r2 r3; do
  after=$(data_bytes "${heads[$rd]}" $((2 * GiB)) $((2 * GiB + 256 * MiB)))
  assert_eq 0 "$after" "data in $rd's head at [2, 2.25) GiB after the discard"
  used=$(allocated "${heads[$rd]}")
  ((used <= 16 * MiB)) ||
    fail "$rd's head occupies $used bytes after the discard: s1's data is hidden with written zeros"
  zeros=${heads[$rd]%.img}.zeros
  [[ -s $zeros ]] || fail "$rd's head has no zero map $zeros after the discard over s1"
  grep -q '"zero_map":true' "$(dirname "${heads[$rd]}")/replica.json" ||
    fail "$rd's replica.json does not name the head's zero map"
  log "$rd's head after the discard: $((used / MiB)) MiB allocated, zero map $(stat -c %s "$zeros") bytes, none at [2, 2.25) GiB"
done

# 2. A full rebuild onto r3, and a discard of everything while it runs.
stop_daemon replicad-r3
# The engine notices on its next request: zeros where zeros are.
dd if=/dev/zero of="$dev" bs=1M seek=4096 count=1 oflag=direct status=none
wait_replica_mode "$vol" "$a3" ERR 30
volume_call "$vol" Snapshot 'sa{sv}' s2 0 >/dev/null
start_replicad r3
# shellcheck disable=SC2317  # called through wait_until
rebuilding() { replica_modes "$vol" | awk -v a="$a3" '$1 == a && $3 == "WO" { f = 1 } END { exit !f }'; }
t=$(wait_until 60 "a new replica on r3 in WO mode (full rebuild)" rebuilding)
replaced=$(replica_modes "$vol" | awk '$3 == "ERR" { print $2 }' | xargs)
log "full rebuild onto r3 running ${t}s after its restart: $(jobs_of "$vol" rebuild | tail -1)"
t0=$SECONDS
blkdiscard "$dev"
log "blkdiscard during the rebuild took $((SECONDS - t0))s; rebuild job: $(jobs_of "$vol" rebuild | tail -1)"
# The replica being replaced was ERR before the discard (it stays listed
# until the rebuild retires it); every other one must stay RW or WO.
no_err $replaced || fail "a replica went ERR during the discard: $(replica_modes "$vol" | tr '\n' ';')"
if grep -q "unanswered for more than" "$LOG_DIR/fused.log"; then
  fail "a replica request timed out: $(grep "unanswered for more than" "$LOG_DIR/fused.log" | head -3)"
fi
wait_robustness "$vol" healthy 120
assert_eq "RW RW RW" "$(replica_modes "$vol" | awk '{print $3}' | xargs)" "replica modes after the rebuild"
# The rebuilt replica took the discard as zero runs, not as 6 GiB of zeros.
while read -r addr name _; do
  [[ $addr == "$a3" ]] || continue
  h=$(head_of r3 "$name")
  [[ -s ${h%.img}.zeros ]] || fail "the rebuilt replica $name has no zero map after the discard"
  used=$(allocated "$h")
  ((used <= 16 * MiB)) || fail "the rebuilt replica $name's head occupies $used bytes after the discard"
  log "rebuilt replica $name: head $((used / MiB)) MiB allocated, zero map $(stat -c %s "${h%.img}.zeros") bytes"
done < <(replica_modes "$vol")
read -r path state bytes total _ < <(jobs_of "$vol" rebuild | tail -1) || fail "no rebuild job"
assert_eq completed "$state" "state of the last rebuild job $path"
log "rebuild job $path: $bytes of $total bytes"
t0=$SECONDS
reads_zeros 0 1280 || fail "[0, 1.25) GiB does not read zeros after the second discard"
reads_zeros 2048 256 || fail "[2, 2.25) GiB does not read zeros after the second discard"
reads_zeros $((VOL_SIZE / MiB - 64)) 64 || fail "the last 64 MiB do not read zeros after the second discard"
log "ok: where data was, and at the end, the device reads zeros (read in $((SECONDS - t0))s)"

# 3. The same layers and data on every replica.
# shellcheck disable=SC2317  # called through wait_until
two_snapshots() { [[ $(volume_prop "$vol" Snapshots) == "a(sssbtb) 2 "* ]]; }
wait_until 120 "the rebuild's system snapshot merged away" two_snapshots >/dev/null
members=$(replica_modes "$vol")
detach_volume "$vol"
stop_daemon fused
for r in r1 r2 r3; do stop_daemon "replicad-$r"; done
first=""
while read -r addr name mode; do
  out=$(inspect_replica "$addr" "$name") || fail "replica_tool inspect of $name on $addr failed"
  summary=$(grep -E '^(s1|s2|\(live\)) ' <<<"$out")
  log "replica $name on $addr ($mode): $(tr '\n' ' ' <<<"$summary")"
  [[ $(wc -l <<<"$summary") == 3 ]] || fail "replica $name on $addr lacks s1 or s2: $out"
  # s2 was taken after the first discard: it and the live data are all zeros.
  assert_eq "$(awk '$1 == "s2" { print $2 }' <<<"$summary")" \
    "$(awk '$1 == "(live)" { print $2 }' <<<"$summary")" "hashes of s2 and the live data of $name"
  if [[ -z $first ]]; then
    first=$summary
  else
    assert_eq "$first" "$summary" "s1, s2 and live data of replica $name against the first replica"
  fi
done <<<"$members"
log "ok: the three replicas hold the same s1, s2 and live data"
pass
