#include "dbus/ctl/backup_url.h"

namespace shorthorn::ctl {
namespace {

// Target, volume= and backup= of `text`, unchecked but for the '?';
// `bad` makes the error.
template <typename Bad>
Result<BackupUrl> Split(std::string_view text, const Bad& bad) {
  size_t question = text.find('?');
  if (question == std::string_view::npos) return bad("no '?'");
  BackupUrl url;
  url.target = std::string(text.substr(0, question));
  if (url.target.empty()) return bad("no target before '?'");
  std::string_view rest = text.substr(question + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;  // the daemon judges it
    std::string_view key = pair.substr(0, eq);
    if (key == "volume") url.volume = std::string(pair.substr(eq + 1));
    if (key == "backup") url.backup = std::string(pair.substr(eq + 1));
  }
  if (url.volume.empty()) return bad("no volume=");
  return url;
}

}  // namespace

Result<BackupUrl> ParseBackupUrl(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Status(ErrorKind::kInvalidArgument,
                  "backup URL '" + std::string(text) + "': " + why +
                      " (write <target>?volume=<volume>&backup=<name>, as shorthornctl backup "
                      "list prints it)");
  };
  Result<BackupUrl> url = Split(text, bad);
  if (url.ok() && url->backup.empty()) return bad("no backup=");
  return url;
}

Result<BackupUrl> ParseStandbySource(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Status(ErrorKind::kInvalidArgument, "source URL '" + std::string(text) + "': " + why +
                                                   " (write <target>?volume=<volume>, e.g. "
                                                   "'s3://bucket/prefix?volume=db1')");
  };
  Result<BackupUrl> url = Split(text, bad);
  if (url.ok() && !url->backup.empty()) {
    return bad("backup= given; a standby follows the newest backup of the volume");
  }
  return url;
}

}  // namespace shorthorn::ctl
