#include "backup/store_factory.h"

#include "backup/file_store.h"
#include "backup/s3_store.h"
#include "backup/target.h"

namespace shorthorn::backup {

Result<std::unique_ptr<BackupStore>> OpenStore(const std::string& url,
                                               const std::string& credentials_file) {
  Result<Target> target = ParseTarget(url);
  if (!target.ok()) return target.status();
  switch (target->kind) {
    case Target::Kind::kFile:
      return OpenFileStore(*target);
    case Target::Kind::kS3: {
      Result<S3Settings> settings = LoadS3Settings(credentials_file);
      if (!settings.ok()) return settings.status().WithContext("open " + target->url);
      return OpenS3Store(*target, *settings);
    }
  }
  return Status(ErrorKind::kInvalidArgument, "open " + target->url + ": unknown target kind");
}

}  // namespace shorthorn::backup
