// How shorthornctl shows results: aligned tables and "Key: value" blocks for
// people, one JSON document for scripts (--json), and the JSON shape of each
// object (documented in shorthornctl(1); fields are only ever added). Output
// wraps the stream the commands write to, so tests capture it. Pure.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl {

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
//  "robustness", "state_reason", "statistics": {"<op>_requests", ...}}
boost::json::object VolumeToJson(const VolumeInfo& volume);
// [{"address", "name", "mode"}]
boost::json::array ReplicasToJson(const std::vector<ReplicaInfo>& replicas);

// NAME SIZE STATE REPLICAS DEVICE, one row per volume.
std::string VolumesTable(const std::vector<VolumeInfo>& volumes);
// Every property of one volume, then its replicas as a table.
std::string VolumeDetails(const VolumeInfo& volume);
// ADDRESS REPLICA MODE, one row per replica.
std::string ReplicasTable(const std::vector<ReplicaInfo>& replicas);

// {"name", "parent", "created", "user_created", "size_held", "removed"}
boost::json::object SnapshotToJson(const SnapshotInfo& snapshot);
// NAME PARENT CREATED HELD TYPE REMOVED, one row per snapshot, in order.
std::string SnapshotsTable(const std::vector<SnapshotInfo>& snapshots);

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

class Output {
 public:
  // `progress`: a terminal to redraw progress lines on, or null for none.
  Output(std::ostream& out, bool json, std::ostream* progress = nullptr)
      : out_(out), json_(json), progress_(progress) {}
  bool json() const { return json_; }
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
  bool progress_drawn_ = false;
};

}  // namespace shorthorn::ctl
