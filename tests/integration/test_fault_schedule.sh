#!/usr/bin/env bash
# Issue 15, "prove it": a seeded random schedule of writes, flushes,
# snapshots, snapshot deletions, reverts, replicad kill -9 / clean restart /
# power loss, network cuts and heals against a volume with three replicas
# (r1, r2 behind fault_proxy.py, r3), checked against a model of what every
# byte must hold. fault_schedule.py (run here as a coprocess) chooses and
# does the steps, reads back after each one and, at the end, compares every
# replica offline (replica_tool inspect) with the model; this script owns the
# daemons and does what it asks (see its docstring for the line protocol).
#
# Modes:
#   quick (CI=true or SHORTHORN_QUICK=1): seeds 1 and 2 and one random seed,
#     SHORTHORN_SCHEDULE_STEPS (default 100) steps each;
#   full: one seed, SHORTHORN_SCHEDULE_STEPS (default 5000) steps;
#   SHORTHORN_SCHEDULE_SEED=N: that seed only (quick: 100 steps by default).
# Power loss (SIGUSR2 to a replicad started with SHORTHORN_TEST_POWER_LOSS=1)
# is scheduled when the replicads announce the test mode in their log, or
# when SHORTHORN_SCHEDULE_POWER_LOSS=1 (=0 leaves it out).
# A failure prints the seed, the step, the last steps and a one-line command
# that replays the seed.
# SC2031: the coprocess is a subshell, but vol is only ever set here.
# SC2317: functions called through wait_until. SC2153: DRIVER_PID is bash's.
# shellcheck disable=SC2031,SC2317,SC2153
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd python3 gdbus
VOL_SIZE=$((64 * MiB))
if [[ -n ${SHORTHORN_SCHEDULE_SEED:-} ]]; then
  seeds=("$SHORTHORN_SCHEDULE_SEED")
  if quick_mode; then steps=${SHORTHORN_SCHEDULE_STEPS:-100}; else steps=${SHORTHORN_SCHEDULE_STEPS:-5000}; fi
elif quick_mode; then
  seeds=(1 2 $((RANDOM * 32768 + RANDOM)))
  steps=${SHORTHORN_SCHEDULE_STEPS:-100}
else
  seeds=($((RANDOM * 32768 + RANDOM)))
  steps=${SHORTHORN_SCHEDULE_STEPS:-5000}
fi
log "seeds ${seeds[*]}, $steps steps each"

# Every replicad runs in power-loss test mode when it has one.
export SHORTHORN_TEST_POWER_LOSS=1
start_bus

proxy_is() { [[ $(cat "$TEST_DIR/proxy.state" 2>/dev/null) == "$1" ]]; }
start_proxy() {
  pport=$(free_port)
  pa=127.0.0.1:$pport
  python3 "$LIB_DIR/fault_proxy.py" --listen "$pport" --target "$(replica_address r2)" \
    --state-file "$TEST_DIR/proxy.state" >>"$LOG_DIR/fault_proxy.log" 2>&1 </dev/null &
  DAEMON_PIDS[fault_proxy]=$!
  wait_until 10 "fault proxy listening" proxy_is pass >/dev/null
}
proxy_signal() {  # SIGNAL MODE
  kill "-$1" "${DAEMON_PIDS[fault_proxy]}"
  wait_until 5 "proxy in mode $2" proxy_is "$2" >/dev/null
}

# replicad_at ADDRESS: the replicad behind ADDRESS (the proxy's is r2).
replicad_at() {
  if [[ $1 == "$pa" ]]; then echo r2; else replicad_of "$1"; fi
}

# offline_inspect: detach, stop every daemon, replica_tool inspect of each
# replica the volume lists into a file; prints the file names.
offline_inspect() {
  local members addr name _mode r i=0 f
  detach_volume "$vol"
  members=$(replica_modes "$vol")
  stop_daemon fused >&2
  for r in r1 r2 r3; do stop_daemon "replicad-$r" >&2; done
  while read -r addr name _mode; do
    r=$(replicad_at "$addr")
    f=$TEST_DIR/inspect-$seed-$i.txt
    i=$((i + 1))
    { echo "replica $name on $addr ($r)"
      "$(find_binary replica_tool)" inspect "$REPLICAS_DIR/$r/$name" 2>&1; } >"$f"
    echo "$f"
  done <<<"$members"
}

# serve: answers the driver's requests until it exits.
serve() {
  local line cmd arg1 arg2 out
  while IFS= read -r -u "$from_driver" line; do
    read -r cmd arg1 arg2 <<<"$line"
    out=""
    case $cmd in
      KILL) kill_daemon "replicad-$arg1" "$arg2" >&2; out=$DAEMON_STATUS ;;
      STOP) stop_daemon "replicad-$arg1" >&2; out=$DAEMON_STATUS ;;
      START) start_replicad "$arg1" >&2 ;;
      CUT) proxy_signal USR1 blackhole ;;
      HEAL) proxy_signal USR2 pass ;;
      ATTACH)
        if ! out=$(attach_volume "$vol" 2>&1) || [[ $out != /dev/loop* ]]; then
          echo "ERR ${out//$'\n'/ }" >&"$to_driver"
          continue
        fi ;;
      DETACH)
        if ! out=$(detach_volume "$vol" 2>&1); then
          echo "ERR ${out//$'\n'/ }" >&"$to_driver"
          continue
        fi ;;
      OFFLINE)
        # Not in $(...): stop_daemon must update DAEMON_PIDS in this shell.
        offline_inspect >"$TEST_DIR/offline.list"
        out=$(tr '\n' ' ' <"$TEST_DIR/offline.list") ;;
      *) echo "ERR unknown request: $line" >&"$to_driver"; continue ;;
    esac
    echo "OK $out" >&"$to_driver"
  done
}

power_loss=0
n=0
for seed in "${seeds[@]}"; do
  n=$((n + 1))
  rm -rf "${REPLICAS_DIR:?}"/* "${FUSED_STATE_DIR:?}"/*
  for r in r1 r2 r3; do start_replicad "$r"; done
  if [[ -z ${DAEMON_PIDS[fault_proxy]:-} ]]; then start_proxy; else proxy_signal HUP pass; fi
  if ((n == 1)); then
    case ${SHORTHORN_SCHEDULE_POWER_LOSS:-auto} in
      1) power_loss=1 ;;
      0) power_loss=0 ;;
      *) grep -qi "test mode" "$LOG_DIR/replicad-r1.log" && power_loss=1 ;;
    esac
    log "power loss steps: $( ((power_loss)) && echo on || echo off)"
  fi
  a1=$(replica_address r1) a2=$(replica_address r2) a3=$(replica_address r3)
  start_fused_opts --replicads "$a1 $pa $a3" --replica-timeout 2 --connect-timeout 2
  vol=sched$n
  create_replicated_volume "$vol" "$VOL_SIZE" "$a1" "$pa" "$a3" >/dev/null
  dev=$(attach_volume "$vol")
  replay="SHORTHORN_SCHEDULE_SEED=$seed SHORTHORN_SCHEDULE_STEPS=$steps"
  ((power_loss == 0)) || replay+=" SHORTHORN_SCHEDULE_POWER_LOSS=1"
  replay+=" SHORTHORN_BUILD_DIR=$BUILD_DIR bash $LIB_DIR/test_fault_schedule.sh"
  log "seed $seed: $steps steps on $vol (replay: $replay)"
  driver_args=(--seed "$seed" --steps "$steps" --volume "$vol" --size "$VOL_SIZE"
    --device "$dev" --file "$(volume_prop "$vol" FrontendPath)"
    --replicad "r1=$a1" --replicad "r2=$pa" --replicad "r2=$a2" --replicad "r3=$a3"
    --proxied r2 --log "$LOG_DIR/schedule-$seed.log" --replay "$replay")
  ((power_loss == 0)) || driver_args+=(--power-loss)
  started=$SECONDS
  coproc DRIVER { exec python3 "$LIB_DIR/fault_schedule.py" "${driver_args[@]}"; }
  driver_pid=$DRIVER_PID
  DAEMON_PIDS[schedule_driver]=$driver_pid
  exec {from_driver}<&"${DRIVER[0]}" {to_driver}>&"${DRIVER[1]}"
  serve
  exec {from_driver}<&- {to_driver}>&-
  rc=0
  wait "$driver_pid" || rc=$?
  unset "DAEMON_PIDS[schedule_driver]"
  ((rc == 0)) || fail "seed $seed failed (driver exit $rc); replay: $replay"
  log "ok: seed $seed, $steps steps in $((SECONDS - started))s"
  # OFFLINE stopped the daemons; the next seed starts afresh.
done
pass
