// shorthornctl: the command-line client of shorthorn-fused's D-Bus API
// (doc/dbus-api.md, shorthornctl(1)). Only wiring: the commands are in
// commands.cc, the bus in dbus_client.cc.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "dbus/ctl/commands.h"
#include "dbus/ctl/dbus_client.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // Progress lines are drawn only when stdout is a terminal (a person runs
  // the command, not $(...) or a pipe), and on stderr, so that the result on
  // stdout stays clean even then.
  return shorthorn::ctl::RunCtl(args, shorthorn::ctl::DbusStorageClient::Connect, std::cout,
                                std::cerr,
                                isatty(STDOUT_FILENO) == 1 && isatty(STDERR_FILENO) == 1);
}
