// S3Store: a BackupStore on an S3-compatible server through libs3 (Debian's
// libs3 2.0). Objects are at "<prefix>/<key>" in the bucket. libs3 signs
// with AWS signature V2 only and has no multipart upload (objects here are
// at most a few MiB): MinIO, Ceph RGW and s3rver accept it; AWS buckets that
// require signature V4 refuse it, and the error says so.
//
// Threads: every call may come from any thread; libs3 is initialized once
// per process (S3_initialize) on first use.
#pragma once

#include <chrono>
#include <memory>

#include "backup/store.h"
#include "backup/target.h"

namespace shorthorn::backup {

// Tuning that only tests change.
struct S3StoreOptions {
  // Tries of a request that failed transiently (cannot connect, connection
  // lost, 5xx, RequestTimeout, SlowDown); every operation is idempotent.
  int attempts = 3;
  // Wait before the second try; doubled before each further one.
  std::chrono::milliseconds backoff{200};
  // Longest wait for one request (libs3 2.0 has no timeout of its own but
  // curl's 300 s connect timeout and its < 1 KiB/s for 15 s abort).
  std::chrono::milliseconds request_timeout{60000};
  // Keys per LIST request (S3 caps it at 1000); small in tests to exercise
  // paging.
  int list_page_size = 1000;
};

// Checks that the bucket is reachable with these credentials (one request);
// the errors name the URL and the reason (unreachable endpoint, refused
// credentials or signature, no such bucket).
Result<std::unique_ptr<BackupStore>> OpenS3Store(const Target& target, const S3Settings& settings,
                                                 const S3StoreOptions& options = {});

}  // namespace shorthorn::backup
