// Schedule: when a recurring job (snapshot or backup) runs. The syntax is
// cron's five fields, evaluated in the host's local time zone (as cron and
// systemd timers do), plus a few shorthands:
//
//   MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK
//     separated by spaces or tabs; each field: '*', a number, a range 'a-b',
//     a step '*/n' or 'a-b/n' or 'a/n' (a to the field's end), or a
//     comma-separated list of those; MONTH also takes jan..dec and
//     DAY-OF-WEEK sun..sat (0 and 7 are Sunday), case-insensitive. In
//     DAY-OF-WEEK, '*' and 'a/n' end on Saturday (6), and a range may end on
//     Sunday ("fri-sun", "5-0" = "5-7"). A step is 1 to the field's count of
//     values (60, 24, 31, 12, 7). When both DAY-OF-MONTH and DAY-OF-WEEK are
//     restricted (neither starts with '*'), a day matches either, as in
//     Vixie cron; otherwise it must match both ("*/2 * mon": odd days that
//     are Mondays).
//   @hourly @daily @midnight @weekly @monthly @yearly @annually
//     "0 * * * *", "0 0 * * *", "0 0 * * *", "0 0 * * 0", "0 0 1 * *",
//     "0 0 1 1 *", "0 0 1 1 *" (the word is case-insensitive).
//   @every N<unit>  a fixed interval after the previous run; unit s, m, h
//     or d (lower case); from 1 s to 366 d (a whole number of the unit).
//
// Times are unix seconds; cron fields fire at second 0 of a local minute. A
// local time that does not exist (skipped by a daylight-saving change) is
// skipped; one that occurs twice fires once, at its first occurrence: the
// repeated hour after a fall-back is silent even for "* * * * *", and
// @hourly fires at 02:00 (summer time) and next at 03:00 (winter time).
// No library in Debian parses either cron's or systemd's calendar syntax
// for C or C++ (libsystemd does not export its own), hence this file.
// Pure apart from the C library's time-zone database (tzset, localtime_r:
// Next uses the zone in effect at the call, TZ or /etc/localtime); any
// thread.
#pragma once

#include <bitset>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace shorthorn::fused {

class Schedule {
 public:
  // InvalidArgument "schedule '<text>': <field>: <why>" for anything else,
  // including a schedule that can never fire ("0 0 31 2 *"). <field> is
  // minute, hour, day-of-month, month, day-of-week, fields (their count),
  // shorthand (an unknown @word) or the @word; <text> shows bytes outside
  // printable ASCII as \xNN and at most 64 characters of it.
  static Result<Schedule> Parse(std::string_view text);

  // The first time strictly after `after` at which the schedule fires
  // (whole minutes for cron fields; after + interval for @every). nullopt
  // only past the year 9999 (local time for cron fields, UTC for @every).
  std::optional<std::time_t> Next(std::time_t after) const;

  // The text as given (trimmed).
  const std::string& text() const { return text_; }
  // For @every: the interval in seconds; 0 for a cron schedule.
  uint64_t interval() const { return interval_; }

 private:
  std::string text_;
  uint64_t interval_ = 0;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool days_restricted_ = false;
  bool weekdays_restricted_ = false;

  std::optional<std::time_t> NextCron(std::time_t after) const;
  bool DayMatches(int month, int day, int weekday) const;
};

// When a recurring job runs next (unix seconds), given its schedule, when
// it was added (`created`), and its last run (`last_run`, 0 for never; the
// time that run started) and whether that run failed. Never run: the first
// slot after `created`. Else the first slot after `last_run`; after a
// failure no later than `last_run + retry` (a failed run is retried sooner
// than its next slot; a `retry` of 0 or less means no earlier retry). A
// slot in the past means the job is due now: runs missed while fused was
// down are made up by one run, not one per slot. nullopt when the schedule
// has no slot left (past the year 9999) and no retry applies. Pure (see
// Schedule::Next).
std::optional<std::time_t> NextRun(const Schedule& schedule, std::time_t created,
                                   std::time_t last_run, bool last_failed, std::time_t retry);

}  // namespace shorthorn::fused
