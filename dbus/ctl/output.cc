#include "dbus/ctl/output.h"

#include <cstdio>
#include <ctime>

#include <algorithm>

#include <boost/json/serialize.hpp>

#include "dbus/ctl/size.h"

namespace shorthorn::ctl {
namespace {

std::string OrDash(const std::string& text) { return text.empty() ? "-" : text; }

// "Key:" padded to a column, then the value ("-" when empty).
class Fields {
 public:
  void Add(const char* key, const std::string& value) {
    std::string k = std::string(key) + ":";
    text_ += k + std::string(15 - std::min<size_t>(k.size(), 14), ' ') + OrDash(value) + "\n";
  }
  void AddIndented(const std::string& block) {
    size_t start = 0;
    while (start < block.size()) {
      size_t end = block.find('\n', start);
      text_ += "  " + block.substr(start, end - start + 1);
      start = end + 1;
    }
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

std::string Percent(double progress) {
  if (!(progress > 0)) return "0%";
  return std::to_string(static_cast<int>(std::min(progress, 1.0) * 100)) + "%";
}

boost::json::array StringsToJson(const std::vector<std::string>& strings) {
  boost::json::array array;
  for (const std::string& s : strings) array.push_back(boost::json::value(s));
  return array;
}

// "ssd,zone=a": tags as the option replica-tags takes them.
std::string JoinTags(const std::vector<std::string>& tags) {
  std::string text;
  for (const std::string& t : tags) text += (text.empty() ? "" : ",") + t;
  return text;
}

// An unreachable replicad reported nothing but its address; its zeros are
// not sizes.
bool Reported(const ReplicadInfo& r) { return r.state != "unreachable"; }

const ReplicadInfo* FindReplicad(const std::vector<ReplicadInfo>* replicads,
                                 const std::string& address) {
  if (replicads == nullptr) return nullptr;
  for (const ReplicadInfo& r : *replicads) {
    if (r.address == address) return &r;
  }
  return nullptr;
}

}  // namespace

Result<std::time_t> ParseRfc3339(std::string_view text) {
  auto bad = [&] {
    return Status(ErrorKind::kInvalidArgument,
                  "time '" + std::string(text) + "' is not RFC 3339 (2026-12-06T02:00:00Z)");
  };
  std::string s(text);
  std::tm tm{};
  int used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 ||
      used == 0) {
    return bad();
  }
  size_t at = static_cast<size_t>(used);
  if (at < s.size() && s[at] == '.') {  // fractional seconds: not needed for ages
    do ++at;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9');
  }
  long offset = 0;
  if (at + 1 == s.size() && (s[at] == 'Z' || s[at] == 'z')) {
    // UTC
  } else if (int h = 0, m = 0, n = 0;
             at < s.size() && (s[at] == '+' || s[at] == '-') &&
             std::sscanf(s.c_str() + at + 1, "%2d:%2d%n", &h, &m, &n) == 2 &&
             at + 1 + n == s.size()) {
    offset = (s[at] == '+' ? 1 : -1) * (h * 3600L + m * 60L);
  } else {
    return bad();
  }
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour < 0 ||
      tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60) {
    return bad();
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return timegm(&tm) - offset;
}

std::string FormatAge(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  struct Unit {
    int64_t seconds;
    char name;
  };
  constexpr Unit kUnits[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  for (size_t i = 0; i + 1 < std::size(kUnits); ++i) {
    if (seconds < kUnits[i].seconds) continue;
    const int64_t first = seconds / kUnits[i].seconds;
    const int64_t second = seconds % kUnits[i].seconds / kUnits[i + 1].seconds;
    std::string text = std::to_string(first) + kUnits[i].name;
    if (second != 0) text += std::to_string(second) + kUnits[i + 1].name;
    return text;
  }
  return std::to_string(seconds) + "s";
}

std::string AgeSince(std::string_view since, std::time_t now) {
  Result<std::time_t> then = ParseRfc3339(since);
  if (!then.ok()) return "";
  return FormatAge(static_cast<int64_t>(now) - static_cast<int64_t>(*then));
}

std::string Table::Render() const {
  std::vector<size_t> widths(headers_.size(), 0);
  auto cell = [](const std::vector<std::string>& row, size_t i) {
    return i < row.size() ? OrDash(row[i]) : std::string("-");
  };
  for (size_t i = 0; i < headers_.size(); ++i) {
    widths[i] = headers_[i].size();
    for (const auto& row : rows_) widths[i] = std::max(widths[i], cell(row, i).size());
  }
  std::string text;
  auto line = [&](const std::vector<std::string>& row, bool header) {
    std::string l;
    for (size_t i = 0; i < headers_.size(); ++i) {
      std::string c = header ? headers_[i] : cell(row, i);
      l += c;
      if (i + 1 < headers_.size()) l += std::string(widths[i] - c.size() + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    text += l + "\n";
  };
  line(headers_, true);
  for (const auto& row : rows_) line(row, false);
  return text;
}

boost::json::array ReplicasToJson(const std::vector<ReplicaInfo>& replicas) {
  boost::json::array array;
  for (const ReplicaInfo& r : replicas) {
    array.push_back(
        boost::json::object{{"address", r.address}, {"name", r.name}, {"mode", r.mode}});
  }
  return array;
}

boost::json::object StatisticsToJson(const std::map<std::string, uint64_t>& statistics) {
  boost::json::object out;
  for (const auto& [key, value] : statistics) out[key] = value;
  return out;
}

// "4144 requests, 17.0 MiB, 0 errors, mean 0.56 ms" for one operation.
std::string IoLine(const std::map<std::string, uint64_t>& s, const std::string& op) {
  auto get = [&](const char* field) {
    auto it = s.find(op + "_" + field);
    return it == s.end() ? uint64_t{0} : it->second;
  };
  const uint64_t n = get("requests");
  char mean[32] = "-";
  if (n > 0) std::snprintf(mean, sizeof(mean), "%.2f ms", get("latency_us") / 1000.0 / n);
  return std::to_string(n) + " requests, " + FormatSize(get("bytes")) + ", " +
         std::to_string(get("errors")) + " errors, mean " + mean;
}

boost::json::object VolumeToJson(const VolumeInfo& volume) {
  return boost::json::object{
      {"name", volume.name},
      {"object_path", volume.object_path},
      {"size", volume.size},
      {"state", volume.state},
      {"frontend_path", volume.frontend_path},
      {"loop_device", volume.loop_device},
      {"replicas", ReplicasToJson(volume.replicas)},
      {"actual_size", volume.actual_size},
      {"replica_count", volume.replica_count},
      {"robustness", volume.robustness},
      {"state_reason", volume.state_reason},
      {"statistics", StatisticsToJson(volume.statistics)},
      {"recurring_jobs", RecurringJobsToJson(volume.recurring_jobs)},
      {"standby", volume.standby},
      {"standby_source", volume.standby_source},
      {"last_backup", volume.last_backup},
      {"last_backup_created", volume.last_backup_created},
      {"last_restored_at", volume.last_restored_at},
      {"standby_error", volume.standby_error},
      {"robustness_reason", volume.robustness_reason},
      {"replica_tags", StringsToJson(volume.replica_tags)},
  };
}

std::string VolumesTable(const std::vector<VolumeInfo>& volumes) {
  Table table({"NAME", "SIZE", "STATE", "REPLICAS", "DEVICE"});
  for (const VolumeInfo& v : volumes) {
    std::string device = v.loop_device.empty() ? v.frontend_path : v.loop_device;
    table.AddRow({v.name, FormatSize(v.size), v.standby ? "standby" : v.state,
                  std::to_string(v.replicas.size()), device});
  }
  return table.Render();
}

std::string ReplicasTable(const std::vector<ReplicaInfo>& replicas) {
  Table table({"ADDRESS", "REPLICA", "MODE"});
  for (const ReplicaInfo& r : replicas) table.AddRow({r.address, r.name, r.mode});
  return table.Render();
}

boost::json::object ReplicadToJson(const ReplicadInfo& replicad) {
  return boost::json::object{
      {"address", replicad.address},
      {"state", replicad.state},
      {"host_id", replicad.host_id},
      {"tags", StringsToJson(replicad.tags)},
      {"total_bytes", replicad.total_bytes},
      {"free_bytes", replicad.free_bytes},
      {"provisioned_bytes", replicad.provisioned_bytes},
      {"replicas", replicad.replicas},
      {"rebuilds", replicad.rebuilds},
      {"message", replicad.message},
  };
}

std::string ReplicadsTable(const std::vector<ReplicadInfo>& replicads) {
  Table table({"ADDRESS", "STATE", "HOST", "TAGS", "FREE", "TOTAL", "PROVISIONED", "REPLICAS",
               "REBUILDS", "MESSAGE"});
  for (const ReplicadInfo& r : replicads) {
    const bool reported = Reported(r);
    table.AddRow(
        {r.address, r.state, r.host_id, JoinTags(r.tags), reported ? FormatSize(r.free_bytes) : "",
         reported ? FormatSize(r.total_bytes) : "", reported ? FormatSize(r.provisioned_bytes) : "",
         reported ? std::to_string(r.replicas) : "", std::to_string(r.rebuilds), r.message});
  }
  return table.Render();
}

boost::json::array ReplicasWithHostsToJson(const std::vector<ReplicaInfo>& replicas,
                                           const std::vector<ReplicadInfo>* replicads) {
  boost::json::array array = ReplicasToJson(replicas);
  for (size_t i = 0; i < replicas.size(); ++i) {
    boost::json::object& o = array[i].as_object();
    const ReplicadInfo* r = FindReplicad(replicads, replicas[i].address);
    o["host_id"] = r != nullptr && !r->host_id.empty() ? boost::json::value(r->host_id) : nullptr;
    o["free_bytes"] =
        r != nullptr && Reported(*r) ? boost::json::value(r->free_bytes) : boost::json::value();
  }
  return array;
}

std::string ReplicasWithHostsTable(const std::vector<ReplicaInfo>& replicas,
                                   const std::vector<ReplicadInfo>* replicads) {
  // The replicad's columns next to its address; MODE stays last, as in
  // ReplicasTable, for scripts that read the last column.
  Table table({"ADDRESS", "HOST", "FREE", "REPLICA", "MODE"});
  for (const ReplicaInfo& replica : replicas) {
    const ReplicadInfo* r = FindReplicad(replicads, replica.address);
    table.AddRow({replica.address, r != nullptr ? r->host_id : "",
                  r != nullptr && Reported(*r) ? FormatSize(r->free_bytes) : "", replica.name,
                  replica.mode});
  }
  return table.Render();
}

// "2026-12-06T02:00:00Z (5m ago)"; the time alone when it cannot be read.
std::string TimeAndAge(const std::string& time, std::time_t now) {
  const std::string age = AgeSince(time, now);
  return age.empty() ? time : time + " (" + age + " ago)";
}

std::string VolumeDetails(const VolumeInfo& volume, std::time_t now) {
  Fields fields;
  fields.Add("Name", volume.name);
  fields.Add("Object path", volume.object_path);
  fields.Add("Size", FormatSize(volume.size) + " (" + std::to_string(volume.size) + " bytes)");
  fields.Add("Actual size", FormatSize(volume.actual_size));
  fields.Add("State", volume.state);
  if (!volume.state_reason.empty()) fields.Add("State reason", volume.state_reason);
  if (volume.standby) {
    fields.Add("Standby", "yes");
    fields.Add("Source", volume.standby_source);
    fields.Add("Last backup", volume.last_backup);
    fields.Add("Recovery point", TimeAndAge(volume.last_backup_created, now));
    fields.Add("Last restored", volume.last_restored_at);
    if (!volume.standby_error.empty()) fields.Add("Error", volume.standby_error);
  }
  fields.Add("Frontend path", volume.frontend_path);
  fields.Add("Loop device", volume.loop_device);
  fields.Add("Snapshots", std::to_string(volume.snapshots.size()));
  fields.Add("Robustness", volume.robustness);
  if (!volume.robustness_reason.empty()) fields.Add("Robustness reason", volume.robustness_reason);
  fields.Add("Replica count", std::to_string(volume.replica_count));
  if (!volume.replica_tags.empty()) fields.Add("Replica tags", JoinTags(volume.replica_tags));
  fields.Add("Replicas", std::to_string(volume.replicas.size()));
  if (!volume.replicas.empty()) fields.AddIndented(ReplicasTable(volume.replicas));
  fields.Add("Recurring jobs", std::to_string(volume.recurring_jobs.size()));
  if (!volume.recurring_jobs.empty()) {
    fields.AddIndented(RecurringJobsTable(volume.recurring_jobs));
  }
  if (!volume.statistics.empty()) {
    fields.Add("I/O read", IoLine(volume.statistics, "read"));
    fields.Add("I/O write", IoLine(volume.statistics, "write"));
    fields.Add("I/O flush", IoLine(volume.statistics, "flush"));
    fields.Add("I/O discard", IoLine(volume.statistics, "discard"));
  }
  return fields.text();
}

boost::json::object SnapshotToJson(const SnapshotInfo& snapshot) {
  return boost::json::object{
      {"name", snapshot.name},           {"parent", snapshot.parent},
      {"created", snapshot.created},     {"user_created", snapshot.user_created},
      {"size_held", snapshot.size_held}, {"removed", snapshot.removed},
  };
}

std::string SnapshotsTable(const std::vector<SnapshotInfo>& snapshots) {
  Table table({"NAME", "PARENT", "CREATED", "HELD", "TYPE", "REMOVED"});
  for (const SnapshotInfo& s : snapshots) {
    table.AddRow({s.name, s.parent, s.created, FormatSize(s.size_held),
                  s.user_created ? "user" : "system", s.removed ? "yes" : "no"});
  }
  return table.Render();
}

boost::json::object RecurringJobToJson(const RecurringJobInfo& job) {
  return boost::json::object{
      {"name", job.name},
      {"kind", job.kind},
      {"schedule", job.schedule},
      {"retain", job.retain},
      {"target", job.target},
      {"last_run", job.last_run},
      {"last_result", job.last_result},
      {"next_run", job.next_run},
  };
}

boost::json::array RecurringJobsToJson(const std::vector<RecurringJobInfo>& jobs) {
  boost::json::array array;
  for (const RecurringJobInfo& j : jobs) array.push_back(RecurringJobToJson(j));
  return array;
}

std::string RecurringJobsTable(const std::vector<RecurringJobInfo>& jobs) {
  // Most jobs use the daemon's backup-target: the column of URLs, last as in
  // BackupsTable, only when a job names one.
  const bool targets = std::any_of(jobs.begin(), jobs.end(),
                                   [](const RecurringJobInfo& j) { return !j.target.empty(); });
  std::vector<std::string> headers = {"NAME",     "KIND",   "SCHEDULE", "RETAIN",
                                      "LAST-RUN", "RESULT", "NEXT-RUN"};
  if (targets) headers.push_back("TARGET");
  Table table(std::move(headers));
  for (const RecurringJobInfo& j : jobs) {
    std::vector<std::string> row = {j.name,     j.kind,        j.schedule, std::to_string(j.retain),
                                    j.last_run, j.last_result, j.next_run};
    if (targets) row.push_back(j.target);
    table.AddRow(std::move(row));
  }
  return table.Render();
}

boost::json::object JobToJson(const JobInfo& job) {
  return boost::json::object{
      {"id", job.id},
      {"object_path", job.object_path},
      {"operation", job.operation},
      {"volume", job.volume},
      {"volume_path", job.volume_path},
      {"target", job.target},
      {"progress", job.progress},
      {"bytes", job.bytes},
      {"total_bytes", job.total_bytes},
      {"rate", job.rate},
      {"state", job.state},
      {"message", job.message},
      {"cancellable", job.cancellable},
  };
}

namespace {

// The volume a job belongs to: its name, else its path; "" for a job of
// no volume (a drain, whose Volume is "/").
std::string JobVolume(const JobInfo& job) {
  if (!job.volume.empty()) return job.volume;
  return job.volume_path == "/" ? "" : job.volume_path;
}

}  // namespace

std::string JobsTable(const std::vector<JobInfo>& jobs) {
  Table table({"ID", "OPERATION", "VOLUME", "TARGET", "STATE", "PROGRESS", "MESSAGE"});
  for (const JobInfo& j : jobs) {
    table.AddRow(
        {j.id, j.operation, JobVolume(j), j.target, j.state, Percent(j.progress), j.message});
  }
  return table.Render();
}

std::string JobDetails(const JobInfo& job) {
  Fields fields;
  fields.Add("Job", job.id);
  fields.Add("Object path", job.object_path);
  fields.Add("Operation", job.operation);
  fields.Add("Volume", JobVolume(job));
  fields.Add("Target", job.target);
  fields.Add("State", job.state);
  fields.Add("Progress", Percent(job.progress));
  fields.Add("Bytes", job.total_bytes > 0
                          ? FormatSize(job.bytes) + " of " + FormatSize(job.total_bytes)
                          : FormatSize(job.bytes));
  fields.Add("Rate", FormatSize(job.rate) + "/s");
  fields.Add("Cancellable", job.cancellable ? "yes" : "no");
  fields.Add("Message", job.message);
  return fields.text();
}

boost::json::object BackupToJson(const BackupInfo& backup) {
  return boost::json::object{
      {"url", backup.url},           {"name", backup.name},       {"volume", backup.volume},
      {"snapshot", backup.snapshot}, {"created", backup.created}, {"size", backup.size},
      {"blocks", backup.blocks},
  };
}

std::string BackupsTable(const std::vector<BackupInfo>& backups) {
  Table table({"NAME", "SNAPSHOT", "CREATED", "SIZE", "BLOCKS", "URL"});
  for (const BackupInfo& b : backups) {
    table.AddRow(
        {b.name, b.snapshot, b.created, FormatSize(b.size), std::to_string(b.blocks), b.url});
  }
  return table.Render();
}

std::string BackupDetails(const BackupInfo& backup) {
  Fields fields;
  fields.Add("Backup", backup.name);
  fields.Add("URL", backup.url);
  fields.Add("Volume", backup.volume);
  fields.Add("Snapshot", backup.snapshot);
  fields.Add("Created", backup.created);
  fields.Add("Size", FormatSize(backup.size) + " (" + std::to_string(backup.size) + " bytes)");
  fields.Add("Blocks", std::to_string(backup.blocks) + " of 2 MiB");
  return fields.text();
}

void Output::Text(const std::string& text) {
  if (!json_) out_ << text;
}

void Output::Json(const boost::json::value& value) {
  if (json_) out_ << boost::json::serialize(value) << "\n";
}

void Output::Progress(const std::string& line) {
  if (progress_ == nullptr) return;
  *progress_ << '\r' << line << "\033[K" << std::flush;
  progress_drawn_ = true;
}

void Output::EndProgress() {
  if (!progress_drawn_) return;
  *progress_ << '\n' << std::flush;
  progress_drawn_ = false;
}

}  // namespace shorthorn::ctl
