#!/usr/bin/env bash
# Fencing (issue 4): an engine with an older epoch is refused by every
# replica, and an engine that has been superseded cannot write.
#
# Three replicads, a volume with three replicas, attached (epoch N, read
# from fused's registry). Part 1: replica_tool plays a second, older engine
# on every replica: OPEN_REPLICA + HELLO at epoch N-1 (and at 1) must be
# refused with ESTALE, and the attached volume must not notice (still
# healthy, writes and reads go on). Part 2: replica_tool plays a newer
# engine (epoch N+1) on every replica; fused is now the stale one: its next
# write must fail (EIO at the block device) and reach no replica: after
# detaching, `replica_tool inspect` shows the same live data on each replica
# as before the fence.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
TOOL=$(find_binary replica_tool)
start_bus
for r in r1 r2 r3; do start_replicad "$r"; done
start_fused

vol=fence-1
create_replicated_volume "$vol" $((256 * MiB)) "$(replica_address r1)" "$(replica_address r2)" \
  "$(replica_address r3)" >/dev/null
# A first attach and detach, so that the epoch under test is at least 2.
attach_volume "$vol" >/dev/null
detach_volume "$vol"
dev=$(attach_volume "$vol")
epoch=$(volume_epoch "$vol")
log "attached at epoch $epoch"
((epoch >= 2)) || fail "epoch $epoch after the first attach; expected >= 2 to test N-1 >= 1"
head -c $((8 * MiB)) /dev/urandom >"$TEST_DIR/d1"
dd if="$TEST_DIR/d1" of="$dev" bs=1M seek=16 oflag=direct status=none
sum1=$(sha256sum <"$TEST_DIR/d1" | cut -d' ' -f1)

declare -A names=()
for r in r1 r2 r3; do
  names[$r]=$(replica_name_at "$vol" "$(replica_address "$r")")
  [[ -n ${names[$r]} ]] || fail "no replica of $vol on $r"
done

# Part 1: an older engine.
for r in r1 r2 r3; do
  for old in $(printf "%s\n" $((epoch - 1)) 1 | sort -u); do
    rc=0
    out=$("$TOOL" run "$(replica_address "$r")" "$vol" "${names[$r]}" "open:$old" \
      write:0:4096:7 2>&1) || rc=$?
    ((rc != 0)) || fail "replica ${names[$r]} on $r accepted an engine at epoch $old (current $epoch)"
    [[ $out == *"epoch $old is older"* || $out == *"is not the replica's current epoch"* ||
       $out == *ESTALE* || $out == *"Stale file handle"* ]] ||
      fail "replica on $r refused epoch $old, but not as stale: $out"
    log "ok: $r refuses epoch $old: $out"
  done
done
assert_eq healthy "$(volume_prop "$vol" Robustness)" "Robustness after the refused older engines"
assert_eq "RW RW RW" "$(replica_modes "$vol" | awk '{print $3}' | xargs)" "replica modes"
dd if=/dev/urandom of="$dev" bs=1M seek=64 count=4 oflag=direct status=none ||
  fail "write after the refused older engines"
assert_eq "$sum1" "$(sha256_range "$dev" 16 8)" "data after the refused older engines"
sync
before_sum=$(sha256_range "$dev" 0 256)

# Part 2: a newer engine takes every replica; fused's engine is stale.
newer=$((epoch + 1))
for r in r1 r2 r3; do
  "$TOOL" run "$(replica_address "$r")" "$vol" "${names[$r]}" "open:$newer" ||
    fail "a newer engine (epoch $newer) could not open the replica on $r"
done
log "a newer engine (epoch $newer) opened every replica"
rc=0
out=$(dd if=/dev/urandom of="$dev" bs=1M seek=32 count=4 oflag=direct 2>&1) || rc=$?
((rc != 0)) || fail "the stale engine's write succeeded after every replica was fenced"
log "ok: the stale engine's write failed: $out"
log "replicas: $(replica_modes "$vol" | tr '\n' ';') Robustness $(volume_prop "$vol" Robustness)"
assert_eq faulted "$(volume_prop "$vol" Robustness)" "Robustness of the fenced volume"
# The replicas refused it as stale (ESTALE), not for another reason.
reason=$(grep -E "marked ERR" "$LOG_DIR/fused.log" | tail -3)
grep -q "epoch $epoch is not the replica's current epoch (fenced)" <<<"$reason" ||
  fail "fused's replicas were not failed as fenced (stale epoch): $reason"
# The error tells the fenced engine nothing about the newer epoch.
! grep -q "epoch $newer" <<<"$reason" || fail "the fencing error reveals the newer epoch: $reason"
log "ok: fused logged: $(tail -1 <<<"$reason")"
dbus_try "$(volume_path "$vol")" "$VOLUME_IFACE.Detach" "@a{sv} {}"
log "Detach of the fenced volume: $DBUS_ERROR $DBUS_ERROR_MESSAGE"
if [[ $DBUS_ERROR != OK ]]; then
  stop_daemon fused
fi
for r in r1 r2 r3; do stop_daemon "replicad-$r"; done
ref=""
for r in r1 r2 r3; do
  live=$("$TOOL" inspect "$(replica_dir "$r" "${names[$r]}")" | awk '$1 == "(live)" {print $2}')
  log "live data of ${names[$r]} on $r: $live"
  [[ -z $ref ]] && ref=$live
  assert_eq "$ref" "$live" "live data hash of the replica on $r"
done
log "ok: the fenced write reached no replica (all equal)"
# And the data is what was there before the fence: one replica alone.
start_replicad r1
start_replicad r2
start_replicad r3
[[ -n ${DAEMON_PIDS[fused]:-} ]] || start_fused
dbus_try "$(volume_path "$vol")" "$VOLUME_IFACE.Detach" "@a{sv} {}"
dev=$(attach_volume "$vol")
assert_eq "$before_sum" "$(sha256_range "$dev" 0 256)" "whole volume after the fence"
detach_volume "$vol"
pass
