// The snapshot members of org.shorthorn.Storage1.Volume and the Job objects,
// through DbusService over FakeVolumeManager on a private dbus-daemon:
// property values and PropertiesChanged, a job's object from the call that
// starts it to its InterfacesRemoved, the Completed signal (exactly once, after
// the final State), Cancel's authorization (busctl as uid 65534, as root
// only), and manager errors keeping their names.
#include <thread>

#include "tests/unit/fused/dbus_service_fixture.h"

namespace shorthorn::fused::dbus {
namespace {

using testing::RunCommand;
// (name, parent, created, user_created, size_held, removed)
using Snapshot = sdbus::Struct<std::string, std::string, std::string, bool, uint64_t, bool>;

const std::string kAsNobody = "setpriv --reuid=65534 --regid=65534 --clear-groups ";

// What one client sees of a job, in the order the bus delivered it: the
// job's PropertiesChanged ("State=completed") and Completed ("Completed true
// <message>") and the root's InterfacesRemoved ("removed <path>"), all
// received on one connection so that their order is the daemon's.
class JobWatcher {
 public:
  explicit JobWatcher(const std::string& job_path)
      : connection_(sdbus::createSystemBusConnection()) {
    job_ = sdbus::createProxy(*connection_, kBusName, job_path);
    LogPropertiesChanged(*job_, log);
    job_->uponSignal("Completed")
        .onInterface(kJobInterface)
        .call([this](bool success, const std::string& message) {
          log.Add(std::string("Completed ") + (success ? "true " : "false ") + message);
        });
    job_->finishRegistration();
    root_ = sdbus::createProxy(*connection_, kBusName, kRootPath);
    root_->uponSignal("InterfacesRemoved")
        .onInterface(kObjectManager)
        .call([this](const sdbus::ObjectPath& path, const std::vector<std::string>&) {
          log.Add("removed " + path);
        });
    root_->finishRegistration();
    connection_->enterEventLoopAsync();
  }
  ~JobWatcher() { connection_->leaveEventLoop(); }

  SignalLog log;

 private:
  std::unique_ptr<sdbus::IConnection> connection_;
  std::unique_ptr<sdbus::IProxy> job_;
  std::unique_ptr<sdbus::IProxy> root_;
};

void TakeSnapshot(sdbus::IProxy& volume, const std::string& name) {
  volume.callMethod("Snapshot").onInterface(kVolumeInterface).withArguments(name, DbusOptionsArg{});
}

sdbus::ObjectPath DeleteSnapshot(sdbus::IProxy& volume, const std::string& name,
                                 DbusOptionsArg options = {}) {
  sdbus::ObjectPath job;
  volume.callMethod("DeleteSnapshot")
      .onInterface(kVolumeInterface)
      .withArguments(name, options)
      .storeResultsTo(job);
  return job;
}

std::vector<Snapshot> SnapshotsOf(sdbus::IProxy& volume) {
  return volume.getProperty("Snapshots").onInterface(kVolumeInterface);
}

template <typename T>
T JobProperty(const std::string& job, const std::string& name) {
  return sdbus::createProxy(kBusName, job)->getProperty(name).onInterface(kJobInterface);
}

std::vector<sdbus::ObjectPath> ListJobs(sdbus::IProxy& manager) {
  std::vector<sdbus::ObjectPath> jobs;
  manager.callMethod("ListJobs").onInterface(kManagerInterface).storeResultsTo(jobs);
  return jobs;
}

TEST_F(DbusServiceTest, SnapshotIsListedInSnapshotsWithPropertiesChanged) {
  sdbus::ObjectPath path = Create("snap", kGiB);
  auto volume = sdbus::createProxy(kBusName, path);
  SignalLog changes;
  LogPropertiesChanged(*volume, changes);
  volume->finishRegistration();

  TakeSnapshot(*volume, "s1");
  // Already in the property when the call returns.
  std::vector<Snapshot> snapshots = SnapshotsOf(*volume);
  ASSERT_EQ(snapshots.size(), 1u);
  EXPECT_EQ(snapshots[0], Snapshot("s1", "", "2024-05-01T12:00:00Z", true, 4096, false));
  EXPECT_TRUE(changes.WaitFor("Snapshots"));
  EXPECT_TRUE(changes.WaitFor("ActualSize=4096"));

  TakeSnapshot(*volume, "s2");
  snapshots = SnapshotsOf(*volume);
  ASSERT_EQ(snapshots.size(), 2u);
  EXPECT_EQ(std::get<0>(snapshots[1]), "s2");
  EXPECT_EQ(std::get<1>(snapshots[1]), "s1");
  EXPECT_TRUE(changes.WaitFor("ActualSize=12288"));
  uint64_t actual = volume->getProperty("ActualSize").onInterface(kVolumeInterface);
  EXPECT_EQ(actual, 12288u);

  std::string message;
  EXPECT_EQ(ErrorOf([&] { TakeSnapshot(*volume, "s1"); }, &message),
            "org.shorthorn.Storage1.Error.AlreadyExists");
  EXPECT_NE(message.find("s1"), std::string::npos) << message;
  EXPECT_EQ(ErrorOf([&] { TakeSnapshot(*volume, "a/b"); }),
            "org.shorthorn.Storage1.Error.InvalidArgument");
  EXPECT_EQ(SnapshotsOf(*volume).size(), 2u);
}

TEST_F(DbusServiceTest, RevertNeedsMaintenanceAndExpandGrows) {
  sdbus::ObjectPath path = Create("rv", kGiB);
  auto volume = sdbus::createProxy(kBusName, path);
  SignalLog changes;
  LogPropertiesChanged(*volume, changes);
  volume->finishRegistration();
  TakeSnapshot(*volume, "s1");
  auto attach = [&](DbusOptionsArg options) {
    std::string device;
    volume->callMethod("Attach")
        .onInterface(kVolumeInterface)
        .withArguments(options)
        .storeResultsTo(device);
    return device;
  };
  auto revert = [&](const std::string& name) {
    volume->callMethod("Revert")
        .onInterface(kVolumeInterface)
        .withArguments(name, DbusOptionsArg{});
  };

  attach({});
  std::string message;
  EXPECT_EQ(ErrorOf([&] { revert("s1"); }, &message), "org.shorthorn.Storage1.Error.Busy");
  EXPECT_NE(message.find("maintenance=true"), std::string::npos) << message;
  volume->callMethod("Detach").onInterface(kVolumeInterface).withArguments(DbusOptionsArg{});

  EXPECT_EQ(attach({{"maintenance", sdbus::Variant(true)}}), "");
  std::string state = volume->getProperty("State").onInterface(kVolumeInterface);
  EXPECT_EQ(state, "maintenance");
  EXPECT_TRUE(changes.WaitFor("State=maintenance"));
  EXPECT_EQ(ErrorOf([&] { revert("s1"); }), "");
  EXPECT_EQ(ErrorOf([&] { revert("nope"); }), "org.shorthorn.Storage1.Error.NotFound");

  volume->callMethod("Expand")
      .onInterface(kVolumeInterface)
      .withArguments(2 * kGiB, DbusOptionsArg{});
  uint64_t size = volume->getProperty("Size").onInterface(kVolumeInterface);
  EXPECT_EQ(size, 2 * kGiB);
  EXPECT_TRUE(changes.WaitFor("Size=2147483648"));
  EXPECT_EQ(ErrorOf([&] {
              volume->callMethod("Expand")
                  .onInterface(kVolumeInterface)
                  .withArguments(kGiB, DbusOptionsArg{});
            }),
            "org.shorthorn.Storage1.Error.InvalidArgument");
}

TEST_F(DbusServiceTest, DeleteSnapshotRunsAsAJobObject) {
  sdbus::ObjectPath path = Create("dj", kGiB);
  auto volume = sdbus::createProxy(kBusName, path);
  SignalLog volume_changes;
  LogPropertiesChanged(*volume, volume_changes);
  volume->finishRegistration();
  TakeSnapshot(*volume, "s1");

  // The fake reports JobAdded inside DeleteSnapshot and the service
  // refreshes the job as well: one object all the same.
  sdbus::ObjectPath job = DeleteSnapshot(*volume, "s1");
  EXPECT_EQ(job, "/org/shorthorn/Storage1/jobs/1");
  JobWatcher watcher(job);
  // The object exists when the call returns.
  EXPECT_EQ(JobProperty<std::string>(job, "Operation"), "delete-snapshot");
  EXPECT_EQ(JobProperty<sdbus::ObjectPath>(job, "Volume"), path);
  EXPECT_EQ(JobProperty<std::string>(job, "Target"), "s1");
  EXPECT_EQ(JobProperty<std::string>(job, "State"), "running");
  EXPECT_EQ(JobProperty<bool>(job, "Cancellable"), true);
  EXPECT_EQ(JobProperty<uint64_t>(job, "TotalBytes"), 1u << 20);
  EXPECT_TRUE(log_.WaitFor("added " + job));
  EXPECT_EQ(ListJobs(*manager_), std::vector<sdbus::ObjectPath>{job});
  ManagedObjects objects = GetManagedObjects();
  ASSERT_TRUE(objects.count(job));
  EXPECT_EQ(objects[job][kJobInterface].at("Operation").get<std::string>(), "delete-snapshot");

  // Progress, reported from a thread that is not the bus's.
  std::thread([&] { fake_.AdvanceJob(1, 0.5); }).join();
  EXPECT_TRUE(watcher.log.WaitFor("Progress=0.5"));
  EXPECT_TRUE(watcher.log.WaitFor("Bytes=524288"));
  EXPECT_TRUE(watcher.log.WaitFor("Rate=1048576"));
  EXPECT_EQ(JobProperty<double>(job, "Progress"), 0.5);

  // The end, reported twice: Completed still comes once, after State.
  std::thread([&] {
    fake_.FinishJob(1, JobState::kCompleted, "merged s1");
    fake_.FinishJob(1, JobState::kCompleted, "merged s1");
  }).join();
  EXPECT_TRUE(watcher.log.WaitFor("Completed true merged s1"));
  EXPECT_LT(watcher.log.IndexOf("State=completed"),
            watcher.log.IndexOf("Completed true merged s1"));
  EXPECT_LT(watcher.log.IndexOf("Message=merged s1"),
            watcher.log.IndexOf("Completed true merged s1"));
  EXPECT_EQ(JobProperty<std::string>(job, "State"), "completed");
  EXPECT_TRUE(volume_changes.WaitFor("Snapshots"));
  EXPECT_TRUE(SnapshotsOf(*volume).empty());

  std::thread([&] { fake_.RemoveJob(1); }).join();
  EXPECT_TRUE(watcher.log.WaitFor("removed " + job));
  EXPECT_TRUE(log_.WaitFor("removed " + job));
  EXPECT_EQ(watcher.log.Count("Completed true merged s1"), 1u);
  EXPECT_EQ(log_.Count("added " + job), 1u);
  EXPECT_FALSE(GetManagedObjects().count(job));
  EXPECT_TRUE(ListJobs(*manager_).empty());
}

TEST_F(DbusServiceTest, JobThatEndsAtOnceIsAnnouncedCompletedAndWithdrawn) {
  sdbus::ObjectPath path = Create("quick", kGiB);
  auto volume = sdbus::createProxy(kBusName, path);
  TakeSnapshot(*volume, "s1");
  const std::string expected_job = "/org/shorthorn/Storage1/jobs/1";
  JobWatcher watcher(expected_job);

  // The job is reported finished and removed before the call returns while
  // GetJob still finds it: the service's refresh must not bring it back.
  sdbus::ObjectPath job =
      DeleteSnapshot(*volume, "s1", {{"finish", sdbus::Variant(std::string("completed"))}});
  EXPECT_EQ(job, expected_job);
  EXPECT_TRUE(watcher.log.WaitFor("Completed true finished at once"));
  EXPECT_TRUE(watcher.log.WaitFor("removed " + job));
  EXPECT_LT(watcher.log.IndexOf("Completed true finished at once"),
            watcher.log.IndexOf("removed " + job));
  EXPECT_TRUE(log_.WaitFor("removed " + job));
  EXPECT_EQ(log_.Count("added " + job), 1u);
  EXPECT_TRUE(ListJobs(*manager_).empty());
  EXPECT_FALSE(GetManagedObjects().count(job));
  EXPECT_TRUE(fake_.GetJob(1).ok());  // still known to the manager
}

TEST_F(DbusServiceTest, VerifyStartsAJobThatMayFail) {
  sdbus::ObjectPath path = Create("ver", kGiB);
  auto volume = sdbus::createProxy(kBusName, path);
  sdbus::ObjectPath job;
  // The fake does not report this job before the call returns: the service
  // exports it from its own refresh.
  volume->callMethod("Verify")
      .onInterface(kVolumeInterface)
      .withArguments(DbusOptionsArg{{"unreported", sdbus::Variant(true)}})
      .storeResultsTo(job);
  JobWatcher watcher(job);
  EXPECT_EQ(JobProperty<std::string>(job, "Operation"), "verify");
  EXPECT_TRUE(log_.WaitFor("added " + job));
  EXPECT_EQ(JobProperty<std::string>(job, "Target"), "");
  std::thread([&] { fake_.FinishJob(1, JobState::kFailed, "layer s1: checksum mismatch"); }).join();
  EXPECT_TRUE(watcher.log.WaitFor("Completed false layer s1: checksum mismatch"));
  EXPECT_EQ(JobProperty<std::string>(job, "Message"), "layer s1: checksum mismatch");
  EXPECT_EQ(ErrorOf([&] {
              sdbus::createProxy(kBusName, VolumeObjectPath("nope"))
                  ->callMethod("Verify")
                  .onInterface(kVolumeInterface)
                  .withArguments(DbusOptionsArg{});
            }),
            "org.freedesktop.DBus.Error.UnknownObject");
}

TEST_F(DbusServiceTest, CancelNeedsAdminAndPassesThrough) {
  sdbus::ObjectPath path = Create("cj", kGiB);
  auto volume = sdbus::createProxy(kBusName, path);
  TakeSnapshot(*volume, "s1");
  sdbus::ObjectPath job = DeleteSnapshot(*volume, "s1");
  JobWatcher watcher(job);
  auto cancel = [&] {
    sdbus::createProxy(kBusName, job)->callMethod("Cancel").onInterface(kJobInterface);
  };

  if (geteuid() == 0) {
    auto refused = RunCommand(kAsNobody + "busctl --system call org.shorthorn.Storage1 " + job +
                              " org.shorthorn.Storage1.Job Cancel");
    EXPECT_NE(refused.exit_code, 0) << refused.output;
    EXPECT_NE(refused.output.find("Cancel: caller uid 65534 is neither root nor in group"),
              std::string::npos)
        << refused.output;
    auto snapshot = RunCommand(kAsNobody + "busctl --system call org.shorthorn.Storage1 " + path +
                               " org.shorthorn.Storage1.Volume Snapshot 'sa{sv}' s2 0");
    EXPECT_NE(snapshot.exit_code, 0) << snapshot.output;
    EXPECT_NE(snapshot.output.find("Snapshot: caller uid 65534"), std::string::npos)
        << snapshot.output;
    EXPECT_TRUE(fake_.cancel_calls().empty());
    EXPECT_EQ(JobProperty<std::string>(job, "State"), "running");
    EXPECT_EQ(SnapshotsOf(*volume).size(), 1u);
  }  // else: only root can run busctl as uid 65534; the rest runs anyway

  // This test's uid is allowed (root, or an extra uid of the policy).
  EXPECT_EQ(ErrorOf(cancel), "");
  EXPECT_EQ(fake_.cancel_calls(), std::vector<uint64_t>{1});
  EXPECT_EQ(JobProperty<std::string>(job, "State"), "cancelled");
  EXPECT_TRUE(watcher.log.WaitFor("Completed false cancelled"));
  std::string message;
  EXPECT_EQ(ErrorOf(cancel, &message), "org.shorthorn.Storage1.Error.InvalidArgument");
  EXPECT_EQ(message, "cancel job 1: not cancellable");
}

TEST_F(DbusServiceTest, BusctlSnapshotExamplesFromTheDocsWork) {
  Create("v1", kGiB);
  const std::string volume =
      "busctl --system call org.shorthorn.Storage1 /org/shorthorn/Storage1/volumes/v1 "
      "org.shorthorn.Storage1.Volume ";
  auto snapshot = RunCommand(volume + "Snapshot 'sa{sv}' s1 0");
  ASSERT_EQ(snapshot.exit_code, 0) << snapshot.output;
  EXPECT_EQ(snapshot.output, "");
  auto duplicate = RunCommand(volume + "Snapshot 'sa{sv}' s1 0");
  EXPECT_NE(duplicate.exit_code, 0) << duplicate.output;
  auto remove = RunCommand(volume + "DeleteSnapshot 'sa{sv}' s1 0");
  ASSERT_EQ(remove.exit_code, 0) << remove.output;
  EXPECT_EQ(remove.output, "o \"/org/shorthorn/Storage1/jobs/1\"\n");
  auto state = RunCommand(
      "busctl --system get-property org.shorthorn.Storage1 /org/shorthorn/Storage1/jobs/1 "
      "org.shorthorn.Storage1.Job State");
  EXPECT_EQ(state.output, "s \"running\"\n");
}

TEST_F(DbusServiceTest, ExistingJobsAreExportedAtStart) {
  service_->Stop();
  ASSERT_TRUE(fake_.CreateVolume("old", 4096, {}, {}).ok());
  Result<uint64_t> id = fake_.Verify("old", {});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(service_->Start().ok());
  sdbus::ObjectPath job(JobObjectPath(*id));
  EXPECT_TRUE(GetManagedObjects().count(job));
  EXPECT_EQ(ListJobs(*manager_), std::vector<sdbus::ObjectPath>{job});
}

}  // namespace
}  // namespace shorthorn::fused::dbus
