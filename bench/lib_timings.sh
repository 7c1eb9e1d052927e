# shellcheck shell=bash
# bench/lib_timings.sh: the timed operations of a bench/run.sh run besides
# fio (snapshot create, a full rebuild, backups and a restore), sourced by
# run.sh and called by config_shorthorn on shorthorn-1. Each appends one JSON
# line per figure to TEST_DIR/timings.jsonl, which report.py turns into the
# "other timings" table.

# now_us: microseconds, for timing a D-Bus call.
now_us() { echo $(($(date +%s%N) / 1000)); }

# time_snapshots VOLUME: SNAPSHOTS snapshot-create calls on the attached,
# mounted volume, each timed around busctl; beside it busctl's own round
# trip on a property read.
time_snapshots() {
  local vol=$1 i t0 samples=() base=() sep
  for ((i = 0; i < SNAPSHOTS; i++)); do
    t0=$(now_us)
    volume_prop "$vol" Size >/dev/null
    base+=("$(($(now_us) - t0))")
    t0=$(now_us)
    volume_call "$vol" Snapshot 'sa{sv}' "bench-$i" 0 >/dev/null || fail "Snapshot bench-$i of $vol failed"
    samples+=("$(($(now_us) - t0))")
  done
  local to_ms='import sys; print(", ".join(f"{int(x)/1000:.3f}" for x in sys.argv[1:]))'
  printf '{"label": "snapshot create (D-Bus Snapshot on attached %s, ext4 mounted, %d MiB of data; timed around busctl)", "kind": "samples_ms", "samples_ms": [%s], "required": true}\n' \
    "$vol" "$((2 * SIZE_MIB))" "$(python3 -c "$to_ms" "${samples[@]}")" >>"$TEST_DIR/timings.jsonl"
  printf '{"label": "busctl round trip (get-property Size), for comparison", "kind": "samples_ms", "samples_ms": [%s]}\n' \
    "$(python3 -c "$to_ms" "${base[@]}")" >>"$TEST_DIR/timings.jsonl"
  sep=${samples[*]}
  log "snapshot create (us): $sep"
}

# time_rebuild VOLUME: on the attached shorthorn-1 volume with its data and
# snapshots, SetReplicaCount 2 starts a full rebuild onto another replicad;
# timed from the call until Robustness is healthy again, with the bytes the
# rebuild job reports. A fused without SetReplicaCount gets a note instead.
time_rebuild() {
  local vol=$1 t0 secs bytes i methods
  methods=$(busctl --system introspect "$BUS_NAME" "$(volume_path "$vol")" "$VOLUME_IFACE" 2>/dev/null || true)
  if [[ $methods != *SetReplicaCount* ]]; then
    printf '{"label": "rebuild", "kind": "placeholder", "note": "not measured: this shorthorn-fused has no SetReplicaCount"}\n' \
      >>"$TEST_DIR/timings.jsonl"
    return 0
  fi
  t0=$(now_us)
  volume_call "$vol" SetReplicaCount 'ua{sv}' 2 0 >/dev/null || fail "SetReplicaCount 2 on $vol failed"
  for ((i = 0; i < 6000; i++)); do
    [[ $(volume_prop "$vol" Robustness 2>/dev/null) != healthy ]] || break
    sleep 0.1
  done
  ((i < 6000)) || fail "rebuild of $vol not done after 600 s: $(volume_prop "$vol" Replicas)"
  secs=$(python3 -c 'import sys; print((int(sys.argv[2]) - int(sys.argv[1])) / 1e6)' "$t0" "$(now_us)")
  bytes=$(busctl --system --json=short call "$BUS_NAME" "$ROOT_PATH" org.freedesktop.DBus.ObjectManager \
    GetManagedObjects | python3 -c '
import json, sys
total = 0
for path, ifaces in json.load(sys.stdin)["data"][0].items():
    j = ifaces.get("org.shorthorn.Storage1.Job")
    if j and j.get("Volume", {}).get("data") == sys.argv[1] and j.get("Operation", {}).get("data") == "rebuild":
        total += j.get("Bytes", {}).get("data") or 0
print(total)' "$(volume_path "$vol")")
  local source="the rebuild job's Bytes"
  if ((bytes == 0)); then
    # The job does not count bytes (yet): a rebuild copies the allocated
    # extents of the layer chain, which is what ActualSize measures.
    bytes=$(volume_prop "$vol" ActualSize)
    source="ActualSize (the job reported 0 bytes)"
  fi
  log "rebuild of $vol: $bytes bytes ($source) in $secs s"
  printf '{"label": "rebuild (SetReplicaCount 1 -> 2 on attached shorthorn-1, ext4 mounted, idle; bytes from %s)", "kind": "rate", "seconds": %s, "bytes": %s, "required": true}\n' \
    "$source" "$secs" "$bytes" >>"$TEST_DIR/timings.jsonl"
}

# timed_job LABEL CALL...: starts a job, waits for it to complete; sets
# JOB_SECS, JOB_MESSAGE and JOB_TOTAL (its TotalBytes).
timed_job() {
  local label=$1 path t0 state
  shift
  t0=$(now_us)
  path=$("$@" | _unquote) || fail "$label: the call failed"
  state=$(wait_job "$path" 1800)
  JOB_SECS=$(python3 -c 'import sys; print((int(sys.argv[2]) - int(sys.argv[1])) / 1e6)' "$t0" "$(now_us)")
  JOB_MESSAGE=$(busctl --system get-property "$BUS_NAME" "$path" org.shorthorn.Storage1.Job Message | _unquote)
  JOB_TOTAL=$(busctl --system get-property "$BUS_NAME" "$path" org.shorthorn.Storage1.Job TotalBytes | _unquote)
  [[ $state == completed ]] || fail "$label: job $path $state: $JOB_MESSAGE"
}

# record_rate LABEL REQUIRED: a "rate" line for the last timed_job (JOB_SECS,
# JOB_TOTAL), compared with the raw disk; REQUIRED true or false.
record_rate() {
  local required=""
  [[ $2 != true ]] || required=', "required": true'
  printf '{"label": "%s", "kind": "rate", "seconds": %s, "bytes": %s, "compare_raw": true%s}\n' \
    "$1" "$JOB_SECS" "$JOB_TOTAL" "$required" >>"$TEST_DIR/timings.jsonl"
}

# write_and_back_up VOLUME DEVICE MIB SNAPSHOT TARGET WHAT: writes MIB MiB of
# incompressible data at the start of DEVICE, snapshots SNAPSHOT and times
# its backup to TARGET (logged as WHAT); sets what timed_job sets.
write_and_back_up() {
  local vol=$1 dev=$2 mib=$3 snap=$4 target=$5 what=$6
  fio --name="$snap" --filename="$dev" --rw=write --bs=1M --size="${mib}M" --offset=0 --direct=1 \
    --ioengine=libaio --iodepth=8 --refill_buffers=1 --buffer_compress_percentage=0 \
    --output="$TEST_DIR/$snap.out" >/dev/null || fail "writing $mib MiB to $vol with fio failed"
  volume_call "$vol" Snapshot 'sa{sv}' "$snap" 0 >/dev/null || fail "Snapshot $snap of $vol failed"
  drop_caches
  timed_job "$what" volume_call "$vol" Backup 'sa{sv}' "$snap" 1 target s "$target"
  log "$what of $vol: $JOB_TOTAL bytes (read) in $JOB_SECS s ($JOB_MESSAGE)"
}

# time_backup VOLUME DEVICE: fills the (unmounted) volume with SIZE_MIB of
# incompressible data, then times a full backup to a directory target on
# the work disk, an incremental one after 64 MiB more, and a restore of the
# full one into a new volume. Bytes are volume data (what the jobs read or
# wrote), so the rates compare with the raw disk's sequential write.
time_backup() {
  local vol=$1 dev=$2 target="file://$TEST_DIR/backups" full_url restored=bench-restored
  write_and_back_up "$vol" "$dev" "$SIZE_MIB" bk-full "$target" "full backup"
  full_url=$JOB_MESSAGE
  record_rate "full backup to a directory on the work disk ($SIZE_MIB MiB incompressible, shorthorn-1 after its rebuild)" true
  # The same into memory (tmpfs): what the backup does when the disk only
  # has to read, to show what bounds the row above.
  mkdir -p "$TEST_DIR/backups-mem"
  mount -t tmpfs -o size=$((SIZE_MIB * 2 + 256))m tmpfs "$TEST_DIR/backups-mem"
  drop_caches
  timed_job "full backup to tmpfs" volume_call "$vol" Backup 'sa{sv}' bk-full 1 target s \
    "file://$TEST_DIR/backups-mem"
  record_rate "the same full backup to a tmpfs directory (the disk only reads)" false
  umount "$TEST_DIR/backups-mem"
  write_and_back_up "$vol" "$dev" 64 bk-inc "$target" "incremental backup"
  record_rate "incremental backup after 64 MiB rewritten (bytes read: the changed 2 MiB blocks)" true
  drop_caches
  timed_job "restore" manager_call RestoreVolume 'ssasa{sv}' "$restored" "$full_url" 1 \
    "$(replica_address r1)" 0
  log "restore of $full_url into $restored: $JOB_TOTAL bytes in $JOB_SECS s"
  record_rate "restore of the full backup into a new 1-replica volume" true
  delete_volume "$restored" || fail "DeleteVolume $restored failed"
  rm -rf "$TEST_DIR/backups"
  if [[ -n ${DAEMON_PIDS[s3rver]:-} ]]; then
    drop_caches
    timed_job "full backup to s3rver" volume_call "$vol" Backup 'sa{sv}' bk-inc 1 target s \
      "s3://$S3_BUCKET/bench"
    log "full backup of $vol to s3rver: $JOB_TOTAL bytes in $JOB_SECS s"
    record_rate "full backup to s3rver (Node.js, on 127.0.0.1, data on the work disk)" false
  fi
}
