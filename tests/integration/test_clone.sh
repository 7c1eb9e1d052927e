#!/usr/bin/env bash
# Clones (issue 18): CreateVolume with option from-snapshot.
#
# ext4 on a 2-replica source volume, frozen while snapshot s1 is taken (its
# sha256 is the frozen device's). Clone c1 is made while the source is
# mounted and written: its device has s1's sha256, e2fsck -fn is clean and
# the files read back; the job reports its copy rate, printed next to a raw
# sequential write on this machine. During a (throttled) clone the clone is
# Busy and the source's snapshot and the source cannot be deleted. A clone of the detached source also
# matches. After the source is deleted, c1 still reads the same. Bad input
# gets its error names; a failed clone leaves no volume.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd python3 mkfs.ext4 e2fsck fsfreeze
start_bus
start_replicad r1
start_replicad r2
start_fused

src=cl-src
mnt=$FS_DIR/$src
size=$((512 * MiB))
create_replicated_volume "$src" "$size" "$(replica_address r1)" "$(replica_address r2)" >/dev/null
dev=$(attach_volume "$src")
mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
mkdir -p "$mnt"
mount "$dev" "$mnt"
write_random_files "$mnt/big" 12 8
write_small_files "$mnt/small" 200
record_checksums "$mnt" "$TEST_DIR/sums"
# Frozen: the device is what the snapshot holds, with a clean journal.
fsfreeze -f "$mnt"
volume_call "$src" Snapshot 'sa{sv}' s1 0 >/dev/null
sha=$(sha256sum "$dev" | cut -d' ' -f1)
fsfreeze -u "$mnt"
log "snapshot s1 of $src: sha256 $sha"

# clone NAME SIZE [OPTIONS-ARGS]: CreateVolume from s1 on r1 and r2.
clone() {
  manager_call CreateVolume 'stasa{sv}' "$1" "$2" 2 "$(replica_address r1)" \
    "$(replica_address r2)" 1 from-snapshot s "$src/s1" >/dev/null
}
# clone_job NAME: the path of the clone job of volume NAME.
clone_job() { jobs_of "$1" clone | tail -1 | cut -d' ' -f1; }

# The source keeps being written during the copy.
(
  i=0
  while [[ ! -e $TEST_DIR/stop-writer ]]; do
    dd if=/dev/urandom of="$mnt/small/live-$((i % 50))" bs=64k count=4 conv=fsync status=none
    i=$((i + 1))
  done
) &
writer=$!
start=$(date +%s.%N)
clone c1 0
job=$(clone_job c1)
[[ -n $job ]] || fail "no clone job for volume c1"
state=$(wait_job "$job")
end=$(date +%s.%N)
touch "$TEST_DIR/stop-writer"
wait "$writer"
[[ $state == completed ]] || fail "clone job $job $state: $(job_prop "$job" Message)"
message=$(job_prop "$job" Message)
log "clone c1: $message ($(python3 -c "print(f'{$end - $start:.2f}')") s from the call)"
assert_eq "$size" "$(volume_prop c1 Size | cut -d' ' -f2)" "size of clone c1 (0: the snapshot's)"
cdev=$(attach_volume c1)
assert_eq "$sha" "$(sha256sum "$cdev" | cut -d' ' -f1)" "sha256 of clone c1"
assert_fsck_clean "$cdev" "clone c1"
mkdir -p "$FS_DIR/c1"
mount -o ro "$cdev" "$FS_DIR/c1"
verify_checksums "$FS_DIR/c1" "$TEST_DIR/sums"
umount "$FS_DIR/c1"
detach_volume c1
log "ok: clone c1 made while the source was written holds snapshot s1"

# The raw sequential write of this machine, for the copy rate above.
raw=$(dd if=/dev/zero of="$TEST_DIR/raw-write" bs=1M count=256 oflag=direct 2>&1 | tail -1)
rm -f "$TEST_DIR/raw-write"
log "raw sequential write here (dd 256 MiB, O_DIRECT): ${raw##*, }; clone: ${message##*, }"

# A clone of the detached source, larger than the snapshot.
umount "$mnt"
detach_volume "$src"
clone c2 $((size + 64 * MiB))
state=$(wait_job "$(clone_job c2)")
[[ $state == completed ]] || fail "clone c2: $state"
log "clone c2 (source detached): $(job_prop "$(clone_job c2)" Message)"
cdev=$(attach_volume c2)
assert_eq "$sha" "$(head -c "$size" "$cdev" | sha256sum | cut -d' ' -f1)" \
  "sha256 of the first 512 MiB of the 576 MiB clone c2"
assert_eq 0 "$(tail -c $((64 * MiB)) "$cdev" | tr -d '\0' | wc -c)" "bytes past the snapshot in c2"
detach_volume c2
log "ok: a clone of the detached source, 64 MiB larger, holds s1 and zeros after it"

# ---------------------------------------------------------------- bad input
create() { assert_error_name "$1" "$2" "$MANAGER_PATH" "$MANAGER_IFACE.CreateVolume" "${@:3}"; }
create NotFound "a clone of a missing snapshot" "'c3'" "uint64 0" "@as []" \
  "{'from-snapshot': <'$src/nope'>}"
create NotFound "a clone of a missing volume" "'c3'" "uint64 0" "@as []" \
  "{'from-snapshot': <'nope/s1'>}"
create AlreadyExists "a clone onto a taken name" "'c1'" "uint64 0" "@as []" \
  "{'from-snapshot': <'$src/s1'>}"
create InvalidArgument "from-snapshot without a slash" "'c3'" "uint64 0" "@as []" \
  "{'from-snapshot': <'$src'>}"
create InvalidArgument "from-snapshot that is not a string" "'c3'" "uint64 0" "@as []" \
  "{'from-snapshot': <uint32 1>}"
create InvalidArgument "a clone smaller than the snapshot" "'c3'" "uint64 $((256 * MiB))" \
  "@as []" "{'from-snapshot': <'$src/s1'>}"
create InvalidArgument "a clone of an unaligned size" "'c3'" "uint64 $((size + 1))" "@as []" \
  "{'from-snapshot': <'$src/s1'>}"
[[ -z $(list_volumes | grep -F "$(volume_path c3)" || true) ]] || fail "a refused clone left c3"

# A clone whose job ends without the whole copy is deleted again. With
# rebuild-bandwidth at 20 MiB/s (it limits clones too) the copy takes
# about 6 s: time to check what is Busy meanwhile, then cancel it.
stop_daemon fused
start_fused_opts --rebuild-bandwidth 20
clone c4 0
job=$(clone_job c4)
# While it runs: every call on the clone is Busy, and the source's snapshot
# and the source itself cannot be deleted.
assert_error_name Busy "attach of a volume being cloned" "$(volume_path c4)" \
  "$VOLUME_IFACE.Attach" "@a{sv} {}"
assert_error_name Busy "delete of the snapshot a clone reads" "$(volume_path "$src")" \
  "$VOLUME_IFACE.DeleteSnapshot" "'s1'" "@a{sv} {}"
assert_error_name Busy "delete of the volume a clone reads" "$MANAGER_PATH" \
  "$MANAGER_IFACE.DeleteVolume" "'$src'" "@a{sv} {}"
assert_eq running "$(job_prop "$job" State)" "state of the throttled clone job after the checks"
busctl --system call "$BUS_NAME" "$job" org.shorthorn.Storage1.Job Cancel >/dev/null
state=$(wait_job "$job")
assert_eq cancelled "$state" "state of the cancelled clone job"
[[ -z $(list_volumes | grep -F "$(volume_path c4)" || true) ]] ||
  fail "a cancelled clone left volume c4"
log "ok: a cancelled clone ($(job_prop "$job" Message)) leaves no volume"
# A replicad that does not answer: CreateVolume fails, nothing is left.
stop_daemon replicad-r2
create Unavailable "a clone onto a stopped replicad" "'c3'" "uint64 0" \
  "@as ['$(replica_address r1)', '$(replica_address r2)']" "{'from-snapshot': <'$src/s1'>}"
[[ -z $(list_volumes | grep -F "$(volume_path c3)" || true) ]] || fail "a failed clone left c3"
start_replicad r2

# ---------------------------------------------------------------- shorthornctl
CTL=$(find_binary shorthornctl)
"$CTL" volume create c5 --from-snapshot "$src/s1" --replica "$(replica_address r1)" --wait \
  >/dev/null || fail "shorthornctl volume create --from-snapshot --wait failed"
cdev=$(attach_volume c5)
assert_eq "$sha" "$(sha256sum "$cdev" | cut -d' ' -f1)" "sha256 of clone c5 made by shorthornctl"
detach_volume c5
delete_volume c5
rc=0
"$CTL" volume create c6 --from-snapshot "$src/nope" >/dev/null 2>&1 || rc=$?
assert_eq 3 "$rc" "exit status of shorthornctl volume create --from-snapshot of a missing snapshot"
log "ok: shorthornctl volume create --from-snapshot --wait"

# ---------------------------------------------------------------- source gone
delete_volume "$src"
cdev=$(attach_volume c1)
assert_eq "$sha" "$(sha256sum "$cdev" | cut -d' ' -f1)" "sha256 of clone c1 after the source was deleted"
detach_volume c1
delete_volume c1
delete_volume c2
log "ok: deleting the source leaves the clone intact"

pass
