#include "backup/plan.h"

#include <algorithm>

namespace shorthorn::backup {

BackupPlan PlanBackup(uint64_t size, const std::vector<Extent>& extents,
                      const std::vector<BlockRef>* base, uint64_t base_size) {
  uint64_t blocks = (size + kBlockSize - 1) / kBlockSize;
  std::vector<bool> touched(blocks, false);
  for (const auto& e : extents) {
    if (e.length == 0 || e.offset >= size) continue;
    uint64_t end = std::min(size, e.offset + std::min(e.length, size - e.offset));
    for (uint64_t b = e.offset / kBlockSize; b * kBlockSize < end; ++b) touched[b] = true;
  }
  if (base != nullptr && base_size != size && base_size % kBlockSize != 0) {
    uint64_t last = base_size / kBlockSize;  // the base's partial last block
    if (last < blocks) touched[last] = true;
  }
  if (base != nullptr && size < base_size && size % kBlockSize != 0) {
    touched[size / kBlockSize] = true;  // a whole block of the base, partial now
  }
  BackupPlan plan;
  for (uint64_t b = 0; b < blocks; ++b) {
    if (!touched[b]) continue;
    plan.read.push_back(b * kBlockSize);
    plan.read_bytes += BlockLength(b * kBlockSize, size);
  }
  if (base != nullptr) {
    for (const auto& ref : *base) {
      uint64_t b = ref.offset / kBlockSize;
      if (b < blocks && !touched[b]) plan.reuse.push_back(ref);
    }
  }
  return plan;
}

}  // namespace shorthorn::backup
