// Design notes: slots are small integers the block index stores per run
// instead of layer ids (BlockIndex::kNone is a hole). A layer gets the
// lowest free slot when it joins (or earlier, Reserve, when an index that
// names it is built before the commit that adds it); a removed layer's slot
// is freed but its runs may still be in the index until a rebuild of the
// index or Forget drops them, so a reader always resolves a run to the
// layer it was written with or to nothing.
#include "replicad/core/layer_set.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "replicad/core/layer_chain.h"
#include "replicad/core/layer_file.h"

namespace shorthorn::replicad {

Result<std::vector<FileExtent>> OwnedExtents(const Layer& layer, uint64_t start, uint64_t end,
                                             size_t max_count, uint64_t* covered) {
  auto data = AllocatedExtents(layer.fd.get(), start, end, layer.file, max_count);
  if (!data.ok()) return data.status();
  uint64_t bound = end;
  if (max_count != SIZE_MAX && data->size() >= max_count && !data->empty()) {
    bound = data->back().offset + data->back().length;
  }
  if (covered != nullptr) *covered = bound;
  if (layer.zeros.empty() || bound <= start) return data;
  std::vector<FileExtent> all = std::move(*data);
  uint64_t first = start / kSectorSize, last = (bound + kSectorSize - 1) / kSectorSize;
  for (const auto& r : layer.zeros.Runs(first, last)) {
    uint64_t o = std::max(start, r.first * kSectorSize);
    uint64_t e = std::min(bound, (r.first + r.count) * kSectorSize);
    if (o < e) all.push_back({o, e - o});
  }
  std::sort(all.begin(), all.end(),
            [](const FileExtent& a, const FileExtent& b) { return a.offset < b.offset; });
  std::vector<FileExtent> merged;
  for (const auto& e : all) {
    if (!merged.empty() && e.offset <= merged.back().offset + merged.back().length) {
      uint64_t z = std::max(merged.back().offset + merged.back().length, e.offset + e.length);
      merged.back().length = z - merged.back().offset;
    } else {
      merged.push_back(e);
    }
  }
  return merged;
}

Result<std::string> LayerChecksum(const Layer& layer, const ProgressFn& progress) {
  auto extents = OwnedExtents(layer, 0, FileSize(layer.fd.get()));
  if (!extents.ok()) return extents.status();
  return ExtentsChecksum(layer.fd.get(), *extents, layer.file, progress);
}

LayerSet::LayerSet(std::string dir, unsigned index_chunk_bits, bool direct_writes)
    : dir_(std::move(dir)),
      index_chunk_bits_(index_chunk_bits),
      direct_writes_(direct_writes),
      index_(0, index_chunk_bits) {}

Result<LayerPtr> LayerSet::OpenLayer(const LayerMeta& l, bool head) const {
  auto layer = std::make_shared<Layer>();
  layer->id = l.id;
  layer->file = l.file;
  std::string path = dir_ + "/" + l.file;
  layer->fd = UniqueFd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!layer->fd.valid()) return ErrnoStatus(errno, "open layer file " + path);
  if (head && direct_writes_) {
    layer->direct_fd = UniqueFd(::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC));
  }
  if (l.zero_map) {
    SH_RETURN_IF_ERROR(layer->zeros.Load(dir_, ZeroMap::FileName(l.file),
                                         FileSize(layer->fd.get()) / kSectorSize));
    layer->zero_map_recorded = true;
  }
  return layer;
}

Result<BlockIndex> LayerSet::BuildIndex(const std::vector<uint64_t>& chain, uint64_t blocks,
                                        const std::map<uint64_t, LayerPtr>& layers) const {
  BlockIndex index(blocks, index_chunk_bits_);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const LayerPtr& l = layers.at(*it);
    auto ext = OwnedExtents(*l, 0, blocks * kSectorSize);
    if (!ext.ok()) return ext.status();
    for (const auto& e : *ext) {
      uint64_t b = e.offset / kSectorSize;
      uint64_t z = (e.offset + e.length + kSectorSize - 1) / kSectorSize;
      index.Set(b, z - b, l->slot);
    }
  }
  return index;
}

void LayerSet::TakeSlotLocked(const LayerPtr& layer) {
  size_t i = 0;
  while (i < slots_.size() && slots_[i] != nullptr) ++i;
  if (i == slots_.size()) slots_.resize(i + 1);
  layer->slot = static_cast<uint16_t>(i);
  slots_[i] = layer;
}

void LayerSet::FreeSlotLocked(const LayerPtr& layer) {
  if (layer->slot < slots_.size() && slots_[layer->slot] == layer) slots_[layer->slot] = nullptr;
}

void LayerSet::AddLocked(const LayerPtr& layer) {
  layers_[layer->id] = layer;
  if (layer->slot == BlockIndex::kNone) TakeSlotLocked(layer);
}

void LayerSet::RemoveLocked(const LayerPtr& layer) {
  layers_.erase(layer->id);
  FreeSlotLocked(layer);
}

void LayerSet::Install(const ReplicaMeta& meta, Change change) {
  std::unique_lock lock(mu_);
  for (const auto& layer : change.remove) RemoveLocked(layer);
  for (const auto& layer : change.add) AddLocked(layer);
  if (change.forget) index_.Forget(*change.forget);
  if (change.index) index_ = std::move(*change.index);
  std::vector<uint64_t> chain = ActiveChain(meta);
  head_ = layers_.at(chain.front());
  lower_.clear();
  unneeded_ = 0;
  bool unneeded = true;  // so far every layer from the head down is unneeded
  for (size_t i = 1; i < chain.size(); ++i) {
    lower_.push_back(layers_.at(chain[i]));
    const LayerMeta* l = FindLayer(meta, chain[i]);
    unneeded = unneeded && l->removed && Children(meta, chain[i]).size() == 1;
    if (unneeded) ++unneeded_;
  }
}

void LayerSet::Reserve(const LayerPtr& layer) {
  std::unique_lock lock(mu_);
  TakeSlotLocked(layer);
}

void LayerSet::Unreserve(const LayerPtr& layer) {
  std::unique_lock lock(mu_);
  FreeSlotLocked(layer);
}

void LayerSet::Remove(const LayerPtr& layer) {
  std::unique_lock lock(mu_);
  RemoveLocked(layer);
}

LayerPtr LayerSet::head() const {
  std::shared_lock lock(mu_);
  return head_;
}

LayerPtr LayerSet::Find(uint64_t id) const {
  std::shared_lock lock(mu_);
  auto it = layers_.find(id);
  return it == layers_.end() ? nullptr : it->second;
}

std::map<uint64_t, LayerPtr> LayerSet::All() const {
  std::shared_lock lock(mu_);
  return layers_;
}

LayerSet::Lower LayerSet::LowerLayers() const {
  std::shared_lock lock(mu_);
  Lower out;
  out.head = head_;
  out.unneeded.assign(lower_.begin(), lower_.begin() + static_cast<ptrdiff_t>(unneeded_));
  out.kept.assign(lower_.begin() + static_cast<ptrdiff_t>(unneeded_), lower_.end());
  return out;
}

void LayerSet::Lookup(uint64_t block, uint64_t count, std::vector<BlockIndex::Extent>* runs,
                      std::vector<LayerPtr>* layers) const {
  std::shared_lock lock(mu_);
  index_.Lookup(block, count, runs);
  for (const auto& r : *runs) {
    layers->push_back(r.slot == BlockIndex::kNone ? nullptr : slots_[r.slot]);
  }
}

void LayerSet::SetRange(uint64_t block, uint64_t count, uint16_t slot) {
  std::unique_lock lock(mu_);
  index_.Set(block, count, slot);
}

void LayerSet::SetRanges(const std::vector<BlockIndex::Extent>& runs) {
  std::unique_lock lock(mu_);
  for (const auto& r : runs) index_.Set(r.block, r.count, r.slot);
}

void LayerSet::Relabel(uint64_t block, uint64_t count, uint16_t from, uint16_t to) {
  std::unique_lock lock(mu_);
  index_.Relabel(block, count, from, to);
}

void LayerSet::Grow(uint64_t blocks) {
  std::unique_lock lock(mu_);
  index_.Grow(blocks);
}

}  // namespace shorthorn::replicad
