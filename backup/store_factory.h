// OpenStore: from a target URL to an open BackupStore. The one place that
// knows which URL scheme is which store; S3 settings and credentials are
// read only for s3:// targets. Any thread.
#pragma once

#include <memory>
#include <string>

#include "backup/store.h"

namespace shorthorn::backup {

// Parses `url` (ParseTarget), then opens a FileStore, or loads the S3
// settings from `credentials_file` (LoadS3Settings) and opens an S3Store,
// which checks the bucket with one request.
Result<std::unique_ptr<BackupStore>> OpenStore(const std::string& url,
                                               const std::string& credentials_file);

}  // namespace shorthorn::backup
