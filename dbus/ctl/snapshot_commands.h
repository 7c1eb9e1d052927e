// Handlers of the "shorthornctl snapshot ..." commands (rows in commands.cc):
// the Volume's Snapshot, DeleteSnapshot (a job, see FollowJob) and Revert
// methods and its Snapshots property. Same shape as volume_commands.h. Pure.
#pragma once

#include "common/status.h"
#include "dbus/ctl/command_line.h"
#include "dbus/ctl/output.h"
#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl {

Status SnapshotCreate(const Invocation& invocation, StorageClient& client, Output& output);
Status SnapshotList(const Invocation& invocation, StorageClient& client, Output& output);
Status SnapshotDelete(const Invocation& invocation, StorageClient& client, Output& output);
Status SnapshotRevert(const Invocation& invocation, StorageClient& client, Output& output);

}  // namespace shorthorn::ctl
