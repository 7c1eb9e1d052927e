// Design notes: VolumeService's recurring jobs (snapshots and backups on a
// schedule; the schedule syntax is fused/core/schedule.h, the record
// fused/core/registry.h).
//
//   RecurringLoop (one thread): every job whose NextRun is due and whose
//   volume has no run going ─► a run thread for that volume
//   Run:  snapshot "<job>-<UTC time>" (Snapshot, as an operator would)
//         ─► backup job: Backup of it, waited for; then the job's older
//            snapshots are deleted (the newest is the next incremental
//            backup's base), or the new one when the backup failed
//         ─► retention: the job's snapshots (backups) beyond the newest
//            `retain` deleted, each delete waited for
//         ─► last_run, last_failed, last_result saved in the registry
//
// A run is recorded when it ends, with the time it started: a fused that
// dies during a run runs the job again at start. One run per volume at a
// time, so a long backup delays only that volume's other jobs. A job's
// snapshots and backups are recognized by name alone: "<job>-" followed by
// YYYYMMDDTHHMMSSZ, which no other job's names can match (a job name has
// no such suffix of its own: the suffix would make it longer than 46).
#include <ctime>

#include "backup/format.h"
#include "backup/target.h"
#include "common/clock.h"
#include "common/log.h"
#include "fused/core/schedule.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {
namespace {

// A failed run is tried again after this long (or at its next slot, when
// that comes first).
constexpr std::time_t kRetrySeconds = 300;
// The loop looks again at least this often (a clock change, a new job).
constexpr std::chrono::seconds kLongestSleep{30};

// True when `name` is one of job `job`'s snapshots.
bool IsJobSnapshot(const std::string& job, const std::string& name) {
  if (name.size() != job.size() + 17 || name.compare(0, job.size(), job) != 0 ||
      name[job.size()] != '-') {
    return false;
  }
  const std::string_view stamp(name.data() + job.size() + 1, 16);
  for (size_t i = 0; i < stamp.size(); ++i) {
    const char c = stamp[i];
    if (i == 8 ? c != 'T' : i == 15 ? c != 'Z' : !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string Time(uint64_t unix_seconds) {
  return unix_seconds == 0 ? std::string() : Rfc3339(static_cast<std::time_t>(unix_seconds));
}

}  // namespace

bool IsRecurringJobSnapshot(const std::string& job, const std::string& snapshot) {
  return IsJobSnapshot(job, snapshot);
}

std::vector<RecurringJobInfo> VolumeService::RecurringInfosLocked(const VolumeRecord& record) {
  std::vector<RecurringJobInfo> out;
  for (const auto& j : record.recurring) {
    RecurringJobInfo info;
    info.name = j.name;
    info.kind = j.kind;
    info.schedule = j.schedule;
    info.retain = j.retain;
    info.target = j.target;
    info.last_run = Time(j.last_run);
    info.last_result = j.last_result;
    auto schedule = Schedule::Parse(j.schedule);
    if (schedule.ok()) {
      auto next = NextRun(*schedule, static_cast<std::time_t>(j.created),
                          static_cast<std::time_t>(j.last_run), j.last_failed, kRetrySeconds);
      // Due: it runs now (or as soon as the volume's run in progress ends).
      if (next) info.next_run = Rfc3339(std::max(*next, std::time(nullptr)));
    }
    out.push_back(std::move(info));
  }
  return out;
}

Status VolumeService::AddRecurringJob(const std::string& volume, const RecurringJobInfo& job,
                                      const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("AddRecurringJob", options, {"target"}));
  const std::string what = "add recurring job " + job.name + " to volume " + volume;
  RecurringJobRecord record;
  record.name = job.name;
  record.kind = job.kind;
  record.schedule = job.schedule;
  record.retain = job.retain;
  if (auto it = options.find("target"); it != options.end()) {
    const auto* s = std::get_if<std::string>(&it->second);
    if (s == nullptr) {
      return Status(ErrorKind::kInvalidArgument,
                    "AddRecurringJob: option 'target' must be a string");
    }
    auto target = backup::ParseTarget(*s);
    if (!target.ok()) return target.status().WithContext(what);
    record.target = target->url;
  }
  SH_RETURN_IF_ERROR(ValidateRecurringJob(what, record));
  record.schedule = Schedule::Parse(record.schedule)->text();  // trimmed
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* v = registry_.FindMutable(volume);
    if (v == nullptr) return Status(ErrorKind::kNotFound, what + ": the volume does not exist");
    Status busy;
    if (RestoringLocked(volume, what, &busy) || StandbyLocked(*v, what, &busy)) return busy;
    for (const auto& other : v->recurring) {
      if (other.name == record.name) {
        return Status(ErrorKind::kAlreadyExists, what + ": the volume has a job of that name");
      }
    }
    if (v->recurring.size() >= kMaxRecurringJobs) {
      return Status(ErrorKind::kLimitExceeded, what + ": the volume has " +
                                                   std::to_string(kMaxRecurringJobs) +
                                                   " recurring jobs already");
    }
    record.created = static_cast<uint64_t>(std::time(nullptr));
    v->recurring.push_back(record);
    Status saved = registry_.Save();
    if (!saved.ok()) {
      v->recurring.pop_back();
      return saved.WithContext(what);
    }
  }
  {
    std::lock_guard lock(recurring_mutex_);
    recurring_wake_ = true;
  }
  LogInfo("volume " + volume + ": recurring job " + record.name + " added (" + record.kind + ", '" +
          record.schedule + "', retain " + std::to_string(record.retain) +
          (record.target.empty() ? "" : ", target " + record.target) + ")");
  recurring_cv_.notify_all();
  NotifyChanged(volume);
  return Status::Ok();
}

Status VolumeService::RemoveRecurringJob(const std::string& volume, const std::string& job,
                                         const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("RemoveRecurringJob", options, {}));
  const std::string what = "remove recurring job " + job + " of volume " + volume;
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* v = registry_.FindMutable(volume);
    if (v == nullptr) return Status(ErrorKind::kNotFound, what + ": the volume does not exist");
    auto it = std::find_if(v->recurring.begin(), v->recurring.end(),
                           [&job](const RecurringJobRecord& j) { return j.name == job; });
    if (it == v->recurring.end()) {
      return Status(ErrorKind::kNotFound, what + ": the volume has no job of that name");
    }
    RecurringJobRecord removed = *it;
    const size_t index = static_cast<size_t>(it - v->recurring.begin());
    v->recurring.erase(it);
    Status saved = registry_.Save();
    if (!saved.ok()) {
      v->recurring.insert(v->recurring.begin() + static_cast<std::ptrdiff_t>(index), removed);
      return saved.WithContext(what);
    }
  }
  LogInfo("volume " + volume + ": recurring job " + job + " removed");
  NotifyChanged(volume);
  return Status::Ok();
}

void VolumeService::RecurringLoop() {
  std::unique_lock lock(recurring_mutex_);
  while (!recurring_stopping_) {
    // Join the runs that ended.
    for (auto it = recurring_runs_.begin(); it != recurring_runs_.end();) {
      if (it->second.done->load()) {
        it->second.thread.join();
        it = recurring_runs_.erase(it);
      } else {
        ++it;
      }
    }
    const std::time_t now = std::time(nullptr);
    std::time_t wake = now + kLongestSleep.count();
    // volume -> the job due first
    std::map<std::string, std::pair<std::time_t, RecurringJobRecord>> due;
    {
      lock.unlock();
      std::lock_guard registry_lock(mutex_);
      for (const auto& [name, record] : registry_.volumes()) {
        for (const auto& j : record.recurring) {
          auto schedule = Schedule::Parse(j.schedule);
          if (!schedule.ok()) continue;  // the registry checks it at load
          auto next = NextRun(*schedule, static_cast<std::time_t>(j.created),
                              static_cast<std::time_t>(j.last_run), j.last_failed, kRetrySeconds);
          if (!next) continue;
          if (*next > now) {
            wake = std::min(wake, *next);
            continue;
          }
          auto d = due.find(name);
          if (d == due.end() || *next < d->second.first) due[name] = {*next, j};
        }
      }
      lock.lock();
    }
    if (recurring_stopping_) break;
    for (auto& [volume, entry] : due) {
      if (recurring_runs_.count(volume) != 0) continue;  // its turn comes when that run ends
      auto done = std::make_shared<std::atomic<bool>>(false);
      RecurringJobRecord job = entry.second;
      std::thread thread([this, volume, job, done] {
        RunRecurring(volume, job);
        done->store(true);
        recurring_cv_.notify_all();
      });
      recurring_runs_.emplace(volume, RecurringRun{std::move(thread), done});
    }
    bool any_ended = false;
    recurring_cv_.wait_until(lock, std::chrono::system_clock::from_time_t(wake),
                             [this, &any_ended] {
                               for (const auto& [v, run] : recurring_runs_)
                                 any_ended = any_ended || run.done->load();
                               return recurring_stopping_ || recurring_wake_ || any_ended;
                             });
    recurring_wake_ = false;
  }
  for (auto& [volume, run] : recurring_runs_) run.thread.join();
  recurring_runs_.clear();
}

bool VolumeService::RecurringStopping() {
  std::lock_guard lock(recurring_mutex_);
  return recurring_stopping_;
}

void VolumeService::StopRecurring() {
  {
    std::lock_guard lock(recurring_mutex_);
    recurring_stopping_ = true;
  }
  recurring_cv_.notify_all();
  if (recurring_thread_.joinable()) recurring_thread_.join();
}

Result<JobInfo> VolumeService::WaitForJob(uint64_t id, const std::string& what) {
  for (;;) {
    auto info = jobs_.Get(id);
    if (!info.ok()) return info.status().WithContext(what);
    if (!JobActive(info->state)) return info;  // queued waits too
    std::unique_lock lock(recurring_mutex_);
    if (recurring_cv_.wait_for(lock, std::chrono::milliseconds(200),
                               [this] { return recurring_stopping_; })) {
      return Status(ErrorKind::kFailed, what + ": shorthorn-fused is stopping");
    }
  }
}

Status VolumeService::DeleteJobSnapshots(const std::string& volume, const std::string& job,
                                         size_t keep, const std::string& except,
                                         std::string* summary) {
  std::vector<std::string> names;
  {
    std::lock_guard lock(mutex_);
    const VolumeRecord* record = registry_.Find(volume);
    if (record == nullptr) return Status(ErrorKind::kNotFound, "the volume was deleted");
    for (const auto& s : record->snapshots) {
      if (!s.removed && s.name != except && IsJobSnapshot(job, s.name)) names.push_back(s.name);
    }
  }
  // The time stamps sort as text: oldest first.
  std::sort(names.begin(), names.end());
  if (names.size() <= keep) return Status::Ok();
  names.resize(names.size() - keep);
  size_t deleted = 0;
  for (const auto& name : names) {
    const std::string what = "delete snapshot " + name;
    auto id = DeleteSnapshot(volume, name, {});
    if (!id.ok()) return id.status();
    auto ended = WaitForJob(*id, what);
    if (!ended.ok()) return ended.status();
    if (ended->state != JobState::kCompleted) {
      return Status(ErrorKind::kFailed,
                    what + ": " + JobStateName(ended->state) + ": " + ended->message);
    }
    ++deleted;
  }
  *summary += ", deleted " + std::to_string(deleted) + " old snapshot(s)";
  return Status::Ok();
}

Status VolumeService::DeleteJobBackups(const std::string& volume, const RecurringJobRecord& job,
                                       std::string* summary) {
  auto listed = ListBackups(job.target, volume, {});
  if (!listed.ok()) return listed.status();
  std::vector<BackupInfo> mine;
  for (const auto& b : *listed) {
    if (IsJobSnapshot(job.name, b.snapshot)) mine.push_back(b);
  }
  // Oldest first, by the time in their snapshot's name (the list is
  // already, but a clock step back must not make us delete the newest).
  std::sort(mine.begin(), mine.end(),
            [](const BackupInfo& a, const BackupInfo& b) { return a.snapshot < b.snapshot; });
  if (mine.size() <= job.retain) return Status::Ok();
  mine.resize(mine.size() - job.retain);
  size_t deleted = 0;
  for (const auto& b : mine) {
    const std::string what = "delete backup " + b.name;
    auto id = DeleteBackup(b.url, {});
    if (!id.ok()) return id.status();
    auto ended = WaitForJob(*id, what);
    if (!ended.ok()) return ended.status();
    if (ended->state != JobState::kCompleted) {
      return Status(ErrorKind::kFailed, what + ": " + ended->message);
    }
    ++deleted;
  }
  *summary += ", deleted " + std::to_string(deleted) + " old backup(s)";
  return Status::Ok();
}

void VolumeService::RunRecurring(const std::string& volume, const RecurringJobRecord& job) {
  const std::time_t start = std::time(nullptr);
  const std::string snapshot = job.name + "-" + CompactUtc(start);
  const std::string what = "recurring job " + job.name + " of volume " + volume;
  std::string summary = "snapshot " + snapshot;
  Status result = Snapshot(volume, snapshot, {});
  if (result.ok() && job.kind == "backup") {
    Options options;
    if (!job.target.empty()) options["target"] = job.target;
    auto id = Backup(volume, snapshot, options);
    Result<JobInfo> ended =
        id.ok() ? WaitForJob(*id, "back up snapshot " + snapshot) : Result<JobInfo>(id.status());
    if (ended.ok() && ended->state != JobState::kCompleted) {
      ended = Status(ErrorKind::kFailed, "backup of snapshot " + snapshot + " " +
                                             JobStateName(ended->state) + ": " + ended->message);
    }
    if (ended.ok()) {
      summary = "backup " + ended->message;
      // The newest snapshot is the base of the next incremental backup;
      // the older ones served their backups.
      result = DeleteJobSnapshots(volume, job.name, 0, snapshot, &summary);
      if (result.ok()) result = DeleteJobBackups(volume, job, &summary);
    } else {
      result = ended.status();
      // Without its backup the snapshot is of no use; the previous one
      // stays the base.
      if (!RecurringStopping()) {
        auto id = DeleteSnapshot(volume, snapshot, {});
        if (id.ok()) (void)WaitForJob(*id, "delete snapshot " + snapshot);
      }
    }
  } else if (result.ok()) {
    result = DeleteJobSnapshots(volume, job.name, job.retain, "", &summary);
  }
  const std::string outcome = result.ok() ? "ok: " + summary : "failed: " + result.message();
  if (result.ok()) {
    LogInfo(what + ": " + outcome);
  } else {
    LogWarning(what + ": " + outcome + "; tried again at its next slot or in " +
               std::to_string(kRetrySeconds) + " s");
  }
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* v = registry_.FindMutable(volume);
    if (v == nullptr) return;
    for (auto& j : v->recurring) {
      // Removed (and maybe added again) meanwhile: not this run's job.
      if (j.name != job.name || j.created != job.created) continue;
      j.last_run = static_cast<uint64_t>(start);
      j.last_failed = !result.ok();
      j.last_result = outcome;
      Status saved = registry_.Save();
      if (!saved.ok()) LogError(what + ": " + saved.message());
    }
  }
  NotifyChanged(volume);
}

}  // namespace shorthorn::fused
