// The settings of the two daemons, their defaults, and their validation.
// Each daemon's main calls Load*Config(argc, argv); the result is a plain
// struct with every value already checked. Keys are documented in
// doc/configuration.md and in the shipped /etc/shorthorn/*.conf files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "config/config_loader.h"

namespace shorthorn::config {

inline constexpr const char* kReplicadConfigFile = "/etc/shorthorn/replicad.conf";
inline constexpr const char* kFusedConfigFile = "/etc/shorthorn/fused.conf";

enum class IoEngineKind { kAuto, kIoUring, kSync };

struct ReplicadConfig {
  std::string listen = "127.0.0.1";  // address to bind
  uint16_t port = 9500;
  std::string data_dir = "/var/lib/shorthorn/replicas";
  IoEngineKind io_engine = IoEngineKind::kAuto;
  // Unix socket <socket_dir>/<port>.sock for fused on this host ("" = none).
  std::string socket_dir = "/run/shorthorn-replicad";
  // Whole-block writes into a replica bypass the page cache (O_DIRECT).
  bool direct_io = true;
  // The cluster's shared secret (doc/protocol.md, "Authentication"): every
  // connection proves it holds it before any other request.
  std::string cluster_key = "/etc/shorthorn/cluster.key";
  uint32_t max_connections = 1024;       // connections served at once (TCP and Unix)
  uint32_t auth_timeout_s = 10;          // a connection must authenticate within this
  uint32_t send_timeout_s = 30;          // a client that takes no reply this long is dropped
  uint64_t max_volume_size_gib = 65536;  // largest replica CREATE or EXPAND accepts
  // Prometheus text file with the open replicas' figures, rewritten every
  // 10 s (point it into node-exporter's textfile directory); "" for none,
  // the default: the packaged daemon runs as its own user, which may not
  // write there until the operator allows it. Two replicads on one host
  // need two files.
  std::string metrics_file;
  // Where this replicad runs, for placement (REPLICAD_INFO): fused puts the
  // replicas of one volume on different host ids. "" (the default): the
  // daemon resolves it at start (ResolveHostId). Checked by ValidateHostId.
  std::string host_id;
  // Its tags ("ssd", "zone=rack1"; ValidateTag), in the order given: at most
  // kMaxTags, no duplicate, at most one zone=... tag.
  std::vector<std::string> tags;
  std::string log_level = "info";
};

struct FusedConfig {
  std::string state_dir = "/var/lib/shorthorn/fused";
  std::string mount_point = "/run/shorthorn/volumes";
  std::string dev_dir = "/dev/shorthorn";  // stable symlinks to loop devices
  // Replicads used when CreateVolume is given no addresses ("host:port").
  std::vector<std::string> replicads = {"127.0.0.1:9500"};
  uint32_t replica_timeout_s = 8;  // silence after which a replica fails
  uint32_t connect_timeout_s = 5;  // TCP connect and handshake
  uint32_t connections_per_replica = 4;
  // Where replicads on this host make their Unix sockets ("" = TCP only).
  std::string replicad_socket_dir = "/run/shorthorn-replicad";
  uint32_t fuse_threads = 8;        // max idle FUSE worker threads
  uint32_t max_background = 256;    // FUSE requests in flight
  uint32_t max_request_kib = 1024;  // largest FUSE read/write request
  // FUSE over io_uring when the kernel offers it (fused/fuse/fuse_ring.h);
  // such a connection is not handed over to the next fused.
  bool fuse_uring = false;
  uint32_t fuse_uring_depth = 32;             // ring entries per CPU
  uint32_t stale_replica_timeout_min = 2880;  // ERR replica data kept this long
  uint32_t rebuild_bandwidth_mib = 0;         // MiB/s per rebuild, 0 = unlimited
  // Placement and replacement (doc/dbus-api.md, "Placement"). A failed
  // replica that can catch up is rebuilt elsewhere only after this wait
  // (Longhorn's replica-replenishment-wait-interval, also 600 s).
  uint32_t replica_replenishment_wait_s = 600;
  uint32_t concurrent_rebuilds_per_replicad = 1;  // onto one replicad at a time
  bool replica_anti_affinity_hard = true;         // false: soft
  std::string zone_anti_affinity = "soft";        // "hard", "soft" or "off"
  uint32_t replica_over_provisioning_percent = 100;
  uint32_t replica_space_reserve_percent = 10;
  uint32_t scrub_bandwidth_mib = 64;  // MiB/s one scrub compares, 0 = unlimited
  uint32_t scrub_interval_h = 0;      // hours between scrubs, 0 = on request only
  // Backups (doc/backup-format.md): the target used when a call names none,
  // the S3 credentials file, and the parallel block workers of one job.
  std::string backup_target = "file:///var/lib/shorthorn/backups";
  std::string backup_credentials = "/etc/shorthorn/backup-credentials";
  uint32_t backup_workers = 4;
  // The cluster's shared secret, the same file on every host.
  std::string cluster_key = "/etc/shorthorn/cluster.key";
  uint64_t max_volume_size_gib = 65536;  // largest CreateVolume or Expand
  // Attach again at start the volumes that were attached when fused last
  // stopped or crashed.
  bool auto_attach = true;
  // Prometheus text file with the volumes' figures, rewritten every 10 s
  // (node-exporter's textfile collector reads this directory); "" for none.
  std::string metrics_file = "/var/lib/prometheus/node-exporter/shorthorn.prom";
  std::string log_level = "info";
};

// Outcome of loading: either settings to run with, or a request to print
// help/version and exit 0. `usage` holds the help text.
template <typename T>
struct Loaded {
  T config;
  bool exit_now = false;
  std::string output;  // help or version text when exit_now
};

Result<Loaded<ReplicadConfig>> LoadReplicadConfig(
    int argc, const char* const* argv, const std::string& default_file = kReplicadConfigFile);
Result<Loaded<FusedConfig>> LoadFusedConfig(int argc, const char* const* argv,
                                            const std::string& default_file = kFusedConfigFile);

// The host id a replicad reports, and where it came from (for its log).
struct HostId {
  std::string id;
  std::string source;  // "host-id", the machine-id file's path, or "the hostname"
};

// Resolves replicad's host id: `configured` (host-id) when set; else the
// first line of `machine_id_file` (normally /etc/machine-id) when it is a
// valid host id (not systemd's "uninitialized"); else `hostname` made
// valid: lowercased, characters outside [a-z0-9._-] dropped, cut to 64.
// InvalidArgument, telling to set host-id, when that leaves nothing.
// Reads the file only when `configured` is empty.
Result<HostId> ResolveHostId(const std::string& configured, const std::string& machine_id_file,
                             const std::string& hostname);

}  // namespace shorthorn::config
