#!/usr/bin/env bash
# Issue 17, metrics: fused's and replicad's metrics-file (Prometheus text
# format) move when I/O runs, and prometheus-node-exporter's textfile
# collector accepts them.
#
# A 2-replica volume, attached as a block device: fio writes and reads it
# (with fsyncs and discards). Within the file's 10 s rewrite interval the
# volume's counters show at least fio's requests and bytes per operation,
# each latency histogram counts as many requests as the counter, both
# replicas are RW, the Volume's Statistics property has at least the same
# figures, and they grow after more I/O. node-exporter
# (unpacked by scripts/install-deps.sh; the test skips without it), run on
# 127.0.0.1 with only the textfile collector over the directory, reports no
# scrape error and serves the same values.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

init_test
requires_cmd fio python3
EXPORTER=${SHORTHORN_NODE_EXPORTER:-/opt/shorthorn-test/node-exporter/usr/bin/prometheus-node-exporter}
[[ -x $EXPORTER ]] || skip "prometheus-node-exporter is not unpacked ($EXPORTER)"
start_cluster r1 r2
vol=m
create_replicated_volume "$vol" $((128 * MiB)) "$(replica_address r1)" "$(replica_address r2)" \
  >/dev/null
dev=$(attach_volume "$vol")
file=$METRICS_DIR/shorthorn.prom

# metric NAME LABELS: the value of one sample in the file ("" if absent).
metric() { awk -v k="$1{$2}" '$1 == k { print $2 }' "$file" 2>/dev/null; }

# run_fio NAME RW: 16 MiB of 4k direct I/O with an fsync every 8 writes.
run_fio() {
  fio --name="$1" --filename="$dev" --size=16M --bs=4k --rw="$2" --ioengine=libaio \
    --iodepth=8 --direct=1 --fsync=8 --output-format=json --output="$TEST_DIR/$1.json" >/dev/null
}
# fio_figure NAME OP FIELD: total_ios or io_bytes of fio's run.
fio_figure() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]][sys.argv[3]])' \
    "$TEST_DIR/$1.json" "$2" "$3"
}

run_fio w1 randwrite
run_fio r1 randread
blkdiscard -o 0 -l $((4 * MiB)) "$dev"
writes=$(fio_figure w1 write total_ios)
write_bytes=$(fio_figure w1 write io_bytes)
reads=$(fio_figure r1 read total_ios)
log "fio: $writes writes ($write_bytes bytes), $reads reads, then a 4 MiB discard"

# shellcheck disable=SC2317  # called through wait_until
caught_up() {
  local n
  n=$(metric shorthorn_volume_io_requests_total "volume=\"$vol\",op=\"read\"")
  [[ -n $n ]] && ((n >= reads)) &&
    [[ -n $(metric shorthorn_volume_io_requests_total "volume=\"$vol\",op=\"discard\"") ]] &&
    (($(metric shorthorn_volume_io_requests_total "volume=\"$vol\",op=\"discard\"") >= 1))
}
t=$(wait_until 30 "the metrics file counting fio's reads and the discard" caught_up)
log "ok: the metrics file caught up ${t}s after fio"
# fuse-uring is off by default: /dev/fuse carries every request.
assert_eq 0 "$(awk '$1 == "shorthorn_fuse_uring" { print $2 }' "$file")" \
  "shorthorn_fuse_uring without fuse-uring"

for op in write read flush discard; do
  n=$(metric shorthorn_volume_io_requests_total "volume=\"$vol\",op=\"$op\"")
  c=$(metric shorthorn_volume_io_latency_seconds_count "volume=\"$vol\",op=\"$op\"")
  inf=$(metric shorthorn_volume_io_latency_seconds_bucket "volume=\"$vol\",op=\"$op\",le=\"+Inf\"")
  e=$(metric shorthorn_volume_io_errors_total "volume=\"$vol\",op=\"$op\"")
  log "$op: requests $n, histogram count $c, errors $e"
  assert_eq "$n" "$c" "histogram count of $op"
  assert_eq "$n" "$inf" "+Inf bucket of $op"
  assert_eq 0 "$e" "errors of $op"
done
assert_ge "$writes" "$(metric shorthorn_volume_io_requests_total "volume=\"$vol\",op=\"write\"")" \
  "write requests counted"
assert_ge "$write_bytes" "$(metric shorthorn_volume_io_bytes_total "volume=\"$vol\",op=\"write\"")" \
  "write bytes counted"
assert_ge "$((writes / 8))" \
  "$(metric shorthorn_volume_io_requests_total "volume=\"$vol\",op=\"flush\"")" \
  "flushes counted (fio's fsync every 8 writes)"
assert_ge $((4 * MiB)) "$(metric shorthorn_volume_io_bytes_total "volume=\"$vol\",op=\"discard\"")" \
  "discarded bytes counted"
assert_eq 1 "$(metric shorthorn_volume_attached "volume=\"$vol\"")" "attached gauge"
assert_eq 2 "$(grep -c "^shorthorn_volume_replica_mode{volume=\"$vol\",.*mode=\"RW\"} 1" "$file")" \
  "replicas shown RW"

# The Statistics property has the live figures: at least the file's.
stats=$(busctl --system --json=short get-property "$BUS_NAME" "$(volume_path "$vol")" \
  "$VOLUME_IFACE" Statistics)
for key in write_requests read_requests flush_requests discard_requests write_bytes; do
  v=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["data"][sys.argv[2]])' "$stats" "$key")
  op=${key%_*}
  field=${key#*_}
  assert_ge "$(metric "shorthorn_volume_io_${field}_total" "volume=\"$vol\",op=\"$op\"")" "$v" \
    "Statistics $key against the metrics file"
done
log "ok: Statistics: $stats"

# Each replicad's file: its replica of the volume took every write fused
# acknowledged (both replicas are RW) and the flushes and reads it served.
# rmetric R NAME OP: the value of NAME for the volume's replica on replicad R.
rmetric() {
  grep -E "^$2\{.*volume=\"$vol\".*op=\"$3\".*\} " "$METRICS_DIR/replicad-$1.prom" 2>/dev/null |
    awk '{ print $2 }'
}
# shellcheck disable=SC2317  # called through wait_until
replicads_caught_up() {
  local r n
  for r in r1 r2; do
    n=$(rmetric "$r" shorthorn_replica_io_requests_total write)
    [[ -n $n ]] && ((n >= writes)) || return 1
  done
}
wait_until 30 "both replicads' metrics files counting fio's writes" replicads_caught_up >/dev/null
reads_served=0
for r in r1 r2; do
  assert_ge "$write_bytes" "$(rmetric "$r" shorthorn_replica_io_bytes_total write)" \
    "write bytes on replicad $r"
  assert_ge "$((writes / 8))" "$(rmetric "$r" shorthorn_replica_io_requests_total flush)" \
    "flushes on replicad $r"
  assert_eq 0 "$(rmetric "$r" shorthorn_replica_io_errors_total write)" "write errors on replicad $r"
  reads_served=$((reads_served + $(rmetric "$r" shorthorn_replica_io_bytes_total read)))
  grep -q "^shorthorn_replica_open{.*volume=\"$vol\".*} 1" "$METRICS_DIR/replicad-$r.prom" ||
    fail "replicad $r's metrics file does not show the replica open"
done
# Each read goes to one replica: together they served fio's 16 MiB (the
# kernel may merge or split requests on the way, so bytes, not counts).
assert_ge $((16 * MiB)) "$reads_served" "bytes read from the two replicads"
log "ok: replicads' metrics files: $(rmetric r1 shorthorn_replica_io_requests_total write) and $(rmetric r2 shorthorn_replica_io_requests_total write) writes, $reads_served bytes read"

# node-exporter's textfile collector parses the files (fused's, replicads').
port=$(free_port)
"$EXPORTER" --web.listen-address="127.0.0.1:$port" --collector.disable-defaults \
  --collector.textfile --collector.textfile.directory="$METRICS_DIR" \
  >>"$LOG_DIR/node-exporter.log" 2>&1 </dev/null &
DAEMON_PIDS[node-exporter]=$!
scrape() {
  python3 -c 'import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode())' \
    "$port"
}
wait_until 20 "node-exporter answering" scrape >/dev/null
scrape >"$TEST_DIR/scrape.txt"
grep -q '^node_textfile_scrape_error 0$' "$TEST_DIR/scrape.txt" ||
  fail "node-exporter could not parse the metrics file: $(grep -i textfile "$TEST_DIR/scrape.txt" "$LOG_DIR/node-exporter.log")"
want=$(metric shorthorn_volume_io_requests_total "volume=\"$vol\",op=\"write\"")
got=$(awk -v k="shorthorn_volume_io_requests_total{op=\"write\",volume=\"$vol\"}" '$1 == k { print $2 }' \
  "$TEST_DIR/scrape.txt")
[[ -n $got ]] || fail "node-exporter does not serve shorthorn_volume_io_requests_total: $(grep shorthorn_ "$TEST_DIR/scrape.txt" | head -5)"
# The file may have been rewritten in between: never fewer than read above.
assert_ge "$want" "$got" "write requests as node-exporter serves them"
grep -q "^shorthorn_replica_io_requests_total{.*volume=\"$vol\"" "$TEST_DIR/scrape.txt" ||
  fail "node-exporter does not serve replicad's shorthorn_replica_io_requests_total"
log "ok: node-exporter parsed the files (no scrape error) and serves $got write requests"
stop_daemon node-exporter 10

# The figures move with more I/O.
before=$(metric shorthorn_volume_io_bytes_total "volume=\"$vol\",op=\"write\"")
run_fio w2 write
# shellcheck disable=SC2317  # called through wait_until
grown() {
  (($(metric shorthorn_volume_io_bytes_total "volume=\"$vol\",op=\"write\"") >= before + 16 * MiB))
}
wait_until 30 "write bytes grown by fio's second run" grown >/dev/null
log "ok: write bytes $before -> $(metric shorthorn_volume_io_bytes_total "volume=\"$vol\",op=\"write\"")"
detach_volume "$vol"
pass
