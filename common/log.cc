#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace shorthorn {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
// Set once by main before threads start.
std::string& Component() {
  static std::string component = "shorthorn";
  return component;
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  if (text == "debug")
    *level = LogLevel::kDebug;
  else if (text == "info")
    *level = LogLevel::kInfo;
  else if (text == "warning")
    *level = LogLevel::kWarning;
  else if (text == "error")
    *level = LogLevel::kError;
  else
    return false;
  return true;
}

void SetLogComponent(std::string_view component) { Component() = component; }

void Log(LogLevel level, std::string_view text) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  static constexpr const char* kNames[] = {"debug", "info", "warning", "error"};
  std::string line;
  line.reserve(text.size() + 32);
  line += kNames[static_cast<int>(level)];
  line += ' ';
  line += Component();
  line += ": ";
  line += text;
  line += '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace shorthorn
