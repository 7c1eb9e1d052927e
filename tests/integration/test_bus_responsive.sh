#!/usr/bin/env bash
# The bus stays responsive while a method waits on a replicad that does not
# answer (issue 16). Replicad r2 of a two-replica volume is stopped
# (SIGSTOP: its sockets accept, nothing answers), then Attach is called in
# the background; it waits on r2 for the client's timeouts. Meanwhile the
# test reads properties and lists volumes over and over, and records how
# long each busctl took: the longest must stay under 1 s (before the D-Bus
# methods ran on workers it was the whole Attach, about 8 s). At least
# five reads must start during the Attach, or the test proves nothing and
# fails. Then r2 continues, the Attach ends (with r2 or without it), and
# the volume detaches.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test

start_cluster r1 r2

vol=slow-1
create_volume "$vol" $((64 * MiB)) "$(replica_address r1)" "$(replica_address r2)" >/dev/null
other=other-1
create_volume "$other" $((64 * MiB)) "$(replica_address r1)" >/dev/null

r2_pid=${DAEMON_PIDS[replicad-r2]}
kill -STOP "$r2_pid"
log "replicad r2 (pid $r2_pid) stopped; Attach of $vol in the background"
attach_out=$TEST_DIR/attach.out
(busctl --system --timeout=120 call "$BUS_NAME" "$(volume_path "$vol")" "$VOLUME_IFACE" \
  Attach 'a{sv}' 1 frontend s file >"$attach_out" 2>&1
  echo "rc=$?" >>"$attach_out") &
attach_pid=$!

now_ms() { echo $(($(date +%s%N) / 1000000)); }
max_ms=0 during=0 slowest=""
sleep 0.3 # the call is on its way to fused
while kill -0 "$attach_pid" 2>/dev/null; do
  for what in state version list; do
    kill -0 "$attach_pid" 2>/dev/null || break # counted: reads that start during the Attach
    t0=$(now_ms)
    case $what in
      state) volume_prop "$vol" State >/dev/null ;;
      version) busctl --system get-property "$BUS_NAME" "$MANAGER_PATH" "$MANAGER_IFACE" \
        Version >/dev/null ;;
      list) list_volumes >/dev/null ;;
    esac
    ms=$(($(now_ms) - t0))
    during=$((during + 1))
    if ((ms > max_ms)); then max_ms=$ms slowest=$what; fi
  done
done
wait "$attach_pid" || true
kill -CONT "$r2_pid"
log "Attach returned: $(tr '\n' ' ' <"$attach_out")"
log "bus reads during the Attach: $during, longest ${max_ms} ms ($slowest)"
((max_ms < 1000)) || fail "a bus read took ${max_ms} ms ($slowest) while Attach waited on r2"
assert_ge 5 "$during" "bus reads started while the Attach waited"

# The Attach itself ended on its own (attached degraded, or failed clearly).
if grep -q '^rc=0' "$attach_out"; then
  assert_eq attached "$(volume_prop "$vol" State)" "State after the Attach"
  detach_volume "$vol"
else
  grep -q 'org.shorthorn.Storage1.Error' "$attach_out" ||
    fail "Attach failed without a Shorthorn error: $(cat "$attach_out")"
fi
# The other volume was never held up for good.
dev=$(attach_volume "$other" file)
[[ -n $dev ]] || fail "attach $other"
detach_volume "$other"
assert_eq detached "$(volume_prop "$vol" State)" "State of $vol at the end"
pass
