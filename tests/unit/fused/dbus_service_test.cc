// DbusService over FakeVolumeManager on a private dbus-daemon, driven by
// sdbus-c++ proxies (to see error names) and by busctl (the unprivileged
// caller check, as root only). Asserts on D-Bus error names, object paths,
// property values and the ObjectManager and Properties signals.
#include <grp.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "fused/dbus/backup_object.h"
#include "tests/unit/fused/dbus_service_fixture.h"

namespace shorthorn::fused::dbus {
namespace {

using testing::PrivateBus;
using testing::RunCommand;
using Replica = sdbus::Struct<std::string, std::string, std::string>;

TEST_F(DbusServiceTest, ManagerHasVersion) {
  std::string version = manager_->getProperty("Version").onInterface(kManagerInterface);
  EXPECT_EQ(version, SHORTHORN_VERSION);
}

TEST_F(DbusServiceTest, CreatedVolumeIsAManagedObjectWithProperties) {
  sdbus::ObjectPath path = Create("db-1.a_b", kGiB);
  EXPECT_EQ(path, "/org/shorthorn/Storage1/volumes/db_2d1_2ea_5fb");
  EXPECT_TRUE(log_.WaitFor("added " + path));

  ManagedObjects objects = GetManagedObjects();
  ASSERT_TRUE(objects.count(path)) << "not in GetManagedObjects";
  const auto& props = objects[path][kVolumeInterface];
  EXPECT_EQ(props.at("Name").get<std::string>(), "db-1.a_b");
  EXPECT_EQ(props.at("Size").get<uint64_t>(), kGiB);
  EXPECT_EQ(props.at("State").get<std::string>(), "detached");
  auto replicas = props.at("Replicas").get<std::vector<Replica>>();
  ASSERT_EQ(replicas.size(), 1u);
  EXPECT_EQ(std::get<0>(replicas[0]), "127.0.0.1:9500");

  auto volume = sdbus::createProxy(kBusName, path);
  std::string name = volume->getProperty("Name").onInterface(kVolumeInterface);
  EXPECT_EQ(name, "db-1.a_b");
  // Statistics comes from the manager when read (the fake's figures).
  auto stats = volume->getProperty("Statistics")
                   .onInterface(kVolumeInterface)
                   .get<std::map<std::string, uint64_t>>();
  EXPECT_EQ(stats.at("write_requests"), 7u);
  EXPECT_EQ(stats.at("write_bytes"), 7u * 4096);

  std::vector<sdbus::ObjectPath> listed;
  manager_->callMethod("ListVolumes").onInterface(kManagerInterface).storeResultsTo(listed);
  EXPECT_EQ(listed, std::vector<sdbus::ObjectPath>{path});
}

TEST_F(DbusServiceTest, ManagerErrorsKeepTheirKind) {
  Create("vol1", kGiB);
  std::string message;
  EXPECT_EQ(ErrorOf([&] { Create("vol1", kGiB); }, &message),
            "org.shorthorn.Storage1.Error.AlreadyExists");
  EXPECT_EQ(message, "create volume vol1: already exists");
  EXPECT_EQ(ErrorOf([&] { Create("bad/name", kGiB); }),
            "org.shorthorn.Storage1.Error.InvalidArgument");
  EXPECT_EQ(ErrorOf([&] {
              manager_->callMethod("DeleteVolume")
                  .onInterface(kManagerInterface)
                  .withArguments(std::string("nope"), std::map<std::string, sdbus::Variant>{});
            }),
            "org.shorthorn.Storage1.Error.NotFound");
}

TEST_F(DbusServiceTest, OptionsAreCheckedAndWidened) {
  std::string message;
  EXPECT_EQ(ErrorOf(
                [&] {
                  Create("v", kGiB, {{"ratio", sdbus::Variant(0.5)}});
                },
                &message),
            "org.shorthorn.Storage1.Error.InvalidArgument");
  EXPECT_NE(message.find("option \"ratio\""), std::string::npos) << message;

  Create("v", kGiB,
         {{"count", sdbus::Variant(int32_t{-3})},
          {"flag", sdbus::Variant(true)},
          {"blocks", sdbus::Variant(uint32_t{7})}});
  Options seen = fake_.last_options();
  EXPECT_EQ(std::get<int64_t>(seen.at("count")), -3);
  EXPECT_EQ(std::get<bool>(seen.at("flag")), true);
  EXPECT_EQ(std::get<uint64_t>(seen.at("blocks")), 7u);
}

TEST_F(DbusServiceTest, DeleteEmitsInterfacesRemoved) {
  sdbus::ObjectPath path = Create("gone", kGiB);
  manager_->callMethod("DeleteVolume")
      .onInterface(kManagerInterface)
      .withArguments(std::string("gone"), std::map<std::string, sdbus::Variant>{});
  EXPECT_TRUE(log_.WaitFor("removed " + path));
  EXPECT_FALSE(GetManagedObjects().count(path));
}

TEST_F(DbusServiceTest, AttachDetachAndForeignChangesEmitPropertiesChanged) {
  sdbus::ObjectPath path = Create("att", kGiB);
  auto volume = sdbus::createProxy(kBusName, path);
  SignalLog changes;
  volume->uponSignal("PropertiesChanged")
      .onInterface(kProperties)
      .call([&](const std::string& iface, const std::map<std::string, sdbus::Variant>& changed,
                const std::vector<std::string>&) {
        for (const auto& [name, value] : changed) {
          std::string text = name;
          if (value.containsValueOfType<std::string>()) text += "=" + value.get<std::string>();
          changes.Add(text);
        }
      });
  volume->finishRegistration();

  std::string device;
  volume->callMethod("Attach")
      .onInterface(kVolumeInterface)
      .withArguments(std::map<std::string, sdbus::Variant>{})
      .storeResultsTo(device);
  EXPECT_EQ(device, "/dev/loop7");
  EXPECT_TRUE(changes.WaitFor("State=attached"));
  EXPECT_TRUE(changes.WaitFor("LoopDevice=/dev/loop7"));
  EXPECT_TRUE(changes.WaitFor("Replicas"));
  std::string loop = volume->getProperty("LoopDevice").onInterface(kVolumeInterface);
  EXPECT_EQ(loop, "/dev/loop7");

  EXPECT_EQ(ErrorOf([&] {
              manager_->callMethod("DeleteVolume")
                  .onInterface(kManagerInterface)
                  .withArguments(std::string("att"), std::map<std::string, sdbus::Variant>{});
            }),
            "org.shorthorn.Storage1.Error.Busy");

  // A change reported from a thread that is not the bus's.
  std::thread([&] { fake_.SetState("att", VolumeState::kMoved); }).join();
  EXPECT_TRUE(changes.WaitFor("State=moved"));
  std::string state = volume->getProperty("State").onInterface(kVolumeInterface);
  EXPECT_EQ(state, "moved");

  volume->callMethod("Detach")
      .onInterface(kVolumeInterface)
      .withArguments(std::map<std::string, sdbus::Variant>{});
  EXPECT_TRUE(changes.WaitFor("State=detached"));
  EXPECT_TRUE(changes.WaitFor("LoopDevice="));
}

// A manager call that waits (as one on an unreachable replicad does) holds
// up neither property reads, nor listings, nor calls about another volume;
// a second call about the same volume waits for the first and keeps its
// order.
TEST_F(DbusServiceTest, SlowCallStallsNeitherTheBusNorOtherVolumes) {
  using Snapshot = sdbus::Struct<std::string, std::string, std::string, bool, uint64_t, bool>;
  sdbus::ObjectPath slow_path = Create("slow", kGiB);
  sdbus::ObjectPath other_path = Create("other", kGiB);
  fake_.CloseGate("slow");
  std::vector<std::thread> threads;
  struct OpenAndJoinOnExit {  // also when an assertion fails
    FakeVolumeManager& fake;
    std::vector<std::thread>& threads;
    ~OpenAndJoinOnExit() {
      fake.OpenGate();
      for (auto& t : threads) t.join();
    }
  } open_on_exit{fake_, threads};
  auto snapshot_in_thread = [&](const std::string& name, std::string* error) {
    return std::thread([this, &slow_path, name, error] {
      auto proxy = sdbus::createProxy(kBusName, slow_path);
      *error = ErrorOf([&] {
        proxy->callMethod("Snapshot")
            .onInterface(kVolumeInterface)
            .withArguments(name, DbusOptionsArg{})
            .withTimeout(std::chrono::seconds(20));
      });
    });
  };
  std::string first_error = "not run", second_error = "not run";
  threads.push_back(snapshot_in_thread("first", &first_error));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (fake_.WaitingAtGate() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(fake_.WaitingAtGate(), 1) << "the first Snapshot never reached the manager";
  threads.push_back(snapshot_in_thread("second", &second_error));

  // The bus answers while the manager call waits.
  auto slow = sdbus::createProxy(kBusName, slow_path);
  auto started = std::chrono::steady_clock::now();
  sdbus::Variant state;
  EXPECT_EQ(ErrorOf([&] {
              slow->callMethod("Get")
                  .onInterface(kProperties)
                  .withArguments(std::string(kVolumeInterface), std::string("State"))
                  .withTimeout(std::chrono::seconds(2))
                  .storeResultsTo(state);
            }),
            "");
  EXPECT_EQ(DescribeProperty("State", state), "State=detached");
  std::vector<sdbus::ObjectPath> listed;
  manager_->callMethod("ListVolumes")
      .onInterface(kManagerInterface)
      .withTimeout(std::chrono::seconds(2))
      .storeResultsTo(listed);
  EXPECT_EQ(listed.size(), 2u);
  auto other = sdbus::createProxy(kBusName, other_path);
  EXPECT_EQ(ErrorOf([&] {
              other->callMethod("Snapshot")
                  .onInterface(kVolumeInterface)
                  .withArguments(std::string("o1"), DbusOptionsArg{})
                  .withTimeout(std::chrono::seconds(2));
            }),
            "");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  // The second call about "slow" has not reached the manager: it waits for
  // the first.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(fake_.WaitingAtGate(), 1);

  fake_.OpenGate();
  for (auto& t : threads) t.join();
  threads.clear();
  EXPECT_EQ(first_error, "");
  EXPECT_EQ(second_error, "");
  auto snapshots =
      slow->getProperty("Snapshots").onInterface(kVolumeInterface).get<std::vector<Snapshot>>();
  ASSERT_EQ(snapshots.size(), 2u);
  EXPECT_EQ(std::get<0>(snapshots[0]), "first");
  EXPECT_EQ(std::get<0>(snapshots[1]), "second");
}

TEST_F(DbusServiceTest, ExistingVolumesAreExportedAtStart) {
  service_->Stop();
  ASSERT_TRUE(fake_.CreateVolume("old", 4096, {}, {}).ok());
  ASSERT_TRUE(service_->Start().ok());
  EXPECT_TRUE(GetManagedObjects().count(sdbus::ObjectPath(VolumeObjectPath("old"))));
}

TEST_F(DbusServiceTest, SecondServiceFindsTheNameTaken) {
  FakeVolumeManager other;
  DbusService second(other);
  Status s = second.Start();
  EXPECT_EQ(s.kind(), ErrorKind::kAlreadyExists) << s.ToString();
  EXPECT_NE(s.message().find("org.shorthorn.Storage1"), std::string::npos) << s.message();
  // The first one is unaffected.
  EXPECT_NO_THROW(Create("still", kGiB));
}

// With only the installed policy deciding who may own the name: root may,
// anyone else is refused with NotAuthorized.
TEST(DbusPolicyTest, OnlyRootMayOwnTheName) {
  PrivateBus bus;
  std::string error;
  if (!bus.Start(PolicyFile(), /*anyone_may_own=*/false, &error)) {
    GTEST_SKIP() << "no private dbus-daemon: " << error;
  }
  FakeVolumeManager fake;
  DbusService service(fake);
  Status s = service.Start();
  if (geteuid() == 0) {
    EXPECT_TRUE(s.ok()) << s.ToString();
  } else {
    EXPECT_EQ(s.kind(), ErrorKind::kNotAuthorized) << s.ToString();
  }
}

TEST_F(DbusServiceTest, UnprivilegedCallerMayReadButNotChange) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run busctl as uid 65534";
  Create("ro", kGiB);
  const std::string as_nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  const std::string manager =
      std::string(" org.shorthorn.Storage1 ") + kManagerPath + " " + kManagerInterface + " ";

  auto read = RunCommand(as_nobody + "busctl --system call" + manager + "ListVolumes");
  EXPECT_EQ(read.exit_code, 0) << read.output;
  EXPECT_NE(read.output.find("/org/shorthorn/Storage1/volumes/ro"), std::string::npos)
      << read.output;
  auto property = RunCommand(as_nobody + "busctl --system get-property org.shorthorn.Storage1 " +
                             VolumeObjectPath("ro") + " " + kVolumeInterface + " Size");
  EXPECT_EQ(property.exit_code, 0) << property.output;
  EXPECT_NE(property.output.find("1073741824"), std::string::npos) << property.output;

  auto create = RunCommand(as_nobody + "busctl --system call" + manager +
                           "CreateVolume 'stasa{sv}' vol9 4096 0 0");
  EXPECT_NE(create.exit_code, 0) << create.output;
  EXPECT_NE(create.output.find("CreateVolume: caller uid 65534 is neither root nor in group "
                               "shorthorn"),
            std::string::npos)
      << create.output;
  auto attach = RunCommand(as_nobody + "busctl --system call org.shorthorn.Storage1 " +
                           VolumeObjectPath("ro") + " " + kVolumeInterface + " Attach 'a{sv}' 0");
  EXPECT_NE(attach.exit_code, 0) << attach.output;
  EXPECT_NE(attach.output.find("Attach: caller uid 65534"), std::string::npos) << attach.output;
  Result<VolumeInfo> info = fake_.GetVolume("ro");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, VolumeState::kDetached);
  EXPECT_FALSE(fake_.GetVolume("vol9").ok());
}

// Issue 16: fused connects as root to the replicads a call names (and starts
// the cluster-key handshake there), so an admin who is not root may name only those
// fused.conf lists. Run as root, the caller is uid 65534 in the admin group
// (its primary group, 65534, made the admin group); otherwise it is the
// test's own uid, a non-root admin through extra_uids. The manager must not
// even be asked.
TEST_F(DbusServiceTest, AdminWhoIsNotRootMayNameOnlyConfiguredReplicads) {
  std::string as_admin;
  if (geteuid() == 0) {
    struct group* admin_group = getgrgid(65534);
    if (admin_group == nullptr) GTEST_SKIP() << "no group 65534 to make the admin group";
    DbusServiceOptions options = DefaultOptions();
    options.admin.group = admin_group->gr_name;
    ASSERT_NO_FATAL_FAILURE(StartService(options));
    as_admin = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  }
  const std::string manager = std::string("busctl --system call org.shorthorn.Storage1 ") +
                              kManagerPath + " " + kManagerInterface + " ";
  const std::string refusal =
      "replicad 10.9.9.9:1234 is not in fused.conf's replicads; only root may name other "
      "replicads";

  for (std::string replicas : {"1 10.9.9.9:1234", "2 127.0.0.1:9500 10.9.9.9:1234"}) {
    auto create =
        RunCommand(as_admin + manager + "CreateVolume 'stasa{sv}' far 4096 " + replicas + " 0");
    EXPECT_NE(create.exit_code, 0) << create.output;
    EXPECT_NE(create.output.find("CreateVolume: " + refusal), std::string::npos) << create.output;
  }
  EXPECT_FALSE(fake_.GetVolume("far").ok());
  auto restore = RunCommand(as_admin + manager +
                            "RestoreVolume 'ssasa{sv}' far "
                            "'file:///nowhere?volume=v&backup=b' 1 10.9.9.9:1234 0");
  EXPECT_NE(restore.exit_code, 0) << restore.output;
  EXPECT_NE(restore.output.find("RestoreVolume: " + refusal), std::string::npos) << restore.output;
  EXPECT_TRUE(fake_.ListJobs().empty());
  // An unprivileged non-admin still hears that it is no admin, not about replicads.
  if (geteuid() == 0) {
    auto stranger = RunCommand("setpriv --reuid=65534 --regid=1 --clear-groups " + manager +
                               "CreateVolume 'stasa{sv}' far 4096 1 10.9.9.9:1234 0");
    EXPECT_NE(stranger.output.find("CreateVolume: caller uid 65534 is neither root nor in group"),
              std::string::npos)
        << stranger.output;
  }

  // The listed replicad, or none (the configured ones are used), is fine.
  auto near = RunCommand(as_admin + manager + "CreateVolume 'stasa{sv}' near 4096 1 " +
                         kConfiguredReplicad + " 0");
  EXPECT_EQ(near.exit_code, 0) << near.output;
  EXPECT_TRUE(fake_.GetVolume("near").ok());
  auto unnamed = RunCommand(as_admin + manager + "CreateVolume 'stasa{sv}' unnamed 4096 0 0");
  EXPECT_EQ(unnamed.exit_code, 0) << unnamed.output;
  auto restored =
      RunCommand(as_admin + manager + "RestoreVolume 'ssasa{sv}' back '" + kConfiguredTarget +
                 "?volume=v&backup=b' 1 " + kConfiguredReplicad + " 0");
  EXPECT_EQ(restored.exit_code, 0) << restored.output;
  EXPECT_EQ(fake_.ListJobs().size(), 1u);

  // Backup targets: only fused.conf's backup-target (or none: the same).
  const std::string target_refusal =
      "backup target file:///etc is not fused.conf's backup-target (" +
      std::string(kConfiguredTarget) + "); only root may name another";
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"RestoreVolume", "RestoreVolume 'ssasa{sv}' etc 'file:///etc?volume=v&backup=b' 0 0"},
      {"ListBackups", "ListBackups 'ssa{sv}' file:///etc v 0"},
      {"DeleteBackup", "DeleteBackup 'sa{sv}' 'file:///etc?volume=v&backup=b' 0"},
  };
  for (const auto& [method, args] : refused) {
    auto result = RunCommand(as_admin + manager + args);
    EXPECT_NE(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find(method + ": " + target_refusal), std::string::npos)
        << result.output;
  }
  const std::string volume_path = VolumeObjectPath("near");
  auto backup = RunCommand(as_admin + "busctl --system call org.shorthorn.Storage1 " + volume_path +
                           " " + kVolumeInterface + " Backup 'sa{sv}' '' 1 target s file:///etc");
  EXPECT_NE(backup.exit_code, 0) << backup.output;
  EXPECT_NE(backup.output.find("Backup: " + target_refusal), std::string::npos) << backup.output;
  // A recurring backup job backs up to its target later, as root: who may
  // name the target is decided when it is added.
  auto recurring = RunCommand(as_admin + "busctl --system call org.shorthorn.Storage1 " +
                              volume_path + " " + kVolumeInterface +
                              " AddRecurringJob 'sssua{sv}' nightly backup @daily 3 1 target s "
                              "file:///etc");
  EXPECT_NE(recurring.exit_code, 0) << recurring.output;
  EXPECT_NE(recurring.output.find("AddRecurringJob: " + target_refusal), std::string::npos)
      << recurring.output;
  EXPECT_TRUE(fake_.GetVolume("near")->recurring_jobs.empty());
  EXPECT_EQ(fake_.ListJobs().size(), 1u);  // none of them started a job
  auto listed = RunCommand(as_admin + manager + "ListBackups 'ssa{sv}' '' with-backups 0");
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  auto configured_backup =
      RunCommand(as_admin + "busctl --system call org.shorthorn.Storage1 " + volume_path + " " +
                 kVolumeInterface + " Backup 'sa{sv}' '' 1 target s " + kConfiguredTarget);
  EXPECT_EQ(configured_backup.exit_code, 0) << configured_backup.output;
}

// Root may name any replicad; a non-root admin calling directly gets the
// error name NotAuthorized.
TEST_F(DbusServiceTest, OnlyRootMayNameOtherReplicads) {
  std::string message;
  std::string error = ErrorOf(
      [&] {
        sdbus::ObjectPath path;
        manager_->callMethod("CreateVolume")
            .onInterface(kManagerInterface)
            .withArguments(std::string("far"), uint64_t{4096},
                           std::vector<std::string>{"10.9.9.9:1234"}, DbusOptionsArg{})
            .storeResultsTo(path);
      },
      &message);
  if (geteuid() == 0) {
    EXPECT_EQ(error, "") << message;
    EXPECT_TRUE(fake_.GetVolume("far").ok());
  } else {
    EXPECT_EQ(error, "org.shorthorn.Storage1.Error.NotAuthorized");
    EXPECT_EQ(message,
              "CreateVolume: replicad 10.9.9.9:1234 is not in fused.conf's replicads; only "
              "root may name other replicads");
    EXPECT_FALSE(fake_.GetVolume("far").ok());
  }
}

// AddRecurringJob and RemoveRecurringJob reach the manager with their
// arguments; RecurringJobs shows the list (and changes with a signal-backed
// property, read back here); errors keep their names.
TEST_F(DbusServiceTest, RecurringJobsAreAddedListedAndRemoved) {
  sdbus::ObjectPath path = Create("rj", kGiB);
  auto volume = sdbus::createProxy(kBusName, path);
  DbusOptionsArg options;
  options["target"] = sdbus::Variant(std::string("file:///srv/backups"));
  volume->callMethod("AddRecurringJob")
      .onInterface(kVolumeInterface)
      .withArguments(std::string("nightly"), std::string("backup"), std::string("0 2 * * *"),
                     uint32_t{7}, options);
  volume->callMethod("AddRecurringJob")
      .onInterface(kVolumeInterface)
      .withArguments(std::string("hourly"), std::string("snapshot"), std::string("@hourly"),
                     uint32_t{24}, DbusOptionsArg{});
  using Job = sdbus::Struct<std::string, std::string, std::string, uint32_t, std::string,
                            std::string, std::string, std::string>;
  auto jobs =
      volume->getProperty("RecurringJobs").onInterface(kVolumeInterface).get<std::vector<Job>>();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0], Job("nightly", "backup", "0 2 * * *", 7, "file:///srv/backups", "", "",
                         "2026-12-07T02:00:00Z"));
  EXPECT_EQ(std::get<0>(jobs[1]), "hourly");
  EXPECT_EQ(std::get<3>(jobs[1]), 24u);

  std::string message;
  EXPECT_EQ(ErrorOf(
                [&] {
                  volume->callMethod("AddRecurringJob")
                      .onInterface(kVolumeInterface)
                      .withArguments(std::string("hourly"), std::string("snapshot"),
                                     std::string("@daily"), uint32_t{1}, DbusOptionsArg{});
                },
                &message),
            "org.shorthorn.Storage1.Error.AlreadyExists")
      << message;
  volume->callMethod("RemoveRecurringJob")
      .onInterface(kVolumeInterface)
      .withArguments(std::string("nightly"), DbusOptionsArg{});
  jobs = volume->getProperty("RecurringJobs").onInterface(kVolumeInterface).get<std::vector<Job>>();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(std::get<0>(jobs[0]), "hourly");
  EXPECT_EQ(ErrorOf(
                [&] {
                  volume->callMethod("RemoveRecurringJob")
                      .onInterface(kVolumeInterface)
                      .withArguments(std::string("nightly"), DbusOptionsArg{});
                },
                &message),
            "org.shorthorn.Storage1.Error.NotFound")
      << message;
  EXPECT_NE(message.find("remove recurring job nightly of volume rj"), std::string::npos)
      << message;
}

TEST_F(DbusServiceTest, BusctlCallFromTheDocsWorks) {
  auto result = RunCommand(
      "busctl --system call org.shorthorn.Storage1 /org/shorthorn/Storage1/Manager "
      "org.shorthorn.Storage1.Manager CreateVolume 'stasa{sv}' vol1 1073741824 1 "
      "127.0.0.1:9500 0");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "o \"/org/shorthorn/Storage1/volumes/vol1\"\n");
}

// The introspection data of `xml`'s interface `name` as comparable lines
// ("method CreateVolume in s name", "property Size t read", ...).
std::set<std::string> InterfaceMembers(std::string xml, const std::string& name) {
  xml = std::regex_replace(xml, std::regex("<!--[\\s\\S]*?-->"), "");
  size_t begin = xml.find("<interface name=\"" + name + "\"");
  size_t end = xml.find("</interface>", begin);
  if (begin == std::string::npos || end == std::string::npos) return {};
  std::string body = xml.substr(begin, end - begin);
  std::set<std::string> members;
  std::regex tag("<(method|signal|property|arg|annotation)\\b([^>]*)>");
  std::regex attribute("(\\w+)=\"([^\"]*)\"");
  std::string current;
  for (std::sregex_iterator it(body.begin(), body.end(), tag), last; it != last; ++it) {
    std::map<std::string, std::string> attrs;
    std::string text = (*it)[2];
    for (std::sregex_iterator a(text.begin(), text.end(), attribute); a != last; ++a) {
      attrs[(*a)[1]] = (*a)[2];
    }
    std::string kind = (*it)[1];
    if (kind == "method" || kind == "signal") {
      current = kind + " " + attrs["name"];
      members.insert(current);
    } else if (kind == "property") {
      current = "property " + attrs["name"];
      members.insert(current + " " + attrs["type"] + " " + attrs["access"]);
    } else if (kind == "arg") {
      members.insert(current + " " + attrs["direction"] + " " + attrs["type"] + " " +
                     attrs["name"]);
    } else if (kind == "annotation") {
      members.insert(current + " @" + attrs["name"] + "=" + attrs["value"]);
    }
  }
  return members;
}

std::string ReadXml(const std::string& file) {
  std::ifstream in(std::string(SHORTHORN_DBUS_XML_DIR) + "/" + file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_F(DbusServiceTest, IntrospectionMatchesTheInterfaceXml) {
  sdbus::ObjectPath path = Create("intro", kGiB);
  sdbus::ObjectPath job;
  auto volume = sdbus::createProxy(kBusName, path);
  volume->callMethod("Verify")
      .onInterface(kVolumeInterface)
      .withArguments(DbusOptionsArg{})
      .storeResultsTo(job);
  // A backup object: the fake reports one for volume "with-backups".
  auto manager = sdbus::createProxy(kBusName, kManagerPath);
  std::vector<sdbus::Struct<std::string, std::string, std::string, std::string, std::string,
                            uint64_t, uint64_t>>
      backups;
  manager->callMethod("ListBackups")
      .onInterface(kManagerInterface)
      .withArguments(std::string("file:///srv/b"), std::string("with-backups"), DbusOptionsArg{})
      .storeResultsTo(backups);
  ASSERT_EQ(backups.size(), 1u);
  const std::string backup_path =
      BackupObjectPath("with-backups", "backup-20261206T000000Z-00000001");
  std::string url;
  for (int i = 0; i < 100 && url.empty(); ++i) {
    try {
      auto b = sdbus::createProxy(kBusName, backup_path);
      url = b->getProperty("URL").onInterface(kBackupInterface).get<std::string>();
    } catch (const sdbus::Error&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  EXPECT_EQ(url, std::get<0>(backups[0]));
  struct Case {
    std::string path, interface, file;
  };
  for (const Case& c : {Case{kManagerPath, kManagerInterface, "org.shorthorn.Storage1.Manager.xml"},
                        Case{path, kVolumeInterface, "org.shorthorn.Storage1.Volume.xml"},
                        Case{job, kJobInterface, "org.shorthorn.Storage1.Job.xml"},
                        Case{backup_path, kBackupInterface, "org.shorthorn.Storage1.Backup.xml"}}) {
    auto proxy = sdbus::createProxy(kBusName, c.path);
    std::string live;
    proxy->callMethod("Introspect")
        .onInterface("org.freedesktop.DBus.Introspectable")
        .storeResultsTo(live);
    std::set<std::string> documented = InterfaceMembers(ReadXml(c.file), c.interface);
    ASSERT_FALSE(documented.empty()) << c.file;
    EXPECT_EQ(InterfaceMembers(live, c.interface), documented) << live;
  }
}

}  // namespace
}  // namespace shorthorn::fused::dbus
