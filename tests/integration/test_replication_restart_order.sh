#!/usr/bin/env bash
# Every replicad stopped and restarted in another order (issue 4): attach
# trusts only provably current replicas; one that was down longer is never
# the source; with none provably current, attach fails listing the
# candidates unless salvage=true.
#
# Volumes A and B, three replicas each on r1 r2 r3. Both get D1 at
# [0, 32 MiB); r3 is stopped; both get D2 over the same range (r3 misses
# it). Detach, stop fused and every replicad.
#  1. Only r3 (the stale one) and fused start. Attach A fails with
#     Error.Failed naming the candidates. Attach B with salvage=true works
#     and B reads D1: salvage takes the best replica reachable, here the
#     stale one, and what it missed is lost (that is what salvage means).
#  2. r2, then r1 start. Attach A: r3 is not RW; A reads D2. A full rebuild
#     brings A back to healthy; then r1 and r2 are stopped and A still reads
#     D2 from its rebuilt replica on r3 alone.
#  3. Attach B with all up: the salvaged history won (its generation is the
#     newest); B still reads D1.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
start_bus
for r in r1 r2 r3; do start_replicad "$r"; done
start_fused
a1=$(replica_address r1) a2=$(replica_address r2) a3=$(replica_address r3)
SIZE=$((256 * MiB))

head -c $((32 * MiB)) /dev/urandom >"$TEST_DIR/d1"
head -c $((32 * MiB)) /dev/urandom >"$TEST_DIR/d2"
sum1=$(sha256sum <"$TEST_DIR/d1" | cut -d' ' -f1)
sum2=$(sha256sum <"$TEST_DIR/d2" | cut -d' ' -f1)

declare -A dev=()
for v in vol-a vol-b; do
  create_replicated_volume "$v" "$SIZE" "$a1" "$a2" "$a3" >/dev/null
  dev[$v]=$(attach_volume "$v")
  dd if="$TEST_DIR/d1" of="${dev[$v]}" bs=1M oflag=direct status=none
done
stop_daemon replicad-r3
for v in vol-a vol-b; do
  # The write itself finds r3 gone (an idle volume does not notice).
  dd if="$TEST_DIR/d2" of="${dev[$v]}" bs=1M oflag=direct status=none
  wait_replica_mode "$v" "$a3" ERR 15
  assert_eq "$sum2" "$(sha256_range "${dev[$v]}" 0 32)" "D2 on $v before the restart"
  detach_volume "$v"
done
stop_daemon fused
stop_daemon replicad-r1
stop_daemon replicad-r2

# 1. Only the stale replica is up.
start_replicad r3
start_fused
assert_error_name Failed "Attach of vol-a with only the stale replica up" "$(volume_path vol-a)" \
  "$VOLUME_IFACE.Attach" "@a{sv} {}"
msg=$DBUS_ERROR_MESSAGE
name3=$(python3 -c 'import json,sys
for v in json.load(open(sys.argv[1]))["volumes"]:
    if v["name"] == "vol-a":
        print(next(r["name"] for r in v["replicas"] if r["address"] == sys.argv[2]))' \
  "$FUSED_STATE_DIR/volumes.json" "$a3")
for what in "$a1" "$a2" "$a3" "$name3"; do
  [[ $msg == *"$what"* ]] || fail "the Failed message does not name candidate $what: $msg"
done
assert_eq detached "$(volume_prop vol-a State)" "State of vol-a after the refused attach"
out=$(volume_call vol-b Attach 'a{sv}' 2 frontend s block salvage b true | _unquote)
echo "$out vol-b" >>"$TEST_DIR/attached-loops"
assert_eq "$sum1" "$(sha256_range "$out" 0 32)" "vol-b after salvage (the stale replica's D1)"
log "ok: salvage=true attached vol-b from the stale replica: it reads D1, D2 is lost (salvage semantics)"
log "vol-b replicas after salvage: $(replica_modes vol-b | tr '\n' ';')"
detach_volume vol-b

# 2. The others come back, in another order.
start_replicad r2
start_replicad r1
dev[vol-a]=$(attach_volume vol-a)
modes=$(replica_modes vol-a)
log "vol-a replicas after attach: $(tr '\n' ';' <<<"$modes")"
# Judged on the modes read once right after the attach: a rebuild onto r3
# may finish moments later and show a new replica there as RW.
mode_at() { awk -v a="$1" '$1 == a { print $3; exit }' <<<"$modes"; }
[[ $(mode_at "$a3") != RW ]] || fail "the stale replica on r3 is RW after attach: $modes"
assert_eq RW "$(mode_at "$a1")" "replica on r1"
assert_eq RW "$(mode_at "$a2")" "replica on r2"
assert_eq "$sum2" "$(sha256_range "${dev[vol-a]}" 0 32)" "vol-a after the restart (D2)"
wait_robustness vol-a healthy 120
log "vol-a replicas after the rebuild: $(replica_modes vol-a | tr '\n' ';')"
assert_eq RW "$(replica_mode vol-a "$a3")" "rebuilt replica on r3"
stop_daemon replicad-r1
stop_daemon replicad-r2
notice_replica_down vol-a "$a1" 100
notice_replica_down vol-a "$a2" 100
wait_robustness vol-a degraded 30
assert_eq RW "$(replica_mode vol-a "$a3")" "replica on r3 with r1 and r2 down"
assert_eq "$sum2" "$(sha256_range "${dev[vol-a]}" 0 32)" "vol-a read from the rebuilt replica alone"
detach_volume vol-a

# 3. Salvage decided vol-b's history.
start_replicad r1
start_replicad r2
dev[vol-b]=$(attach_volume vol-b)
log "vol-b replicas: $(replica_modes vol-b | tr '\n' ';')"
assert_eq RW "$(replica_mode vol-b "$a3")" "vol-b's salvaged replica on r3"
assert_eq "$sum1" "$(sha256_range "${dev[vol-b]}" 0 32)" "vol-b after salvage and restart"
# Its replicas on r1 and r2 (older generation) are replaced by rebuilds.
wait_robustness vol-b healthy 180
assert_eq "$sum1" "$(sha256_range "${dev[vol-b]}" 0 32)" "vol-b after its rebuilds"
detach_volume vol-b
pass
