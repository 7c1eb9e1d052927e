// Design notes: volumes are found by their Name property in one
// GetManagedObjects call rather than by escaping the name into an object
// path, so the client does not depend on the escaping rule and a missing
// volume is a NotFound with a plain message, not UnknownObject. Mutating calls
// get a long timeout (attach may wait on replicas' connect timeouts; sd-bus's
// default of 25 s could expire first and report a failure for an attach that
// then succeeds). Every sdbus::Error is caught at this edge; messages of
// org.shorthorn.Storage1.Error.* are passed on as is, the bus's own errors get
// a hint in front.
#include "dbus/ctl/dbus_client.h"

#include <algorithm>
#include <chrono>
#include <map>

#include <sdbus-c++/sdbus-c++.h>

#include "dbus/ctl/exit_codes.h"

namespace shorthorn::ctl {
namespace {

constexpr char kBusName[] = "org.shorthorn.Storage1";
constexpr char kRootPath[] = "/org/shorthorn/Storage1";
constexpr char kManagerPath[] = "/org/shorthorn/Storage1/Manager";
constexpr char kManagerInterface[] = "org.shorthorn.Storage1.Manager";
constexpr char kVolumeInterface[] = "org.shorthorn.Storage1.Volume";
constexpr char kObjectManagerInterface[] = "org.freedesktop.DBus.ObjectManager";
constexpr char kPropertiesInterface[] = "org.freedesktop.DBus.Properties";
constexpr char kShorthornErrorPrefix[] = "org.shorthorn.Storage1.Error.";
constexpr auto kChangeTimeout = std::chrono::minutes(5);

using Properties = std::map<std::string, sdbus::Variant>;
using ManagedObjects = std::map<sdbus::ObjectPath, std::map<std::string, Properties>>;
using ReplicaStruct = sdbus::Struct<std::string, std::string, std::string>;

Status FromDbusError(const sdbus::Error& e, const std::string& what) {
  ErrorKind kind = KindForDbusError(e.getName());
  if (e.getName().starts_with(kShorthornErrorPrefix)) return Status(kind, e.getMessage());
  std::string message = what + ": " + e.getMessage() + " (" + e.getName() + ")";
  if (e.getName() == "org.freedesktop.DBus.Error.ServiceUnknown" ||
      e.getName() == "org.freedesktop.DBus.Error.NameHasNoOwner") {
    message = what + ": " + kBusName + " is not on the system bus; is shorthorn-fused running?";
  }
  return Status(kind, message);
}

// Runs `body`, turning whatever it throws into a Status.
template <typename Body>
Status Guard(const std::string& what, Body&& body) {
  try {
    body();
    return Status::Ok();
  } catch (const sdbus::Error& e) {
    return FromDbusError(e, what);
  } catch (const std::exception& e) {
    return Status(ErrorKind::kFailed, what + ": " + e.what());
  }
}

template <typename T>
T Property(const Properties& properties, const char* name) {
  auto it = properties.find(name);
  if (it == properties.end()) return T{};
  return it->second.get<T>();
}

VolumeInfo ToVolumeInfo(const std::string& path, const Properties& properties) {
  VolumeInfo v;
  v.object_path = path;
  v.name = Property<std::string>(properties, "Name");
  v.size = Property<uint64_t>(properties, "Size");
  v.state = Property<std::string>(properties, "State");
  v.frontend_path = Property<std::string>(properties, "FrontendPath");
  v.loop_device = Property<std::string>(properties, "LoopDevice");
  for (const ReplicaStruct& r : Property<std::vector<ReplicaStruct>>(properties, "Replicas")) {
    v.replicas.push_back({r.get<0>(), r.get<1>(), r.get<2>()});
  }
  return v;
}

}  // namespace

Result<std::unique_ptr<StorageClient>> DbusStorageClient::Connect() {
  std::unique_ptr<sdbus::IConnection> connection;
  Status s =
      Guard("connect to the system bus", [&] { connection = sdbus::createSystemBusConnection(); });
  if (!s.ok()) return Status(ErrorKind::kUnavailable, s.message());
  return std::unique_ptr<StorageClient>(new DbusStorageClient(std::move(connection)));
}

Result<std::vector<VolumeInfo>> DbusStorageClient::ListVolumes() {
  ManagedObjects objects;
  SH_RETURN_IF_ERROR(Guard("list volumes", [&] {
    auto proxy = sdbus::createProxy(*connection_, kBusName, kRootPath);
    proxy->callMethod("GetManagedObjects")
        .onInterface(kObjectManagerInterface)
        .storeResultsTo(objects);
  }));
  std::vector<VolumeInfo> volumes;
  Status converted = Guard("list volumes", [&] {
    for (const auto& [path, interfaces] : objects) {
      auto it = interfaces.find(kVolumeInterface);
      if (it != interfaces.end()) volumes.push_back(ToVolumeInfo(path, it->second));
    }
  });
  SH_RETURN_IF_ERROR(converted);
  std::sort(volumes.begin(), volumes.end(),
            [](const VolumeInfo& a, const VolumeInfo& b) { return a.name < b.name; });
  return volumes;
}

Result<VolumeInfo> DbusStorageClient::GetVolume(const std::string& operation,
                                                const std::string& name) {
  Result<std::vector<VolumeInfo>> volumes = ListVolumes();
  if (!volumes.ok()) return volumes.status();
  for (VolumeInfo& v : *volumes) {
    if (v.name == name) return std::move(v);
  }
  return Status(ErrorKind::kNotFound, operation + " volume " + name + ": it does not exist");
}

Result<VolumeInfo> DbusStorageClient::CreateVolume(const std::string& name, uint64_t size,
                                                   const std::vector<std::string>& replicas) {
  sdbus::ObjectPath path;
  Properties properties;
  SH_RETURN_IF_ERROR(Guard("create volume " + name, [&] {
    auto manager = sdbus::createProxy(*connection_, kBusName, kManagerPath);
    manager->callMethod("CreateVolume")
        .onInterface(kManagerInterface)
        .withTimeout(kChangeTimeout)
        .withArguments(name, size, replicas, Properties{})
        .storeResultsTo(path);
  }));
  SH_RETURN_IF_ERROR(Guard("read volume " + name, [&] {
    auto volume = sdbus::createProxy(*connection_, kBusName, path);
    volume->callMethod("GetAll")
        .onInterface(kPropertiesInterface)
        .withArguments(std::string(kVolumeInterface))
        .storeResultsTo(properties);
  }));
  VolumeInfo info;
  SH_RETURN_IF_ERROR(Guard("read volume " + name, [&] { info = ToVolumeInfo(path, properties); }));
  return info;
}

Status DbusStorageClient::DeleteVolume(const std::string& name, bool force) {
  Properties options;
  if (force) options["force"] = sdbus::Variant(true);
  return Guard("delete volume " + name, [&] {
    auto manager = sdbus::createProxy(*connection_, kBusName, kManagerPath);
    manager->callMethod("DeleteVolume")
        .onInterface(kManagerInterface)
        .withTimeout(kChangeTimeout)
        .withArguments(name, options);
  });
}

Result<std::string> DbusStorageClient::Attach(const std::string& name, Frontend frontend) {
  Result<VolumeInfo> volume = GetVolume("attach", name);
  if (!volume.ok()) return volume.status();
  Properties options;
  if (frontend == Frontend::kFile) options["frontend"] = sdbus::Variant(std::string("file"));
  std::string device;
  SH_RETURN_IF_ERROR(Guard("attach volume " + name, [&] {
    auto proxy = sdbus::createProxy(*connection_, kBusName, volume->object_path);
    proxy->callMethod("Attach")
        .onInterface(kVolumeInterface)
        .withTimeout(kChangeTimeout)
        .withArguments(options)
        .storeResultsTo(device);
  }));
  return device;
}

Status DbusStorageClient::Detach(const std::string& name) {
  Result<VolumeInfo> volume = GetVolume("detach", name);
  if (!volume.ok()) return volume.status();
  return Guard("detach volume " + name, [&] {
    auto proxy = sdbus::createProxy(*connection_, kBusName, volume->object_path);
    proxy->callMethod("Detach")
        .onInterface(kVolumeInterface)
        .withTimeout(kChangeTimeout)
        .withArguments(Properties{});
  });
}

}  // namespace shorthorn::ctl
