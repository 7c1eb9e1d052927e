// Rebuilder: the puller of a REBUILD on the target replica. It connects to
// the source replicad (PeerClient), opens the source replica at the engine's
// current epoch (which does not fence the engine), lists its layers, and
// copies every snapshot layer the source holds (the whole tree: every
// branch a revert left, removed snapshots not yet merged, with their names
// and parents) into new layer files of the target's directory, parents
// first in the source's creation order, so the target's tree equals the
// source's: each layer's allocated extents (LAYER_EXTENTS) read 1 MiB at a
// time (READ_SNAPSHOT), written at the same offsets, then fdatasynced and
// verified against the source's layer checksum (waiting, bounded, for a
// pending one). It never touches replica.json: the Replica links the layers
// it returns in one atomic commit (replica_rebuild.cc), so a crash at any
// point leaves only unreferenced layer files, which Open deletes.
//
// Threads: Run on the rebuild thread of the Replica; Cancel from any thread
// (Run then returns ECANCELED soon, also from inside a blocked read).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/auth.h"
#include "common/control_messages.h"
#include "common/peer_client.h"
#include "common/status.h"
#include "common/token_bucket.h"
#include "replicad/core/replica_meta.h"

namespace shorthorn::replicad {

// The REBUILD request (doc/protocol.md): its one definition is the
// protocol's (common/control_messages.h).
using RebuildRequest = msg::RebuildRequest;

struct RebuildOptions {
  int io_timeout_ms = 30000;  // connect, and each request to the source
  // How long to wait for the source to finish a pending layer checksum.
  std::chrono::milliseconds checksum_wait = std::chrono::minutes(10);
  std::chrono::milliseconds checksum_poll = std::chrono::milliseconds(200);
  uint64_t read_size = 1 << 20;      // bytes per READ_SNAPSHOT
  uint32_t extents_per_page = 4096;  // LAYER_EXTENTS "max"
  // The cluster key the puller authenticates with (the source checks it).
  std::shared_ptr<const auth::ClusterKey> cluster_key;
};

// Where the copy goes and how the puller reports.
struct RebuildTarget {
  std::string dir;        // the replica directory
  std::string replica;    // its name, for messages
  uint64_t size = 0;      // volume size: new layer files get this length
  uint64_t first_id = 0;  // layer ids first_id, first_id+1, ... are unused
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Test hooks (ReplicaOptions): crash_at("rebuild-layer") after each
  // verified layer stops as a crash would; fail_io("rebuild-write") before
  // each pwrite returns an errno to fail it with (0: no fault).
  std::function<bool(std::string_view)> crash_at;
  std::function<int(std::string_view)> fail_io;
};

class Rebuilder {
 public:
  Rebuilder(RebuildRequest request, RebuildTarget target, RebuildOptions options);
  ~Rebuilder();
  Rebuilder(const Rebuilder&) = delete;
  Rebuilder& operator=(const Rebuilder&) = delete;

  // Copies and verifies every snapshot layer of the source. Returns them
  // parents before children, in the source's creation order (ids from
  // first_id, parents set, checksums verified), their files durable. On
  // failure the files it made are removed, except when a crash_at point
  // fired (*crashed: they stay, as after a real crash).
  Result<std::vector<LayerMeta>> Run(bool* crashed);
  // Removes the files Run made (when linking them failed).
  void RemoveFiles();
  void Cancel();
  bool cancelled() const { return cancelled_.load(); }

 private:
  struct SourceLayer;
  // The source's snapshot layers, parents before children; fails unless
  // request_.snapshot is one of them.
  Result<std::vector<SourceLayer>> ListTree();
  // Copies into the file local->file and sets local->checksum (verified).
  Status CopyLayer(const SourceLayer& layer, LayerMeta* local);
  Result<std::string> SourceChecksum(const SourceLayer& layer);
  Status Check() const;
  // Waits until `bytes` may be read at the request's bandwidth; false when
  // cancelled.
  bool Pace(uint64_t bytes);
  std::string Op() const;

  const RebuildRequest request_;
  const RebuildTarget target_;
  const RebuildOptions options_;
  // Paces the pull to request_.bandwidth; Pace waits on cancel_cv_, which
  // Cancel wakes.
  std::mutex pace_mu_;
  TokenBucket bucket_;  // guarded by pace_mu_
  std::condition_variable cancel_cv_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::unique_ptr<PeerClient> client_;  // guarded by mu_ (Cancel shuts it down)
  std::vector<std::string> made_;       // files created, rebuild thread only
  uint64_t done_ = 0, total_ = 0;
};

}  // namespace shorthorn::replicad
