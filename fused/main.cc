// shorthorn-fused: serves volumes as files on a FUSE mount, attaches them to
// loop devices, and owns org.shorthorn.Storage1 on the system bus. This file
// only wires the parts together and waits for SIGTERM/SIGINT.
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstring>

#include <iostream>

#include "common/auth.h"
#include "common/file_util.h"
#include "common/log.h"
#include "config/daemon_config.h"
#include "fused/dbus/dbus_service.h"
#include "fused/fuse/fuse_frontend.h"
#include "fused/service/volume_service.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

using namespace shorthorn;

int main(int argc, char** argv) {
  TuneAllocator();
  SetLogComponent("fused");
  auto loaded = config::LoadFusedConfig(argc, argv);
  if (!loaded.ok()) {
    std::cerr << "shorthorn-fused: " << loaded.status().message() << "\n";
    return 2;
  }
  if (loaded->exit_now) {
    std::cout << loaded->output;
    return 0;
  }
  const config::FusedConfig& c = loaded->config;
  LogLevel level;
  ParseLogLevel(c.log_level, &level);
  SetLogLevel(level);

  // Signals are taken by sigwait below; no other thread may receive them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0) {
    LogWarning("PR_SET_IO_FLUSHER refused; memory reclaim may wait on this daemon");
  }
  for (const auto& dir : {c.state_dir, c.mount_point}) {
    Status s = MakeDirs(dir);
    if (!s.ok()) {
      LogError(s.message());
      return 1;
    }
  }

  auto key = auth::LoadDaemonKey(c.cluster_key);
  if (!key.ok()) {
    LogError(key.status().message());
    return 1;
  }

  fused::FuseFrontend fuse(
      {c.mount_point, c.fuse_threads, c.max_background, c.max_request_kib * 1024});
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
  fused::VolumeService service(settings, fuse);
  s = service.Start();
  if (!s.ok()) {
    LogError(s.message());
    fuse.Stop();
    return 1;
  }
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
  if (!s.ok()) {
    LogError(s.message());
    fuse.Stop();
    return 1;
  }
  LogInfo("ready");

  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    LogInfo("SIGHUP ignored: restart the daemon to apply configuration changes");
  }
  LogInfo(std::string("stopping on ") + strsignal(sig));
  dbus.Stop();
  service.Shutdown();
  fuse.Stop();
  return 0;
}
