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
  // Progress lines go to stderr, and only when a person watches it there:
  // stdout stays clean for the result (and for $(...) and --json).
  return shorthorn::ctl::RunCtl(args, shorthorn::ctl::DbusStorageClient::Connect, std::cout,
                                std::cerr, isatty(STDERR_FILENO) == 1);
}
