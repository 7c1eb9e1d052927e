// Design notes
//
// Parse turns each cron field into a bit set (one bit per value) and keeps
// nothing else; the shorthands are rewritten to their five fields first.
// Errors are built inside out with Status::WithContext: an item's reason,
// then the field's name, then "schedule '<text>'".
//
// Next for cron fields walks local calendar days forward from the local day
// of `after`, with integer date arithmetic (days since 1970-01-01, Howard
// Hinnant's civil-date formulas), and only for a day whose month, day and
// weekday match does it turn the day's (hour, minute) pairs into unix time,
// in increasing order; the first one later than `after` is the answer.
//
// A local wall-clock time w becomes unix time without mktime: with u = w
// read as if it were UTC, a time t at which the local clock shows w has
// t = u - gmtoff(t). The offsets in effect around a day are sampled a day
// before its midnight, at its noon and two days after (covering every
// offset from -24 h to +24 h); when the three agree the day has no
// transition and w happens once, at u - offset. Otherwise each sampled
// offset o gives a candidate u - o, real when localtime_r finds offset o
// there. No candidate: w is in a spring-forward gap and is skipped. Two: w
// repeats after a fall-back, and only the earlier one counts, so the
// repeated hour never fires a second time. (mktime with tm_isdst = -1
// picks either occurrence of a repeated time and moves a gap time
// elsewhere; both would have to be undone.) The earliest occurrences of
// successive wall-clock times increase, so the first candidate in wall
// order past `after` is the earliest one. This assumes a zone changes its
// offset at most once within about two days, which every zone does.
//
// The walk ends: Parse refuses a day-of-month and month pair that exists in
// no year ("31 2"), and every date that exists falls on every weekday
// within 400 years (the Gregorian cycle, 146097 days), so a schedule that
// parsed matches a day within one cycle; the walk also stops after the
// year 9999. A day costs a few integer operations; a matching day three
// localtime_r calls and one per candidate tried on a transition day.
#include "fused/core/schedule.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <vector>

namespace shorthorn::fused {
namespace {

constexpr std::time_t kMinTime = -62135596800;  // 0001-01-01T00:00:00Z
constexpr std::time_t kMaxTime = 253402300799;  // 9999-12-31T23:59:59Z
constexpr int64_t kMaxYear = 9999;
constexpr int64_t kCycleDays = 146097;  // 400 Gregorian years
constexpr int64_t kDay = 86400;
constexpr uint64_t kMaxInterval = 366 * 86400;
constexpr size_t kMaxShown = 64;

constexpr std::array<const char*, 12> kMonthNames = {"jan", "feb", "mar", "apr", "may", "jun",
                                                     "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<const char*, 7> kWeekdayNames = {"sun", "mon", "tue", "wed",
                                                      "thu", "fri", "sat"};

// One cron field: values min..max are accepted; '*' and 'a/n' end at
// star_max (day-of-week: Saturday, though 7 is accepted as Sunday).
struct Field {
  const char* name;
  int min;
  int max;
  int star_max;
  int count;  // how many distinct values: the largest step
  const char* const* names = nullptr;
  int first_named = 0;  // the value of names[0]
  int name_count = 0;
  const char* name_list = "";  // for messages: "jan..dec"
  bool weekday = false;        // 7 is Sunday, 0
};

constexpr Field kMinute{"minute", 0, 59, 59, 60};
constexpr Field kHour{"hour", 0, 23, 23, 24};
constexpr Field kDayOfMonth{"day-of-month", 1, 31, 31, 31};
constexpr Field kMonth{"month", 1, 12, 12, 12, kMonthNames.data(), 1, 12, "jan..dec"};
constexpr Field kDayOfWeek{"day-of-week", 0, 7, 6, 7, kWeekdayNames.data(), 0, 7, "sun..sat", true};

struct Shorthand {
  const char* word;
  const char* fields;
};
constexpr std::array<Shorthand, 7> kShorthands = {{
    {"@hourly", "0 * * * *"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},
    {"@monthly", "0 0 1 * *"},
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
}};

Status Invalid(std::string why) { return Status(ErrorKind::kInvalidArgument, std::move(why)); }

// `s` for a message: printable ASCII as is, other bytes as \xNN, at most
// kMaxShown characters of it (a D-Bus error must be valid UTF-8, and a
// message should not be a megabyte).
std::string Shown(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out;
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsSpace(char c) { return IsBlank(c) || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsLower(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (Lower(s[i]) != lower[i]) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> SplitBlanks(std::string_view s) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsBlank(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && !IsBlank(s[i])) ++i;
    if (i > start) words.push_back(s.substr(start, i - start));
  }
  return words;
}

// Digits only; a number of more than 9 digits is returned as -1 (out of
// any range here, and no overflow).
int64_t ParseDigits(std::string_view s) {
  if (s.empty() || s.size() > 9) return -1;
  int64_t v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsDigit);
}

Status ParseValue(const Field& f, std::string_view token, int* out) {
  if (AllDigits(token)) {
    int64_t v = ParseDigits(token);
    if (v < f.min || v > f.max) {
      return Invalid(Shown(token) + " is out of range " + std::to_string(f.min) + "-" +
                     std::to_string(f.max));
    }
    *out = static_cast<int>(v);
    return Status::Ok();
  }
  for (int i = 0; i < f.name_count; ++i) {
    if (EqualsLower(token, f.names[i])) {
      *out = f.first_named + i;
      return Status::Ok();
    }
  }
  if (f.names != nullptr) {
    return Invalid("'" + Shown(token) + "' is not a number or a name (" + f.name_list + ")");
  }
  return Invalid("'" + Shown(token) + "' is not a number");
}

// One comma-separated item: '*', 'a', 'a-b', each with an optional '/n'.
Status ParseItem(const Field& f, std::string_view item, uint64_t* bits) {
  const std::string shown = "'" + Shown(item) + "'";
  std::string_view base = item;
  std::string_view step_text;
  const bool has_step = item.find('/') != std::string_view::npos;
  if (has_step) {
    size_t slash = item.find('/');
    base = item.substr(0, slash);
    step_text = item.substr(slash + 1);
    if (step_text.find('/') != std::string_view::npos) {
      return Invalid(shown + " has more than one '/'");
    }
    if (step_text.empty()) return Invalid(shown + " has no step after '/'");
    if (base.empty()) return Invalid(shown + " has nothing before '/'");
  }
  int lo = 0;
  int hi = 0;
  if (base == "*") {
    lo = f.min;
    hi = f.star_max;
  } else if (size_t dash = base.find('-'); dash == std::string_view::npos) {
    SH_RETURN_IF_ERROR(ParseValue(f, base, &lo));
    hi = has_step ? std::max(lo, f.star_max) : lo;
  } else {
    std::string_view first = base.substr(0, dash);
    std::string_view last = base.substr(dash + 1);
    if (first.empty()) return Invalid(shown + " has no start before '-'");
    if (last.empty()) return Invalid(shown + " has no end after '-'");
    if (last.find('-') != std::string_view::npos) {
      return Invalid(shown + " has more than one '-'");
    }
    SH_RETURN_IF_ERROR(ParseValue(f, first, &lo));
    SH_RETURN_IF_ERROR(ParseValue(f, last, &hi));
    // "fri-sun": a day-of-week range may end on Sunday as 0 as well as 7.
    if (f.weekday && hi == 0 && lo > 0) hi = 7;
    if (lo > hi) return Invalid("range " + Shown(base) + " is reversed");
  }
  int64_t step = 1;
  if (has_step) {
    if (!AllDigits(step_text)) return Invalid("step '" + Shown(step_text) + "' is not a number");
    step = ParseDigits(step_text);
    if (step < 1 || step > f.count) {
      return Invalid("step " + Shown(step_text) + " is out of range 1-" + std::to_string(f.count));
    }
  }
  for (int64_t v = lo; v <= hi; v += step) *bits |= uint64_t{1} << v;
  return Status::Ok();
}

Status ParseField(const Field& f, std::string_view text, uint64_t* bits) {
  *bits = 0;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item =
        text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    if (item.empty()) {
      return Invalid("empty item in list '" + Shown(text) + "'").WithContext(f.name);
    }
    SH_RETURN_IF_ERROR(ParseItem(f, item, bits).WithContext(f.name));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (f.weekday && (*bits & (uint64_t{1} << 7)) != 0) {
    *bits = (*bits | 1) & ~(uint64_t{1} << 7);  // 7 is Sunday, 0
  }
  return Status::Ok();
}

bool IsLeap(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

int DaysInMonth(int64_t year, int month) {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeap(year) ? 29 : kDays[month - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date, and back.
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * kCycleDays + doe - 719468;
}

struct Civil {
  int64_t year;
  int month;
  int day;
};

Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - (kCycleDays - 1)) / kCycleDays;
  const int64_t doe = z - era * kCycleDays;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (month <= 2), month, day};
}

int Weekday(int64_t days) { return static_cast<int>(((days + 4) % 7 + 7) % 7); }  // 0 = Sunday

// The local zone's offset from UTC at `t`, in seconds east.
long Offset(std::time_t t) {
  struct tm tm {};
  if (localtime_r(&t, &tm) == nullptr) return 0;
  return tm.tm_gmtoff;
}

Result<uint64_t> ParseInterval(std::string_view arg) {
  size_t digits = 0;
  while (digits < arg.size() && IsDigit(arg[digits])) ++digits;
  if (digits == 0) {
    return Invalid("'" + Shown(arg) + "' does not start with a number (e.g. '@every 6h')");
  }
  std::string_view unit = arg.substr(digits);
  uint64_t scale = 0;
  if (unit == "s") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  } else if (unit == "d") {
    scale = 86400;
  } else if (unit.empty()) {
    return Invalid("'" + Shown(arg) + "' has no unit (s, m, h or d)");
  } else {
    return Invalid("unit '" + Shown(unit) + "' is not s, m, h or d");
  }
  const int64_t n = ParseDigits(arg.substr(0, digits));
  if (n == 0) return Invalid(Shown(arg) + " is less than 1 s");
  if (n < 0 || static_cast<uint64_t>(n) * scale > kMaxInterval) {
    return Invalid(Shown(arg) + " is more than 366 d");
  }
  return static_cast<uint64_t>(n) * scale;
}

}  // namespace

Result<Schedule> Schedule::Parse(std::string_view text) {
  text = Trim(text);
  const std::string context = "schedule '" + Shown(text) + "'";
  auto fail = [&context](const Status& s) -> Result<Schedule> { return s.WithContext(context); };
  Schedule schedule;
  schedule.text_ = std::string(text);
  std::vector<std::string_view> words = SplitBlanks(text);
  std::string expanded;
  if (!words.empty() && words[0].front() == '@') {
    if (EqualsLower(words[0], "@every")) {
      if (words.size() != 2) {
        return fail(
            Invalid("takes one interval, e.g. '@every 6h'; got " + std::to_string(words.size() - 1))
                .WithContext("@every"));
      }
      Result<uint64_t> interval = ParseInterval(words[1]);
      if (!interval.ok()) return fail(interval.status().WithContext("@every"));
      schedule.interval_ = *interval;
      return schedule;
    }
    const Shorthand* found = nullptr;
    for (const Shorthand& s : kShorthands) {
      if (EqualsLower(words[0], s.word)) found = &s;
    }
    if (found == nullptr) {
      return fail(Invalid("unknown '" + Shown(words[0]) +
                          "'; want @hourly, @daily, @midnight, @weekly, @monthly, @yearly, "
                          "@annually or @every N<s|m|h|d>")
                      .WithContext("shorthand"));
    }
    if (words.size() != 1) return fail(Invalid("takes no argument").WithContext(found->word));
    expanded = found->fields;
    words = SplitBlanks(expanded);
  }
  if (words.size() != 5) {
    std::string why = "got " + std::to_string(words.size()) +
                      ", want 5 (minute hour day-of-month month day-of-week) or an @shorthand";
    if (words.size() == 6) why += "; seconds and years are not supported";
    return fail(Invalid(why).WithContext("fields"));
  }
  uint64_t bits[5];
  const Field* fields[5] = {&kMinute, &kHour, &kDayOfMonth, &kMonth, &kDayOfWeek};
  for (int i = 0; i < 5; ++i) {
    Status s = ParseField(*fields[i], words[i], &bits[i]);
    if (!s.ok()) return fail(s);
  }
  schedule.minutes_ = std::bitset<60>(bits[0]);
  schedule.hours_ = std::bitset<24>(bits[1]);
  schedule.days_ = std::bitset<32>(bits[2]);
  schedule.months_ = std::bitset<13>(bits[3]);
  schedule.weekdays_ = std::bitset<7>(bits[4]);
  schedule.days_restricted_ = words[2].front() != '*';
  schedule.weekdays_restricted_ = words[4].front() != '*';
  // Either day field alone must allow a date that exists in some year (any
  // date falls on each weekday some year); both restricted match either.
  if (!(schedule.days_restricted_ && schedule.weekdays_restricted_)) {
    bool exists = false;
    for (int month = 1; month <= 12; ++month) {
      if (!schedule.months_[month]) continue;
      for (int day = 1; day <= DaysInMonth(2000, month); ++day) exists |= schedule.days_[day];
    }
    if (!exists) {
      return fail(
          Invalid("no day of '" + Shown(words[2]) + "' exists in month '" + Shown(words[3]) + "'")
              .WithContext(kDayOfMonth.name));
    }
  }
  return schedule;
}

bool Schedule::DayMatches(int month, int day, int weekday) const {
  if (!months_[month]) return false;
  if (days_restricted_ && weekdays_restricted_) return days_[day] || weekdays_[weekday];
  return days_[day] && weekdays_[weekday];
}

std::optional<std::time_t> Schedule::Next(std::time_t after) const {
  if (interval_ != 0) {
    const auto step = static_cast<std::time_t>(interval_);
    if (after > kMaxTime - step) return std::nullopt;
    return after + step;
  }
  return NextCron(after);
}

std::optional<std::time_t> Schedule::NextCron(std::time_t after) const {
  tzset();  // as mktime does: follow a changed TZ or /etc/localtime
  after = std::max(after, kMinTime);
  struct tm local {};
  if (localtime_r(&after, &local) == nullptr) return std::nullopt;  // past any year an int holds
  int64_t days = DaysFromCivil(int64_t{local.tm_year} + 1900, local.tm_mon + 1, local.tm_mday);
  for (int64_t n = 0; n <= kCycleDays + 366; ++n, ++days) {
    const Civil date = CivilFromDays(days);
    if (date.year > kMaxYear) return std::nullopt;
    if (!DayMatches(date.month, date.day, Weekday(days))) continue;
    const std::time_t midnight = days * kDay;  // the day's local midnight read as UTC
    const std::array<long, 3> offsets = {Offset(midnight - kDay), Offset(midnight + kDay / 2),
                                         Offset(midnight + 2 * kDay)};
    const bool steady = offsets[0] == offsets[1] && offsets[1] == offsets[2];
    for (int hour = 0; hour < 24; ++hour) {
      if (!hours_[hour]) continue;
      for (int minute = 0; minute < 60; ++minute) {
        if (!minutes_[minute]) continue;
        const std::time_t wall = midnight + hour * 3600 + minute * 60;
        std::optional<std::time_t> first;
        if (steady) {
          first = wall - offsets[1];
        } else {
          for (long offset : offsets) {
            const std::time_t t = wall - offset;
            if (Offset(t) == offset && (!first || t < *first)) first = t;
          }
        }
        if (first && *first > after) return first;
      }
    }
  }
  return std::nullopt;  // not reached for a schedule Parse accepted
}

std::optional<std::time_t> NextRun(const Schedule& schedule, std::time_t created,
                                   std::time_t last_run, bool last_failed, std::time_t retry) {
  if (last_run == 0) return schedule.Next(created);
  std::optional<std::time_t> next = schedule.Next(last_run);
  std::time_t again = 0;
  if (last_failed && retry > 0 && !__builtin_add_overflow(last_run, retry, &again) &&
      (!next || again < *next)) {
    next = again;
  }
  return next;
}

}  // namespace shorthorn::fused
