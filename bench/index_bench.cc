// index_bench: the replica's block index and layer operations, measured.
//
//   index memory for a 1 TiB volume after (a) a sequential fill with 1 MiB
//   writes and (b) 1,000,000 random 4 KiB writes over 10 layers (a new
//   layer every 100k writes), beside Longhorn's 1 byte per 4 KiB block;
//   lookups per second for both shapes beside a flat byte array;
//   snapshot-create latency on a 1 GiB and a 100 GiB sparse replica;
//   merge (delete snapshot) throughput in MiB/s.
//
// `--quick` shrinks everything to run in a few seconds (CI). Real files go
// to $TMPDIR (default /tmp), so the latencies are those of that disk.
#include <malloc.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/log.h"
#include "replicad/core/block_index.h"
#include "replicad/core/replica.h"
#include "replicad/core/replica_meta.h"
#include "replicad/io/sync_io_engine.h"

namespace shorthorn::replicad {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double MiB(uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

size_t HeapInUse() { return mallinfo2().uordblks; }

struct Mode {
  bool quick = false;
  uint64_t volume_blocks = uint64_t{1} << 28;  // 1 TiB
  uint64_t random_writes = 1000000;
  uint64_t layers = 10;
  uint64_t lookups = 20000000;
  uint64_t merge_bytes = 256ull << 20;
  uint64_t big_replica = 100ull << 30;
};

// Lookup rate over `n` random blocks; `sink` defeats the optimizer.
template <typename Fn>
double Rate(uint64_t n, uint64_t blocks, Fn fn) {
  std::mt19937_64 rng(1);
  std::vector<uint64_t> keys(std::min<uint64_t>(n, 1 << 20));
  for (auto& k : keys) k = rng() % blocks;
  uint64_t sink = 0;
  auto t = Clock::now();
  for (uint64_t i = 0; i < n; ++i) sink += fn(keys[i & (keys.size() - 1)]);
  double s = Seconds(t);
  if (sink == 42) std::puts("");
  return static_cast<double>(n) / s;
}

void IndexShapes(const Mode& m) {
  const uint64_t blocks = m.volume_blocks;
  const double longhorn = MiB(blocks);  // 1 byte per block
  std::printf("\n== Block index, %.0f GiB volume (%llu blocks of 4 KiB)\n",
              static_cast<double>(blocks) * 4096 / (1ull << 30),
              static_cast<unsigned long long>(blocks));
  std::printf("%-44s %12s %12s %12s %14s\n", "shape", "runs", "index MiB", "heap MiB",
              "Longhorn MiB");

  size_t heap0 = HeapInUse();
  auto seq = std::make_unique<BlockIndex>(blocks);
  auto t = Clock::now();
  for (uint64_t b = 0; b < blocks; b += 256) seq->Set(b, 256, 0);
  double fill_s = Seconds(t);
  std::printf("%-44s %12zu %12.2f %12.2f %14.0f\n", "(a) sequential fill, 1 MiB writes",
              seq->RunCount(), MiB(seq->MemoryBytes()), MiB(HeapInUse() - heap0), longhorn);

  heap0 = HeapInUse();
  auto rnd = std::make_unique<BlockIndex>(blocks);
  std::mt19937_64 rng(2);
  uint64_t per_layer = m.random_writes / m.layers;
  t = Clock::now();
  for (uint64_t i = 0; i < m.random_writes; ++i) {
    uint64_t b = rng() % blocks;
    rnd->Set(b, 1, static_cast<uint16_t>(i / per_layer));
  }
  double rnd_s = Seconds(t);
  size_t rnd_heap = HeapInUse() - heap0;
  std::vector<uint8_t> flat_rnd(blocks, 0xff);
  rng.seed(2);
  for (uint64_t i = 0; i < m.random_writes; ++i)
    flat_rnd[rng() % blocks] = static_cast<uint8_t>(i / per_layer);
  char label[64];
  std::snprintf(label, sizeof(label), "(b) %llu random 4 KiB writes, %llu layers",
                static_cast<unsigned long long>(m.random_writes),
                static_cast<unsigned long long>(m.layers));
  std::printf("%-44s %12zu %12.2f %12.2f %14.0f\n", label, rnd->RunCount(), MiB(rnd->MemoryBytes()),
              MiB(rnd_heap), longhorn);
  std::printf("update cost: (a) %.0f ns per 1 MiB write, (b) %.0f ns per 4 KiB write\n",
              fill_s * 1e9 / static_cast<double>(blocks / 256),
              rnd_s * 1e9 / static_cast<double>(m.random_writes));

  std::vector<uint8_t> flat_seq(blocks, 0);
  std::printf("\n%-44s %16s %16s\n", "lookups (random block, one at a time)", "index /s",
              "flat array /s");
  double a_idx = Rate(m.lookups, blocks, [&](uint64_t b) { return seq->LookupBlock(b); });
  double a_flat = Rate(m.lookups, blocks, [&](uint64_t b) { return flat_seq[b]; });
  std::printf("%-44s %16.3g %16.3g\n", "(a) sequential fill", a_idx, a_flat);
  double b_idx = Rate(m.lookups, blocks, [&](uint64_t b) { return rnd->LookupBlock(b); });
  double b_flat = Rate(m.lookups, blocks, [&](uint64_t b) { return flat_rnd[b]; });
  std::printf("%-44s %16.3g %16.3g\n", "(b) random writes", b_idx, b_flat);

  // A 1 MiB read needs the runs of 256 blocks: one index search versus 256
  // bytes scanned into runs.
  std::printf("%-44s %16s %16s\n", "range lookups (1 MiB read -> runs)", "index /s",
              "flat array /s");
  std::vector<BlockIndex::Extent> out;
  auto index_range = [&](const BlockIndex& idx) {
    return [&](uint64_t b) {
      out.clear();
      idx.Lookup(std::min(b, blocks - 256), 256, &out);
      return out.size();
    };
  };
  auto flat_range = [&](const std::vector<uint8_t>& flat) {
    return [&](uint64_t b) {
      b = std::min(b, blocks - 256);
      uint64_t runs = 1;
      for (uint64_t i = b + 1; i < b + 256; ++i) runs += flat[i] != flat[i - 1];
      return runs;
    };
  };
  std::printf("%-44s %16.3g %16.3g\n", "(a) sequential fill",
              Rate(m.lookups / 16, blocks, index_range(*seq)),
              Rate(m.lookups / 16, blocks, flat_range(flat_seq)));
  std::printf("%-44s %16.3g %16.3g\n", "(b) random writes",
              Rate(m.lookups / 16, blocks, index_range(*rnd)),
              Rate(m.lookups / 16, blocks, flat_range(flat_rnd)));
}

struct TempDir {
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "index-bench-XXXXXX").string();
    path = ::mkdtemp(t.data()) != nullptr ? t : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

Status Sync(std::function<void(Replica::Done)> op) {
  std::promise<Status> p;
  auto f = p.get_future();
  op([&p](Status s) { p.set_value(std::move(s)); });
  return f.get();
}

// Median of `n` snapshot creations on a replica of `size` bytes with a
// little data written between them.
double SnapshotLatencyMs(IoEngine* engine, uint64_t size, int n) {
  TempDir tmp;
  std::string dir = tmp.path + "/r";
  if (!Replica::Create(dir, NewReplicaMeta("bench", "r", size)).ok()) return -1;
  auto r = Replica::Open(dir, engine);
  if (!r.ok()) return -1;
  std::vector<uint8_t> data(1 << 20, 0x5a);
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    (void)Sync([&](auto done) { (*r)->Write(0, (i * 7919ull % (size >> 20)) << 20, data, done); });
    auto t = Clock::now();
    Status s = (*r)->Snapshot("s" + std::to_string(i), "2024-01-01T00:00:00Z", false);
    ms.push_back(Seconds(t) * 1e3);
    if (!s.ok()) std::fprintf(stderr, "%s\n", s.message().c_str());
  }
  (void)(*r)->Close();
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void LayerOps(const Mode& m) {
  SyncIoEngine engine(4);
  std::printf("\n== Layer operations (files in %s)\n",
              std::filesystem::temp_directory_path().c_str());
  int n = m.quick ? 5 : 21;
  std::printf("%-44s %12.2f ms\n", "snapshot create, 1 GiB replica (median)",
              SnapshotLatencyMs(&engine, 1ull << 30, n));
  char label[64];
  std::snprintf(label, sizeof(label), "snapshot create, %.0f GiB replica (median)",
                static_cast<double>(m.big_replica) / (1ull << 30));
  std::printf("%-44s %12.2f ms\n", label, SnapshotLatencyMs(&engine, m.big_replica, n));

  // Merge: s1 holds merge_bytes written sequentially; the head overrides a
  // quarter of them; delete s1 (child = head) and time the merge.
  TempDir tmp;
  std::string dir = tmp.path + "/r";
  uint64_t size = std::max<uint64_t>(1ull << 30, m.merge_bytes * 2);
  if (!Replica::Create(dir, NewReplicaMeta("bench", "r", size)).ok()) return;
  auto r = Replica::Open(dir, &engine);
  if (!r.ok()) return;
  std::vector<uint8_t> data(1 << 20, 0x33);
  for (uint64_t off = 0; off < m.merge_bytes; off += data.size()) {
    (void)Sync([&](auto done) { (*r)->Write(0, off, data, done); });
  }
  (void)(*r)->Snapshot("s1", "2024-01-01T00:00:00Z", false);
  for (uint64_t off = 0; off < m.merge_bytes; off += 4 * data.size()) {
    (void)Sync([&](auto done) { (*r)->Write(0, off, data, done); });
  }
  (*r)->WaitIdle();  // checksum of s1 first
  auto t = Clock::now();
  (void)(*r)->DeleteSnapshot("s1");
  (*r)->WaitIdle();
  double s = Seconds(t);
  std::printf("%-44s %12.0f MiB/s  (%.0f MiB in %.2f s, 3/4 copied, 1/4 dropped)\n",
              "merge (delete snapshot into the live head)", MiB(m.merge_bytes) / s,
              MiB(m.merge_bytes), s);
  (void)(*r)->Close();
}

int Run(int argc, char** argv) {
  Mode m;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      m.quick = true;
      m.volume_blocks = uint64_t{1} << 24;  // 64 GiB
      m.random_writes = 100000;
      m.lookups = 2000000;
      m.merge_bytes = 32ull << 20;
      m.big_replica = 100ull << 30;
    } else {
      std::fprintf(stderr, "usage: index_bench [--quick]\n");
      return 2;
    }
  }
  SetLogLevel(LogLevel::kWarning);
  std::printf(
      "index_bench: %s mode%s\n", m.quick ? "quick" : "full",
      m.quick ? " (smaller volume and fewer writes; run without --quick for the figures)" : "");
  IndexShapes(m);
  LayerOps(m);
  return 0;
}

}  // namespace
}  // namespace shorthorn::replicad

int main(int argc, char** argv) { return shorthorn::replicad::Run(argc, argv); }
