// Helpers for the layer-chain tests: synchronous wrappers over a Replica's
// data ops, a fresh replica directory, and content hashes. Test-only.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/log.h"
#include "replicad/core/replica.h"
#include "replicad/core/replica_meta.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad::testing {

class ChainFixture {
 public:
  ChainFixture(IoEngine* engine, uint64_t size, ReplicaOptions options = {}, bool in_memory = true)
      : tmp_(in_memory), engine_(engine), options_(std::move(options)) {
    SetLogLevel(LogLevel::kWarning);
    dir_ = tmp_.path() + "/r1";
    Status s = Replica::Create(dir_, NewReplicaMeta("vol", "r1", size));
    EXPECT_TRUE(s.ok()) << s.ToString();
    Reopen();
  }
  ~ChainFixture() {
    if (replica_) (void)replica_->Close();
  }

  void Reopen(ReplicaOptions options) {
    options_ = std::move(options);
    Reopen();
  }
  void Reopen() {
    if (replica_) {
      Status s = replica_->Close();
      EXPECT_TRUE(s.ok()) << s.ToString();
      replica_.reset();
    }
    auto r = Replica::Open(dir_, engine_, options_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    replica_ = *r;
  }

  Status Write(uint64_t off, const std::vector<uint8_t>& data) {
    return Wait([&](auto done) { replica_->Write(0, off, data, done); });
  }
  Status Unmap(uint64_t off, uint64_t len) {
    return Wait([&](auto done) { replica_->Unmap(0, off, len, done); });
  }
  std::vector<uint8_t> Read(uint64_t off, uint64_t len) {
    std::vector<uint8_t> out(len);
    Status s = Wait([&](auto done) { replica_->Read(0, off, out, done); });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  std::vector<uint8_t> ReadAll() { return Read(0, replica_->size()); }
  std::vector<uint8_t> ReadSnapshot(const std::string& name) {
    std::vector<uint8_t> out(replica_->size());
    Status s = replica_->ReadSnapshot(name, 0, out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  Status Snapshot(const std::string& name) {
    return replica_->Snapshot(name, "2024-01-01T00:00:00Z", true);
  }

  Replica& r() { return *replica_; }
  const std::string& dir() const { return dir_; }

 private:
  TempDir tmp_;
  IoEngine* engine_;
  ReplicaOptions options_;
  std::string dir_;
  std::shared_ptr<Replica> replica_;
};

inline uint64_t Hash(const std::vector<uint8_t>& v) { return XXH3_64bits(v.data(), v.size()); }

inline std::vector<uint8_t> RandomBytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng() % 255 + 1);  // never 0: holes stand out
  return v;
}

}  // namespace shorthorn::replicad::testing
