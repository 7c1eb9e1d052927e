// DbusStorageClient: the StorageClient that calls org.shorthorn.Storage1 on
// the system bus (or on DBUS_SYSTEM_BUS_ADDRESS when set) with sdbus-c++
// proxies, as doc/dbus-api.md describes. It is the only part of shorthornctl
// that knows about D-Bus: object paths, interface names, a{sv} options and
// sdbus::Error, which it turns into a Status (KindForDbusError) keeping the
// daemon's message. Synchronous calls on one connection with no event loop
// thread; use from one thread.
#pragma once

#include <memory>

#include <sdbus-c++/IConnection.h>

#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl {

class DbusStorageClient : public StorageClient {
 public:
  // Opens the connection; Unavailable when there is no bus to connect to.
  static Result<std::unique_ptr<StorageClient>> Connect();

  Result<std::vector<VolumeInfo>> ListVolumes() override;
  Result<VolumeInfo> GetVolume(const std::string& operation, const std::string& name) override;
  Result<VolumeInfo> CreateVolume(const std::string& name, uint64_t size,
                                  const std::vector<std::string>& replicas) override;
  Status DeleteVolume(const std::string& name, bool force) override;
  Result<std::string> Attach(const std::string& name, Frontend frontend) override;
  Status Detach(const std::string& name) override;

 private:
  explicit DbusStorageClient(std::unique_ptr<sdbus::IConnection> connection)
      : connection_(std::move(connection)) {}

  std::unique_ptr<sdbus::IConnection> connection_;
};

}  // namespace shorthorn::ctl
