// Handlers of the "shorthornctl recurring ..." commands (rows in commands.cc):
// the Volume's AddRecurringJob and RemoveRecurringJob methods and its
// RecurringJobs property. A recurring job is named by the volume and its own
// name; it is no Job object (job_reference.h), so its name is never parsed as
// one. Same shape as volume_commands.h: the daemon judges kind, schedule,
// retain and target; the CLI only parses what it must (retain is a count).
// Pure.
#pragma once

#include "common/status.h"
#include "dbus/ctl/command_line.h"
#include "dbus/ctl/output.h"
#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl {

Status RecurringAdd(const Invocation& invocation, StorageClient& client, Output& output);
Status RecurringList(const Invocation& invocation, StorageClient& client, Output& output);
Status RecurringRemove(const Invocation& invocation, StorageClient& client, Output& output);

}  // namespace shorthorn::ctl
