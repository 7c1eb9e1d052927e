#!/usr/bin/env bash
# A replicad whose file system fills up, at replica level (no fused): its
# data directory is a 16 MiB tmpfs. A 64 MiB replica gets 8 MiB and a
# snapshot, then 32 MiB more: the WRITE that does not fit is answered
# ENOSPC with a message naming the replica, a SNAPSHOT on the full disk
# either works or answers ENOSPC, so does an OPEN_REPLICA at a new epoch
# (it must be persisted), and afterwards the replica still opens
# (offline and in the daemon, at its stored epoch), the snapshot's content
# hash is unchanged, no stray file is left, and once it is deleted the
# daemon serves a replica that fits.
# Drives replicad directly with replica_tool.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
TOOL=$(find_binary replica_tool)
small_dir=$REPLICAS_DIR/small
mkdir -p "$small_dir"
mount -t tmpfs -o size=16m,mode=0700 shorthorn-test "$small_dir"
# Before the harness's teardown: the replicad first, then its file system.
teardown_hook() {
  stop_daemon replicad-small 20
  if mountpoint -q "$small_dir"; then umount "$small_dir" || umount -l "$small_dir"; fi
}
start_replicad small
ADDR=$(replica_address small)

"$TOOL" run "$ADDR" vol r1 create:$((64 * MiB)) open:1 write:0:$((8 * MiB)):1 snapshot:s1 \
  idle close
before=$("$TOOL" inspect "$small_dir/r1")
s1=$(grep '^s1 ' <<<"$before") || fail "no s1 in: $before"
log "s1 written: $s1; fs: $(df -h --output=used,avail "$small_dir" | tail -1)"

rc=0
out=$("$TOOL" run "$ADDR" vol r1 open:2 write:$((8 * MiB)):$((32 * MiB)):2 2>&1) || rc=$?
((rc != 0)) || fail "32 MiB more fit on a 16 MiB file system"
grep -q "No space left on device" <<<"$out" || fail "not an ENOSPC answer: $out"
grep -q "replica r1" <<<"$out" || fail "the ENOSPC answer does not name the replica: $out"
log "ok: the write that did not fit: $out"

rc=0
out=$("$TOOL" run "$ADDR" vol r1 open:2 snapshot:s2 2>&1) || rc=$?
if ((rc == 0)); then
  log "snapshot s2 fit"
else
  grep -q "No space left on device" <<<"$out" || fail "snapshot on a full disk: $out"
  log "ok: snapshot on the full disk: $out"
fi
# A new epoch must be persisted before it fences anything: ENOSPC too.
rc=0
out=$("$TOOL" run "$ADDR" vol r1 open:3 2>&1) || rc=$?
((rc != 0)) && grep -q "No space left on device" <<<"$out" ||
  fail "a new epoch on a full disk: rc $rc: $out"
log "ok: a new epoch on the full disk: $out"
"$TOOL" run "$ADDR" vol r1 open:2 list close >/dev/null || fail "r1 does not open on the full disk"

stop_daemon replicad-small
after=$("$TOOL" inspect "$small_dir/r1") || fail "r1 does not open offline: $after"
grep -qx "$s1" <<<"$after" || fail "s1 changed: $(grep '^s1 ' <<<"$after")"
files=$(awk '/^layer-files/ {print $2 == $4}' <<<"$after")
[[ $files == 1 ]] || fail "stray layer files: $(grep layer-files <<<"$after")"
[[ ! -e $small_dir/r1/replica.json.tmp ]] || fail "replica.json.tmp left behind"
log "ok: r1 opens offline, s1 unchanged, no stray file"

start_replicad small "${REPLICAD_PORTS[small]}"
"$TOOL" run "$ADDR" vol r1 open:2 list close >/dev/null || fail "r1 does not open after a restart"
# On a 100% full disk even DELETE_SNAPSHOT cannot commit; DELETE_REPLICA
# frees the space, and the daemon serves a replica that fits. (At an epoch
# older than the replica's, 2, it is refused: a fenced engine cannot delete.)
out=$("$TOOL" run "$ADDR" vol r1 destroy:1 2>&1) && fail "DELETE_REPLICA at epoch 1 succeeded"
[[ $out == *"is older than the replica's epoch"* ]] || fail "DELETE_REPLICA at epoch 1: $out"
"$TOOL" run "$ADDR" vol r1 destroy:2
"$TOOL" run "$ADDR" vol r2 create:$((4 * MiB)) open:1 write:0:$((1 * MiB)):3 snapshot:s1 close ||
  fail "no replica fits any more"
_check_alive replicad-small
pass
