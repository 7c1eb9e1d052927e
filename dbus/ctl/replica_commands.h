// Handlers of the "shorthornctl replica ..." commands (the Volume's
// Replicas, ReplicaCount and Robustness properties and its SetReplicaCount
// method) and of the "shorthornctl replicad ..." commands (the Manager's
// ListReplicads, DrainReplicad and UndrainReplicad: where replicas are
// placed). Rows in commands.cc. Same shape as volume_commands.h. Pure.
#pragma once

#include "common/status.h"
#include "dbus/ctl/command_line.h"
#include "dbus/ctl/output.h"
#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl {

// The replicas with their replicad's host and free space from
// ListReplicads; when that fails (not authorized, an older daemon) those
// columns are "-" and the command still succeeds.
Status ReplicaList(const Invocation& invocation, StorageClient& client, Output& output);
Status ReplicaSetCount(const Invocation& invocation, StorageClient& client, Output& output);

Status ReplicadList(const Invocation& invocation, StorageClient& client, Output& output);
// Starts the drain job; --wait waits for it (FollowJob).
Status ReplicadDrain(const Invocation& invocation, StorageClient& client, Output& output);
Status ReplicadUndrain(const Invocation& invocation, StorageClient& client, Output& output);

}  // namespace shorthorn::ctl
