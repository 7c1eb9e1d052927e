// Handlers of the "shorthornctl backup ..." commands and of "volume restore"
// (rows in commands.cc): the Volume's Backup method and the Manager's
// ListBackups, DeleteBackup and RestoreVolume. Same shape as
// volume_commands.h: parsed Invocation in, StorageClient calls, Output out,
// the client's or the job's Status passed on. Backups are named by their URL
// (backup_url.h). Pure: the client is the only way out.
#pragma once

#include "common/status.h"
#include "dbus/ctl/command_line.h"
#include "dbus/ctl/output.h"
#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl {

// Starts a backup job; with --wait, prints the new backup's URL.
Status BackupCreate(const Invocation& invocation, StorageClient& client, Output& output);
Status BackupList(const Invocation& invocation, StorageClient& client, Output& output);
// One backup, found in ListBackups of its URL's target and volume.
Status BackupShow(const Invocation& invocation, StorageClient& client, Output& output);
Status BackupDelete(const Invocation& invocation, StorageClient& client, Output& output);
// Starts restoring a backup into a new volume (a job).
Status VolumeRestore(const Invocation& invocation, StorageClient& client, Output& output);

}  // namespace shorthorn::ctl
