#!/usr/bin/env bash
# Issue 15: replicas that did not all end their last session cleanly, and
# the scrub.
#
# Part 1 (resync). fused is killed (-9) with a 3-replica volume attached,
# and one replica's head is then changed behind fused's back, as a write in
# flight at the crash that reached only that replica would have. Before the
# fix the next attach trusted all three (equal generations) and reads could
# return either version. Now every replica reports at OPEN that it was not
# closed, the attach keeps one (the authority) RW and the others WO, and a
# resync job compares them (checksums) and copies what differs. Checked:
# the job names the MiB copied, the data reads back as written, and the
# replicas are identical offline.
#
# Part 2 (scrub). After a clean detach (all replicas clean, no resync), one
# replica's data is damaged on disk. Volume.Scrub compares the replicas:
# the job fails naming that replica, which goes ERR, is caught up with the
# differing range and comes back RW; the replicas are identical offline and
# a second scrub finds nothing. The scrub rate is logged.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test python3
start_replicads r1 r2 r3
start_fused_opts --scrub-bandwidth 0

vol=unclean-1
a1=$(replica_address r1) a2=$(replica_address r2) a3=$(replica_address r3)
create_replicated_volume "$vol" $((256 * MiB)) "$a1" "$a2" "$a3" >/dev/null
dev=$(attach_volume "$vol")
head -c $((64 * MiB)) /dev/urandom >"$TEST_DIR/data"
dd if="$TEST_DIR/data" of="$dev" bs=1M oflag=direct status=none
want=$(sha256sum <"$TEST_DIR/data" | cut -d' ' -f1)

# replica_head_file REPLICAD NAME: the head layer file of a replica.
replica_head_file() {
  local dir=$REPLICAS_DIR/$1/$2
  python3 -c 'import json,sys
m = json.load(open(sys.argv[1] + "/replica.json"))
print(sys.argv[1] + "/" + next(l["file"] for l in m["layers"] if l["id"] == m["head"]))' "$dir"
}
# damage REPLICAD NAME OFFSET: 4 KiB of other data at OFFSET in the head.
damage() {
  local file
  file=$(replica_head_file "$1" "$2")
  head -c 4096 /dev/urandom | dd of="$file" bs=4096 seek=$(($3 / 4096)) conv=notrunc status=none
}

# ---- part 1: a fused crash, then an in-flight write that reached only r3.
n3=$(replica_name_at "$vol" "$a3")
kill_daemon fused
# The loop device and the FUSE mount of the dead fused: release them.
for l in $(_loops_under); do losetup -d "$l" 2>/dev/null || true; done
for m in $(_mounts_under fuse); do fusermount3 -uz "$m" 2>/dev/null || umount -l "$m"; done
stop_daemon replicad-r3
damage r3 "$n3" $((16 * MiB))
start_replicad r3
start_fused_opts --scrub-bandwidth 0
dev=$(attach_volume "$vol")
job=$(jobs_of "$vol" resync | head -1 | cut -d' ' -f1)
[[ -n $job ]] || fail "no resync job after an attach of replicas that were not closed"
assert_eq completed "$(wait_job "$job" 120)" "resync job"
msg=$(job_prop "$job" Message)
log "resync: $msg"
[[ $msg == *"replica $n3: 1 MiB differed"* ]] || fail "resync did not find the 1 MiB that differs on $n3: $msg"
wait_robustness "$vol" healthy 30
got=$(head -c $((64 * MiB)) "$dev" | sha256sum | cut -d' ' -f1)
assert_eq "$want" "$got" "data after the resync"

# ---- part 2: a clean detach, then damage on r1 (the replica reads prefer).
detach_volume "$vol"
n1=$(replica_name_at "$vol" "$a1")
stop_daemon replicad-r1
damage r1 "$n1" $((40 * MiB))
start_replicad r1
dev=$(attach_volume "$vol")
[[ -z $(jobs_of "$vol" resync | tail -n +2) ]] || fail "a second resync after a clean detach"
job=$(volume_call "$vol" Scrub 'a{sv}' 0 | _unquote)
assert_eq failed "$(wait_job "$job" 120)" "scrub of a damaged replica"
msg=$(job_prop "$job" Message)
log "scrub: $msg"
[[ $msg == *"replica $n1 differed in 1 MiB"* ]] || fail "scrub message does not name $n1: $msg"
wait_robustness "$vol" healthy 60
got=$(head -c $((64 * MiB)) "$dev" | sha256sum | cut -d' ' -f1)
assert_eq "$want" "$got" "data after the scrub and catch-up"
job=$(volume_call "$vol" Scrub 'a{sv}' 0 | _unquote)
assert_eq completed "$(wait_job "$job" 120)" "second scrub"
log "second scrub: $(job_prop "$job" Message)"
# Not attached: InvalidArgument naming the reason.
detach_volume "$vol"
assert_error_name InvalidArgument "Scrub of a detached volume" "$(volume_path "$vol")" \
  org.shorthorn.Storage1.Volume.Scrub '{}'


# ---- offline: every replica holds the same data.
members=$(replica_modes "$vol")
stop_daemon fused
for r in r1 r2 r3; do stop_daemon "replicad-$r"; done
first=""
while read -r addr name mode; do
  out=$(inspect_replica "$addr" "$name") || fail "replica_tool inspect of $name failed: $out"
  summary=$(grep -E '^\(live\) ' <<<"$out")
  log "replica $name on $addr ($mode): $summary"
  if [[ -z $first ]]; then first=$summary; else assert_eq "$first" "$summary" "live data of $name"; fi
done <<<"$members"
log "ok: resync and scrub left identical replicas"
pass
