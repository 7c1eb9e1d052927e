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
  Result<VolumeInfo> ImportVolume(const std::string& name,
                                  const std::vector<std::string>& replicads) override;
  Result<VolumeInfo> CreateVolume(const std::string& name, uint64_t size,
                                  const std::vector<std::string>& replicas,
                                  const CreateOptions& options) override;
  Status DeleteVolume(const std::string& name, bool force) override;
  Result<std::string> Attach(const std::string& name, const AttachOptions& options) override;
  Status Detach(const std::string& name) override;
  Status Expand(const std::string& name, uint64_t size) override;
  Result<std::string> Verify(const std::string& name) override;
  Result<std::string> Scrub(const std::string& name) override;
  Status SetReplicaCount(const std::string& name, uint32_t count) override;
  Status Rebuild(const std::string& name) override;
  Status CreateSnapshot(const std::string& volume, const std::string& snapshot) override;
  Result<std::string> DeleteSnapshot(const std::string& volume,
                                     const std::string& snapshot) override;
  Status RevertSnapshot(const std::string& volume, const std::string& snapshot) override;
  Result<std::string> CreateBackup(const std::string& volume, const std::string& snapshot,
                                   const std::string& target) override;
  Result<std::vector<BackupInfo>> ListBackups(const std::string& target,
                                              const std::string& volume) override;
  Result<std::string> DeleteBackup(const std::string& url) override;
  Result<std::string> RestoreVolume(const std::string& name, const std::string& url,
                                    const std::vector<std::string>& replicas,
                                    std::optional<uint32_t> replica_count,
                                    const std::string& replica_tags) override;
  Result<std::string> CreateStandbyVolume(const std::string& name, const std::string& source,
                                          const std::vector<std::string>& replicas,
                                          std::optional<uint32_t> replica_count,
                                          const std::string& replica_tags,
                                          std::optional<uint32_t> poll_interval) override;
  Status Activate(const std::string& name, bool force) override;
  Status AddRecurringJob(const std::string& volume, const RecurringJobInfo& job) override;
  Status RemoveRecurringJob(const std::string& volume, const std::string& job) override;
  Result<std::vector<JobInfo>> ListJobs() override;
  Result<JobInfo> GetJob(const std::string& operation, const std::string& path) override;
  Result<JobInfo> WatchJob(const std::string& path, std::chrono::milliseconds interval) override;
  Status CancelJob(const std::string& path) override;
  Result<std::vector<ReplicadInfo>> ListReplicads() override;
  Result<std::string> DrainReplicad(const std::string& address) override;
  Status UndrainReplicad(const std::string& address) override;

 private:
  explicit DbusStorageClient(std::unique_ptr<sdbus::IConnection> connection)
      : connection_(std::move(connection)) {}

  // The object path of volume `name`; NotFound naming `operation` when none.
  Result<std::string> VolumePath(const std::string& operation, const std::string& name);
  // The job's properties, without the volume's name.
  Result<JobInfo> ReadJob(const std::string& operation, const std::string& path);
  // The Name of the volume at `path`; "" when there is none (any more).
  std::string VolumeNameAt(const std::string& path);

  std::unique_ptr<sdbus::IConnection> connection_;
};

}  // namespace shorthorn::ctl
