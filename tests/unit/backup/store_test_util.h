// Helpers of the backup store tests: a temp directory, test data, and the
// S3 server the environment names (tests/integration/s3rver.sh sets it):
//   SHORTHORN_TEST_S3_ENDPOINT   host:port (unset: the S3 tests skip)
//   SHORTHORN_TEST_S3_BUCKET     an existing bucket (default shorthorn-test)
//   SHORTHORN_TEST_S3_ACCESS_KEY, SHORTHORN_TEST_S3_SECRET_KEY
//                                (default S3RVER / S3RVER, s3rver's own)
//   SHORTHORN_TEST_S3_PROTOCOL   http (default) or https
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backup/target.h"

namespace shorthorn::backup::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct S3TestServer {
  S3Settings settings;
  std::string bucket;
};

// Null when SHORTHORN_TEST_S3_ENDPOINT is not set.
std::optional<S3TestServer> S3TestServerFromEnv();
inline constexpr char kNoS3Reason[] =
    "SHORTHORN_TEST_S3_ENDPOINT is not set; the ctest entry integration.backup_store_s3 runs "
    "these tests against s3rver (tests/integration/s3rver.sh)";

// A name no other test run uses: "<stem>-<pid>-<n>-<random hex>".
std::string UniqueName(const std::string& stem);

// `size` bytes of a pattern that depends on `seed`.
std::vector<uint8_t> Pattern(size_t size, uint32_t seed);

// A loopback TCP port that nothing listens on (bound, then closed).
int ClosedLoopbackPort();

}  // namespace shorthorn::backup::testing
