// Helpers shared by the replicad unit tests: a temporary data directory, a
// way to wait for an asynchronous replica op, a fake IoEngine whose
// fdatasync fails, and the cluster key and server options of the tests. Test-only; single-threaded
// use apart from the engine.
#pragma once

#include <stdlib.h>

#include <cerrno>

#include <filesystem>
#include <future>
#include <string>

#include "common/auth.h"
#include "replicad/core/replica.h"
#include "replicad/io/io_engine.h"
#include "replicad/io/sync_io_engine.h"
#include "replicad/net/server.h"

namespace shorthorn::replicad::testing {

class TempDir {
 public:
  // `in_memory`: under /dev/shm when it exists (fsync is free there; for
  // tests that fsync a lot and do not depend on the disk's filesystem).
  explicit TempDir(bool in_memory = false) {
    std::filesystem::path base = std::filesystem::temp_directory_path();
    std::error_code ec;
    if (in_memory && std::filesystem::is_directory("/dev/shm", ec)) base = "/dev/shm";
    std::string tmpl = (base / "replicad-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs `op(done)` and waits for `done`.
template <typename Op>
Status Wait(Op op) {
  std::promise<Status> p;
  auto f = p.get_future();
  op([&p](Status s) { p.set_value(std::move(s)); });
  return f.get();
}

// Runs requests inline like SyncIoEngine(0), but every fdatasync fails with
// `sync_errno` once fail_sync is set, and counts the attempts.
class FailingSyncEngine : public IoEngine {
 public:
  std::string_view name() const override { return "failing-sync"; }
  void Submit(const IoRequest& request, IoCallback done) override {
    if (request.op == IoOp::kFdatasync) {
      ++sync_calls;
      if (fail_sync) return done(-sync_errno);
    }
    done(RunIoBlocking(request));
  }
  bool fail_sync = false;
  int sync_errno = EIO;
  int sync_calls = 0;
};

// The key every test server and client shares.
inline std::shared_ptr<const auth::ClusterKey> TestKey() {
  static const auto key = std::make_shared<const auth::ClusterKey>(
      *auth::ClusterKey::FromHex(std::string(64, '5'), "test key"));
  return key;
}

// Server options with TestKey and short timeouts.
inline ServerOptions TestServerOptions() {
  ServerOptions o;
  o.connection.key = TestKey();
  o.connection.auth_timeout = std::chrono::seconds(5);
  o.connection.send_timeout = std::chrono::seconds(10);
  return o;
}

// Replica options whose rebuild puller authenticates with TestKey.
inline ReplicaOptions WithTestKey(ReplicaOptions o) {
  if (o.rebuild.cluster_key == nullptr) o.rebuild.cluster_key = TestKey();
  return o;
}

}  // namespace shorthorn::replicad::testing
