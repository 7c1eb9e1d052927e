// How a user names a backup: its URL, "<target>?volume=<volume>&backup=<name>",
// as "backup create --wait" and "backup list" print it, split into the target
// (what ListBackups takes), the volume and the backup's name; also the
// source of a DR standby, "<target>?volume=<volume>". Pure.
//
// The check is only of the shape: the daemon judges the target URL, the
// names and any parameter it does not know, so a newer daemon's URLs still
// pass through.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace shorthorn::ctl {

struct BackupUrl {
  std::string target;  // "file:///srv/backups", "s3://bucket/prefix"
  std::string volume;
  std::string backup;  // the backup's name, "backup-..."
};

// Splits `text` at its first '?'; the parameters are key=value joined by
// '&' (the last of a key counts). InvalidArgument saying what is expected
// when there is no target, no volume or no backup.
Result<BackupUrl> ParseBackupUrl(std::string_view text);

// The source of a DR standby, "<target>?volume=<volume>": the same shape
// without backup= (a standby follows whichever backup is newest), so
// `backup` is "". InvalidArgument when there is no target or volume, or a
// backup= is given.
Result<BackupUrl> ParseStandbySource(std::string_view text);

}  // namespace shorthorn::ctl
