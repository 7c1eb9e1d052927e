#include "tests/unit/backup/core_fakes.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <stdexcept>

#include "backup/object_key.h"

namespace shorthorn::backup::fakes {

// ---------------------------------------------------------------- MemoryStore

bool MemoryStore::Visible(const std::string& key) const {
  return objects_.count(key) != 0 && hidden_.count(key) == 0;
}

Status MemoryStore::Put(const std::string& key, std::span<const uint8_t> data) {
  SH_RETURN_IF_ERROR(CheckObjectKey("put", url_, key));
  std::function<void(const std::string&)> hook;
  {
    std::lock_guard lock(mu_);
    hook = put_hook_;
  }
  if (hook) hook(key);
  std::lock_guard lock(mu_);
  ++puts_;
  if (puts_left_ && key.rfind(fail_prefix_, 0) == 0) {
    if (*puts_left_ == 0) {
      return Status(ErrorKind::kUnavailable, "put " + url_ + " key " + key + ": injected fault",
                    EIO);
    }
    --*puts_left_;
  }
  objects_[key].assign(data.begin(), data.end());
  hidden_.erase(key);
  put_keys_.push_back(key);
  return Status::Ok();
}

Result<std::vector<uint8_t>> MemoryStore::Get(const std::string& key) {
  SH_RETURN_IF_ERROR(CheckObjectKey("get", url_, key));
  std::lock_guard lock(mu_);
  ++gets_;
  if (!Visible(key)) {
    return Status(ErrorKind::kNotFound, "get " + url_ + " key " + key + ": no such object", ENOENT);
  }
  return objects_.at(key);
}

Result<bool> MemoryStore::Exists(const std::string& key) {
  SH_RETURN_IF_ERROR(CheckObjectKey("exists", url_, key));
  std::lock_guard lock(mu_);
  return Visible(key);
}

Status MemoryStore::Delete(const std::string& key) {
  SH_RETURN_IF_ERROR(CheckObjectKey("delete", url_, key));
  std::lock_guard lock(mu_);
  ++deletes_;
  objects_.erase(key);
  hidden_.erase(key);
  return Status::Ok();
}

Result<std::vector<std::string>> MemoryStore::List(const std::string& prefix) {
  SH_RETURN_IF_ERROR(CheckListPrefix(url_, prefix));
  std::lock_guard lock(mu_);
  ++lists_;
  listed_.push_back(prefix);
  std::vector<std::string> keys;
  for (auto it = objects_.lower_bound(prefix); it != objects_.end(); ++it) {
    if (it->first.rfind(prefix, 0) != 0) break;
    if (hidden_.count(it->first) == 0) keys.push_back(it->first);
  }
  // "In no particular order": do not let callers depend on sorting.
  std::reverse(keys.begin(), keys.end());
  return keys;
}

void MemoryStore::FailPutsAfter(uint64_t successes, const std::string& prefix) {
  std::lock_guard lock(mu_);
  puts_left_ = successes;
  fail_prefix_ = prefix;
}

void MemoryStore::Hide(const std::string& key) {
  std::lock_guard lock(mu_);
  hidden_.insert(key);
}

void MemoryStore::SetPutHook(std::function<void(const std::string& key)> hook) {
  std::lock_guard lock(mu_);
  put_hook_ = std::move(hook);
}

void MemoryStore::ClearFaults() {
  std::lock_guard lock(mu_);
  puts_left_.reset();
  fail_prefix_.clear();
  hidden_.clear();
  put_hook_ = nullptr;
}

std::optional<std::vector<uint8_t>> MemoryStore::Peek(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

void MemoryStore::Poke(const std::string& key, std::vector<uint8_t> data) {
  std::lock_guard lock(mu_);
  objects_[key] = std::move(data);
}

bool MemoryStore::Erase(const std::string& key) {
  std::lock_guard lock(mu_);
  return objects_.erase(key) != 0;
}

std::vector<std::string> MemoryStore::KeysUnder(const std::string& prefix) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> keys;
  for (const auto& [key, data] : objects_) {
    if (key.rfind(prefix, 0) == 0) keys.push_back(key);
  }
  return keys;
}

uint64_t MemoryStore::puts() const {
  std::lock_guard lock(mu_);
  return puts_;
}
uint64_t MemoryStore::gets() const {
  std::lock_guard lock(mu_);
  return gets_;
}
uint64_t MemoryStore::lists() const {
  std::lock_guard lock(mu_);
  return lists_;
}
uint64_t MemoryStore::deletes() const {
  std::lock_guard lock(mu_);
  return deletes_;
}

uint64_t MemoryStore::PutsUnder(const std::string& prefix) const {
  std::lock_guard lock(mu_);
  return std::count_if(put_keys_.begin(), put_keys_.end(),
                       [&](const std::string& k) { return k.rfind(prefix, 0) == 0; });
}

std::vector<std::string> MemoryStore::listed_prefixes() const {
  std::lock_guard lock(mu_);
  return listed_;
}

void MemoryStore::ResetCounts() {
  std::lock_guard lock(mu_);
  puts_ = gets_ = lists_ = deletes_ = 0;
  put_keys_.clear();
  listed_.clear();
}

// ---------------------------------------------------------------- FakeSource

class FakeSource::Reader : public SnapshotReader {
 public:
  explicit Reader(const FakeSource& source) : source_(source) {}
  Status Read(uint64_t offset, std::span<uint8_t> buf) override {
    SH_RETURN_IF_ERROR(source_.ReadAt(offset, buf));
    source_.bytes_read_ += buf.size();
    return Status::Ok();
  }

 private:
  const FakeSource& source_;
};

void FakeSource::AddLayer(const std::string& name, const std::string& created) {
  chain_.push_back({name, created});
  layers_.emplace_back();
}

void FakeSource::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (layers_.empty() || offset % kSector != 0 || data.size() % kSector != 0) {
    throw std::invalid_argument("FakeSource::Write: no layer, or not sector-aligned");
  }
  for (size_t i = 0; i < data.size(); i += kSector) {
    layers_.back()[offset + i].assign(data.begin() + i, data.begin() + i + kSector);
  }
}

Status FakeSource::ReadAt(uint64_t offset, std::span<uint8_t> buf) const {
  if (offset > size_ || buf.size() > size_ - offset) {
    return Status(ErrorKind::kInvalidArgument,
                  "read fake snapshot at " + std::to_string(offset) + ": past its size", EINVAL);
  }
  size_t done = 0;
  while (done < buf.size()) {
    uint64_t pos = offset + done;
    uint64_t sector = pos / kSector * kSector;
    size_t n = std::min<uint64_t>(buf.size() - done, sector + kSector - pos);
    const std::vector<uint8_t>* src = nullptr;
    for (auto it = layers_.rbegin(); it != layers_.rend() && src == nullptr; ++it) {
      auto found = it->find(sector);
      if (found != it->end()) src = &found->second;
    }
    if (src != nullptr) {
      std::memcpy(buf.data() + done, src->data() + (pos - sector), n);
    } else {
      std::memset(buf.data() + done, 0, n);
    }
    done += n;
  }
  return Status::Ok();
}

std::vector<uint8_t> FakeSource::Content() const {
  std::vector<uint8_t> out(size_);
  Status s = ReadAt(0, out);
  (void)s;  // cannot fail: the range is the whole snapshot
  return out;
}

Result<std::vector<Extent>> FakeSource::LayerExtents(const std::string& layer) {
  {
    std::lock_guard lock(mu_);
    extents_asked_.push_back(layer);
  }
  for (size_t i = 0; i < chain_.size(); ++i) {
    if (chain_[i].name != layer) continue;
    std::vector<Extent> out;
    for (const auto& [offset, data] : layers_[i]) {
      if (!out.empty() && out.back().offset + out.back().length == offset) {
        out.back().length += kSector;
      } else {
        out.push_back({offset, kSector});
      }
    }
    return out;
  }
  return Status(ErrorKind::kNotFound, "extents of layer " + layer + ": no such layer", ENOENT);
}

Result<std::unique_ptr<SnapshotReader>> FakeSource::OpenReader() {
  return std::unique_ptr<SnapshotReader>(std::make_unique<Reader>(*this));
}

std::vector<std::string> FakeSource::TakeExtentsAsked() {
  std::lock_guard lock(mu_);
  return std::exchange(extents_asked_, {});
}

// ---------------------------------------------------------------- FakeSink

Status FakeSink::Write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  if (offset > data_.size() || data.size() > data_.size() - offset) {
    return Status(ErrorKind::kInvalidArgument,
                  "write fake volume at " + std::to_string(offset) + ": past its size", EINVAL);
  }
  std::memcpy(data_.data() + offset, data.data(), data.size());
  return Status::Ok();
}

Status FakeSink::Flush() {
  std::lock_guard lock(mu_);
  ++flushes_;
  return Status::Ok();
}

std::vector<uint8_t> FakeSink::data() const {
  std::lock_guard lock(mu_);
  return data_;
}

uint64_t FakeSink::flushes() const {
  std::lock_guard lock(mu_);
  return flushes_;
}

// ---------------------------------------------------------------- data

std::vector<uint8_t> RandomBytes(size_t size, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<uint8_t> out(size);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t v = gen();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (; i < size; ++i) out[i] = static_cast<uint8_t>(gen());
  return out;
}

std::vector<uint8_t> CompressibleBytes(size_t size, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<uint8_t> out(size);
  size_t i = 0;
  while (i < size) {
    uint64_t v = gen();
    size_t run = 16 + v % 64;
    uint8_t byte = static_cast<uint8_t>('a' + (v >> 8) % 4);
    for (size_t j = 0; j < run && i < size; ++j) out[i++] = byte;
  }
  return out;
}

}  // namespace shorthorn::backup::fakes
