// Backup targets: the URL an operator gives (file:///path, s3://bucket/prefix)
// and the S3 settings and credentials that go with s3:// targets. Pure
// parsing; OpenStore (store_factory.h) turns a Target into a BackupStore.
//
// Credentials never travel in a URL, a D-Bus argument or a log line: they
// come from a file (default /etc/shorthorn/backup-credentials, mode 0600 or
// stricter) or, for tests, from the environment (doc/backup-format.md).
#pragma once

#include <string>

#include "common/status.h"

namespace shorthorn::backup {

struct Target {
  enum class Kind { kFile, kS3 };
  Kind kind = Kind::kFile;
  std::string url;     // as given, normalized (no trailing "/")
  std::string path;    // file: the absolute directory
  std::string bucket;  // s3: the bucket
  std::string prefix;  // s3: the key prefix inside the bucket, "" or "a/b" (no slashes at the ends)
};

// InvalidArgument naming the URL and the reason: an unknown scheme, a
// relative or empty path, "..", an empty bucket, a bucket name S3 refuses.
Result<Target> ParseTarget(const std::string& url);

struct S3Settings {
  std::string endpoint = "s3.amazonaws.com";  // host or host:port
  bool https = true;
  bool path_style = true;  // bucket in the path (s3rver, MinIO), else virtual-host
  std::string region;      // informational with signature V2
  std::string access_key;
  std::string secret_key;
};

// Reads `path` ("key = value" lines, '#' comments; keys endpoint, protocol
// (http|https), uri-style (path|virtual), region, access-key, secret-key),
// then lets the environment override each key (SHORTHORN_S3_ENDPOINT,
// SHORTHORN_S3_PROTOCOL, SHORTHORN_S3_URI_STYLE, SHORTHORN_S3_REGION,
// SHORTHORN_S3_ACCESS_KEY, SHORTHORN_S3_SECRET_KEY). A missing file is not
// an error when the environment gives both keys. The file must not be
// readable by group or others (InvalidArgument saying so). Errors name the
// file and the line, never a secret.
Result<S3Settings> LoadS3Settings(const std::string& path);

}  // namespace shorthorn::backup
