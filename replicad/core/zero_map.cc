// Design notes: the sidecar is an append-only log of Adds, each a group of
// records whose last one carries the end-of-Add bit, so a crash inside an
// Add leaves a tail Load can tell apart from damage: after the last valid
// record that ends an Add there may be anything (a partial record, stale or
// half-written records), and Load cuts it off; a bad record before it cannot
// come from a torn append (an Add of several records writes its end mark
// only once the others are durable) and is reported, never skipped. Each record's hash
// is seeded with its index, so a record copied to another place, or a stale
// record left by an earlier failed append, fails its check.
//
// Load streams the file in fixed pieces and keeps only coalesced runs (those
// of the Add being read go to a separate map until its end bit is seen), so
// memory follows the runs, not the file size. Add writes before it touches
// memory; an append that failed may have left bytes past the end, so the
// next append first cuts the file back to the records it knows. The rewrite
// keeps the old file valid until the rename, and after the rename fd_
// always names the new file, even when the directory fsync then fails.
#include "replicad/core/zero_map.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <boost/endian/conversion.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <memory>

#include "common/log.h"
#include "replicad/core/layer_file.h"
#include "replicad/core/replica_meta.h"

namespace shorthorn::replicad {
namespace {

constexpr std::string_view kMagic = "SHZMAP01";
constexpr uint64_t kHeaderSize = 8;
constexpr uint64_t kRecordSize = 24;
constexpr uint64_t kEndOfAdd = uint64_t{1} << 63;
// Records per read or write piece (96 KiB).
constexpr uint64_t kPieceRecords = 4096;
// The rewrite rule: over this many records and over kRewriteRatio per run.
constexpr uint64_t kRewriteMinRecords = 1024;
constexpr uint64_t kRewriteRatio = 4;

namespace endian = boost::endian;

void EncodeRecord(uint8_t* p, uint64_t index, uint64_t first, uint64_t count, bool end) {
  endian::store_little_u64(p, first);
  endian::store_little_u64(p + 8, count | (end ? kEndOfAdd : 0));
  endian::store_little_u64(p + 16, XXH3_64bits_withSeed(p, 16, index));
}

// Inserts [first, end) into `runs` (first block -> end block), merging with
// the runs it overlaps or touches.
void InsertRun(std::map<uint64_t, uint64_t>& runs, uint64_t first, uint64_t end) {
  auto it = runs.upper_bound(first);
  if (it != runs.begin() && std::prev(it)->second >= first) --it;
  while (it != runs.end() && it->first <= end) {
    first = std::min(first, it->first);
    end = std::max(end, it->second);
    it = runs.erase(it);
  }
  runs.emplace(first, end);
}

}  // namespace

std::string ZeroMap::FileName(std::string_view layer_file) {
  constexpr std::string_view kImg = ".img";
  if (layer_file.ends_with(kImg)) layer_file.remove_suffix(kImg.size());
  return std::string(layer_file) + ".zeros";
}

bool ZeroMap::IsFileName(std::string_view name) {
  constexpr std::string_view kTmp = ".tmp", kSuffix = ".zeros";
  if (name.ends_with(kTmp)) name.remove_suffix(kTmp.size());
  if (!name.ends_with(kSuffix)) return false;
  name.remove_suffix(kSuffix.size());
  // The map of a layer file name replicad may make (replica_meta.h).
  return IsLayerFileName(std::string(name) + ".img");
}

Status ZeroMap::Load(const std::string& dir, const std::string& file, uint64_t blocks) {
  const std::string path = dir + "/" + file;
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "read zero map " + path);
  auto damaged = [&](const std::string& reason) {
    return Status(ErrorKind::kIoError, "read zero map " + path + ": " + reason, EIO);
  };

  uint8_t header[kHeaderSize];
  auto got = PreadUpTo(fd.get(), header, kHeaderSize, 0, path);
  if (!got.ok()) return got.status();
  if (*got != kHeaderSize || std::memcmp(header, kMagic.data(), kHeaderSize) != 0) {
    return damaged("bad header");
  }

  std::map<uint64_t, uint64_t> runs;     // the complete Adds
  std::map<uint64_t, uint64_t> pending;  // the Add being read
  uint64_t kept = 0;                     // records up to the last complete Add
  uint64_t index = 0;                    // of the next record
  std::string first_bad;                 // why the first bad record is bad
  uint64_t tail_bytes = 0;               // of a partial last record
  auto buf = std::make_unique<uint8_t[]>(kPieceRecords * kRecordSize);
  for (uint64_t offset = kHeaderSize;;) {
    got = PreadUpTo(fd.get(), buf.get(), kPieceRecords * kRecordSize, offset, path);
    if (!got.ok()) return got.status();
    const uint64_t n = *got / kRecordSize;
    for (uint64_t i = 0; i < n; ++i, ++index) {
      const uint8_t* r = buf.get() + i * kRecordSize;
      const uint64_t first = endian::load_little_u64(r), word = endian::load_little_u64(r + 8);
      const uint64_t count = word & ~kEndOfAdd;
      const bool end = (word & kEndOfAdd) != 0;
      std::string bad;
      if (endian::load_little_u64(r + 16) != XXH3_64bits_withSeed(r, 16, index)) {
        bad = "record " + std::to_string(index) + " is damaged";
      } else if (count == 0) {
        // A record whose hash holds was written whole: a bad run in it is
        // no torn append, wherever it is.
        return damaged("record " + std::to_string(index) + " has no blocks");
      } else if (first > blocks || count > blocks - first) {
        return damaged("record " + std::to_string(index) + " ends past block " +
                       std::to_string(blocks));
      }
      if (!first_bad.empty()) {
        // A complete Add after a bad record: the bad one is not a torn tail.
        if (bad.empty() && end) return damaged(first_bad);
        continue;
      }
      if (!bad.empty()) {
        first_bad = std::move(bad);
        continue;
      }
      InsertRun(pending, first, first + count);
      if (end) {
        for (const auto& [f, e] : pending) InsertRun(runs, f, e);
        pending.clear();
        kept = index + 1;
      }
    }
    offset += n * kRecordSize;
    if (*got < kPieceRecords * kRecordSize) {
      tail_bytes = *got - n * kRecordSize;
      break;
    }
  }

  const uint64_t size = kHeaderSize + index * kRecordSize + tail_bytes;
  const uint64_t keep = kHeaderSize + kept * kRecordSize;
  if (size > keep) {
    if (::ftruncate(fd.get(), static_cast<off_t>(keep)) != 0) {
      return ErrnoStatus(errno, "cut the torn end of zero map " + path);
    }
    if (::fdatasync(fd.get()) != 0) {
      return ErrnoStatus(errno, "fdatasync zero map " + path);
    }
    LogWarning("zero map " + path + ": cut " + std::to_string(size - keep) +
               " bytes of a torn last Add");
  }

  std::lock_guard lock(mu_);
  runs_ = std::move(runs);
  fd_ = std::move(fd);
  records_ = kept;
  return Status::Ok();
}

Status ZeroMap::Add(const std::string& dir, const std::string& file, const std::vector<Run>& runs) {
  const std::string path = dir + "/" + file;
  if (runs.empty()) return Status::Ok();
  for (const Run& r : runs) {
    if (r.count == 0 || r.count >= kEndOfAdd || r.first + r.count < r.first) {
      return Status(ErrorKind::kInvalidArgument,
                    "add to zero map " + path + ": bad run at block " + std::to_string(r.first) +
                        " of " + std::to_string(r.count) + " blocks",
                    EINVAL);
    }
  }

  std::lock_guard lock(mu_);
  const bool create = !fd_.valid();
  const uint64_t base = create ? 0 : records_;
  const uint64_t header = create ? kHeaderSize : 0;
  std::vector<uint8_t> buf(header + runs.size() * kRecordSize);
  if (create) std::memcpy(buf.data(), kMagic.data(), kHeaderSize);
  for (size_t i = 0; i < runs.size(); ++i) {
    EncodeRecord(buf.data() + header + i * kRecordSize, base + i, runs[i].first, runs[i].count,
                 i + 1 == runs.size());
  }

  // An Add of several records is written in two steps: all but the last,
  // made durable, then the last one (the end-of-Add mark). A torn Add then
  // never shows a valid end mark after a bad record, so Load can tell a torn
  // tail from damage.
  auto write = [&](int fd, uint64_t offset) -> Status {
    uint64_t split = runs.size() > 1 ? buf.size() - kRecordSize : 0;
    if (split > 0) {
      SH_RETURN_IF_ERROR(PwriteFull(fd, buf.data(), split, offset, path));
      if (::fdatasync(fd) != 0) return ErrnoStatus(errno, "fdatasync zero map " + path);
    }
    SH_RETURN_IF_ERROR(
        PwriteFull(fd, buf.data() + split, buf.size() - split, offset + split, path));
    if (::fdatasync(fd) != 0) return ErrnoStatus(errno, "fdatasync zero map " + path);
    return Status::Ok();
  };
  const uint64_t end = kHeaderSize + base * kRecordSize;
  if (create) {
    UniqueFd fd(::open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600));
    if (!fd.valid()) return ErrnoStatus(errno, "create zero map " + path);
    SH_RETURN_IF_ERROR(write(fd.get(), 0));
    SH_RETURN_IF_ERROR(SyncDirectory(dir));
    fd_ = std::move(fd);
  } else {
    // A failed append may have left records past `end`; a stale one there
    // must not follow this Add.
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return ErrnoStatus(errno, "stat zero map " + path);
    if (static_cast<uint64_t>(st.st_size) != end &&
        ::ftruncate(fd_.get(), static_cast<off_t>(end)) != 0) {
      return ErrnoStatus(errno, "truncate zero map " + path);
    }
    if (Status s = write(fd_.get(), end); !s.ok()) {
      // Best effort: a crash now should not bring back an Add reported failed.
      if (::ftruncate(fd_.get(), static_cast<off_t>(end)) == 0) (void)::fdatasync(fd_.get());
      return s;
    }
  }

  for (const Run& r : runs) InsertLocked(r.first, r.count);
  records_ = base + runs.size();
  if (records_ > kRewriteMinRecords && records_ > kRewriteRatio * runs_.size()) {
    // The Add is durable already; a rewrite that failed before its rename
    // only leaves the file long. After the rename, a failed directory fsync
    // may let a crash bring the old file back without the Adds that follow:
    // that fails the Add.
    bool renamed = false;
    if (Status s = RewriteLocked(dir, file, &renamed); !s.ok()) {
      if (renamed) return s;
      LogWarning(s.message() + "; the zero map keeps its records as they are");
    }
  }
  return Status::Ok();
}

void ZeroMap::Drop(const std::string& dir, const std::string& file) {
  std::lock_guard lock(mu_);
  runs_.clear();
  records_ = 0;
  fd_ = UniqueFd();
  const std::string path = dir + "/" + file;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    LogWarning("remove zero map " + path + ": " + std::strerror(errno) +
               "; the next open removes it");
  }
}

std::vector<ZeroMap::Run> ZeroMap::Runs(uint64_t first, uint64_t last) const {
  std::vector<Run> out;
  std::lock_guard lock(mu_);
  if (first >= last) return out;
  auto it = runs_.upper_bound(first);
  if (it != runs_.begin() && std::prev(it)->second > first) --it;
  for (; it != runs_.end() && it->first < last; ++it) {
    const uint64_t f = std::max(it->first, first);
    const uint64_t e = std::min(it->second, last);
    if (f < e) out.push_back({f, e - f});
  }
  return out;
}

bool ZeroMap::empty() const {
  std::lock_guard lock(mu_);
  return runs_.empty();
}

uint64_t ZeroMap::records() const {
  std::lock_guard lock(mu_);
  return records_;
}

void ZeroMap::InsertLocked(uint64_t first, uint64_t count) {
  InsertRun(runs_, first, first + count);
}

Status ZeroMap::RewriteLocked(const std::string& dir, const std::string& file, bool* renamed) {
  const std::string path = dir + "/" + file;
  const std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus(errno, "create zero map " + tmp);
  auto fail = [&](Status s) {
    ::unlink(tmp.c_str());
    return s;
  };

  std::vector<uint8_t> buf(kHeaderSize + kPieceRecords * kRecordSize);
  std::memcpy(buf.data(), kMagic.data(), kHeaderSize);
  uint64_t used = kHeaderSize, offset = 0, index = 0;
  for (auto it = runs_.begin(); it != runs_.end(); ++it, ++index) {
    EncodeRecord(buf.data() + used, index, it->first, it->second - it->first,
                 std::next(it) == runs_.end());
    used += kRecordSize;
    if (used + kRecordSize > buf.size() || std::next(it) == runs_.end()) {
      Status s = PwriteFull(fd.get(), buf.data(), used, offset, tmp);
      if (!s.ok()) return fail(s);
      offset += used;
      used = 0;
    }
  }
  if (::fdatasync(fd.get()) != 0) return fail(ErrnoStatus(errno, "fdatasync zero map " + tmp));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(ErrnoStatus(errno, "rename " + tmp + " to " + path));
  }
  // The name now holds the new file: follow it whatever happens next.
  *renamed = true;
  fd_ = std::move(fd);
  records_ = runs_.size();
  return SyncDirectory(dir);
}

}  // namespace shorthorn::replicad
