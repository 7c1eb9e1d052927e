// shorthorn-fused: serves volumes as files on a FUSE mount, attaches them to
// loop devices, and owns org.shorthorn.Storage1 on the system bus. This file
// only wires the parts together and waits for SIGTERM/SIGINT.
//
// Restarts keep the volumes in use: SIGTERM hands the FUSE connection and
// the busy volumes over to the next fused (FuseFrontend::HandOver,
// VolumeService::Shutdown), which takes them over at start.
// `--takeover` starts a new fused while the old one runs (an upgrade
// without systemd): it stops the old one with SIGTERM and waits for it.
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <vector>

#include "common/auth.h"
#include "common/daemon_signals.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/pid_file.h"
#include "config/daemon_config.h"
#include "fused/core/fused_id.h"
#include "fused/dbus/dbus_service.h"
#include "fused/fuse/fuse_frontend.h"
#include "fused/service/volume_service.h"

using namespace shorthorn;

namespace {

constexpr const char* kTakeoverFlag = "--takeover";
// Exit status after handing the volumes over to the next fused.
constexpr int kHandedOverExitStatus = 3;
constexpr auto kTakeoverWait = std::chrono::seconds(120);

// The one fused of this state directory. With `takeover`, a running one is
// asked to hand over (SIGTERM) and waited for.
Result<PidFile> LockInstance(const std::string& state_dir, bool takeover) {
  const std::string path = state_dir + "/fused.pid";
  auto lock = PidFile::Lock(path);
  if (lock.ok() || lock.status().kind() != ErrorKind::kBusy) return lock;
  pid_t old = PidFile::Owner(path);
  if (!takeover || old <= 0) {
    return Status(ErrorKind::kBusy,
                  "another shorthorn-fused (pid " + std::to_string(old) + ") serves " + state_dir +
                      ": stop it, or start this one with --takeover to replace it");
  }
  LogInfo("takeover: asking shorthorn-fused pid " + std::to_string(old) + " to hand over");
  if (::kill(old, SIGTERM) != 0 && errno != ESRCH) {
    return ErrnoStatus(errno, "signal shorthorn-fused pid " + std::to_string(old));
  }
  return PidFile::Lock(path, kTakeoverWait);
}

}  // namespace

int main(int argc, char** argv) {
  TuneAllocator();
  if (argc >= 2 && std::strcmp(argv[1], fused::kFuseFdHolderFlag) == 0) {
    SetLogComponent("fuse-holder");
    return fused::RunFuseFdHolder(argc, argv);
  }
  SetLogComponent("fused");
  bool takeover = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::strcmp(argv[i], kTakeoverFlag) == 0) {
      takeover = true;
    } else {
      args.push_back(argv[i]);
    }
  }
  auto loaded = config::LoadFusedConfig(static_cast<int>(args.size()), args.data());
  if (!loaded.ok()) {
    std::cerr << "shorthorn-fused: " << loaded.status().message() << "\n";
    return 2;
  }
  if (loaded->exit_now) {
    std::cout << loaded->output;
    if (loaded->output.rfind("Usage", 0) == 0) {
      std::cout << "\nCommand line only:\n  --takeover            replace the shorthorn-fused "
                   "running on this state directory\n                        (it hands its "
                   "volumes over; nothing is detached)\n";
    }
    return 0;
  }
  const config::FusedConfig& c = loaded->config;
  LogLevel level;
  ParseLogLevel(c.log_level, &level);
  SetLogLevel(level);

  // Signals are taken by sigwait below; no other thread may receive them.
  const sigset_t signals = BlockStopSignals();

  if (!SetIoFlusher()) {
    LogWarning("PR_SET_IO_FLUSHER refused; memory reclaim may wait on this daemon");
  }
  for (const auto& dir : {c.state_dir, c.mount_point}) {
    Status s = MakeDirs(dir);
    if (!s.ok()) {
      LogError(s.message());
      return 1;
    }
  }

  auto instance = LockInstance(c.state_dir, takeover);
  if (!instance.ok()) {
    LogError(instance.status().message());
    return 1;
  }

  auto key = auth::LoadDaemonKey(c.cluster_key);
  if (!key.ok()) {
    LogError(key.status().message());
    return 1;
  }

  auto fused_id = fused::LoadOrCreateFusedId(c.state_dir);
  if (!fused_id.ok()) {
    LogError(fused_id.status().message());
    return 1;
  }

  fused::FuseFrontend fuse({c.mount_point, c.fuse_threads, c.max_background,
                            c.max_request_kib * 1024, c.state_dir, c.fuse_uring, c.fuse_uring_depth,
                            /*enable_kernel_uring=*/true});
  Status s = fuse.Start();
  if (!s.ok()) {
    LogError(s.message());
    return 1;
  }
  fused::ServiceSettings settings;
  settings.state_dir = c.state_dir;
  settings.dev_dir = c.dev_dir;
  settings.default_replicads = c.replicads;
  settings.client.connect = std::chrono::seconds(c.connect_timeout_s);
  settings.client.request = std::chrono::seconds(c.replica_timeout_s);
  settings.client.local_socket_dir = c.replicad_socket_dir;
  settings.client.key = std::make_shared<const auth::ClusterKey>(*key);
  settings.client.owner = *fused_id;
  settings.connections_per_replica = static_cast<int>(c.connections_per_replica);
  settings.stale_replica_timeout = std::chrono::minutes(c.stale_replica_timeout_min);
  settings.rebuild_bandwidth = static_cast<uint64_t>(c.rebuild_bandwidth_mib) << 20;
  settings.scrub_bandwidth = static_cast<uint64_t>(c.scrub_bandwidth_mib) << 20;
  settings.scrub_interval = std::chrono::hours(c.scrub_interval_h);
  settings.backup_target = c.backup_target;
  settings.backup_credentials = c.backup_credentials;
  settings.backup_workers = static_cast<int>(c.backup_workers);
  settings.max_volume_size_gib = c.max_volume_size_gib;
  settings.auto_attach = c.auto_attach;
  settings.metrics_file = c.metrics_file;
  settings.placement.host =
      c.replica_anti_affinity_hard ? fused::AntiAffinity::kHard : fused::AntiAffinity::kSoft;
  settings.placement.zone = c.zone_anti_affinity == "hard"  ? fused::AntiAffinity::kHard
                            : c.zone_anti_affinity == "off" ? fused::AntiAffinity::kOff
                                                            : fused::AntiAffinity::kSoft;
  settings.placement.over_provisioning_percent = c.replica_over_provisioning_percent;
  settings.placement.reserve_percent = c.replica_space_reserve_percent;
  settings.replenishment_wait = std::chrono::seconds(c.replica_replenishment_wait_s);
  settings.rebuilds_per_replicad = c.concurrent_rebuilds_per_replicad;
  // Failing to start after a takeover must not end the kept connection:
  // the next try takes it over again.
  auto fail_start = [&fuse](const Status& why) {
    LogError(why.message());
    if (fuse.HandOver() && fuse.Stop()) std::_Exit(1);
    fuse.Stop();
    return 1;
  };
  fused::VolumeService service(settings, fuse);
  s = service.Start();
  if (!s.ok()) return fail_start(s);
  fused::dbus::DbusServiceOptions dbus_options;
  // Only root may have fused connect to replicads fused.conf does not list.
  dbus_options.admin.replicads = settings.default_replicads;
  // ... and backup targets other than fused.conf's backup-target.
  dbus_options.admin.backup_target = settings.backup_target;
  dbus_options.on_failure = [](const Status& why) {
    LogError("D-Bus connection lost: " + why.message());
    kill(getpid(), SIGTERM);
  };
  fused::dbus::DbusService dbus(service, dbus_options);
  s = dbus.Start();
  if (!s.ok()) return fail_start(s);
  LogInfo("ready");

  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    LogInfo("SIGHUP ignored: restart the daemon to apply configuration changes");
  }
  LogInfo(std::string("stopping on ") + strsignal(sig));
  dbus.Stop();
  const bool hand_over = fuse.HandOver();
  service.Shutdown(hand_over);
  if (fuse.Stop()) {
    // The FUSE workers still block in read(): end the process here. Every
    // volume is flushed and closed; the registry is saved. The status tells
    // systemd to start the next fused even when nobody asked for a restart
    // (RestartForceExitStatus=, SuccessExitStatus= in the unit).
    LogInfo("handed over; exiting");
    std::fflush(nullptr);
    std::_Exit(kHandedOverExitStatus);
  }
  return 0;
}
