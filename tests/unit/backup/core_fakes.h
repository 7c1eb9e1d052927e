// In-memory fakes of the backup core's three interfaces, for
// backup_core_test: a BackupStore (a map under a mutex, with counters and
// fault injection), a SnapshotSource (a chain of sparse layers whose
// extents are exact), and a VolumeSink (a byte vector). All three may be
// used from several threads at once, as the runners do.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "backup/runner.h"
#include "backup/store.h"

namespace shorthorn::backup::fakes {

// Keys are checked as the real stores check them (object_key.h), so a core
// that makes a bad key fails here too. Missing keys are kNotFound naming
// the key; Delete of a missing key is OK.
class MemoryStore : public BackupStore {
 public:
  explicit MemoryStore(std::string url = "mem://test") : url_(std::move(url)) {}

  Status Put(const std::string& key, std::span<const uint8_t> data) override;
  Result<std::vector<uint8_t>> Get(const std::string& key) override;
  Result<bool> Exists(const std::string& key) override;
  Status Delete(const std::string& key) override;
  Result<std::vector<std::string>> List(const std::string& prefix) override;
  const std::string& url() const override { return url_; }

  // Faults. After `successes` more successful Puts of keys starting with
  // `prefix`, every such Put fails with kUnavailable (and stores nothing).
  void FailPutsAfter(uint64_t successes, const std::string& prefix = "");
  // A hidden key is missing for Get, Exists and List (it stays stored).
  void Hide(const std::string& key);
  // Called at the start of every Put, outside the store's mutex (it may
  // block, to make a Put slow).
  void SetPutHook(std::function<void(const std::string& key)> hook);
  void ClearFaults();  // and the hook

  // Direct access, neither counted nor faulted.
  std::optional<std::vector<uint8_t>> Peek(const std::string& key) const;
  void Poke(const std::string& key, std::vector<uint8_t> data);
  bool Erase(const std::string& key);
  std::vector<std::string> KeysUnder(const std::string& prefix) const;  // sorted

  // Counters (calls, whatever their outcome) since the last ResetCounts.
  uint64_t puts() const;
  uint64_t gets() const;
  uint64_t lists() const;
  uint64_t deletes() const;
  // Successful Puts of keys starting with `prefix`.
  uint64_t PutsUnder(const std::string& prefix) const;
  std::vector<std::string> listed_prefixes() const;
  void ResetCounts();

 private:
  bool Visible(const std::string& key) const;  // mu_ held

  const std::string url_;
  mutable std::mutex mu_;
  std::map<std::string, std::vector<uint8_t>> objects_;
  std::set<std::string> hidden_;
  std::optional<uint64_t> puts_left_;  // of keys under fail_prefix_
  std::string fail_prefix_;
  std::function<void(const std::string&)> put_hook_;
  uint64_t puts_ = 0, gets_ = 0, lists_ = 0, deletes_ = 0;
  std::vector<std::string> put_keys_;  // successful Puts
  std::vector<std::string> listed_;
};

inline constexpr uint64_t kSector = 4096;

// A snapshot: a chain of layers, oldest first, each holding 4 KiB sectors
// of its own. A sector reads from the newest layer that holds it, zeros
// when none does; LayerExtents is exactly the sectors a layer holds.
class FakeSource : public SnapshotSource {
 public:
  explicit FakeSource(uint64_t size) : size_(size) {}

  // Adds a layer on top; Write goes to it.
  void AddLayer(const std::string& name, const std::string& created);
  // `data.size()` a multiple of 4 KiB, at a 4 KiB-aligned offset (throws
  // std::invalid_argument otherwise).
  void Write(uint64_t offset, std::span<const uint8_t> data);
  void set_size(uint64_t size) { size_ = size; }
  // The whole snapshot as a reader sees it.
  std::vector<uint8_t> Content() const;

  uint64_t size() const override { return size_; }
  const std::vector<LayerInfo>& chain() const override { return chain_; }
  Result<std::vector<Extent>> LayerExtents(const std::string& layer) override;
  Result<std::unique_ptr<SnapshotReader>> OpenReader() override;

  uint64_t bytes_read() const { return bytes_read_.load(); }
  // The layers LayerExtents was asked about, in order; clears the list.
  std::vector<std::string> TakeExtentsAsked();

 private:
  class Reader;
  using Sectors = std::map<uint64_t, std::vector<uint8_t>>;
  Status ReadAt(uint64_t offset, std::span<uint8_t> buf) const;

  uint64_t size_;
  std::vector<LayerInfo> chain_;
  std::vector<Sectors> layers_;                  // parallel to chain_
  mutable std::atomic<uint64_t> bytes_read_{0};  // by readers, not Content()
  std::mutex mu_;
  std::vector<std::string> extents_asked_;  // guarded by mu_
};

// A new volume of `size` zero bytes.
class FakeSink : public VolumeSink {
 public:
  explicit FakeSink(uint64_t size) : data_(size) {}
  Status Write(uint64_t offset, std::span<const uint8_t> data) override;
  Status Flush() override;

  std::vector<uint8_t> data() const;
  uint64_t flushes() const;

 private:
  mutable std::mutex mu_;
  std::vector<uint8_t> data_;
  uint64_t flushes_ = 0;
};

// `size` bytes from a generator seeded with `seed`: random (incompressible),
// or compressible (short runs of a few byte values).
std::vector<uint8_t> RandomBytes(size_t size, uint64_t seed);
std::vector<uint8_t> CompressibleBytes(size_t size, uint64_t seed);

}  // namespace shorthorn::backup::fakes
