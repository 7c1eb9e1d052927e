// Layer files: the syscalls a replica makes on its sparse layer files
// outside the IoEngine fast path. Creation, allocated extents
// (SEEK_DATA/SEEK_HOLE), whole-range pread/pwrite, writing zeros, allocated
// bytes, and the layer checksum (doc/replica-format.md, "Checksums"):
//
//   XXH3-64 (seed 0), streamed over every maximal extent [o, o+n) the
//   layer owns (its data extents and its zero runs, zero_map.h), in
//   increasing order, clipped to the file size: o as 8 bytes little-endian,
//   n as 8 bytes little-endian, then the n bytes (zeros in a zero run).
//   Written as 16 lowercase hex digits. A layer with a zero map and its
//   copy with real zeros there have the same checksum.
//
// Blocking; callable from any thread on any fd. Errors name the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace shorthorn::replicad {

struct FileExtent {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Creates `path` (O_EXCL), sparse, `size` bytes, and fsyncs it. On failure
// (ENOSPC, ...) nothing is left behind.
Status CreateLayerFile(const std::string& path, uint64_t size);

// The data extents of `fd` inside [start, end), clipped to both, at most
// `max_count` of them. `name` names the file in errors.
Result<std::vector<FileExtent>> AllocatedExtents(int fd, uint64_t start, uint64_t end,
                                                 const std::string& name,
                                                 size_t max_count = SIZE_MAX);
// Bytes the file occupies on disk (st_blocks * 512).
uint64_t AllocatedBytes(int fd);
uint64_t FileSize(int fd);

// Reads up to `length` bytes; fewer only at the end of the file (the count).
Result<uint64_t> PreadUpTo(int fd, uint8_t* buf, uint64_t length, uint64_t offset,
                           const std::string& name);
// Reads `length` bytes; past the end of the file, zeros.
Status PreadFull(int fd, uint8_t* buf, uint64_t length, uint64_t offset, const std::string& name);
Status PwriteFull(int fd, const uint8_t* buf, uint64_t length, uint64_t offset,
                  const std::string& name);
// Writes real zeros (allocated: a hole would let lower layers show through).
Status WriteZeros(int fd, uint64_t offset, uint64_t length, const std::string& name);
Status PunchHole(int fd, uint64_t offset, uint64_t length, const std::string& name);

// `progress(bytes_hashed)` is called between pieces; returning false stops
// the computation (kUnavailable "stopped").
using ProgressFn = std::function<bool(uint64_t done)>;
Result<std::string> LayerChecksum(int fd, const std::string& name, const ProgressFn& progress);
// The same over given extents (sorted, disjoint, not adjacent: maximal), for
// a layer that owns more than its data extents (OwnedExtents, layer_set.h).
Result<std::string> ExtentsChecksum(int fd, const std::vector<FileExtent>& extents,
                                    const std::string& name, const ProgressFn& progress);

}  // namespace shorthorn::replicad
