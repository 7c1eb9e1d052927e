// Design notes: fuzzes the schedule parser of recurring jobs
// (fused/core/schedule.h): the input is the schedule text, as a D-Bus
// caller or a registry file gives it. A refused text must be an
// InvalidArgument that starts "schedule '". A schedule that parses has a
// text() of printable ASCII and tabs (it goes into D-Bus strings) and
// parses again from it to the same schedule. Next, from a few fixed times
// in three zones (UTC, one with an hour of daylight-saving time, one with
// half an hour), must keep its promises: the result is later than
// `after`; a cron schedule fires at second 0 of a local minute, again from
// just before that time and from any time between two firings (nothing is
// skipped), and before the year 9999 (Parse refuses schedules that never
// fire); @every gives after + interval, 1 s to 366 d.
#include <stdlib.h>
#include <time.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>

#include "fused/core/schedule.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using shorthorn::fused::Schedule;
namespace fuzz = shorthorn::fuzz;

constexpr std::array<const char*, 3> kZones = {
    "UTC0",
    "CET-1CEST,M3.5.0,M10.5.0/3",            // 2024-03-31 01:00Z, 2024-10-27 01:00Z
    "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",  // Lord Howe: half-hour shifts
};

// Fixed starting points: 1970, a leap day, around both CET changes of
// 2024 and the Lord Howe ones, before 1970, and late in year 9999.
constexpr std::array<std::time_t, 8> kStarts = {
    0, 951782400, 1711843200, 1729987200, 1712412000, 1728142200, -1000000000, 253402000000,
};
constexpr std::time_t kYear9000 = 221845392000;  // 9000-01-01T00:00:00Z

void CheckCron(const Schedule& s, std::time_t start) {
  std::time_t after = start;
  for (int i = 0; i < 4; ++i) {
    std::optional<std::time_t> next = s.Next(after);
    if (!next) {
      fuzz::Check(after > kYear9000, "a schedule that parsed does not fire before the year 9999");
      return;
    }
    fuzz::Check(*next > after, "Next is not later than its argument");
    struct tm local {};
    fuzz::Check(localtime_r(&*next, &local) != nullptr && local.tm_sec == 0,
                "a cron schedule fires at a second other than 0");
    fuzz::Check(s.Next(*next - 1) == next, "Next from just before a firing misses it");
    fuzz::Check(s.Next(after + (*next - after) / 2) == next,
                "Next from between two firings is not the later one");
    after = *next;
  }
}

void CheckEvery(const Schedule& s, std::time_t start) {
  const auto interval = static_cast<std::time_t>(s.interval());
  fuzz::Check(interval >= 1 && interval <= 366 * 86400, "@every interval out of range");
  std::optional<std::time_t> next = s.Next(start);
  fuzz::Check(next ? *next == start + interval : start + interval > 253402300799,
              "@every Next is not after + interval");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shorthorn;
  const std::string text(fuzz::AsText(data, size));
  Result<Schedule> s = Schedule::Parse(text);
  if (!s.ok()) {
    fuzz::Check(s.status().kind() == ErrorKind::kInvalidArgument,
                "a refusal is not InvalidArgument");
    fuzz::Check(s.status().message().rfind("schedule '", 0) == 0,
                "a refusal does not start with \"schedule '\": " + s.status().message());
    return 0;
  }
  for (char c : s->text()) {
    fuzz::Check(c == '\t' || (c >= 0x20 && c < 0x7f), "a schedule's text is not printable ASCII");
  }
  Result<Schedule> again = Schedule::Parse(s->text());
  fuzz::Check(again.ok() && again->text() == s->text() && again->interval() == s->interval(),
              "a schedule does not parse again from its text()");
  for (const char* zone : kZones) {
    setenv("TZ", zone, 1);
    tzset();
    for (std::time_t start : kStarts) {
      if (s->interval() != 0) {
        CheckEvery(*s, start);
      } else {
        CheckCron(*s, start);
        fuzz::Check(again->Next(start) == s->Next(start), "a reparsed schedule fires elsewhere");
      }
    }
  }
  return 0;
}
