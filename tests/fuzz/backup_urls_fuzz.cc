// Design notes: fuzzes what names a backup target (backup/target.h,
// backup/format.h; doc/backup-format.md): byte 0 picks the parser and the
// rest is its input.
//   0: ParseTarget (file:///dir, s3://bucket/prefix), as fused.conf's
//      backup-target and the D-Bus "target" option give it;
//   1: ParseBackupUrl (<target>?volume=<v>&backup=<b>), as RestoreVolume
//      and DeleteBackup get it;
//   2: LoadS3Settings on a credentials file holding the text (mode 0600);
//   3: ParseBackupVolumeUrl (<target>?volume=<v>), a DR standby's source.
// Properties: a parsed target's normalized URL parses to itself; a parsed
// backup URL rebuilt with BackupUrl parses to the same parts; settings that
// load have both keys and a scheme-less endpoint.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "backup/format.h"
#include "backup/target.h"
#include "tests/fuzz/fuzz_util.h"

namespace shorthorn::backup {
namespace {

void TargetUrl(const std::string& url) {
  auto t = ParseTarget(url);
  if (!t.ok()) return;
  auto again = ParseTarget(t->url);
  fuzz::Check(again.ok(), "a normalized target URL does not parse: " + t->url);
  fuzz::Check(again->url == t->url && again->kind == t->kind && again->path == t->path &&
                  again->bucket == t->bucket && again->prefix == t->prefix,
              "a normalized target URL parses to another target: " + t->url);
}

void BackupUrlText(const std::string& url) {
  auto a = ParseBackupUrl(url);
  if (!a.ok()) return;
  std::string rebuilt = BackupUrl(a->target_url, a->volume, a->backup);
  auto again = ParseBackupUrl(rebuilt);
  fuzz::Check(again.ok(), "a rebuilt backup URL does not parse: " + rebuilt);
  fuzz::Check(again->target_url == a->target_url && again->volume == a->volume &&
                  again->backup == a->backup,
              "a rebuilt backup URL parses to other parts: " + rebuilt);
}

void VolumeUrlText(const std::string& url) {
  auto a = ParseBackupVolumeUrl(url);
  if (!a.ok()) return;
  fuzz::Check(a->backup.empty() && !a->volume.empty(), "a volume URL with a backup or no volume");
  const std::string rebuilt = a->target_url + "?volume=" + a->volume;
  auto again = ParseBackupVolumeUrl(rebuilt);
  fuzz::Check(again.ok() && again->target_url == a->target_url && again->volume == a->volume,
              "a rebuilt backup volume URL parses to other parts: " + rebuilt);
}

void Credentials(std::string_view text) {
  const std::string path = fuzz::ScratchDir() + "/backup-credentials";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    fuzz::Fail("write " + path);
  }
  ::close(fd);
  auto s = LoadS3Settings(path);
  if (!s.ok()) return;
  fuzz::Check(!s->access_key.empty() && !s->secret_key.empty(), "settings without keys loaded");
  fuzz::Check(!s->endpoint.empty() && s->endpoint.find("://") == std::string::npos,
              "an endpoint with a scheme loaded");
}

}  // namespace
}  // namespace shorthorn::backup

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The environment overrides the file; the fuzzer tests the file alone.
  for (const char* name :
       {"SHORTHORN_S3_ENDPOINT", "SHORTHORN_S3_PROTOCOL", "SHORTHORN_S3_URI_STYLE",
        "SHORTHORN_S3_REGION", "SHORTHORN_S3_ACCESS_KEY", "SHORTHORN_S3_SECRET_KEY"}) {
    ::unsetenv(name);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text = shorthorn::fuzz::AsText(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      shorthorn::backup::TargetUrl(std::string(text));
      break;
    case 1:
      shorthorn::backup::BackupUrlText(std::string(text));
      break;
    case 2:
      shorthorn::backup::Credentials(text);
      break;
    default:
      shorthorn::backup::VolumeUrlText(std::string(text));
      break;
  }
  return 0;
}
