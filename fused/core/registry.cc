#include "fused/core/registry.h"

#include <boost/json.hpp>

#include "common/file_util.h"
#include "common/names.h"
#include "common/net.h"
#include "fused/core/schedule.h"

namespace shorthorn::fused {
namespace json = boost::json;

namespace {
constexpr int64_t kFormat = 1;
constexpr uint64_t kSectorSize = 4096;
}  // namespace

Status ValidateNewVolume(const std::string& name, uint64_t size) {
  SH_RETURN_IF_ERROR(ValidateName("volume", name));
  if (size == 0) {
    return Status(ErrorKind::kInvalidArgument, "create volume " + name + ": size is 0");
  }
  if (size % kSectorSize != 0) {
    return Status(
        ErrorKind::kInvalidArgument,
        "create volume " + name + ": size " + std::to_string(size) + " is not a multiple of 4096");
  }
  return Status::Ok();
}

Status ValidateRecurringJob(const std::string& what, const RecurringJobRecord& job) {
  auto bad = [&what](const std::string& why) {
    return Status(ErrorKind::kInvalidArgument, what + ": " + why);
  };
  Status name = ValidateName("recurring job", job.name);
  if (!name.ok()) return bad(name.message());
  if (job.name.size() > kMaxRecurringJobName) {
    return bad("recurring job name " + job.name + " is longer than " +
               std::to_string(kMaxRecurringJobName) + " characters (its snapshots add 17)");
  }
  if (job.kind != "snapshot" && job.kind != "backup") {
    return bad("kind \"" + job.kind + "\" is not snapshot or backup");
  }
  if (job.retain < 1 || job.retain > kMaxRecurringRetain) {
    return bad("retain " + std::to_string(job.retain) + " is not in 1.." +
               std::to_string(kMaxRecurringRetain));
  }
  if (!job.target.empty() && job.kind != "backup") {
    return bad("a target is only for a backup job");
  }
  auto schedule = Schedule::Parse(job.schedule);
  if (!schedule.ok()) return bad(schedule.status().message());
  return Status::Ok();
}

const VolumeRecord* Registry::Find(const std::string& name) const {
  auto it = volumes_.find(name);
  return it == volumes_.end() ? nullptr : &it->second;
}

VolumeRecord* Registry::FindMutable(const std::string& name) {
  auto it = volumes_.find(name);
  return it == volumes_.end() ? nullptr : &it->second;
}

std::string Registry::Encode() const {
  json::array list;
  for (const auto& [name, v] : volumes_) {
    json::array replicas;
    for (const auto& r : v.replicas) replicas.push_back({{"address", r.address}, {"name", r.name}});
    json::array snapshots;
    for (const auto& sn : v.snapshots) {
      snapshots.push_back({{"name", sn.name},
                           {"parent", sn.parent},
                           {"created", sn.created},
                           {"user_created", sn.user_created},
                           {"size_held", sn.size_held},
                           {"removed", sn.removed}});
    }
    json::array stale;
    for (const auto& r : v.stale) {
      stale.push_back({{"address", r.address}, {"name", r.name}, {"since", r.since}});
    }
    list.push_back({{"name", v.name},
                    {"replica_count", v.replica_count},
                    {"stale", stale},
                    {"size", v.size},
                    {"epoch", v.epoch},
                    {"replicas", replicas},
                    {"actual_size", v.actual_size},
                    {"snapshots", snapshots}});
    if (!v.attach_frontend.empty()) list.back().as_object()["attach"] = v.attach_frontend;
    if (v.standby) {
      const StandbyRecord& sb = *v.standby;
      list.back().as_object()["standby"] = {{"target", sb.target},
                                            {"source", sb.source},
                                            {"interval", sb.interval},
                                            {"last_backup", sb.last_backup},
                                            {"last_backup_created", sb.last_backup_created},
                                            {"last_restored_at", sb.last_restored_at}};
      if (sb.activated) list.back().as_object()["standby"].as_object()["activated"] = true;
    }
    if (!v.recurring.empty()) {
      json::array jobs;
      for (const auto& j : v.recurring) {
        jobs.push_back({{"name", j.name},
                        {"kind", j.kind},
                        {"schedule", j.schedule},
                        {"retain", j.retain},
                        {"target", j.target},
                        {"created", j.created},
                        {"last_run", j.last_run},
                        {"last_failed", j.last_failed},
                        {"last_result", j.last_result}});
      }
      list.back().as_object()["recurring"] = std::move(jobs);
    }
    if (!v.replica_tags.empty()) {
      json::array tags;
      for (const auto& t : v.replica_tags) tags.push_back(json::string(t));
      list.back().as_object()["replica_tags"] = std::move(tags);
    }
  }
  json::object doc{{"format", kFormat}, {"volumes", list}};
  if (!draining_.empty()) {
    json::array draining;
    for (const auto& a : draining_) draining.push_back(json::string(a));
    doc["draining"] = std::move(draining);
  }
  return json::serialize(doc) + "\n";
}

Status Registry::Decode(const std::string& text) {
  auto bad = [this](const std::string& why) {
    return Status(ErrorKind::kFailed, "read registry " + path_ + ": " + why);
  };
  try {
    json::value doc = json::parse(text);
    const json::object& root = doc.as_object();
    if (root.at("format").to_number<int64_t>() != kFormat) return bad("unknown format version");
    std::map<std::string, VolumeRecord> volumes;
    for (const auto& item : root.at("volumes").as_array()) {
      const json::object& o = item.as_object();
      VolumeRecord v;
      v.name = json::value_to<std::string>(o.at("name"));
      v.size = o.at("size").to_number<uint64_t>();
      v.epoch = o.at("epoch").to_number<uint64_t>();
      for (const auto& r : o.at("replicas").as_array()) {
        v.replicas.push_back({json::value_to<std::string>(r.at("address")),
                              json::value_to<std::string>(r.at("name"))});
      }
      if (auto* a = o.if_contains("actual_size")) v.actual_size = a->to_number<uint64_t>();
      if (auto* a = o.if_contains("attach")) {
        v.attach_frontend = json::value_to<std::string>(*a);
        if (v.attach_frontend != "block" && v.attach_frontend != "file") {
          return bad("volume " + v.name + ": attach \"" + v.attach_frontend +
                     "\" is not block or file");
        }
      }
      v.replica_count = static_cast<uint32_t>(v.replicas.size());
      if (auto* c = o.if_contains("replica_count")) v.replica_count = c->to_number<uint32_t>();
      if (auto* list = o.if_contains("stale")) {
        for (const auto& r : list->as_array()) {
          v.stale.push_back({json::value_to<std::string>(r.at("address")),
                             json::value_to<std::string>(r.at("name")),
                             r.at("since").to_number<uint64_t>()});
        }
      }
      if (auto* list = o.if_contains("snapshots")) {
        for (const auto& item : list->as_array()) {
          const json::object& sn = item.as_object();
          SnapshotInfo info;
          info.name = json::value_to<std::string>(sn.at("name"));
          info.parent = json::value_to<std::string>(sn.at("parent"));
          info.created = json::value_to<std::string>(sn.at("created"));
          info.user_created = sn.at("user_created").as_bool();
          info.size_held = sn.at("size_held").to_number<uint64_t>();
          info.removed = sn.at("removed").as_bool();
          v.snapshots.push_back(std::move(info));
        }
      }
      if (auto* sb = o.if_contains("standby")) {
        const json::object& j = sb->as_object();
        StandbyRecord standby;
        standby.target = json::value_to<std::string>(j.at("target"));
        standby.source = json::value_to<std::string>(j.at("source"));
        standby.interval = j.at("interval").to_number<uint64_t>();
        standby.last_backup = json::value_to<std::string>(j.at("last_backup"));
        standby.last_backup_created = json::value_to<std::string>(j.at("last_backup_created"));
        standby.last_restored_at = j.at("last_restored_at").to_number<uint64_t>();
        if (auto* a = j.if_contains("activated")) standby.activated = a->as_bool();
        if (standby.interval < kMinStandbyInterval || standby.interval > kMaxStandbyInterval) {
          return bad("volume " + v.name + ": standby interval " + std::to_string(standby.interval) +
                     " is out of range");
        }
        Status source = ValidateName("volume", standby.source);
        if (!source.ok()) return bad("volume " + v.name + ": standby source: " + source.message());
        v.standby = std::move(standby);
      }
      if (auto* list = o.if_contains("recurring")) {
        for (const auto& item : list->as_array()) {
          const json::object& j = item.as_object();
          RecurringJobRecord job;
          job.name = json::value_to<std::string>(j.at("name"));
          job.kind = json::value_to<std::string>(j.at("kind"));
          job.schedule = json::value_to<std::string>(j.at("schedule"));
          job.retain = j.at("retain").to_number<uint32_t>();
          job.target = json::value_to<std::string>(j.at("target"));
          job.created = j.at("created").to_number<uint64_t>();
          job.last_run = j.at("last_run").to_number<uint64_t>();
          job.last_failed = j.at("last_failed").as_bool();
          job.last_result = json::value_to<std::string>(j.at("last_result"));
          Status valid = ValidateRecurringJob("volume " + v.name, job);
          if (!valid.ok()) return bad(valid.message());
          for (const auto& other : v.recurring) {
            if (other.name == job.name) {
              return bad("volume " + v.name + ": recurring job " + job.name + " twice");
            }
          }
          if (v.recurring.size() >= kMaxRecurringJobs) {
            return bad("volume " + v.name + ": more than " + std::to_string(kMaxRecurringJobs) +
                       " recurring jobs");
          }
          v.recurring.push_back(std::move(job));
        }
      }
      if (auto* list = o.if_contains("replica_tags")) {
        for (const auto& item : list->as_array()) {
          std::string tag = json::value_to<std::string>(item);
          Status valid = ValidateTag(tag);
          if (!valid.ok()) return bad("volume " + v.name + ": replica_tags: " + valid.message());
          v.replica_tags.push_back(std::move(tag));
        }
        if (v.replica_tags.size() > kMaxTags) {
          return bad("volume " + v.name + ": more than " + std::to_string(kMaxTags) +
                     " replica_tags");
        }
      }
      volumes[v.name] = std::move(v);
    }
    std::vector<std::string> draining;
    if (auto* list = root.if_contains("draining")) {
      for (const auto& item : list->as_array()) {
        std::string address = json::value_to<std::string>(item);
        Status valid = ParseHostPort(address).status();
        if (!valid.ok()) return bad("draining: " + valid.message());
        draining.push_back(std::move(address));
      }
    }
    volumes_ = std::move(volumes);
    draining_ = std::move(draining);
  } catch (const std::exception& e) {
    return bad(e.what());
  }
  return Status::Ok();
}

Status Registry::Load() {
  auto text = ReadFileToString(path_);
  if (!text.ok()) {
    if (text.status().kind() == ErrorKind::kNotFound) {
      volumes_.clear();
      return Status::Ok();
    }
    return text.status();
  }
  return Decode(*text);
}

Status Registry::Save() const { return WriteFileAtomic(path_, Encode()); }

}  // namespace shorthorn::fused
