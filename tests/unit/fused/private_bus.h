// PrivateBus: a dbus-daemon of our own for a test, listening on a unix socket
// in a fresh directory, with a policy that lets every user connect, own any
// name (unless told otherwise) and call anything. The policy also includes the installed
// org.shorthorn.Storage1.conf, so a syntax error in it fails the test. Start()
// points DBUS_SYSTEM_BUS_ADDRESS at it, so sd-bus, sdbus-c++ and
// `busctl --system` all use it. The destructor kills the daemon and removes
// the directory, whatever the test did. Use from the test's main thread.
#pragma once

#include <sys/types.h>

#include <string>

namespace shorthorn::fused::testing {

class PrivateBus {
 public:
  PrivateBus() = default;
  PrivateBus(const PrivateBus&) = delete;
  PrivateBus& operator=(const PrivateBus&) = delete;
  ~PrivateBus();

  // Starts the daemon and waits until it accepts connections; on failure
  // returns a reason and leaves nothing behind. `policy_include` is a bus
  // policy file to include ("" for none). Unless `anyone_may_own`, only what
  // the included policy allows may own names.
  bool Start(const std::string& policy_include, bool anyone_may_own, std::string* error);
  const std::string& address() const { return address_; }

 private:
  pid_t pid_ = -1;
  std::string dir_;
  std::string address_;
  std::string saved_address_;
  bool had_address_ = false;
};

struct CommandResult {
  int exit_code = -1;  // -1 when it did not exit normally
  std::string output;  // stdout and stderr together
};

// Runs `command` with /bin/sh, inheriting the environment.
CommandResult RunCommand(const std::string& command);

}  // namespace shorthorn::fused::testing
