// Handlers of the "shorthornctl volume ..." commands (rows in commands.cc).
// Each reads its parsed Invocation, calls the StorageClient, and writes a
// table or text for people and JSON for --json through Output; a failure is
// the client's Status, passed on unchanged so the daemon's message and kind
// reach the user. Pure: the client is the only way out.
#pragma once

#include "common/status.h"
#include "dbus/ctl/command_line.h"
#include "dbus/ctl/output.h"
#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl {

// Creates a volume; with --from-snapshot a clone, whose copy job it prints
// or with --wait follows (FollowJob). --replica-tags is passed on as is.
Status VolumeCreate(const Invocation& invocation, StorageClient& client, Output& output);
Status VolumeImport(const Invocation& invocation, StorageClient& client, Output& output);
Status VolumeList(const Invocation& invocation, StorageClient& client, Output& output);
Status VolumeShow(const Invocation& invocation, StorageClient& client, Output& output);
// Attaches; --maintenance prints a sentence instead of the (empty) device.
Status VolumeAttach(const Invocation& invocation, StorageClient& client, Output& output);
Status VolumeDetach(const Invocation& invocation, StorageClient& client, Output& output);
Status VolumeDelete(const Invocation& invocation, StorageClient& client, Output& output);
Status VolumeExpand(const Invocation& invocation, StorageClient& client, Output& output);
// Starts a verify job; --wait waits for it (FollowJob).
Status VolumeVerify(const Invocation& invocation, StorageClient& client, Output& output);
Status VolumeScrub(const Invocation& invocation, StorageClient& client, Output& output);
// Volume.Rebuild: replaces the failed replicas now; the rebuilds are jobs
// of their own, which it does not wait for.
Status VolumeRebuild(const Invocation& invocation, StorageClient& client, Output& output);
// Starts the restore job of a new DR standby; --wait waits for it (FollowJob).
Status VolumeCreateStandby(const Invocation& invocation, StorageClient& client, Output& output);
// Activates a DR standby and prints the backup it holds and its age (the
// recovery point) at output.Now().
Status VolumeActivate(const Invocation& invocation, StorageClient& client, Output& output);

}  // namespace shorthorn::ctl
