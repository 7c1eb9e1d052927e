// The fixture of the D-Bus service tests (dbus_service_test.cc,
// dbus_job_test.cc): a private dbus-daemon, DbusService over a
// FakeVolumeManager (the test's uid allowed to change things, fused.conf's
// replicads being kConfiguredReplicad and its backup-target
// kConfiguredTarget), client proxies
// for the root and the Manager, and a log of the ObjectManager signals
// ("added <path>", "removed <path>" for volume and job objects). Helpers
// return the D-Bus error name of a failing call and record PropertiesChanged
// and other signals of a proxy as text to wait for.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "fused/dbus/dbus_names.h"
#include "fused/dbus/dbus_service.h"
#include "tests/unit/fused/fake_volume_manager.h"
#include "tests/unit/fused/private_bus.h"

namespace shorthorn::fused::dbus {

using ManagedObjects =
    std::map<sdbus::ObjectPath, std::map<std::string, std::map<std::string, sdbus::Variant>>>;
using DbusOptionsArg = std::map<std::string, sdbus::Variant>;

inline constexpr char kObjectManager[] = "org.freedesktop.DBus.ObjectManager";
inline constexpr char kProperties[] = "org.freedesktop.DBus.Properties";
inline constexpr uint64_t kGiB = 1ull << 30;
// The replicad the service's options list as fused.conf's `replicads`.
inline constexpr char kConfiguredReplicad[] = "127.0.0.1:9500";
// The backup target the service's options give as fused.conf's backup-target.
inline constexpr char kConfiguredTarget[] = "file:///var/lib/shorthorn/backups";

inline std::string PolicyFile() {
  return std::string(SHORTHORN_DBUS_XML_DIR) + "/org.shorthorn.Storage1.conf";
}

// Signals seen by a client, with a way to wait for one.
class SignalLog {
 public:
  void Add(std::string entry) {
    std::lock_guard lock(mu_);
    entries_.push_back(std::move(entry));
    cv_.notify_all();
  }
  bool WaitFor(const std::string& entry) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(5), [&] {
      return std::find(entries_.begin(), entries_.end(), entry) != entries_.end();
    });
  }
  std::vector<std::string> entries() {
    std::lock_guard lock(mu_);
    return entries_;
  }
  size_t Count(const std::string& entry) {
    std::lock_guard lock(mu_);
    return std::count(entries_.begin(), entries_.end(), entry);
  }
  // The position of the first `entry`, or -1.
  long IndexOf(const std::string& entry) {
    std::lock_guard lock(mu_);
    auto it = std::find(entries_.begin(), entries_.end(), entry);
    return it == entries_.end() ? -1 : it - entries_.begin();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> entries_;
};

// "Name=value" for string, integer, double and boolean properties, "Name"
// for the rest.
inline std::string DescribeProperty(const std::string& name, const sdbus::Variant& value) {
  std::ostringstream text;
  text << name;
  if (value.containsValueOfType<std::string>()) {
    text << "=" << value.get<std::string>();
  } else if (value.containsValueOfType<uint64_t>()) {
    text << "=" << value.get<uint64_t>();
  } else if (value.containsValueOfType<double>()) {
    text << "=" << value.get<double>();
  } else if (value.containsValueOfType<bool>()) {
    text << "=" << (value.get<bool>() ? "true" : "false");
  }
  return text.str();
}

// Records every PropertiesChanged of `proxy` in `log` (DescribeProperty).
// Call before proxy->finishRegistration().
inline void LogPropertiesChanged(sdbus::IProxy& proxy, SignalLog& log) {
  proxy.uponSignal("PropertiesChanged")
      .onInterface(kProperties)
      .call([&log](const std::string& iface, const std::map<std::string, sdbus::Variant>& changed,
                   const std::vector<std::string>&) {
        for (const auto& [name, value] : changed) log.Add(DescribeProperty(name, value));
      });
}

class DbusServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    if (!bus_.Start(PolicyFile(), /*anyone_may_own=*/true, &error)) {
      GTEST_SKIP() << "no private dbus-daemon: " << error;
    }
    ASSERT_NO_FATAL_FAILURE(StartService(DefaultOptions()));
    manager_ = sdbus::createProxy(kBusName, kManagerPath);
    root_ = sdbus::createProxy(kBusName, kRootPath);
    root_->uponSignal("InterfacesAdded")
        .onInterface(kObjectManager)
        .call([this](const sdbus::ObjectPath& path,
                     const std::map<std::string, std::map<std::string, sdbus::Variant>>& ifaces) {
          if (ifaces.count(kVolumeInterface) || ifaces.count(kJobInterface)) {
            log_.Add("added " + path);
          }
        });
    root_->uponSignal("InterfacesRemoved")
        .onInterface(kObjectManager)
        .call([this](const sdbus::ObjectPath& path, const std::vector<std::string>& ifaces) {
          for (const auto& i : ifaces) {
            if (i == kVolumeInterface || i == kJobInterface) log_.Add("removed " + path);
          }
        });
    root_->finishRegistration();
  }

  // The test's uid may change things (so the test needs no root) and
  // fused.conf lists one replicad, kConfiguredReplicad.
  static DbusServiceOptions DefaultOptions() {
    DbusServiceOptions options;
    options.admin.extra_uids = {geteuid()};
    options.admin.replicads = {kConfiguredReplicad};
    options.admin.backup_target = kConfiguredTarget;
    return options;
  }

  // Stops the running service, if any, and starts one with `options` over
  // the same fake; the proxies keep working (they call the bus name).
  void StartService(const DbusServiceOptions& options) {
    if (service_) service_->Stop();
    service_ = std::make_unique<DbusService>(fake_, options);
    Status started = service_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
  }

  void TearDown() override {
    root_.reset();
    manager_.reset();
    if (service_) service_->Stop();
  }

  sdbus::ObjectPath Create(const std::string& name, uint64_t size, DbusOptionsArg options = {}) {
    sdbus::ObjectPath path;
    manager_->callMethod("CreateVolume")
        .onInterface(kManagerInterface)
        .withArguments(name, size, std::vector<std::string>{kConfiguredReplicad}, options)
        .storeResultsTo(path);
    return path;
  }

  // The D-Bus error name `call` fails with, "" if it succeeds.
  template <typename F>
  std::string ErrorOf(F&& call, std::string* message = nullptr) {
    try {
      call();
    } catch (const sdbus::Error& e) {
      if (message) *message = e.getMessage();
      return e.getName();
    }
    return "";
  }

  ManagedObjects GetManagedObjects() {
    ManagedObjects objects;
    root_->callMethod("GetManagedObjects").onInterface(kObjectManager).storeResultsTo(objects);
    return objects;
  }

  testing::PrivateBus bus_;
  FakeVolumeManager fake_;
  std::unique_ptr<DbusService> service_;
  std::unique_ptr<sdbus::IProxy> manager_;
  std::unique_ptr<sdbus::IProxy> root_;
  SignalLog log_;
};

}  // namespace shorthorn::fused::dbus
