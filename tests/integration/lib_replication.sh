# shellcheck shell=bash
# Part of lib.sh (sourced by it, never on its own): fused with options and
# restarts, jobs, replica modes and replicas on disk, waiting, statistics.

# ---------------------------------------------------------------- replication, jobs, replicas
# Helpers of the replication, job and fault tests.

# quick_mode: true when the tests should be short (CI=true or SHORTHORN_QUICK=1).
quick_mode() { [[ ${CI:-} == true || ${SHORTHORN_QUICK:-0} == 1 ]]; }

# start_fused_opts [--replicads "A B"] OPTION...: start_fused with extra
# command-line options (--replica-timeout 2, ...). Without --replicads, every
# replicad started so far is a candidate, as with start_fused.
# shellcheck disable=SC2120  # tests pass options; start_fused passes none
start_fused_opts() {
  local i
  [[ -z ${DAEMON_PIDS[fused]:-} ]] || fail "fused already running"
  fused_command "$@"
  "${FUSED_CMD[@]}" >>"$LOG_DIR/fused.log" 2>&1 </dev/null &
  DAEMON_PIDS[fused]=$!
  for ((i = 0; i < 300; i++)); do
    _check_alive fused
    busctl --system call "$BUS_NAME" "$MANAGER_PATH" "$MANAGER_IFACE" ListVolumes \
      >/dev/null 2>&1 && break
    sleep 0.1
  done
  ((i < 300)) || fail "fused does not answer ListVolumes on the bus after 30s"
  log "fused pid ${DAEMON_PIDS[fused]} ($*), replicads: $FUSED_REPLICADS"
}

# fused_answers: true when a fused answers ListVolumes on the test bus.
fused_answers() {
  busctl --system call "$BUS_NAME" "$MANAGER_PATH" "$MANAGER_IFACE" ListVolumes >/dev/null 2>&1
}

# takeover_fused OPTION...: a planned restart: a new fused started with
# --takeover and OPTION... replaces the running one, which must hand over
# (exit status 3) within 60 s; returns once the new one answers.
takeover_fused() {
  local old=${DAEMON_PIDS[fused]}
  unset "DAEMON_PIDS[fused]"
  start_fused_opts "$@" --takeover
  _wait_dead "$old" 60 || fail "the old fused (pid $old) did not hand over within 60 s"
  _reap "$old"
  # 3: handed over (the unit restarts fused on it even unasked).
  [[ $DAEMON_STATUS == 3 ]] || fail "the old fused exited with status $DAEMON_STATUS, not 3"
  wait_until 60 "the new fused answers" fused_answers >/dev/null
}

# fused_command [--replicads "A B"] OPTION...: sets FUSED_CMD to the command
# line start_fused_opts runs (for a test that runs fused its own way).
fused_command() {
  local rlist="" name
  if [[ ${1:-} == --replicads ]]; then
    rlist=$2
    shift 2
  else
    for name in "${!REPLICAD_PORTS[@]}"; do rlist+="${rlist:+ }$(replica_address "$name")"; done
  fi
  local args=()
  [[ -z $rlist ]] || args=(--replicads "$rlist")
  # Tests replace a failed replica at once unless they test the wait
  # (a --replica-replenishment-wait option wins over the file).
  echo "replica-replenishment-wait = ${FUSED_REPLENISHMENT_WAIT:-0}" >"$CONF_DIR/fused.conf"
  FUSED_REPLICADS=$rlist
  FUSED_CMD=("$FUSED_BIN" --config "$CONF_DIR/fused.conf" --state-dir "$FUSED_STATE_DIR"
    --mount-point "$FUSED_MOUNT_POINT" --dev-dir "$FUSED_DEV_DIR" --replicad-socket-dir "$SOCK_DIR"
    --cluster-key "$CLUSTER_KEY" --auto-attach "${FUSED_AUTO_ATTACH:-no}" "${args[@]}"
    --metrics-file "$METRICS_DIR/shorthorn.prom"
    --log-level "$LOG_LEVEL" "$@")
}

# start_s3rver: an S3 server (the s3rver npm package, installed by
# scripts/install-deps.sh) on 127.0.0.1, data in $TEST_DIR/s3, bucket
# $S3_BUCKET made at start; exports SHORTHORN_S3_* (endpoint, http, path
# style, its one account S3RVER/S3RVER) so that a fused started afterwards
# uses it. Restarting reuses the port and the data. Skips the test when
# s3rver is not installed. --allow-mismatched-signatures: s3rver 3.7.1 signs
# bucket-level requests as "/<bucket>" where libs3 2.0 signs "/<bucket>/",
# so every LIST would fail; unknown access keys are still refused.
S3RVER_BIN=${S3RVER_BIN:-/opt/shorthorn-test/s3rver/node_modules/.bin/s3rver}
S3_BUCKET=shorthorn-test
S3RVER_PORT=""
start_s3rver() {
  local i status_line
  [[ -x $S3RVER_BIN ]] && command -v node >/dev/null || skip "s3rver is not installed ($S3RVER_BIN)"
  [[ -z ${DAEMON_PIDS[s3rver]:-} ]] || fail "s3rver already running"
  [[ -n $S3RVER_PORT ]] || S3RVER_PORT=$(free_port)
  mkdir -p "$TEST_DIR/s3"
  "$S3RVER_BIN" --directory "$TEST_DIR/s3" --address 127.0.0.1 --port "$S3RVER_PORT" --silent \
    --allow-mismatched-signatures --configure-bucket "$S3_BUCKET" \
    >>"$LOG_DIR/s3rver.log" 2>&1 </dev/null &
  DAEMON_PIDS[s3rver]=$!
  for ((i = 0; i < 300; i++)); do
    _check_alive s3rver
    if { exec 7<>"/dev/tcp/127.0.0.1/$S3RVER_PORT"; } 2>/dev/null; then
      printf 'GET /%s?max-keys=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' \
        "$S3_BUCKET" >&7
      status_line=$(timeout 5 head -n 1 <&7 || true)
      exec 7<&- 7>&-
      [[ $status_line != "HTTP/1.1 200"* ]] || break
    fi
    sleep 0.1
  done
  ((i < 300)) || fail "s3rver on port $S3RVER_PORT does not answer for bucket $S3_BUCKET"
  export SHORTHORN_S3_ENDPOINT=127.0.0.1:$S3RVER_PORT SHORTHORN_S3_PROTOCOL=http \
    SHORTHORN_S3_URI_STYLE=path SHORTHORN_S3_ACCESS_KEY=S3RVER SHORTHORN_S3_SECRET_KEY=S3RVER
  log "s3rver pid ${DAEMON_PIDS[s3rver]} at http://127.0.0.1:$S3RVER_PORT, bucket $S3_BUCKET"
}

# wait_job PATH [SECONDS]: waits for a job to end (default 180 s); prints its
# final State. job_prop PATH PROPERTY: a property of a job.
wait_job() {
  local path=$1 limit=$((${2:-180} * 10)) state i
  for ((i = 0; i < limit; i++)); do
    state=$(busctl --system get-property "$BUS_NAME" "$path" org.shorthorn.Storage1.Job State |
      _unquote)
    [[ $state == running ]] || { echo "$state"; return; }
    sleep 0.1
  done
  fail "job $path still running after $((limit / 10)) s"
}
job_prop() { busctl --system get-property "$BUS_NAME" "$1" org.shorthorn.Storage1.Job "$2" | _unquote; }

# run_job WHAT CALL...: starts a job with CALL, waits; fails unless it
# completed; prints its Message. failed_job WHAT CALL...: the job must fail;
# prints its Message.
run_job() {
  local what=$1 path state
  shift
  path=$("$@" | _unquote)
  state=$(wait_job "$path")
  [[ $state == completed ]] || fail "$what: job $path $state: $(job_prop "$path" Message)"
  job_prop "$path" Message
}
failed_job() {
  local what=$1 path state
  shift
  path=$("$@" | _unquote)
  state=$(wait_job "$path")
  [[ $state == failed ]] || fail "$what: expected the job to fail, it is $state"
  job_prop "$path" Message
}

# inspect_replica ADDRESS NAME: replica_tool inspect of replica NAME of the
# replicad at ADDRESS (one this test started; it must be stopped): "<snapshot>
# <hash>" lines, "(live) <hash>", "layer-files <n> layers <m>".
inspect_replica() {
  local addr=$1 name=$2 r
  for r in "${!REPLICAD_PORTS[@]}"; do
    if [[ $(replica_address "$r") == "$addr" ]]; then
      "$(find_binary replica_tool)" inspect "$REPLICAS_DIR/$r/$name"
      return
    fi
  done
  fail "inspect_replica: no replicad of this test at $addr"
}

# create_replicated_volume NAME SIZE ADDRESS...: one replica per address,
# replica-count = the number of addresses; prints the object path.
create_replicated_volume() {
  local name=$1 size=$2
  shift 2
  manager_call CreateVolume 'stasa{sv}' "$name" "$size" "$#" "$@" 1 replica-count u "$#" | _unquote
}

# init_replicated_volume NAME [SNAPSHOT]: init_test, replicads r1 r2 r3 and
# fused, then volume NAME (256 MiB) on r1 and r2, attached, its first 16 MiB
# random; with SNAPSHOT, that snapshot of it, then 16 MiB more random from
# 8 MiB on. Sets a1 and a2 (the replicas' addresses) and dev (the loop device).
init_replicated_volume() {
  init_test
  start_cluster r1 r2 r3
  a1=$(replica_address r1) a2=$(replica_address r2)
  # shellcheck disable=SC2154  # MiB is lib.sh's
  create_replicated_volume "$1" $((256 * MiB)) "$a1" "$a2" >/dev/null
  dev=$(attach_volume "$1")
  dd if=/dev/urandom of="$dev" bs=1M count=16 oflag=direct status=none
  [[ -n ${2:-} ]] || return 0
  volume_call "$1" Snapshot 'sa{sv}' "$2" 0 >/dev/null
  dd if=/dev/urandom of="$dev" bs=1M seek=8 count=16 oflag=direct status=none
}

# replica_modes NAME: the Replicas property, one "address name mode" a line.
replica_modes() {
  busctl --system --json=short get-property "$BUS_NAME" "$(volume_path "$1")" "$VOLUME_IFACE" \
    Replicas | python3 -c 'import json,sys
for a, n, m in json.load(sys.stdin)["data"]: print(a, n, m or "-")'
}

# replica_mode NAME ADDRESS: the mode of the volume's replica at ADDRESS
# ("none" when the volume has no replica there).
replica_mode() {
  local m
  m=$(replica_modes "$1" | awk -v a="$2" '$1 == a { print $3; exit }')
  echo "${m:-none}"
}

# replica_name_at NAME ADDRESS: the name of the volume's replica at ADDRESS.
replica_name_at() {
  replica_modes "$1" | awk -v a="$2" '$1 == a { print $2; exit }'
}

# wait_until SECONDS WHAT COMMAND...: runs COMMAND every 0.2 s until it
# succeeds; fails naming WHAT after SECONDS. Prints the seconds it took.
wait_until() {
  local secs=$1 what=$2 start=$SECONDS i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then
      echo $((SECONDS - start))
      return 0
    fi
    sleep 0.2
  done
  fail "$what: not reached within ${secs}s"
}

# prop_is NAME PROPERTY VALUE: true when the volume's PROPERTY is VALUE.
prop_is() { [[ $(volume_prop "$1" "$2" 2>/dev/null) == "$3" ]]; }

# wait_robustness NAME VALUE SECONDS: waits until Robustness is VALUE; fails
# (with the replica modes) after SECONDS.
wait_robustness() {
  local name=$1 want=$2 secs=$3 i start=$SECONDS
  for ((i = 0; i < secs * 5; i++)); do
    if prop_is "$name" Robustness "$want"; then
      log "Robustness of $name is $want after $((SECONDS - start))s"
      return 0
    fi
    sleep 0.2
  done
  fail "Robustness of $name is '$(volume_prop "$name" Robustness)', not '$want', after ${secs}s; replicas: $(replica_modes "$name" | tr '\n' ';')"
}

# wait_replica_mode NAME ADDRESS MODE SECONDS: waits until the replica at
# ADDRESS has MODE ("none": no replica there any more).
wait_replica_mode() {
  local name=$1 addr=$2 want=$3 secs=$4 i start=$SECONDS
  for ((i = 0; i < secs * 5; i++)); do
    if [[ $(replica_mode "$name" "$addr" 2>/dev/null) == "$want" ]]; then
      log "replica of $name at $addr is $want after $((SECONDS - start))s"
      return 0
    fi
    sleep 0.2
  done
  fail "replica of $name at $addr is '$(replica_mode "$name" "$addr")', not '$want', after ${secs}s; replicas: $(replica_modes "$name" | tr '\n' ';')"
}

# jobs_of NAME OPERATION: the volume's jobs of OPERATION, running or ended
# (an ended job stays listed for about a minute), one
# "path state bytes total_bytes message" a line, oldest first.
jobs_of() {
  busctl --system --json=short call "$BUS_NAME" "$ROOT_PATH" org.freedesktop.DBus.ObjectManager \
    GetManagedObjects | python3 -c '
import json, sys
vol, op = sys.argv[1], sys.argv[2]
objs = json.load(sys.stdin)["data"][0]
rows = []
for path, ifaces in objs.items():
    j = ifaces.get("org.shorthorn.Storage1.Job")
    if not j: continue
    g = lambda k: j.get(k, {}).get("data")
    if g("Volume") != vol or g("Operation") != op: continue
    rows.append((int(path.rsplit("/", 1)[1]), path, g("State"), g("Bytes"), g("TotalBytes"),
                 (g("Message") or "").replace("\n", " ")))
for r in sorted(rows): print(*r[1:])' "$(volume_path "$1")" "$2"
}

# wait_caught_up NAME ADDRESS: waits (90 s) until volume NAME is healthy,
# asserts that the replica at ADDRESS is RW again, logs the rebuild jobs and
# sets path, bytes, total and msg from the newest completed one (fails
# when none completed).
wait_caught_up() {
  local jobs state
  wait_robustness "$1" healthy 90
  assert_eq RW "$(replica_mode "$1" "$2")" "mode of the replica at $2 after the catch-up"
  jobs=$(jobs_of "$1" rebuild)
  log "rebuild jobs:"$'\n'"$jobs"
  # shellcheck disable=SC2034  # path, total, msg: for the caller
  read -r path state bytes total msg < <(awk '$2 == "completed"' <<<"$jobs" | tail -1) ||
    fail "no completed rebuild job: $jobs"
}

# replica_dir REPLICAD NAME: the directory of replica NAME on replicad REPLICAD.
replica_dir() { echo "$REPLICAS_DIR/$1/$2"; }

# volume_epoch NAME: the last epoch fused handed out for the volume.
volume_epoch() {
  python3 -c 'import json,sys
for v in json.load(open(sys.argv[1]))["volumes"]:
    if v["name"] == sys.argv[2]: print(v["epoch"])' "$FUSED_STATE_DIR/volumes.json" "$1"
}

# replicad_of ADDRESS: the name of the replicad started on ADDRESS.
replicad_of() {
  local n
  for n in "${!REPLICAD_PORTS[@]}"; do
    [[ $(replica_address "$n") == "$1" ]] && { echo "$n"; return 0; }
  done
  return 1
}

# sha256_range FILE OFFSET_MIB COUNT_MIB: sha256 of COUNT_MIB MiB of FILE
# (a block device or the FUSE file) from OFFSET_MIB, read with O_DIRECT.
sha256_range() {
  dd if="$1" bs=1M skip="$2" count="$3" iflag=direct status=none | sha256sum | cut -d' ' -f1
}

# notice_replica_down NAME ADDRESS OFFSET_MIB: after a replicad was stopped,
# waits up to 10 s for the idle volume to mark its replica ERR on its own;
# if it does not (fused learns of a closed connection only from the next
# request to that replica), reads 1 MiB at OFFSET_MIB and writes it back
# (O_DIRECT, the FrontendPath) so the engine finds out, then waits for ERR.
notice_replica_down() {
  local name=$1 addr=$2 off=$3 file deadline=$((SECONDS + 10))
  while ((SECONDS < deadline)); do
    [[ $(replica_mode "$name" "$addr") == ERR ]] && return 0
    sleep 0.2
  done
  warn "idle volume $name did not mark its replica at $addr ERR within 10 s of the replicad stopping (fused notices only on the next I/O); issuing I/O"
  file=$(volume_prop "$name" FrontendPath)
  dd if="$file" of="$TEST_DIR/notice.tmp" bs=1M skip="$off" count=1 iflag=direct status=none
  dd if="$TEST_DIR/notice.tmp" of="$file" bs=1M seek="$off" count=1 oflag=direct conv=notrunc \
    status=none
  wait_replica_mode "$name" "$addr" ERR 30
}

# statistic VOLUME KEY: one figure of the volume's Statistics property
# (read_requests, write_bytes, ...).
statistic() {
  local stats
  stats=$(busctl --system --json=short get-property "$BUS_NAME" "$(volume_path "$1")" \
    "$VOLUME_IFACE" Statistics)
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])["data"][sys.argv[2]])' "$stats" "$2"
}

# _wakeups PID: how often the process went to sleep and was woken (voluntary
# and involuntary context switches).
_wakeups() {
  awk '/ctxt_switches/ {n += $2} END {print n + 0}' "/proc/$1/status"
}

# assert_not_woken_per_request PID WHAT VOLUME DEVICE: PID (WHAT: the
# holder, the service manager) keeps the FUSE connection; it must not be
# woken by the requests on it. 20,000 4 KiB direct reads of DEVICE (each one
# FUSE read request, checked with VOLUME's Statistics) may wake it at most
# 2,000 times (its own timers: a few per second).
assert_not_woken_per_request() {
  local pid=$1 what=$2 vol=$3 dev=$4 n=20000 w0 w1 r0 r1
  r0=$(statistic "$vol" read_requests)
  w0=$(_wakeups "$pid")
  dd if="$dev" of=/dev/null bs=4k count=$n iflag=direct status=none || fail "reading $dev failed"
  w1=$(_wakeups "$pid")
  r1=$(statistic "$vol" read_requests)
  assert_ge "$n" "$((r1 - r0))" "FUSE read requests made by $n direct reads of $dev"
  (((w1 - w0) <= n / 10)) ||
    fail "$what (pid $pid) was woken $((w1 - w0)) times by $((r1 - r0)) FUSE requests"
  log "ok: $what (pid $pid) woken $((w1 - w0)) times by $((r1 - r0)) FUSE requests"
}
