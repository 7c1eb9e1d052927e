// Wall-clock times as Shorthorn writes them into metadata and messages:
// RFC 3339 in UTC with whole seconds ("2026-12-06T02:32:47Z"). Pure apart
// from reading the clock; any thread.
#pragma once

#include <ctime>
#include <string>

namespace shorthorn {

// `t` as "YYYY-MM-DDTHH:MM:SSZ".
std::string Rfc3339(std::time_t t);
// Now, the same way.
std::string NowRfc3339();
// `t` as "YYYYMMDDTHHMMSSZ" (for names: backups, recurring jobs' snapshots).
std::string CompactUtc(std::time_t t);

}  // namespace shorthorn
