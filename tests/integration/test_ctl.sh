#!/usr/bin/env bash
# shorthornctl against the real daemons (issue 6): the snapshot, replica, replicad and
# job commands and --wait, checked by exit status, text and --json output.
#
# On a volume attached as a FUSE file with data written: snapshot create and
# list (JSON parsed), snapshot delete --wait (exit 0, the snapshot gone),
# snapshot delete without --wait (prints a job that job show / list / wait
# know), verify --wait (exit 0; the progress line on a pseudo-terminal,
# nothing on stderr off one), expand, replica set-count 2 and the rebuild
# it starts, bad input (unknown snapshot and job, uncancellable job, bad
# numbers: each its exit status and error kind), and a verify --wait that
# fails (a damaged snapshot layer) with exit status 1 naming the layer.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd python3 script
CTL=$(find_binary shorthornctl)
start_bus
start_replicad r1
start_replicad r2
start_fused --replicads "$(replica_address r1) $(replica_address r2)"

vol=ctl-1

# ctl EXPECTED_STATUS ARGS...: runs shorthornctl; its stdout is in OUT, its
# stderr in ERR. A failure must say "shorthornctl: " on stderr.
OUT="" ERR=""
ctl() {
  local expected=$1 rc=0
  shift
  OUT=$("$CTL" "$@" 2>"$TEST_DIR/ctl.err") || rc=$?
  ERR=$(cat "$TEST_DIR/ctl.err")
  ((rc == expected)) || fail "shorthornctl $*: exit status $rc, expected $expected; stdout: $OUT; stderr: $ERR"
  if ((expected != 0)); then
    [[ $ERR == "shorthornctl: "* ]] || fail "shorthornctl $*: stderr '$ERR' lacks 'shorthornctl: '"
    log "ok: shorthornctl $* -> exit $rc: ${ERR#shorthornctl: }"
  fi
}

# json EXPRESSION: evaluates a Python expression over OUT parsed as JSON (d);
# a tuple prints as its items separated by spaces.
json() {
  python3 -c 'import json,sys
d = json.loads(sys.argv[1])
r = eval(sys.argv[2])
print(" ".join(map(str, r)) if isinstance(r, tuple) else r)' "$OUT" "$1"
}

# bad_json EXPECTED_STATUS KIND ARGS...: shorthornctl --json fails with exit
# status EXPECTED_STATUS and the error kind KIND in its JSON.
bad_json() {
  local expected=$1 kind=$2
  shift 2
  ctl "$expected" --json "$@"
  assert_eq "$kind" "$(json 'd["error"]["kind"]')" "error kind of shorthornctl $*"
  assert_eq "$expected" "$(json 'd["error"]["exit_code"]')" "exit_code in the JSON of shorthornctl $*"
}

snapshot_names() {
  ctl 0 --json snapshot list "$vol"
  json '" ".join(s["name"] for s in d)'
}

write_mib() {  # write_mib FILE OFFSET_MIB COUNT_MIB: random data, O_DIRECT
  dd if=/dev/urandom of="$1" bs=1M seek="$2" count="$3" oflag=direct conv=notrunc status=none
}

ctl 0 volume create "$vol" --size 256M --replica "$(replica_address r1)"
ctl 0 volume attach "$vol" --file
file=$OUT
[[ -f $file ]] || fail "volume attach --file printed '$file', not a file"

# Snapshots: create and list.
write_mib "$file" 0 8
ctl 0 snapshot create "$vol" s1
assert_eq "Created snapshot s1 of volume $vol." "$OUT" "snapshot create output"
write_mib "$file" 8 4
ctl 0 snapshot create "$vol" s2 --wait
ctl 0 --json snapshot list "$vol"
assert_eq "s1 s2" "$(json '" ".join(s["name"] for s in d)')" "snapshot names"
assert_eq "s1" "$(json 'd[1]["parent"]')" "parent of s2"
assert_eq "True True" "$(json 'd[0]["user_created"], d[1]["user_created"]')" "user_created"
assert_eq "False" "$(json 'd[0]["removed"]')" "removed of s1"
assert_ge $((8 * MiB)) "$(json 'd[0]["size_held"]')" "size_held of s1"
[[ $(json 'd[0]["created"]') =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T.*Z$ ]] ||
  fail "created of s1 is not RFC 3339 UTC: $(json 'd[0]["created"]')"
ctl 0 snapshot list "$vol"
[[ $OUT == "NAME  PARENT  CREATED"*"HELD"*"TYPE"*"REMOVED"* ]] || fail "snapshot list table: $OUT"
[[ $OUT == *$'\n'"s2    s1      "*"user  no"* ]] || fail "snapshot list row of s2: $OUT"
ctl 0 snapshot list "$vol" --quiet
assert_eq $'s1\ns2' "$OUT" "snapshot list --quiet"
log "ok: snapshot create and list"

# Bad input: each its exit status and error kind, the message naming what.
bad_json 4 AlreadyExists snapshot create "$vol" s1
bad_json 3 NotFound snapshot delete "$vol" nope
[[ $(json 'd["error"]["message"]') == *nope* ]] || fail "message does not name the snapshot: $OUT"
ctl 3 snapshot delete "$vol" nope
[[ $ERR == *nope* ]] || fail "stderr does not name the snapshot: $ERR"
bad_json 3 NotFound snapshot list no-such-volume
bad_json 6 Busy snapshot revert "$vol" s1
ctl 2 job show abc
ctl 2 replica set-count "$vol" two
ctl 2 volume expand "$vol" 1GB
bad_json 3 NotFound job show 999999
assert_eq "s1 s2" "$(snapshot_names)" "snapshots after the refused commands"

# snapshot delete --wait: exit 0 once the merge has ended; s1 is gone.
ctl 0 snapshot delete "$vol" s1 --wait
assert_eq "Deleted snapshot s1 of volume $vol." "$OUT" "snapshot delete --wait output"
assert_eq "" "$ERR" "snapshot delete --wait stderr off a terminal"
assert_eq "s2" "$(snapshot_names)" "snapshots after snapshot delete --wait"

# Without --wait: the job's path, which the job commands know.
write_mib "$file" 16 4
ctl 0 snapshot create "$vol" s3
ctl 0 snapshot delete "$vol" s3
job=$OUT
[[ $job =~ ^/org/shorthorn/Storage1/jobs/([0-9]+)$ ]] || fail "snapshot delete printed '$job', not a job path"
id=${BASH_REMATCH[1]}
ctl 0 --json job show "$id"
assert_eq "delete-snapshot s3 $vol $job" \
  "$(json 'd["operation"], d["target"], d["volume"], d["object_path"]')" "job show --json"
ctl 0 job show "$job"
[[ $OUT == *"Operation:     delete-snapshot"* ]] || fail "job show: $OUT"
ctl 0 --json job list
[[ $(json '" ".join(j["object_path"] for j in d)') == *"$job"* ]] || fail "job list --json lacks $job: $OUT"
ctl 0 job list --quiet
grep -qx "$id" <<<"$OUT" || fail "job list --quiet lacks $id: $OUT"
ctl 0 job wait "$id"
assert_eq "Job $id (delete-snapshot s3 of volume $vol) completed." "$OUT" "job wait output"
ctl 0 --json job wait "$job"
assert_eq "completed 1.0" "$(json 'd["state"], d["progress"]')" "job wait --json"
bad_json 5 InvalidArgument job cancel "$id"
assert_eq "s2" "$(snapshot_names)" "snapshots after deleting s3"
log "ok: snapshot delete, job show/list/wait/cancel"

# verify --wait: exit 0; off a terminal nothing on stderr, on a
# pseudo-terminal the progress line ends at 100 %.
ctl 0 volume verify "$vol" --wait
assert_eq "Verified volume $vol: every snapshot layer matches its checksum." "$OUT" "verify --wait"
assert_eq "" "$ERR" "verify --wait stderr off a terminal"
ctl 0 --json volume verify "$vol" --wait
assert_eq "completed verify" "$(json 'd["job"]["state"], d["job"]["operation"]')" "verify --wait --json"
script -qec "$(printf '%q ' "$CTL" volume verify "$vol" --wait)" /dev/null >"$TEST_DIR/tty.out" </dev/null ||
  fail "verify --wait on a pseudo-terminal failed: $(cat "$TEST_DIR/tty.out")"
grep -q $'\r'"job [0-9]* verify of volume $vol \[####################\] 100%" "$TEST_DIR/tty.out" ||
  fail "no progress line on the terminal: $(cat -v "$TEST_DIR/tty.out")"
log "ok: verify --wait, progress line on a terminal: $(tr '\r' '\n' <"$TEST_DIR/tty.out" | grep '100%' | tail -1 | sed 's/\x1b\[K//')"
ctl 0 volume verify "$vol"
[[ $OUT =~ ^/org/shorthorn/Storage1/jobs/[0-9]+$ ]] || fail "verify without --wait printed '$OUT'"
ctl 0 job wait "$OUT"

# Expand.
ctl 0 volume expand "$vol" 512M
ctl 0 --json volume show "$vol"
assert_eq $((512 * MiB)) "$(json 'd["size"]')" "size after volume expand"
bad_json 5 InvalidArgument volume expand "$vol" 128M

# Replicas: a second one, rebuilt as a job.
ctl 0 --json replica list "$vol"
assert_eq "1 healthy 1" "$(json 'd["replica_count"], d["robustness"], len(d["replicas"])')" \
  "replica list before set-count"
bad_json 5 InvalidArgument replica set-count "$vol" 9
ctl 0 replica set-count "$vol" 2
# shellcheck disable=SC2317  # called through wait_until
robust() { ctl 0 --json replica list "$vol" && [[ $(json 'd["robustness"]') == healthy && $(json 'len(d["replicas"])') == 2 ]]; }
secs=$(wait_until 120 "two RW replicas after replica set-count 2" robust)
log "ok: replica set-count 2: healthy with two replicas after ${secs}s"
ctl 0 replica list "$vol"
[[ $OUT == "Replica count: 2"$'\n'"Robustness:    healthy"$'\n'"ADDRESS "*" REPLICA "*" MODE"$'\n'* ]] ||
  fail "replica list: $OUT"
ctl 0 --json job list
[[ $(json '" ".join(j["operation"] + ":" + j["state"] for j in d if j["volume"] == "'"$vol"'")') == *rebuild:* ]] ||
  fail "job list shows no rebuild of $vol: $OUT"

# Placement: the replicads with their hosts, the replicas with theirs.
ctl 0 replicad list
[[ $OUT == *"$(replica_address r1)"*" up "*"test-host-r1"* && $OUT == *"test-host-r2"* ]] ||
  fail "replicad list does not show both replicads up with their hosts: $OUT"
ctl 0 replicad list -q
assert_eq "2" "$(wc -l <<<"$OUT")" "lines of replicad list -q"
ctl 0 --json replica list "$vol"
assert_eq "test-host-r1 test-host-r2" \
  "$(json '" ".join(sorted(r["host_id"] for r in d["replicas"]))')" "hosts in replica list --json"
ctl 8 volume create ctl-3 --size 64M --replica-count 3
[[ $ERR == *"cannot place 3 replica(s)"*"only 2 replicad(s) are known"* ]] ||
  fail "refusal does not say what was asked and why: $ERR"
ctl 5 volume rebuild "$vol"
ctl 3 replicad undrain "$(replica_address r2)"

# A verify that fails: damage the s2 layer on r1; --wait exits 1 naming s2.
ctl 0 volume detach "$vol"
ctl 6 volume rebuild "$vol"
replica_dir=$(find "$REPLICAS_DIR/r1" -mindepth 1 -maxdepth 1 -type d | head -1)
layer=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(next(l["file"] for l in m["layers"] if l.get("name")=="s2"))' "$replica_dir/replica.json")
off=$(python3 -c 'import os,sys; fd=os.open(sys.argv[1],os.O_RDONLY); print(os.lseek(fd,0,os.SEEK_DATA))' "$replica_dir/$layer")
printf 'rot' | dd of="$replica_dir/$layer" bs=1 seek=$((off + 100)) conv=notrunc status=none
ctl 1 volume verify "$vol" --wait
[[ $ERR == *s2* ]] || fail "failed verify does not name s2: $ERR"
bad_json 1 Failed volume verify "$vol" --wait

ctl 0 volume delete "$vol"
ctl 0 --json volume list
assert_eq "[]" "$OUT" "volume list after delete"

pass
