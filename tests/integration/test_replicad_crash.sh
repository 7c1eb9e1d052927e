#!/usr/bin/env bash
# kill -9 of shorthorn-replicad at random moments while a snapshot is being
# deleted (merged in the background), then restart: every time the replica
# opens, every surviving snapshot and the live data hash as before, and after
# the resumed merge no stray layer file is left. 20 rounds (5 with
# SHORTHORN_QUICK=1). Drives replicad directly with replica_tool.
source "$(dirname "$0")/lib.sh"

init_test
TOOL=$(find_binary replica_tool)
ROUNDS=20
[[ ${SHORTHORN_QUICK:-0} == 1 ]] && ROUNDS=5
SIZE=$((256 * MiB))
start_replicad a
ADDR=$(replica_address a)
DATA=$REPLICAS_DIR/a

# inspect REPLICA -> "name hash" lines, the daemon stopped
inspect() { "$TOOL" inspect "$DATA/$1"; }

for ((round = 1; round <= ROUNDS; round++)); do
  r=r$round
  # s1 <- s2 <- s3 <- head, 48 MiB per generation, overlapping.
  "$TOOL" run "$ADDR" vol "$r" create:$SIZE open:1 \
    write:0:$((48 * MiB)):$round snapshot:s1 \
    write:$((32 * MiB)):$((48 * MiB)):$((round + 100)) snapshot:s2 \
    write:$((16 * MiB)):$((48 * MiB)):$((round + 200)) snapshot:s3 \
    write:$((64 * MiB)):$((16 * MiB)):$((round + 300)) idle
  stop_daemon replicad-a
  before=$(inspect "$r" | grep -v '^layer-files')
  start_replicad a "${REPLICAD_PORTS[a]}"
  target=s$((RANDOM % 3 + 1))
  delay_ms=$((RANDOM % 200))
  "$TOOL" run "$ADDR" vol "$r" open:$((round * 10)) delete:$target
  sleep "$(printf '0.%03d' "$delay_ms")"
  kill_daemon replicad-a KILL
  log "round $round: killed during the merge of $target after ${delay_ms} ms"

  # Right after the crash: opens, and every snapshot still listed (the
  # target too, if not merged yet) and the live data hash as before.
  after=$(inspect "$r" | grep -v '^layer-files') || fail "round $round: replica $r does not open"
  if grep -q "^$target " <<<"$after"; then
    log "round $round: $target still in the tree (merge interrupted or not started)"
  else
    log "round $round: $target already merged before the kill"
  fi
  while read -r name hash; do
    grep -qx "$name $hash" <<<"$before" || fail "round $round: $name changed after the crash: $hash"
  done <<<"$after"
  for s in s1 s2 s3 "(live)"; do
    [[ $s == "$target" ]] && continue
    grep -q "^$s " <<<"$after" || fail "round $round: $s is missing after the crash"
  done

  # Restart: the merge resumes and finishes; nothing changed, nothing left.
  start_replicad a "${REPLICAD_PORTS[a]}"
  "$TOOL" run "$ADDR" vol "$r" open:$((round * 10 + 1)) idle close
  stop_daemon replicad-a
  final=$(inspect "$r")
  grep -q "^$target " <<<"$final" && fail "round $round: $target still present after the merge"
  while read -r name hash; do
    [[ $name == layer-files ]] && continue
    grep -qx "$name $hash" <<<"$before" || fail "round $round: $name changed after the merge"
  done <<<"$final"
  files=$(awk '/^layer-files/ {print $2 == $4}' <<<"$final")
  [[ $files == 1 ]] || fail "round $round: stray layer files: $(grep layer-files <<<"$final")"
  start_replicad a "${REPLICAD_PORTS[a]}"
  rm -rf "${DATA:?}/$r"
done
pass
