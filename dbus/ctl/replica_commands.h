// Handlers of the "shorthornctl replica ..." commands (rows in commands.cc):
// the Volume's Replicas, ReplicaCount and Robustness properties and its
// SetReplicaCount method. Same shape as volume_commands.h. Pure.
#pragma once

#include "common/status.h"
#include "dbus/ctl/command_line.h"
#include "dbus/ctl/output.h"
#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl {

Status ReplicaList(const Invocation& invocation, StorageClient& client, Output& output);
Status ReplicaSetCount(const Invocation& invocation, StorageClient& client, Output& output);

}  // namespace shorthorn::ctl
