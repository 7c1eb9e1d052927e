// ZeroMap: the blocks of one layer that read as zeros although its file has
// a hole there ("zero runs"). A layer owns a block when its file has data
// there or its zero map names it; a read of an owned block reads the layer's
// file (a hole reads zeros), so a zero run hides whatever the layers below
// hold there without writing a byte. Unmap adds runs where a snapshot under
// the head holds data (replica_unmap.cc). The sidecar file format is in
// doc/replica-format.md ("Zero maps"):
//
//   header  "SHZMAP01" (8 bytes)
//   record  first block (u64 LE), block count (u64 LE) whose top bit marks
//           the last record of one Add, XXH3-64 of those 16 bytes seeded
//           with the record's index (u64 LE); 24 bytes each
//
// Promises:
//  * Add returns only after its records are durable (pwrite, fdatasync, and
//    the directory's fsync when it created the file). A crash inside Add
//    leaves the map as it was before the Add, or with the whole Add: Load
//    cuts off everything after the last record that ends an Add. A run's
//    count is from 1 to 2^63 - 1 (the top bit is the end-of-Add mark).
//  * Load checks every byte: a bad header, a damaged record before the last
//    complete Add, or a record whose hash holds but whose run is empty or
//    past `blocks` (anywhere in the file) is an error (kIoError, EIO) that
//    names the file and the record. Nothing guessed.
//  * The runs in memory are sorted, disjoint and coalesced; Add of a run
//    already covered changes nothing in memory (it is still written).
//  * The file is rewritten (temp file, fdatasync, rename, directory fsync)
//    when it holds over four times as many records as there are runs, and
//    over 1024 of them. A rewrite that fails before its rename is logged
//    and the Add stands; a directory fsync that fails after the rename fails
//    the Add (later Adds would go to a name a crash may take back).
//
// Threads: every method from any thread (one mutex; Add holds it across its
// syscalls, Runs is short).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/file_util.h"
#include "common/status.h"

namespace shorthorn::replicad {

class ZeroMap {
 public:
  struct Run {
    uint64_t first = 0;  // block
    uint64_t count = 0;  // blocks
    bool operator==(const Run&) const = default;
  };

  // "layer-<id>.zeros" for "layer-<id>.img" (any "<x>.img" gives "<x>.zeros").
  static std::string FileName(std::string_view layer_file);
  // True for names FileName may return and their ".tmp" (leftovers).
  static bool IsFileName(std::string_view name);

  ZeroMap() = default;
  ZeroMap(const ZeroMap&) = delete;
  ZeroMap& operator=(const ZeroMap&) = delete;

  // Reads `dir`/`file` for a layer of `blocks` blocks and keeps it open for
  // later Adds. A missing file is an error (the caller loads only maps that
  // replica.json says exist). A torn last Add is cut off (ftruncate and
  // fdatasync) before it returns.
  Status Load(const std::string& dir, const std::string& file, uint64_t blocks);

  // Appends `runs` (each count > 0) as one Add, durably. The first Add on a
  // map that was not loaded creates `dir`/`file` (replacing any leftover of
  // that name) and fsyncs `dir`.
  Status Add(const std::string& dir, const std::string& file, const std::vector<Run>& runs);

  // Forgets every run and removes `dir`/`file` (best effort): for a map that
  // replica.json does not name yet, whose first commit failed.
  void Drop(const std::string& dir, const std::string& file);

  // The runs inside blocks [first, last), clipped to it, in order.
  std::vector<Run> Runs(uint64_t first, uint64_t last) const;
  bool empty() const;
  // Records in the file (for the rewrite rule and tests).
  uint64_t records() const;

 private:
  void InsertLocked(uint64_t first, uint64_t count);
  // `*renamed`: the new file took the name (set even when it then fails).
  Status RewriteLocked(const std::string& dir, const std::string& file, bool* renamed);

  mutable std::mutex mu_;
  std::map<uint64_t, uint64_t> runs_;  // first block -> end block; guarded by mu_
  UniqueFd fd_;                        // guarded by mu_
  uint64_t records_ = 0;               // guarded by mu_
};

}  // namespace shorthorn::replicad
