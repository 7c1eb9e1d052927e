#include "tests/unit/fused/private_bus.h"

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

extern char** environ;

namespace shorthorn::fused::testing {
namespace {

constexpr char kEnv[] = "DBUS_SYSTEM_BUS_ADDRESS";

std::string Config(const std::string& socket, const std::string& include, bool anyone_may_own) {
  std::string text =
      "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
      " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
      "<busconfig>\n"
      "  <listen>unix:path=" +
      socket +
      "</listen>\n"
      "  <auth>EXTERNAL</auth>\n"
      "  <policy context=\"default\">\n"
      "    <allow user=\"*\"/>\n"
      "    <allow send_destination=\"*\"/>\n"
      "    <allow receive_sender=\"*\"/>\n";
  if (anyone_may_own) text += "    <allow own=\"*\"/>\n";
  text += "  </policy>\n";
  if (!include.empty()) text += "  <include>" + include + "</include>\n";
  text += "</busconfig>\n";
  return text;
}

}  // namespace

bool PrivateBus::Start(const std::string& policy_include, bool anyone_may_own, std::string* error) {
  char tmpl[] = "/tmp/shorthorn-dbus-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    *error = std::string("mkdtemp: ") + strerror(errno);
    return false;
  }
  dir_ = tmpl;
  chmod(dir_.c_str(), 0755);  // so that a test caller running as nobody can connect
  std::string config = dir_ + "/bus.conf";
  std::ofstream(config) << Config(dir_ + "/socket", policy_include, anyone_may_own);

  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) {
    *error = std::string("pipe: ") + strerror(errno);
    return false;
  }
  std::string config_arg = "--config-file=" + config;
  std::string print_arg = "--print-address=" + std::to_string(pipe_fds[1]);
  const char* argv[] = {"dbus-daemon",     config_arg.c_str(), "--nofork",
                        print_arg.c_str(), "--nopidfile",      nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  int rc = posix_spawnp(&pid_, "dbus-daemon", &actions, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    pid_ = -1;
    *error = std::string("spawn dbus-daemon: ") + strerror(rc);
    return false;
  }
  // The daemon prints its address once it listens; EOF means it died.
  std::string line;
  char c;
  while (read(pipe_fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  close(pipe_fds[0]);
  if (line.empty()) {
    *error = "dbus-daemon exited without printing its address (bad config?)";
    return false;
  }
  address_ = line;
  const char* old = getenv(kEnv);
  had_address_ = old != nullptr;
  if (old) saved_address_ = old;
  setenv(kEnv, address_.c_str(), 1);
  return true;
}

PrivateBus::~PrivateBus() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (!address_.empty()) {
    if (had_address_) {
      setenv(kEnv, saved_address_.c_str(), 1);
    } else {
      unsetenv(kEnv);
    }
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), n);
  int status = pclose(pipe);
  if (status >= 0 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

}  // namespace shorthorn::fused::testing
