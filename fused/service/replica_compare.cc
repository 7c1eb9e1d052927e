// Design notes: comparing the replicas of an attached volume (issue 15).
//
// Both jobs walk the volume in pieces of kComparePiece bytes. For each
// piece the engine's range lock is held (Engine::WithRangeHeld): no write
// or unmap of the piece is in flight, so replicas that acknowledged the
// same writes must hold the same bytes there. Each replica hashes the piece
// in chunks of kCompareChunk (CHECKSUM, op 43) and fused compares.
//
//   resync (after an attach whose replicas did not all end cleanly): the
//     authority is RW, the others WO. A chunk that differs is copied from
//     the authority while the range is still held; at the end each WO
//     replica takes the new generation and turns RW.
//   scrub (on request, or every scrub-interval): every RW replica is
//     compared. The reference for a chunk is the majority hash, or, with no
//     majority, the replica reads prefer (a local one, else the first): that
//     is what the filesystem has been reading. A replica that differs is
//     marked ERR at once (it serves no more reads) with the differing
//     ranges added to what it missed, so the catch-up that follows the job
//     copies them; it is still compared to the end so every differing range
//     is found. The job fails naming each replica and how much differed.

#include <map>

#include "common/log.h"
#include "common/net.h"
#include "common/size_text.h"
#include "fused/core/replica_rules.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {
namespace {

constexpr uint64_t kComparePiece = 16ull << 20;
constexpr uint64_t kCompareChunk = 1ull << 20;

}  // namespace

Result<std::vector<uint64_t>> VolumeService::ChecksumOf(AttachContext& ctx,
                                                        const std::string& replica, uint64_t offset,
                                                        uint64_t length) {
  ReplicaTarget target;
  {
    std::lock_guard lock(ctx.mutex);
    auto it = ctx.targets.find(replica);
    if (it == ctx.targets.end()) {
      return Status(ErrorKind::kNotFound, "replica " + replica + " is no longer attached");
    }
    target = it->second;
  }
  return ReplicaClient::Checksum(target, ctx.epoch, offset, length, kCompareChunk,
                                 settings_.client);
}

Status VolumeService::RunResync(const std::string& volume, JobHandle& job) {
  const std::string what = "resync volume " + volume;
  auto live = LiveAttachment(volume, what);
  if (!live.ok()) return live.status();
  const std::shared_ptr<AttachContext>& ctx = live->ctx;
  const std::shared_ptr<Engine>& engine = live->engine;
  std::string authority;
  std::vector<std::string> joining;
  for (const auto& r : engine->Replicas()) {
    if (r.mode == ReplicaMode::kRW && authority.empty()) authority = r.name;
    if (r.mode == ReplicaMode::kWO) joining.push_back(r.name);
  }
  if (authority.empty()) return Status(ErrorKind::kIoError, what + ": no RW replica", EIO);
  const uint64_t size = engine->Size();
  std::map<std::string, uint64_t> copied;
  JobPacer pacer(job, settings_.rebuild_bandwidth);
  for (uint64_t off = 0; off < size; off += kComparePiece) {
    uint64_t len = std::min(kComparePiece, size - off);
    Status piece = engine->WithRangeHeld(off, len, [&]() -> Status {
      auto reference = ChecksumOf(*ctx, authority, off, len);
      if (!reference.ok()) return reference.status().WithContext("replica " + authority);
      for (const auto& name : joining) {
        auto hashes = ChecksumOf(*ctx, name, off, len);
        if (!hashes.ok()) {
          engine->FailReplica(name, hashes.status());
          continue;
        }
        for (size_t i = 0; i < hashes->size(); ++i) {
          if ((*hashes)[i] == (*reference)[i]) continue;
          uint64_t c = off + i * kCompareChunk;
          uint64_t n = std::min(kCompareChunk, off + len - c);
          Status s = engine->CopyHeld(name, c, n);
          if (!s.ok()) break;  // the engine marked it ERR
          copied[name] += n;
        }
      }
      return Status::Ok();
    });
    if (!piece.ok()) return piece.WithContext(what);
    job.Update(off + len, size);
    if (pacer.Throttle(off + len)) {
      return Status(ErrorKind::kFailed, what + ": cancelled");
    }
  }
  std::string summary;
  for (const auto& name : joining) {
    bool wo = false;
    for (const auto& r : engine->Replicas()) {
      wo = wo || (r.name == name && r.mode == ReplicaMode::kWO);
    }
    if (!wo) {
      summary += "; replica " + name + " failed during the resync";
      continue;
    }
    SH_RETURN_IF_ERROR(BumpGeneration(*ctx, name).status().WithContext(what));
    SH_RETURN_IF_ERROR(engine->SetMode(name, ReplicaMode::kRW).WithContext(what));
    summary += "; replica " + name + ": " + FormatSize(copied[name]) + " differed, copied from " +
               authority;
  }
  QueueChanged(volume);
  std::string message = "compared " + FormatSize(size) + summary;
  LogInfo(what + ": " + message);
  job.SetResult(message);
  return Status::Ok();
}

Result<uint64_t> VolumeService::Scrub(const std::string& volume, const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("Scrub", options, {}));
  const std::string what = "scrub volume " + volume;
  std::lock_guard lock(mutex_);
  if (registry_.Find(volume) == nullptr) {
    return Status(ErrorKind::kNotFound, what + ": it does not exist");
  }
  auto it = attached_.find(volume);
  if (it == attached_.end()) {
    return Status(ErrorKind::kInvalidArgument,
                  what +
                      ": it is not attached (a scrub compares the replicas of an attached "
                      "volume; use Verify for the snapshot layers of a detached one)");
  }
  for (const char* kind : {"scrub", "rebuild", "resync"}) {
    if (jobs_.Running(volume, kind)) {
      return Status(ErrorKind::kBusy, what + ": a " + std::string(kind) + " job is running");
    }
  }
  if (it->second.engine->Count(ReplicaMode::kRW) < 2) {
    return Status(ErrorKind::kInvalidArgument,
                  what + ": it has fewer than two RW replicas, nothing to compare");
  }
  return jobs_.Start("scrub", volume, "", true,
                     [this, volume](JobHandle& job) { return RunScrub(volume, job); });
}

Status VolumeService::RunScrub(const std::string& volume, JobHandle& job) {
  const std::string what = "scrub volume " + volume;
  auto live = LiveAttachment(volume, what);
  if (!live.ok()) return live.status();
  const std::shared_ptr<AttachContext>& ctx = live->ctx;
  const std::shared_ptr<Engine>& engine = live->engine;
  // Compared: the RW replicas at the start, preferred one first.
  std::vector<std::string> names;
  std::string preferred;
  for (const auto& r : engine->Replicas()) {
    if (r.mode != ReplicaMode::kRW) continue;
    names.push_back(r.name);
    ReplicaTarget t;
    {
      std::lock_guard lock(ctx->mutex);
      t = ctx->targets[r.name];
    }
    if (preferred.empty() && IsLocalAddress(t.address)) preferred = r.name;
  }
  if (names.size() < 2) return Status(ErrorKind::kFailed, what + ": fewer than two RW replicas");
  if (preferred.empty()) preferred = names.front();
  const uint64_t size = engine->Size();
  std::map<std::string, uint64_t> differing;  // replica -> bytes
  std::map<std::string, std::string> unreachable;
  auto start = std::chrono::steady_clock::now();
  JobPacer pacer(job, settings_.scrub_bandwidth);
  for (uint64_t off = 0; off < size; off += kComparePiece) {
    uint64_t len = std::min(kComparePiece, size - off);
    Status piece = engine->WithRangeHeld(off, len, [&]() -> Status {
      std::map<std::string, std::vector<uint64_t>> hashes;
      for (const auto& name : names) {
        if (unreachable.count(name) != 0) continue;
        auto h = ChecksumOf(*ctx, name, off, len);
        if (!h.ok()) {
          unreachable[name] = h.status().message();
          engine->FailReplica(name, h.status());
          continue;
        }
        hashes[name] = std::move(*h);
      }
      if (hashes.size() < 2) return Status::Ok();
      size_t chunks = hashes.begin()->second.size();
      for (size_t i = 0; i < chunks; ++i) {
        std::map<std::string, uint64_t> column;
        for (const auto& [name, h] : hashes) column[name] = h[i];
        const ChunkReference ref = ReferenceHash(column, preferred);
        if (ref.agreed) continue;
        const uint64_t reference = ref.hash;
        const bool majority = ref.majority;
        uint64_t c = off + i * kCompareChunk;
        uint64_t n = std::min(kCompareChunk, off + len - c);
        for (const auto& [name, h] : hashes) {
          if (h[i] == reference) continue;
          differing[name] += n;
          LogError(what + ": replica " + name + " differs at " + std::to_string(c) + "+" +
                   std::to_string(n) + (majority ? " from the majority" : " from replica ") +
                   (majority ? "" : preferred));
          engine->FailReplica(
              name,
              Status(ErrorKind::kIoError,
                     "scrub: its data differs from the " +
                         std::string(majority ? "majority" : "replica " + preferred)),
              {{c, c + n}});
        }
      }
      return Status::Ok();
    });
    if (!piece.ok()) return piece.WithContext(what);
    job.Update(off + len, size);
    if (pacer.Throttle(off + len)) {
      return Status(ErrorKind::kFailed, what + ": cancelled");
    }
  }
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char rate[64];
  snprintf(rate, sizeof(rate), "%.0f MiB/s", seconds > 0 ? size / seconds / (1 << 20) : 0.0);
  std::string message = "compared " + FormatSize(size) + " on " + std::to_string(names.size()) +
                        " replicas at " + rate;
  if (differing.empty() && unreachable.empty()) {
    LogInfo(what + ": " + message + ": identical");
    job.SetResult(message + ": identical");
    return Status::Ok();
  }
  std::string bad;
  for (const auto& [name, bytes] : differing) {
    bad += "; replica " + name + " differed in " + FormatSize(bytes) +
           " (marked ERR; a catch-up copies those ranges back)";
  }
  for (const auto& [name, why] : unreachable) {
    bad += "; replica " + name + " could not be compared: " + why;
  }
  LogError(what + ": " + message + bad);
  return Status(ErrorKind::kIoError, what + ": " + message + bad);
}

}  // namespace shorthorn::fused
