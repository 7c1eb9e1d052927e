#include "fused/core/registry.h"

#include <boost/json.hpp>

#include "common/file_util.h"
#include "common/names.h"

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
  }
  json::object doc{{"format", kFormat}, {"volumes", list}};
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
      volumes[v.name] = std::move(v);
    }
    volumes_ = std::move(volumes);
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
