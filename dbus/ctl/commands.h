// The commands of shorthornctl and the program's whole run, minus the bus:
// RunCtl parses the arguments against the command table, connects through
// the given factory only when a command needs the daemon, runs the command's
// handler and turns its Status into output and an exit code (exit_codes.h).
// main() passes a factory that makes a DbusStorageClient; tests pass a fake.
// Pure apart from the streams it is given. Call from one thread.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/status.h"
#include "dbus/ctl/command_line.h"
#include "dbus/ctl/output.h"
#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl {

// Every command, in the order --help lists them. A new API adds its rows
// here and its handlers in a <group>_commands.cc next to volume_commands.cc
// (as backup_commands.cc did).
const std::vector<CommandSpec>& Commands();

using ClientFactory = std::function<Result<std::unique_ptr<StorageClient>>()>;

// Runs shorthornctl with `args` (argv without the program name); returns the
// exit code. Results go to `out`; errors to `err` as "shorthornctl: <message>"
// (with --json also as {"error": {...}} on `out`). When `err_is_terminal`,
// waiting for a job redraws its progress line on `err`; otherwise nothing is
// shown until the job has ended. `clock` is "now" for the ages printed (a
// standby's recovery point); null for the system's.
int RunCtl(const std::vector<std::string>& args, const ClientFactory& connect, std::ostream& out,
           std::ostream& err, bool err_is_terminal = false, const Clock& clock = nullptr);

}  // namespace shorthorn::ctl
