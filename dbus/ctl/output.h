// How shorthornctl shows results: aligned tables and "Key: value" blocks for
// people, one JSON document for scripts (--json), and the JSON shape of each
// object (documented in shorthornctl(1); fields are only ever added). Output
// wraps the stream the commands write to, so tests capture it. Pure.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "common/status.h"
#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl {

// Seconds since the epoch of an RFC 3339 time as the daemon writes them
// ("2026-12-06T02:00:00Z"; fractional seconds and a "+HH:MM" offset are
// read too); InvalidArgument otherwise.
Result<std::time_t> ParseRfc3339(std::string_view text);
// A span of time as people read it, the two largest units at most and a
// zero second unit left out: "45s", "3m12s", "5m", "2h5m", "3d4h". A
// negative span (clocks of two sites apart) is "0s".
std::string FormatAge(int64_t seconds);
// FormatAge of now - `since` (RFC 3339); "" when `since` is "" or unreadable.
std::string AgeSince(std::string_view since, std::time_t now);

// Columns separated by two spaces, no trailing blanks; "-" for an empty cell.
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// {"name", "object_path", "size", "state", "frontend_path", "loop_device",
//  "replicas": [{"address", "name", "mode"}], "actual_size", "replica_count",
//  "robustness", "state_reason", "statistics": {"<op>_requests", ...},
//  "recurring_jobs": [RecurringJobToJson], "standby", "standby_source",
//  "last_backup", "last_backup_created", "last_restored_at", "standby_error",
//  "robustness_reason", "replica_tags": ["tag", ...]}
boost::json::object VolumeToJson(const VolumeInfo& volume);
// [{"address", "name", "mode"}]
boost::json::array ReplicasToJson(const std::vector<ReplicaInfo>& replicas);

// NAME SIZE STATE REPLICAS DEVICE, one row per volume; a DR standby's
// STATE is "standby".
std::string VolumesTable(const std::vector<VolumeInfo>& volumes);
// Every property of one volume, then its replicas and its recurring jobs as
// tables; for a DR standby also its source, the backup it holds and that
// backup's age at `now` (the recovery point).
std::string VolumeDetails(const VolumeInfo& volume, std::time_t now);
// ADDRESS REPLICA MODE, one row per replica.
std::string ReplicasTable(const std::vector<ReplicaInfo>& replicas);

// {"address", "state", "host_id", "tags": [...], "total_bytes", "free_bytes",
//  "provisioned_bytes", "replicas", "rebuilds", "message"}
boost::json::object ReplicadToJson(const ReplicadInfo& replicad);
// ADDRESS STATE HOST TAGS FREE TOTAL PROVISIONED REPLICAS REBUILDS MESSAGE,
// one row per replicad, tags joined by ","; an unreachable replicad's
// FREE, TOTAL, PROVISIONED and REPLICAS are "-" (it reported none).
std::string ReplicadsTable(const std::vector<ReplicadInfo>& replicads);
// The replicas with their replicad's host and free space, joined by
// address from `replicads`, which is null when they could not be listed:
// [{"address", "name", "mode", "host_id", "free_bytes"}] with null for
// what is unknown, and the table ADDRESS HOST FREE REPLICA MODE with "-".
boost::json::array ReplicasWithHostsToJson(const std::vector<ReplicaInfo>& replicas,
                                           const std::vector<ReplicadInfo>* replicads);
std::string ReplicasWithHostsTable(const std::vector<ReplicaInfo>& replicas,
                                   const std::vector<ReplicadInfo>* replicads);

// {"name", "parent", "created", "user_created", "size_held", "removed"}
boost::json::object SnapshotToJson(const SnapshotInfo& snapshot);
// NAME PARENT CREATED HELD TYPE REMOVED, one row per snapshot, in order.
std::string SnapshotsTable(const std::vector<SnapshotInfo>& snapshots);

// {"name", "kind", "schedule", "retain", "target", "last_run", "last_result",
//  "next_run"}
boost::json::object RecurringJobToJson(const RecurringJobInfo& job);
boost::json::array RecurringJobsToJson(const std::vector<RecurringJobInfo>& jobs);
// NAME KIND SCHEDULE RETAIN LAST-RUN RESULT NEXT-RUN, one row per job, in
// order, and a last column TARGET only when some job names a target.
std::string RecurringJobsTable(const std::vector<RecurringJobInfo>& jobs);

// {"id", "object_path", "operation", "volume", "volume_path", "target",
//  "progress", "bytes", "total_bytes", "rate", "state", "message",
//  "cancellable"}
boost::json::object JobToJson(const JobInfo& job);
// ID OPERATION VOLUME TARGET STATE PROGRESS MESSAGE, one row per job.
std::string JobsTable(const std::vector<JobInfo>& jobs);
// Every property of one job.
std::string JobDetails(const JobInfo& job);

// {"url", "name", "volume", "snapshot", "created", "size", "blocks"}
boost::json::object BackupToJson(const BackupInfo& backup);
// NAME SNAPSHOT CREATED SIZE BLOCKS URL, one row per backup, in order.
std::string BackupsTable(const std::vector<BackupInfo>& backups);
// Every field of one backup.
std::string BackupDetails(const BackupInfo& backup);

// The wall clock, seconds since the epoch; tests pass a fixed one.
using Clock = std::function<std::time_t()>;

class Output {
 public:
  // `progress`: a terminal to redraw progress lines on, or null for none.
  // `clock`: what "now" is for ages in the output (null: the system's).
  Output(std::ostream& out, bool json, std::ostream* progress = nullptr, Clock clock = nullptr)
      : out_(out), json_(json), progress_(progress), clock_(std::move(clock)) {}
  bool json() const { return json_; }
  // The time the output describes ages at.
  std::time_t Now() const { return clock_ ? clock_() : std::time(nullptr); }
  // For people: written as is (only when !json()).
  void Text(const std::string& text);
  // For scripts: one compact JSON document and a newline.
  void Json(const boost::json::value& value);
  // Redraws the progress line (carriage return, the line, erase to the end
  // of the line) on the progress terminal; nothing without one.
  void Progress(const std::string& line);
  // Ends a progress line drawn before with a newline, so what follows starts
  // on a line of its own.
  void EndProgress();

 private:
  std::ostream& out_;
  bool json_;
  std::ostream* progress_;
  Clock clock_;
  bool progress_drawn_ = false;
};

}  // namespace shorthorn::ctl
