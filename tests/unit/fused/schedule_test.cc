#include "fused/core/schedule.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <time.h>

#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace shorthorn::fused {
namespace {

// POSIX TZ strings: no tzdata files needed.
constexpr const char* kUtc = "UTC0";
// Central Europe: 02:00 CET -> 03:00 CEST on the last Sunday of March,
// 03:00 CEST -> 02:00 CET on the last Sunday of October.
constexpr const char* kCet = "CET-1CEST,M3.5.0,M10.5.0/3";
// Lord Howe Island: a half-hour shift; 02:00 -> 02:30 on the first Sunday of
// October, 02:00 -> 01:30 on the first Sunday of April.
constexpr const char* kLordHowe = "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0";

// Sets TZ for the life of the object, then puts back what was there.
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    if (const char* old = getenv("TZ"); old != nullptr) saved_ = old;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~ScopedTz() {
    if (saved_) {
      setenv("TZ", saved_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

 private:
  std::optional<std::string> saved_;
};

// "YYYY-MM-DD hh:mm:ss" (UTC) to unix time, and back; "never" for nullopt.
std::time_t Utc(const std::string& text) {
  struct tm tm {};
  int n = std::sscanf(text.c_str(), "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &tm.tm_sec);
  EXPECT_GE(n, 3) << text;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return timegm(&tm);
}

std::string Utc(std::optional<std::time_t> t) {
  if (!t) return "never";
  struct tm tm {};
  gmtime_r(&*t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

Schedule MustParse(const std::string& text) {
  Result<Schedule> s = Schedule::Parse(text);
  EXPECT_TRUE(s.ok()) << text << ": " << s.status().message();
  return s.ok() ? *s : *Schedule::Parse("@daily");
}

struct NextCase {
  const char* schedule;
  const char* after;  // UTC
  const char* next;   // UTC, or "never"
};

void CheckNext(const char* tz, const std::vector<NextCase>& cases) {
  ScopedTz zone(tz);
  for (const NextCase& c : cases) {
    Schedule s = MustParse(c.schedule);
    EXPECT_EQ(Utc(s.Next(Utc(c.after))), c.next)
        << "'" << c.schedule << "' after " << c.after << " in " << tz;
  }
}

// After Monday 2024-01-15 10:20:30.
TEST(ScheduleNextTest, EveryFieldForm) {
  const char* a = "2024-01-15 10:20:30";
  CheckNext(kUtc, {
                      {"* * * * *", a, "2024-01-15 10:21:00"},
                      {"5 * * * *", a, "2024-01-15 11:05:00"},
                      {"20 * * * *", a, "2024-01-15 11:20:00"},
                      {"21 10 * * *", a, "2024-01-15 10:21:00"},
                      {"05 01 * * *", a, "2024-01-16 01:05:00"},
                      {"10-30 * * * *", a, "2024-01-15 10:21:00"},
                      {"*/15 * * * *", a, "2024-01-15 10:30:00"},
                      {"10-30/7 * * * *", a, "2024-01-15 10:24:00"},
                      {"45/5 * * * *", a, "2024-01-15 10:45:00"},
                      {"1,2,40-42 * * * *", a, "2024-01-15 10:40:00"},
                      {"*/60 * * * *", a, "2024-01-15 11:00:00"},
                      {"0 9-17/4 * * *", a, "2024-01-15 13:00:00"},
                      {"0,30 8,12 * * *", a, "2024-01-15 12:00:00"},
                      {"0 */24 * * *", a, "2024-01-16 00:00:00"},
                      {"0 0 * * *", a, "2024-01-16 00:00:00"},
                      {"0 0 20 * *", a, "2024-01-20 00:00:00"},
                      {"0 0 1,15 * *", a, "2024-02-01 00:00:00"},
                      {"0 0 */31 * *", a, "2024-02-01 00:00:00"},
                      {"0 0 1 */3 *", a, "2024-04-01 00:00:00"},
                      {"0 0 1 3-5 *", a, "2024-03-01 00:00:00"},
                      {"0 0 1 */12 *", a, "2025-01-01 00:00:00"},
                      {"0 0 * * 3", a, "2024-01-17 00:00:00"},
                      {"0 0 * * 1-5", a, "2024-01-16 00:00:00"},
                      {"0 0 * * 1-5/2", a, "2024-01-17 00:00:00"},
                      {"0 0 * * */2", a, "2024-01-16 00:00:00"},  // 0,2,4,6
                      {"0 0 * * 1/2", a, "2024-01-17 00:00:00"},  // 1,3,5
                      {"0 0 * * 6/2", a, "2024-01-20 00:00:00"},  // 6 only
                      {"59 23 31 12 *", a, "2024-12-31 23:59:00"},
                      {"0 0 1 1 *", a, "2025-01-01 00:00:00"},
                      {" \t0  0\t* *  *\n", a, "2024-01-16 00:00:00"},
                      // Strictly after: a firing time gives the next one.
                      {"* * * * *", "2024-01-15 10:21:00", "2024-01-15 10:22:00"},
                      {"21 10 * * *", "2024-01-15 10:21:00", "2024-01-16 10:21:00"},
                      // Before 1970 too.
                      {"0 0 1 1 *", "1960-06-01 00:00:00", "1961-01-01 00:00:00"},
                  });
}

TEST(ScheduleNextTest, NamesAndSunday) {
  const char* a = "2024-01-15 10:20:30";  // Monday
  CheckNext(kUtc, {
                      {"0 0 1 JAN,jul *", a, "2024-07-01 00:00:00"},
                      {"0 0 1 Mar-May/2 *", a, "2024-03-01 00:00:00"},
                      {"0 0 1 dec *", a, "2024-12-01 00:00:00"},
                      {"0 0 * * SUN", a, "2024-01-21 00:00:00"},
                      {"0 0 * * 0", a, "2024-01-21 00:00:00"},
                      {"0 0 * * 7", a, "2024-01-21 00:00:00"},
                      {"0 0 * * */7", a, "2024-01-21 00:00:00"},
                      {"0 0 * * sat,Sun", a, "2024-01-20 00:00:00"},
                      {"0 0 * * tue-thu", a, "2024-01-16 00:00:00"},
                      {"0 0 * * fri-sun", a, "2024-01-19 00:00:00"},
                      {"0 0 * * 5-7", a, "2024-01-19 00:00:00"},
                      {"0 0 * * 5-0", a, "2024-01-19 00:00:00"},
                      {"0 0 * * 6-7", "2024-01-20 00:00:00", "2024-01-21 00:00:00"},
                      {"0 0 * * 6-7", "2024-01-21 00:00:00", "2024-01-27 00:00:00"},
                      {"0 0 * * 0-7", "2024-01-21 00:00:00", "2024-01-22 00:00:00"},
                  });
}

TEST(ScheduleNextTest, DayOfMonthOrDayOfWeekAsVixieCron) {
  CheckNext(kUtc, {
                      // Both restricted: the 13th or a Friday.
                      {"0 0 13 * 5", "2024-01-01 00:00:00", "2024-01-05 00:00:00"},
                      {"0 0 13 * 5", "2024-01-12 00:00:00", "2024-01-13 00:00:00"},
                      {"0 0 13 * fri", "2024-01-13 00:00:00", "2024-01-19 00:00:00"},
                      // Feb 31 never, but Mondays in February do.
                      {"0 0 31 2 mon", "2024-01-01 00:00:00", "2024-02-05 00:00:00"},
                      // One starts with '*': both must match.
                      {"0 0 */2 * 1", "2024-01-02 00:00:00", "2024-01-15 00:00:00"},
                      {"0 0 13 * */7", "2024-01-01 00:00:00", "2024-10-13 00:00:00"},
                      {"0 0 * * 1", "2024-01-02 00:00:00", "2024-01-08 00:00:00"},
                  });
}

TEST(ScheduleNextTest, Shorthands) {
  const char* a = "2024-01-15 10:20:30";
  CheckNext(kUtc, {
                      {"@hourly", a, "2024-01-15 11:00:00"},
                      {"@daily", a, "2024-01-16 00:00:00"},
                      {"@midnight", a, "2024-01-16 00:00:00"},
                      {"@weekly", a, "2024-01-21 00:00:00"},
                      {"@monthly", a, "2024-02-01 00:00:00"},
                      {"@yearly", a, "2025-01-01 00:00:00"},
                      {"@annually", a, "2025-01-01 00:00:00"},
                      {"@DAILY", a, "2024-01-16 00:00:00"},
                      {"  @Weekly ", a, "2024-01-21 00:00:00"},
                  });
  Result<Schedule> s = Schedule::Parse("  @Weekly ");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->text(), "@Weekly");
  EXPECT_EQ(s->interval(), 0u);
}

TEST(ScheduleNextTest, MonthEndsAndLeapYears) {
  CheckNext(kUtc, {
                      {"0 0 31 * *", "2024-01-31 00:00:00", "2024-03-31 00:00:00"},
                      {"0 0 30 * *", "2024-01-30 00:00:00", "2024-03-30 00:00:00"},
                      {"0 0 29 * *", "2023-01-29 00:00:00", "2023-03-29 00:00:00"},
                      {"0 0 29 * *", "2024-01-29 00:00:00", "2024-02-29 00:00:00"},
                      {"0 0 29 2 *", "2024-02-29 00:00:00", "2028-02-29 00:00:00"},
                      {"0 0 29 2 *", "2096-03-01 00:00:00", "2104-02-29 00:00:00"},
                      {"0 0 29 2 *", "2000-01-01 00:00:00", "2000-02-29 00:00:00"},
                      // Feb 29 on a Sunday: 28 years apart.
                      {"0 0 29 2 */7", "2004-03-01 00:00:00", "2032-02-29 00:00:00"},
                      {"0 0 31 2,3 *", "2024-01-01 00:00:00", "2024-03-31 00:00:00"},
                      {"0 0 28-31 2 *", "2023-02-28 00:00:00", "2024-02-28 00:00:00"},
                      {"0 0 28-31 2 *", "2024-02-28 00:00:00", "2024-02-29 00:00:00"},
                      {"59 23 31 12 *", "9999-12-31 23:58:00", "9999-12-31 23:59:00"},
                      {"59 23 31 12 *", "9999-12-31 23:59:00", "never"},
                      {"0 0 1 1 *", "9999-06-01 00:00:00", "never"},
                  });
}

TEST(ScheduleDstTest, SpringGapIsSkipped) {
  // 2024-03-31: 02:00 CET (01:00 UTC) becomes 03:00 CEST.
  CheckNext(kCet, {
                      {"30 2 * * *", "2024-03-29 12:00:00", "2024-03-30 01:30:00"},
                      {"30 2 * * *", "2024-03-30 01:30:00", "2024-04-01 00:30:00"},
                      {"0 2 * * *", "2024-03-30 02:00:00", "2024-04-01 00:00:00"},
                      {"0 * * * *", "2024-03-31 00:00:00", "2024-03-31 01:00:00"},
                      {"* * * * *", "2024-03-31 00:59:00", "2024-03-31 01:00:00"},
                      {"0 3 * * *", "2024-03-30 12:00:00", "2024-03-31 01:00:00"},
                  });
  // 2024-10-06: 02:00 +10:30 becomes 02:30 +11.
  CheckNext(kLordHowe, {
                           {"15 2 * * *", "2024-10-04 12:00:00", "2024-10-04 15:45:00"},
                           {"15 2 * * *", "2024-10-04 15:45:00", "2024-10-06 15:15:00"},
                           {"45 2 * * *", "2024-10-04 16:15:00", "2024-10-05 15:45:00"},
                       });
}

TEST(ScheduleDstTest, RepeatedTimeFiresOnce) {
  // 2024-10-27: 03:00 CEST (01:00 UTC) becomes 02:00 CET; 02:xx happens at
  // 00:xx UTC (CEST) and again at 01:xx UTC (CET).
  CheckNext(kCet, {
                      {"30 2 * * *", "2024-10-26 00:30:00", "2024-10-27 00:30:00"},
                      {"30 2 * * *", "2024-10-27 00:30:00", "2024-10-28 01:30:00"},
                      {"30 2 * * *", "2024-10-27 00:45:00", "2024-10-28 01:30:00"},
                      {"30 2 * * *", "2024-10-27 01:15:00", "2024-10-28 01:30:00"},
                      {"0 1 * * *", "2024-10-26 12:00:00", "2024-10-26 23:00:00"},
                      {"0 3 * * *", "2024-10-26 12:00:00", "2024-10-27 02:00:00"},
                      // @hourly: 02:00 CEST, then 03:00 CET two hours later.
                      {"0 * * * *", "2024-10-26 23:30:00", "2024-10-27 00:00:00"},
                      {"0 * * * *", "2024-10-27 00:00:00", "2024-10-27 02:00:00"},
                      // The repeated hour is silent even for every minute.
                      {"* * * * *", "2024-10-27 00:59:00", "2024-10-27 02:00:00"},
                      {"@every 1h", "2024-10-27 00:30:00", "2024-10-27 01:30:00"},
                  });
  // 2024-04-07: 02:00 +11 becomes 01:30 +10:30.
  CheckNext(kLordHowe, {
                           {"45 1 * * *", "2024-04-06 00:00:00", "2024-04-06 14:45:00"},
                           {"45 1 * * *", "2024-04-06 14:45:00", "2024-04-07 15:15:00"},
                       });
}

// Next against the rule spelled out minute by minute: a local minute fires
// when it matches and the local clock did not show it in the last 3 hours.
TEST(ScheduleDstTest, AgreesWithMinuteByMinuteScan) {
  struct Rule {
    const char* schedule;
    std::function<bool(const struct tm&)> matches;
  };
  const std::vector<Rule> rules = {
      {"30 2 * * *", [](const struct tm& t) { return t.tm_hour == 2 && t.tm_min == 30; }},
      {"45 1 * * *", [](const struct tm& t) { return t.tm_hour == 1 && t.tm_min == 45; }},
      {"15 2 * * *", [](const struct tm& t) { return t.tm_hour == 2 && t.tm_min == 15; }},
      {"0 * * * *", [](const struct tm& t) { return t.tm_min == 0; }},
      {"*/20 1-3 * * *",
       [](const struct tm& t) { return t.tm_hour >= 1 && t.tm_hour <= 3 && t.tm_min % 20 == 0; }},
      {"59 23 * * sun",
       [](const struct tm& t) { return t.tm_hour == 23 && t.tm_min == 59 && t.tm_wday == 0; }},
      {"* 2 * * *", [](const struct tm& t) { return t.tm_hour == 2; }},
  };
  struct Window {
    const char* tz;
    const char* from;
    const char* to;
  };
  const std::vector<Window> windows = {
      {kCet, "2024-03-28 00:00:00", "2024-04-02 00:00:00"},
      {kCet, "2024-10-24 00:00:00", "2024-10-30 00:00:00"},
      {kLordHowe, "2024-04-04 00:00:00", "2024-04-09 00:00:00"},
      {kLordHowe, "2024-10-03 00:00:00", "2024-10-08 00:00:00"},
  };
  auto wall = [](std::time_t t) {
    struct tm tm {};
    localtime_r(&t, &tm);
    return tm;
  };
  auto same_minute = [](const struct tm& a, const struct tm& b) {
    return a.tm_year == b.tm_year && a.tm_yday == b.tm_yday && a.tm_hour == b.tm_hour &&
           a.tm_min == b.tm_min;
  };
  for (const Window& w : windows) {
    ScopedTz zone(w.tz);
    for (const Rule& rule : rules) {
      Schedule s = MustParse(rule.schedule);
      std::vector<std::time_t> expected;
      // Both zones' offsets are whole or half hours: local minutes start at
      // UTC minutes.
      for (std::time_t t = Utc(w.from); t < Utc(w.to); t += 60) {
        const struct tm now = wall(t);
        if (!rule.matches(now)) continue;
        bool seen = false;
        for (std::time_t back = 60; back <= 3 * 3600 && !seen; back += 60) {
          seen = same_minute(wall(t - back), now);
        }
        if (!seen) expected.push_back(t);
      }
      std::vector<std::time_t> got;
      for (std::optional<std::time_t> t = s.Next(Utc(w.from) - 1); t && *t < Utc(w.to);
           t = s.Next(*t)) {
        got.push_back(*t);
      }
      ASSERT_EQ(got, expected) << rule.schedule << " in " << w.tz << " from " << w.from;
      // From anywhere between two firings, Next gives the later one.
      for (size_t i = 1; i < got.size(); ++i) {
        EXPECT_EQ(s.Next(got[i - 1] + (got[i] - got[i - 1]) / 2), got[i]) << rule.schedule;
        EXPECT_EQ(s.Next(got[i] - 1), got[i]) << rule.schedule;
      }
    }
  }
}

TEST(ScheduleParseTest, EveryUnitsAndBounds) {
  struct Case {
    const char* text;
    uint64_t interval;
  };
  for (const Case& c : std::vector<Case>{
           {"@every 1s", 1},
           {"@every 59s", 59},
           {"@every 90m", 5400},
           {"@every 6h", 21600},
           {"@every 1d", 86400},
           {"@every 007m", 420},
           {"@every 366d", 31622400},
           {"@every 8784h", 31622400},
           {"@every 527040m", 31622400},
           {"@every 31622400s", 31622400},
           {"@EVERY 1h", 3600},
           {" @every\t2h ", 7200},
       }) {
    Result<Schedule> s = Schedule::Parse(c.text);
    ASSERT_TRUE(s.ok()) << c.text << ": " << s.status().message();
    EXPECT_EQ(s->interval(), c.interval) << c.text;
    const std::time_t t = Utc("2024-10-27 00:30:00");
    EXPECT_EQ(s->Next(t), t + static_cast<std::time_t>(c.interval)) << c.text;
  }
  Schedule daily = MustParse("@every 1d");
  EXPECT_EQ(daily.text(), "@every 1d");
  EXPECT_EQ(Utc(daily.Next(Utc("9999-12-30 23:59:59"))), "9999-12-31 23:59:59");
  EXPECT_EQ(daily.Next(Utc("9999-12-31 00:00:01")), std::nullopt);
  EXPECT_EQ(daily.Next(Utc("-500-01-01")), Utc("-500-01-02"));
}

TEST(ScheduleParseTest, ErrorsNameTheField) {
  struct Case {
    const char* text;
    const char* message;  // a substring of the message
  };
  const std::vector<Case> cases = {
      {"", "fields: got 0, want 5"},
      {"   ", "fields: got 0, want 5"},
      {"\x01", "fields: got 1, want 5"},
      {"* * * *", "fields: got 4, want 5 (minute hour day-of-month month day-of-week)"},
      {"0 0 * * * *", "fields: got 6, want 5"},
      {"0 0 * * * *", "seconds and years are not supported"},
      {"60 * * * *", "minute: 60 is out of range 0-59"},
      {"* 24 * * *", "hour: 24 is out of range 0-23"},
      {"* * 0 * *", "day-of-month: 0 is out of range 1-31"},
      {"* * 32 * *", "day-of-month: 32 is out of range 1-31"},
      {"* * * 0 *", "month: 0 is out of range 1-12"},
      {"* * * 13 *", "month: 13 is out of range 1-12"},
      {"* * * * 8", "day-of-week: 8 is out of range 0-7"},
      {"99999999999999999999 * * * *", "minute: 99999999999999999999 is out of range 0-59"},
      {"0 4294967296 * * *", "hour: 4294967296 is out of range"},
      {"5-1 * * * *", "minute: range 5-1 is reversed"},
      {"* * * * sat-mon", "day-of-week: range sat-mon is reversed"},
      {"* * * dec-jan *", "month: range dec-jan is reversed"},
      {"*/0 * * * *", "minute: step 0 is out of range 1-60"},
      {"*/61 * * * *", "minute: step 61 is out of range 1-60"},
      {"0 */25 * * *", "hour: step 25 is out of range 1-24"},
      {"* * * * */8", "day-of-week: step 8 is out of range 1-7"},
      {"1-5/99999999999 * * * *", "minute: step 99999999999 is out of range"},
      {"*/ * * * *", "minute: '*/' has no step after '/'"},
      {"/5 * * * *", "minute: '/5' has nothing before '/'"},
      {"*/5/2 * * * *", "minute: '*/5/2' has more than one '/'"},
      {"*/x * * * *", "minute: step 'x' is not a number"},
      {"*/jan * * * *", "minute: step 'jan' is not a number"},
      {"x * * * *", "minute: 'x' is not a number"},
      {"* * * foo *", "month: 'foo' is not a number or a name (jan..dec)"},
      {"* * * january *", "month: 'january' is not a number or a name"},
      {"* * * * funday", "day-of-week: 'funday' is not a number or a name (sun..sat)"},
      {"* * * * jan", "day-of-week: 'jan' is not a number or a name"},
      {"* * mon * *", "day-of-month: 'mon' is not a number"},
      {"1, * * * *", "minute: empty item in list '1,'"},
      {",1 * * * *", "minute: empty item in list ',1'"},
      {"1,,2 * * * *", "minute: empty item in list '1,,2'"},
      {"* * * * mon,", "day-of-week: empty item"},
      {"1- * * * *", "minute: '1-' has no end after '-'"},
      {"-1 * * * *", "minute: '-1' has no start before '-'"},
      {"1-2-3 * * * *", "minute: '1-2-3' has more than one '-'"},
      {"*-5 * * * *", "minute: '*' is not a number"},
      {"? * * * *", "minute: '?' is not a number"},
      {"+1 * * * *", "minute: '+1' is not a number"},
      {"1.5 * * * *", "minute: '1.5' is not a number"},
      {"* * L * *", "day-of-month: 'L' is not a number"},
      {"* * * * 1#2", "day-of-week: '1#2' is not a number"},
      {"0 0 * * *\n1", "day-of-week: '*\\x0a1' is not a number"},
      {"0 0 31 2 *", "day-of-month: no day of '31' exists in month '2'"},
      {"0 0 30 2 *", "day-of-month: no day of '30' exists in month '2'"},
      {"0 0 30,31 feb *", "day-of-month: no day of '30,31' exists in month 'feb'"},
      {"0 0 31 4,6,9,11 *", "day-of-month: no day of '31' exists"},
      {"0 0 31 apr */7", "day-of-month: no day of '31' exists"},
      {"@every 0s", "@every: 0s is less than 1 s"},
      {"@every 0d", "@every: 0d is less than 1 s"},
      {"@every 367d", "@every: 367d is more than 366 d"},
      {"@every 8785h", "@every: 8785h is more than 366 d"},
      {"@every 527041m", "@every: 527041m is more than 366 d"},
      {"@every 31622401s", "@every: 31622401s is more than 366 d"},
      {"@every 99999999999999999999s", "is more than 366 d"},
      {"@every 5x", "@every: unit 'x' is not s, m, h or d"},
      {"@every 5M", "@every: unit 'M' is not s, m, h or d"},
      {"@every 1h30m", "@every: unit 'h30m' is not s, m, h or d"},
      {"@every 5", "@every: '5' has no unit (s, m, h or d)"},
      {"@every h", "@every: 'h' does not start with a number"},
      {"@every -5s", "@every: '-5s' does not start with a number"},
      {"@every", "@every: takes one interval"},
      {"@every 1h 2h", "@every: takes one interval"},
      {"@every 5 m", "@every: takes one interval"},
      {"@often", "shorthand: unknown '@often'"},
      {"@", "shorthand: unknown '@'"},
      {"@reboot", "shorthand: unknown '@reboot'"},
      {"@daily 5", "@daily: takes no argument"},
      {"@hourly *", "@hourly: takes no argument"},
  };
  for (const Case& c : cases) {
    Result<Schedule> s = Schedule::Parse(c.text);
    ASSERT_FALSE(s.ok()) << "'" << c.text << "' parsed";
    EXPECT_EQ(s.status().kind(), ErrorKind::kInvalidArgument) << c.text;
    EXPECT_NE(s.status().message().find(c.message), std::string::npos)
        << "'" << c.text << "': " << s.status().message();
    EXPECT_EQ(s.status().message().rfind("schedule '", 0), 0u) << s.status().message();
  }
  Result<Schedule> bad = Schedule::Parse("  5-1 * * * *\t");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "schedule '5-1 * * * *': minute: range 5-1 is reversed");
}

TEST(ScheduleParseTest, MessagesShowLongOrBinaryTextShort) {
  Result<Schedule> s = Schedule::Parse(std::string(1000, 'x') + " * * * *");
  ASSERT_FALSE(s.ok());
  EXPECT_LT(s.status().message().size(), 250u);
  EXPECT_NE(s.status().message().find("..."), std::string::npos);
  s = Schedule::Parse("\xc3\xa9 * * * *");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            "schedule '\\xc3\\xa9 * * * *': minute: '\\xc3\\xa9' is not a number");
}

TEST(ScheduleParseTest, RefusesOnlyNeverFiringDays) {
  for (const char* ok : {"0 0 29 2 *", "0 0 31 1-12 *", "0 0 30 1,2 *", "0 0 31 2 mon",
                         "0 0 31 * *", "0 0 29 feb */7", "59 23 31 dec 7"}) {
    EXPECT_TRUE(Schedule::Parse(ok).ok()) << ok;
  }
}

class NextRunTest : public ::testing::Test {
 protected:
  ScopedTz zone_{kUtc};
};

TEST_F(NextRunTest, NeverRunIsTheFirstSlotAfterCreation) {
  Schedule daily = MustParse("0 3 * * *");
  const std::time_t created = Utc("2024-01-15 10:20:00");
  EXPECT_EQ(Utc(NextRun(daily, created, 0, false, 300)), "2024-01-16 03:00:00");
  EXPECT_EQ(Utc(NextRun(daily, created, 0, true, 300)), "2024-01-16 03:00:00");
  Schedule every = MustParse("@every 6h");
  EXPECT_EQ(Utc(NextRun(every, created, 0, false, 300)), "2024-01-15 16:20:00");
}

TEST_F(NextRunTest, AfterSuccessTheSlotAfterTheRun) {
  Schedule daily = MustParse("0 3 * * *");
  const std::time_t created = Utc("2024-01-01 00:00:00");
  const std::time_t run = Utc("2024-01-16 03:00:05");
  EXPECT_EQ(Utc(NextRun(daily, created, run, false, 300)), "2024-01-17 03:00:00");
  Schedule every = MustParse("@every 6h");
  EXPECT_EQ(Utc(NextRun(every, created, run, false, 300)), "2024-01-16 09:00:05");
}

TEST_F(NextRunTest, AfterFailureRetriesSooner) {
  const std::time_t created = Utc("2024-01-01 00:00:00");
  const std::time_t run = Utc("2024-01-16 03:00:05");
  Schedule daily = MustParse("0 3 * * *");
  EXPECT_EQ(Utc(NextRun(daily, created, run, true, 300)), "2024-01-16 03:05:05");
  Schedule every = MustParse("@every 6h");
  EXPECT_EQ(Utc(NextRun(every, created, run, true, 300)), "2024-01-16 03:05:05");
  // The next slot comes before the retry would.
  Schedule minutely = MustParse("* * * * *");
  EXPECT_EQ(Utc(NextRun(minutely, created, run, true, 300)), "2024-01-16 03:01:00");
  // No retry asked for: the next slot.
  EXPECT_EQ(Utc(NextRun(daily, created, run, true, 0)), "2024-01-17 03:00:00");
  // No slot left: only the retry.
  Schedule yearly = MustParse("@yearly");
  const std::time_t late = Utc("9999-06-01 00:00:00");
  EXPECT_EQ(NextRun(yearly, created, late, false, 300), std::nullopt);
  EXPECT_EQ(NextRun(yearly, created, late, true, 300), late + 300);
}

TEST_F(NextRunTest, MissedSlotsGiveOneDueTimeInThePast) {
  Schedule hourly = MustParse("@hourly");
  const std::time_t created = Utc("2024-01-01 00:00:00");
  // fused was down from just after the 10:00 run until 2024-01-03 12:34.
  const std::time_t now = Utc("2024-01-03 12:34:00");
  std::optional<std::time_t> due = NextRun(hourly, created, Utc("2024-01-01 10:00:02"), false, 300);
  EXPECT_EQ(Utc(due), "2024-01-01 11:00:00");
  EXPECT_LT(*due, now);  // due now: one run makes up for the 49 missed slots
  EXPECT_EQ(Utc(NextRun(hourly, created, now, false, 300)), "2024-01-03 13:00:00");
  // Never run, added long ago: the same, one slot in the past.
  EXPECT_EQ(Utc(NextRun(hourly, created, 0, false, 300)), "2024-01-01 01:00:00");
}

}  // namespace
}  // namespace shorthorn::fused
