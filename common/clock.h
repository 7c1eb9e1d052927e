// Wall-clock times as Shorthorn writes them into metadata and messages:
// RFC 3339 in UTC with whole seconds ("2026-12-06T02:32:47Z"). Pure apart
// from reading the clock; any thread.
#pragma once

#include <ctime>
#include <optional>
#include <string>

namespace shorthorn {

// `t` as "YYYY-MM-DDTHH:MM:SSZ".
std::string Rfc3339(std::time_t t);
// Now, the same way.
std::string NowRfc3339();
// "YYYY-MM-DDTHH:MM:SSZ" (as Rfc3339 writes it) as unix seconds; nullopt
// for anything else.
std::optional<std::time_t> ParseRfc3339(const std::string& text);
// `t` as "YYYYMMDDTHHMMSSZ" (for names: backups, recurring jobs' snapshots).
std::string CompactUtc(std::time_t t);

}  // namespace shorthorn
