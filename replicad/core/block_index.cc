// Design notes: a chunk's runs are a plain sorted vector. An update finds
// the runs it overlaps with one binary search, computes at most three
// replacement runs (the left remainder, the new run, the right remainder),
// folds the new run into an equal-slot neighbour, and splices them in: a
// memmove of at most the chunk's tail. Random 4 KiB writes over 1 TiB touch
// ~60 runs per 64 MiB chunk on average, so the splice is a few hundred bytes.
#include "replicad/core/block_index.h"

#include <algorithm>

namespace shorthorn::replicad {

size_t BlockIndex::FirstEndingAtOrAfter(const Chunk& c, uint32_t off) {
  // Branchless binary search: the loop runs log2(n) times whatever the data,
  // so the CPU does not mispredict and overlaps the loads of lookups.
  size_t n = c.size();
  if (n == 0) return 0;
  const Run* base = c.data();
  while (n > 1) {
    size_t half = n / 2;
    base = base[half - 1].last < off ? base + half : base;
    n -= half;
  }
  return static_cast<size_t>(base - c.data()) + (base->last < off ? 1 : 0);
}

BlockIndex::BlockIndex(uint64_t blocks, unsigned chunk_bits)
    : chunk_bits_(std::min(chunk_bits, 16u)) {
  Grow(blocks);
}

void BlockIndex::Grow(uint64_t blocks) {
  if (blocks <= blocks_) return;
  blocks_ = blocks;
  uint64_t per = uint64_t{1} << chunk_bits_;
  chunks_.resize((blocks + per - 1) / per);
}

uint64_t BlockIndex::ChunkBlocks(size_t chunk) const {
  uint64_t per = uint64_t{1} << chunk_bits_;
  uint64_t start = chunk * per;
  return std::min(per, blocks_ - start);
}

void BlockIndex::SetInChunk(Chunk& c, uint32_t s, uint32_t e, uint16_t slot) {
  size_t i = FirstEndingAtOrAfter(c, s);
  size_t j = i;
  while (j < c.size() && c[j].start <= e) ++j;
  Run rep[3];
  int n = 0;
  bool has_left = i < j && c[i].start < s;
  bool has_right = i < j && c[j - 1].last > e;
  Run left{}, right{};
  if (has_left) left = {c[i].start, static_cast<uint16_t>(s - 1), c[i].slot};
  if (has_right) right = {static_cast<uint16_t>(e + 1), c[j - 1].last, c[j - 1].slot};
  if (slot != kNone) {
    Run mid{static_cast<uint16_t>(s), static_cast<uint16_t>(e), slot};
    if (has_left && left.slot == slot) {
      mid.start = left.start;
      has_left = false;
    } else if (!has_left && i > 0 && c[i - 1].last + 1u == s && c[i - 1].slot == slot) {
      --i;
      mid.start = c[i].start;
    }
    if (has_right && right.slot == slot) {
      mid.last = right.last;
      has_right = false;
    } else if (!has_right && j < c.size() && c[j].start == e + 1 && c[j].slot == slot) {
      mid.last = c[j].last;
      ++j;
    }
    if (has_left) rep[n++] = left;
    rep[n++] = mid;
  } else if (has_left) {
    rep[n++] = left;
  }
  if (has_right) rep[n++] = right;
  size_t old = j - i;
  size_t k = static_cast<size_t>(n);
  if (k < old) {
    c.erase(c.begin() + static_cast<ptrdiff_t>(i + k), c.begin() + static_cast<ptrdiff_t>(j));
  } else if (k > old) {
    c.insert(c.begin() + static_cast<ptrdiff_t>(j), k - old, Run{});
  }
  std::copy(rep, rep + n, c.begin() + static_cast<ptrdiff_t>(i));
}

void BlockIndex::Set(uint64_t block, uint64_t count, uint16_t slot) {
  if (block >= blocks_) return;
  count = std::min(count, blocks_ - block);
  uint64_t end = block + count;
  while (block < end) {
    size_t chunk = block >> chunk_bits_;
    uint64_t base = static_cast<uint64_t>(chunk) << chunk_bits_;
    uint64_t stop = std::min(end, base + ChunkBlocks(chunk));
    SetInChunk(chunks_[chunk], static_cast<uint32_t>(block - base),
               static_cast<uint32_t>(stop - 1 - base), slot);
    block = stop;
  }
}

void BlockIndex::Relabel(uint64_t block, uint64_t count, uint16_t from, uint16_t to) {
  std::vector<Extent> pieces;
  Lookup(block, count, &pieces);
  for (const auto& p : pieces) {
    if (p.slot == from) Set(p.block, p.count, to);
  }
}

void BlockIndex::Forget(uint16_t slot) {
  for (auto& c : chunks_) {
    std::erase_if(c, [slot](const Run& r) { return r.slot == slot; });
  }
}

void BlockIndex::Lookup(uint64_t block, uint64_t count, std::vector<Extent>* out) const {
  auto emit = [out](uint64_t b, uint64_t n, uint16_t slot) {
    if (n == 0) return;
    if (!out->empty() && out->back().slot == slot && out->back().block + out->back().count == b) {
      out->back().count += n;
    } else {
      out->push_back({b, n, slot});
    }
  };
  if (block >= blocks_) return emit(block, count, kNone);
  uint64_t end = block + count;
  uint64_t in_range_end = std::min(end, blocks_);
  while (block < in_range_end) {
    size_t chunk = block >> chunk_bits_;
    uint64_t base = static_cast<uint64_t>(chunk) << chunk_bits_;
    uint64_t stop = std::min(in_range_end, base + ChunkBlocks(chunk));
    const Chunk& c = chunks_[chunk];
    uint32_t s = static_cast<uint32_t>(block - base);
    uint32_t e = static_cast<uint32_t>(stop - 1 - base);
    auto it = c.begin() + static_cast<ptrdiff_t>(FirstEndingAtOrAfter(c, s));
    uint32_t pos = s;
    for (; it != c.end() && it->start <= e; ++it) {
      uint32_t rs = std::max<uint32_t>(it->start, pos);
      uint32_t re = std::min<uint32_t>(it->last, e);
      emit(base + pos, rs - pos, kNone);
      emit(base + rs, re - rs + 1, it->slot);
      pos = re + 1;
    }
    if (pos <= e) emit(base + pos, e - pos + 1, kNone);
    block = stop;
  }
  if (end > in_range_end) emit(in_range_end, end - in_range_end, kNone);
}

uint16_t BlockIndex::LookupBlock(uint64_t block) const {
  if (block >= blocks_) return kNone;
  const Chunk& c = chunks_[block >> chunk_bits_];
  uint32_t off = static_cast<uint32_t>(block & ((uint64_t{1} << chunk_bits_) - 1));
  size_t i = FirstEndingAtOrAfter(c, off);
  if (i == c.size() || c[i].start > off) return kNone;
  return c[i].slot;
}

size_t BlockIndex::RunCount() const {
  size_t n = 0;
  for (const auto& c : chunks_) n += c.size();
  return n;
}

size_t BlockIndex::MemoryBytes() const {
  // glibc malloc: 8 bytes of header, rounded up to 16, minimum 32.
  auto alloc = [](size_t bytes) -> size_t {
    if (bytes == 0) return 0;
    return std::max<size_t>(32, (bytes + 8 + 15) & ~size_t{15});
  };
  size_t total = sizeof(*this) + alloc(chunks_.capacity() * sizeof(Chunk));
  for (const auto& c : chunks_) total += alloc(c.capacity() * sizeof(Run));
  return total;
}

}  // namespace shorthorn::replicad
