// FakeVolumeManager: an in-memory VolumeManager for tests of the D-Bus
// adapter. Volumes are records in a map; Attach "attaches" by filling in a
// made-up FUSE path and loop device. The listener is called after every
// change, with the lock released, on the calling thread. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/names.h"
#include "fused/core/volume_manager.h"

namespace shorthorn::fused {

class FakeVolumeManager : public VolumeManager {
 public:
  std::vector<VolumeInfo> ListVolumes() override {
    std::lock_guard lock(mu_);
    std::vector<VolumeInfo> out;
    for (const auto& [name, info] : volumes_) out.push_back(info);
    return out;
  }

  Result<VolumeInfo> GetVolume(const std::string& name) override {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(name);
    if (it == volumes_.end()) return NotFound(name);
    return it->second;
  }

  Status CreateVolume(const std::string& name, uint64_t size,
                      const std::vector<std::string>& replicas, const Options& options) override {
    SH_RETURN_IF_ERROR(ValidateName("volume", name));
    if (size == 0) return Status(ErrorKind::kInvalidArgument, "create volume " + name + ": size 0");
    VolumeInfo info;
    info.name = name;
    info.size = size;
    info.state = "detached";
    for (size_t i = 0; i < replicas.size(); ++i) {
      info.replicas.push_back({replicas[i], name + "-r" + std::to_string(i), ""});
    }
    {
      std::lock_guard lock(mu_);
      last_options_ = options;
      if (volumes_.count(name)) {
        return Status(ErrorKind::kAlreadyExists, "create volume " + name + ": already exists");
      }
      volumes_[name] = info;
    }
    Notify([&](VolumeListener* l) { l->VolumeAdded(info); });
    return Status::Ok();
  }

  Status DeleteVolume(const std::string& name, const Options& options) override {
    {
      std::lock_guard lock(mu_);
      auto it = volumes_.find(name);
      if (it == volumes_.end()) return NotFound(name);
      if (it->second.state == "attached") {
        return Status(ErrorKind::kBusy, "delete volume " + name + ": attached");
      }
      volumes_.erase(it);
    }
    Notify([&](VolumeListener* l) { l->VolumeRemoved(name); });
    return Status::Ok();
  }

  Result<std::string> Attach(const std::string& name, const Options& options) override {
    std::string frontend = "block";
    if (auto it = options.find("frontend"); it != options.end()) {
      const auto* text = std::get_if<std::string>(&it->second);
      if (!text || (*text != "block" && *text != "file")) {
        return Status(ErrorKind::kInvalidArgument, "attach volume " + name + ": bad frontend");
      }
      frontend = *text;
    }
    VolumeInfo info;
    {
      std::lock_guard lock(mu_);
      auto it = volumes_.find(name);
      if (it == volumes_.end()) return NotFound(name);
      if (it->second.state == "attached") {
        return Status(ErrorKind::kBusy, "attach volume " + name + ": already attached");
      }
      it->second.state = "attached";
      it->second.frontend_path = "/run/shorthorn/volumes/" + name;
      it->second.loop_device = frontend == "block" ? "/dev/loop7" : "";
      for (auto& r : it->second.replicas) r.mode = "RW";
      info = it->second;
    }
    Notify([&](VolumeListener* l) { l->VolumeChanged(info); });
    return frontend == "block" ? info.loop_device : info.frontend_path;
  }

  Status Detach(const std::string& name, const Options& options) override {
    VolumeInfo info;
    {
      std::lock_guard lock(mu_);
      auto it = volumes_.find(name);
      if (it == volumes_.end()) return NotFound(name);
      it->second.state = "detached";
      it->second.frontend_path.clear();
      it->second.loop_device.clear();
      for (auto& r : it->second.replicas) r.mode.clear();
      info = it->second;
    }
    Notify([&](VolumeListener* l) { l->VolumeChanged(info); });
    return Status::Ok();
  }

  void SetListener(VolumeListener* listener) override {
    std::lock_guard lock(mu_);
    listener_ = listener;
  }

  // Test hook: changes the state as a replica failure would, reporting it
  // on the calling thread.
  void SetState(const std::string& name, const std::string& state) {
    VolumeInfo info;
    {
      std::lock_guard lock(mu_);
      auto& v = volumes_.at(name);
      v.state = state;
      info = v;
    }
    Notify([&](VolumeListener* l) { l->VolumeChanged(info); });
  }

  Options last_options() {
    std::lock_guard lock(mu_);
    return last_options_;
  }

 private:
  static Status NotFound(const std::string& name) {
    return Status(ErrorKind::kNotFound, "volume " + name + ": no such volume");
  }

  template <typename F>
  void Notify(F&& f) {
    VolumeListener* listener;
    {
      std::lock_guard lock(mu_);
      listener = listener_;
    }
    if (listener) f(listener);
  }

  std::mutex mu_;
  std::map<std::string, VolumeInfo> volumes_;
  VolumeListener* listener_ = nullptr;
  Options last_options_;
};

}  // namespace shorthorn::fused
