// Logging: one line per event on stderr ("<level> <component>: <text>"), which
// journald captures under systemd. Callable from any thread; a line is written
// with one write(2) so lines from different threads do not interleave.
#pragma once

#include <string_view>

namespace shorthorn {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogLevel(LogLevel level);
// Parses "debug", "info", "warning", "error"; false when unknown.
bool ParseLogLevel(std::string_view text, LogLevel* level);
void SetLogComponent(std::string_view component);
void Log(LogLevel level, std::string_view text);

inline void LogDebug(std::string_view text) { Log(LogLevel::kDebug, text); }
inline void LogInfo(std::string_view text) { Log(LogLevel::kInfo, text); }
inline void LogWarning(std::string_view text) { Log(LogLevel::kWarning, text); }
inline void LogError(std::string_view text) { Log(LogLevel::kError, text); }

}  // namespace shorthorn
