# shellcheck shell=bash disable=SC2004,SC2034,SC2154  # DAEMON_PIDS (an associative array) and MiB are lib.sh's
# bench/lib_configs.sh: the configurations bench/run.sh measures, sourced by
# it. Each config_* starts what it measures (a file, a loop device,
# fuse_floor, the Shorthorn daemons and a volume), runs the jobs on its
# targets (run_target / run_device of run.sh) and tears it down again, so
# the next config finds the disk as it was. Uses run.sh's globals (DATA_DIR,
# DEV_SIZE, FS_DIR, FLOOR_BIN, JOB_LIST, SNAPSHOTS) and lib.sh's daemons.

# make_fs DEVICE DIR: ext4 (no discard at mkfs, tables written now so no
# lazy init runs during the jobs), mounted at DIR.
make_fs() {
  local dev=$1 dir=$2
  mkfs.ext4 -q -F -b 4096 -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$dev" ||
    fail "mkfs.ext4 $dev failed"
  mkdir -p "$dir"
  mount "$dev" "$dir" || fail "mount $dev at $dir failed"
}

# run_device CONFIG DEVICE DAEMON...: the blk target, then ext4 and the fs
# target; leaves the filesystem mounted at $FS_DIR/CONFIG.
run_device() {
  local config=$1 dev=$2
  shift 2
  run_target "$config" blk "$dev" "$@"
  make_fs "$dev" "$FS_DIR/$config"
  run_target "$config" fs "$FS_DIR/$config/fio.dat" "$@"
}

unmount_fs() {
  local dir=$FS_DIR/$1
  if mountpoint -q "$dir"; then
    umount "$dir" || fail "umount $dir failed"
  fi
}

# ---------------------------------------------------------------- configurations

config_raw() {
  local file=$DATA_DIR/raw.img
  fallocate -l "$DEV_SIZE" "$file"
  # The whole file: it is the loop config's device too. Its speed is the
  # disk's sequential write speed in this run.
  precondition raw file "$file" "$DEV_SIZE"
  printf '{"label": "raw disk sequential write (1 MiB, QD16, O_DIRECT, %d MiB, end fsync)", "kind": "fio_throughput", "fio_json": "%s", "required": true}\n' \
    "$((DEV_SIZE / MiB))" "$PRECONDITION_JSON" >>"$TEST_DIR/timings.jsonl"
  local job
  for job in "${JOB_LIST[@]}"; do
    run_job raw file "$file" "${job%%/*}" "${job#*/}"
  done
}

config_loop() {
  local file=$DATA_DIR/raw.img dev
  [[ -f $file ]] || { fallocate -l "$DEV_SIZE" "$file"; precondition loop file "$file" "$DEV_SIZE"; }
  dev=$(losetup -f --show --direct-io=on --sector-size 4096 "$file") || fail "losetup on $file failed"
  log "loop: $dev on $file"
  run_device loop "$dev"
  unmount_fs loop
  losetup -d "$dev" || fail "losetup -d $dev failed"
  rm -f "$file"
}

# config_fuse CONFIG: fuse_floor serving one file through fused's FUSE
# frontend, a loop device on it, the jobs. fuse-floor: the io_uring file
# backend on a file of the work disk, blk and fs targets. fuse-null: the
# null backend (no I/O, reads return zeros), blk only (ext4 would read back
# zeros). Its temp state dir and its descriptor holder live under
# TEST_DIR/CONFIG, so lib.sh's leftover check sees them; both must be gone
# after it stops.
config_fuse() {
  local config=$1 dir=$TEST_DIR/$1 file="" backend name dev i
  local mnt=$dir/mnt log=$LOG_DIR/$1.log args
  if [[ $config == fuse-null ]]; then
    backend=null name=null
    args=(--backend null --size "$DEV_SIZE")
  else
    backend=file name=floor file=$DATA_DIR/floor.img
    rm -f "$DATA_DIR/raw.img"  # done with raw and loop: keep the disk's free space
    fallocate -l "$DEV_SIZE" "$file"
    args=(--backend file --backing "$file")
  fi
  mkdir -p "$mnt"
  # shellcheck disable=SC2086  # FLOOR_OPTS is a list of options
  "$FLOOR_BIN" --mount "$mnt" --name "$name" --tmp-dir "$dir" "${args[@]}" $FLOOR_OPTS \
    >>"$log" 2>&1 </dev/null &
  DAEMON_PIDS[$config]=$!
  for ((i = 0; i < 100; i++)); do
    _check_alive "$config"
    [[ -f $mnt/$name ]] && break
    sleep 0.1
  done
  ((i < 100)) || fail "fuse_floor ($backend) did not serve $mnt/$name within 10s"
  log "$config: $(grep -m 1 'fuse_floor: serving' "$log")"
  dev=$(losetup -f --show --direct-io=on --sector-size 4096 "$mnt/$name") ||
    fail "losetup on $mnt/$name failed"
  # For lib.sh's cleanup: once the FUSE mount is gone, the loop device's
  # backing file reads "/$name", no longer a path under TEST_DIR.
  echo "$dev $name" >>"$TEST_DIR/attached-loops"
  if [[ $config == fuse-null ]]; then
    run_target "$config" blk "$dev" "$config"
  else
    run_device "$config" "$dev" "$config"
    unmount_fs "$config"
  fi
  losetup -d "$dev" || fail "losetup -d $dev failed"
  stop_daemon "$config" 20
  ((DAEMON_STATUS == 0)) || fail "fuse_floor ($backend) exited with status $DAEMON_STATUS; see $log"
  log "$config: $(tail -n 1 "$log")"
  # Nothing of it may stay: the mount, the holder of its /dev/fuse
  # descriptor (which exits when released), its state dir.
  ! mountpoint -q "$mnt" || fail "$config: $mnt still mounted after fuse_floor exited"
  for ((i = 0; i < 30; i++)); do
    [[ -n $(pgrep -f -- "--fuse-fd-holder $dir/") ]] || break
    sleep 0.1
  done
  ((i < 30)) || fail "$config: the FUSE descriptor holder outlived fuse_floor: $(pgrep -fa -- "--fuse-fd-holder $dir/")"
  [[ -z $(find "$dir" -mindepth 1 -maxdepth 1 -name 'fuse_floor.*') ]] ||
    fail "$config: fuse_floor left its state dir under $dir"
  [[ -z $file ]] || rm -f "$file"
}

SHORTHORN_UP=0
start_shorthorn() {
  ((SHORTHORN_UP == 0)) || return 0
  start_bus
  start_replicad r1
  start_replicad r2
  start_replicad r3
  # An S3 server for the backup rate to S3, when installed (its settings
  # reach fused through the environment, so it starts first).
  if [[ -x $S3RVER_BIN ]] && command -v node >/dev/null; then start_s3rver; fi
  # shellcheck disable=SC2086  # FUSED_OPTS is a list of options
  start_fused_opts $FUSED_OPTS
  SHORTHORN_UP=1
}

config_shorthorn() {
  local n=$1 config="shorthorn-$1" vol="bench-$1" addrs=() daemons=(fused) i dev
  start_shorthorn
  for ((i = 1; i <= n; i++)); do
    addrs+=("$(replica_address "r$i")")
    daemons+=("replicad-r$i")
  done
  create_volume "$vol" "$DEV_SIZE" "${addrs[@]}" >/dev/null || fail "CreateVolume $vol failed"
  dev=$(attach_volume "$vol") || fail "Attach $vol failed"
  log "$config: volume $vol on ${addrs[*]}, $dev"
  run_device "$config" "$dev" "${daemons[@]}"
  if ((n == 1 && SNAPSHOTS > 0)); then time_snapshots "$vol"; fi
  if ((n == 1)); then time_rebuild "$vol"; fi
  unmount_fs "$config"
  if ((n == 1)); then time_backup "$vol" "$dev"; fi
  detach_volume "$vol" || fail "Detach $vol failed"
  delete_volume "$vol" || fail "DeleteVolume $vol failed"
}
