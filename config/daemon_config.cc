#include "config/daemon_config.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "common/log.h"
#include "common/names.h"
#include "common/net.h"

#ifndef SHORTHORN_VERSION
#define SHORTHORN_VERSION "0.0.0"
#endif

namespace shorthorn::config {
namespace {

std::string VersionText(const char* program) {
  return std::string(program) + " " + SHORTHORN_VERSION + "\n";
}

template <typename T>
Status GetRange(const LoadedConfig& loaded, const char* key, T min, T max, T* out) {
  auto value = loaded.values[key].as<int64_t>();
  if (value < static_cast<int64_t>(min) || value > static_cast<int64_t>(max)) {
    return KeyError(loaded.file.empty() ? "command line" : loaded.file, key,
                    "value " + std::to_string(value) + " is outside " + std::to_string(min) + ".." +
                        std::to_string(max));
  }
  *out = static_cast<T>(value);
  return Status::Ok();
}

Status CheckLogLevel(const LoadedConfig& loaded, const std::string& level) {
  LogLevel ignored;
  if (!ParseLogLevel(level, &ignored)) {
    return KeyError(loaded.file.empty() ? "command line" : loaded.file, "log-level",
                    "'" + level + "' is not one of debug, info, warning, error");
  }
  return Status::Ok();
}

Status CheckAbsolute(const LoadedConfig& loaded, const char* key, const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return KeyError(loaded.file.empty() ? "command line" : loaded.file, key,
                    "'" + path + "' is not an absolute path");
  }
  return Status::Ok();
}

// replicad's tags: space-separated, each a valid tag, no duplicate, at
// most kMaxTags, at most one zone (placement spreads replicas over zones).
Status ParseTags(const std::string& where, const std::string& text, std::vector<std::string>* out) {
  std::istringstream list(text);
  std::set<std::string> seen;
  std::string zone;
  for (std::string tag; list >> tag;) {
    if (Status s = ValidateTag(tag); !s.ok()) return KeyError(where, "tags", s.message());
    if (!seen.insert(tag).second)
      return KeyError(where, "tags", "tag '" + tag + "' is given twice");
    if (seen.size() > kMaxTags) {
      return KeyError(where, "tags", "more than " + std::to_string(kMaxTags) + " tags");
    }
    if (tag.rfind("zone=", 0) == 0) {
      if (!zone.empty()) {
        return KeyError(where, "tags",
                        "two zones, '" + zone + "' and '" + tag + "': a replicad is in one zone");
      }
      zone = tag;
    }
    out->push_back(tag);
  }
  return Status::Ok();
}

// The first line of `path` without trailing white space; "" when it cannot
// be read. A machine-id is 33 bytes: more than a few KiB is not one.
std::string FirstLine(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  std::string line = head.substr(0, head.find('\n'));
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

}  // namespace

Result<HostId> ResolveHostId(const std::string& configured, const std::string& machine_id_file,
                             const std::string& hostname) {
  if (!configured.empty()) {
    SH_RETURN_IF_ERROR(ValidateHostId(configured));
    return HostId{configured, "host-id"};
  }
  // systemd writes "uninitialized" while the first boot has not committed an id.
  if (std::string id = FirstLine(machine_id_file);
      id != "uninitialized" && ValidateHostId(id).ok()) {
    return HostId{id, machine_id_file};
  }
  std::string id;
  for (char c : hostname) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-') {
      id += c;
    }
  }
  id.resize(std::min<size_t>(id.size(), 64));
  if (!ValidateHostId(id).ok()) {
    return Status(ErrorKind::kInvalidArgument,
                  "find this host's id: " + machine_id_file +
                      " holds no valid host id and the hostname '" + hostname +
                      "' has no character a host id may hold; set host-id in replicad.conf "
                      "(1-64 letters, digits, '.', '_' or '-', the same for every replicad of "
                      "this host)");
  }
  return HostId{id, "the hostname"};
}

Result<Loaded<ReplicadConfig>> LoadReplicadConfig(int argc, const char* const* argv,
                                                  const std::string& default_file) {
  ReplicadConfig d;
  po::options_description keys("Settings (replicad.conf)");
  keys.add_options()("listen", po::value<std::string>()->default_value(d.listen),
                     "address to listen on")("port", po::value<int64_t>()->default_value(d.port),
                                             "TCP port of the replica protocol")(
      "data-dir", po::value<std::string>()->default_value(d.data_dir),
      "directory holding one subdirectory per replica")(
      "socket-dir", po::value<std::string>()->default_value(d.socket_dir),
      "where to make the Unix socket <port>.sock for clients on this host (empty: none)")(
      "io-engine", po::value<std::string>()->default_value("auto"),
      "data I/O: auto (io_uring when available), io_uring, or sync")(
      "direct-io", po::value<bool>()->default_value(d.direct_io),
      "write replica data past the page cache (O_DIRECT): true or false")(
      "cluster-key", po::value<std::string>()->default_value(d.cluster_key),
      "file holding the cluster's shared secret (64 hex digits, mode 0600 or 0640)")(
      "max-connections", po::value<int64_t>()->default_value(d.max_connections),
      "connections served at once; more are refused")(
      "auth-timeout", po::value<int64_t>()->default_value(d.auth_timeout_s),
      "seconds a new connection has to authenticate")(
      "send-timeout", po::value<int64_t>()->default_value(d.send_timeout_s),
      "seconds a client may leave replies unread before it is dropped")(
      "max-volume-size", po::value<int64_t>()->default_value(d.max_volume_size_gib),
      "largest replica size in GiB that CREATE_REPLICA and EXPAND accept")(
      "metrics-file", po::value<std::string>()->default_value(d.metrics_file),
      "Prometheus text file with the open replicas' I/O figures, rewritten every 10 s "
      "(node-exporter's textfile directory); empty for none")(
      "host-id", po::value<std::string>()->default_value(d.host_id),
      "this host's id for placement (replicas of a volume go to different host ids); empty: "
      "/etc/machine-id, else the hostname")(
      "tags", po::value<std::string>()->default_value(""),
      "space-separated tags of this replicad, a word or key=value each (e.g. \"zone=rack1 ssd\")")(
      "log-level", po::value<std::string>()->default_value(d.log_level),
      "debug, info, warning or error");
  auto loaded = Load(keys, argc, argv, default_file);
  if (!loaded.ok()) return loaded.status();
  Loaded<ReplicadConfig> out;
  if (loaded->help || loaded->version) {
    out.exit_now = true;
    out.output =
        loaded->help ? Usage("shorthorn-replicad", keys) : VersionText("shorthorn-replicad");
    return out;
  }
  ReplicadConfig& c = out.config;
  const std::string where = loaded->file.empty() ? "command line" : loaded->file;
  c.listen = loaded->values["listen"].as<std::string>();
  SH_RETURN_IF_ERROR(GetRange<uint16_t>(*loaded, "port", 1, 65535, &c.port));
  c.data_dir = loaded->values["data-dir"].as<std::string>();
  SH_RETURN_IF_ERROR(CheckAbsolute(*loaded, "data-dir", c.data_dir));
  c.socket_dir = loaded->values["socket-dir"].as<std::string>();
  if (!c.socket_dir.empty()) SH_RETURN_IF_ERROR(CheckAbsolute(*loaded, "socket-dir", c.socket_dir));
  c.direct_io = loaded->values["direct-io"].as<bool>();
  c.cluster_key = loaded->values["cluster-key"].as<std::string>();
  SH_RETURN_IF_ERROR(CheckAbsolute(*loaded, "cluster-key", c.cluster_key));
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "max-connections", 1, 65536, &c.max_connections));
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "auth-timeout", 1, 600, &c.auth_timeout_s));
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "send-timeout", 1, 3600, &c.send_timeout_s));
  SH_RETURN_IF_ERROR(
      GetRange<uint64_t>(*loaded, "max-volume-size", 1, uint64_t{1} << 24, &c.max_volume_size_gib));
  std::string engine = loaded->values["io-engine"].as<std::string>();
  if (engine == "auto")
    c.io_engine = IoEngineKind::kAuto;
  else if (engine == "io_uring")
    c.io_engine = IoEngineKind::kIoUring;
  else if (engine == "sync")
    c.io_engine = IoEngineKind::kSync;
  else
    return KeyError(where, "io-engine", "'" + engine + "' is not one of auto, io_uring, sync");
  c.metrics_file = loaded->values["metrics-file"].as<std::string>();
  if (!c.metrics_file.empty()) {
    SH_RETURN_IF_ERROR(CheckAbsolute(*loaded, "metrics-file", c.metrics_file));
  }
  c.host_id = loaded->values["host-id"].as<std::string>();
  if (!c.host_id.empty()) {
    if (Status s = ValidateHostId(c.host_id); !s.ok())
      return KeyError(where, "host-id", s.message());
  }
  SH_RETURN_IF_ERROR(ParseTags(where, loaded->values["tags"].as<std::string>(), &c.tags));
  c.log_level = loaded->values["log-level"].as<std::string>();
  SH_RETURN_IF_ERROR(CheckLogLevel(*loaded, c.log_level));
  return out;
}

Result<Loaded<FusedConfig>> LoadFusedConfig(int argc, const char* const* argv,
                                            const std::string& default_file) {
  FusedConfig d;
  std::string default_replicads;
  for (const auto& r : d.replicads) default_replicads += (default_replicads.empty() ? "" : " ") + r;
  po::options_description keys("Settings (fused.conf)");
  keys.add_options()("state-dir", po::value<std::string>()->default_value(d.state_dir),
                     "directory of the volume registry")(
      "mount-point", po::value<std::string>()->default_value(d.mount_point),
      "where the FUSE file system with one file per attached volume is mounted")(
      "dev-dir", po::value<std::string>()->default_value(d.dev_dir),
      "directory of the /dev symlinks to attached volumes' loop devices")(
      "replicads", po::value<std::string>()->default_value(default_replicads),
      "space-separated host:port of the replicads used when CreateVolume names none")(
      "replica-timeout", po::value<int64_t>()->default_value(d.replica_timeout_s),
      "seconds a replica may stay silent before it is failed")(
      "connect-timeout", po::value<int64_t>()->default_value(d.connect_timeout_s),
      "seconds allowed to connect to a replicad and shake hands")(
      "connections-per-replica", po::value<int64_t>()->default_value(d.connections_per_replica),
      "TCP connections per replica")(
      "replicad-socket-dir", po::value<std::string>()->default_value(d.replicad_socket_dir),
      "where replicads on this host make their Unix sockets (empty: TCP only)")(
      "fuse-threads", po::value<int64_t>()->default_value(d.fuse_threads),
      "FUSE worker threads per volume (the pool grows to 4x)")(
      "max-background", po::value<int64_t>()->default_value(d.max_background),
      "FUSE requests the kernel may keep in flight")(
      "max-request-kib", po::value<int64_t>()->default_value(d.max_request_kib),
      "largest FUSE read or write request in KiB")(
      "fuse-uring", po::value<std::string>()->default_value(d.fuse_uring ? "yes" : "no"),
      "yes: FUSE over io_uring when the kernel offers it (a restart then ends the mounts)")(
      "fuse-uring-depth", po::value<int64_t>()->default_value(d.fuse_uring_depth),
      "FUSE over io_uring entries per CPU")(
      "stale-replica-timeout", po::value<int64_t>()->default_value(d.stale_replica_timeout_min),
      "minutes a replaced (ERR) replica's data is kept before it is deleted")(
      "rebuild-bandwidth", po::value<int64_t>()->default_value(d.rebuild_bandwidth_mib),
      "MiB/s a rebuild or a clone may copy, 0 for no limit")(
      "replica-replenishment-wait",
      po::value<int64_t>()->default_value(d.replica_replenishment_wait_s),
      "seconds a failed replica that can catch up gets to come back before it is rebuilt "
      "elsewhere")("concurrent-rebuilds-per-replicad",
                   po::value<int64_t>()->default_value(d.concurrent_rebuilds_per_replicad),
                   "rebuilds and catch-ups onto one replicad at a time; the others queue")(
      "replica-anti-affinity",
      po::value<std::string>()->default_value(d.replica_anti_affinity_hard ? "hard" : "soft"),
      "hard: a volume's replicas only on replicads of different hosts; soft: the same host "
      "when nothing else fits")(
      "zone-anti-affinity", po::value<std::string>()->default_value(d.zone_anti_affinity),
      "hard, soft or off: a volume's replicas in different zones (replicad tag zone=)")(
      "replica-over-provisioning",
      po::value<int64_t>()->default_value(d.replica_over_provisioning_percent),
      "percent of a replicad's space (less the reserve) its replicas' sizes may add up to")(
      "replica-space-reserve", po::value<int64_t>()->default_value(d.replica_space_reserve_percent),
      "percent of a replicad's file system that must stay free for a new replica to go there")(
      "scrub-bandwidth", po::value<int64_t>()->default_value(d.scrub_bandwidth_mib),
      "MiB/s of volume a scrub compares, 0 for no limit")(
      "scrub-interval", po::value<int64_t>()->default_value(d.scrub_interval_h),
      "hours between scrubs of each attached volume, 0 for on request only")(
      "backup-target", po::value<std::string>()->default_value(d.backup_target),
      "backup target used when a call names none: file:///dir or s3://bucket/prefix")(
      "backup-credentials", po::value<std::string>()->default_value(d.backup_credentials),
      "file with the S3 endpoint and credentials (mode 0600)")(
      "backup-workers", po::value<int64_t>()->default_value(d.backup_workers),
      "blocks a backup or restore job processes in parallel")(
      "cluster-key", po::value<std::string>()->default_value(d.cluster_key),
      "file holding the cluster's shared secret (64 hex digits, mode 0600 or 0640)")(
      "max-volume-size", po::value<int64_t>()->default_value(d.max_volume_size_gib),
      "largest volume size in GiB that CreateVolume and Expand accept")(
      "auto-attach", po::value<std::string>()->default_value(d.auto_attach ? "yes" : "no"),
      "yes: attach again at start the volumes attached when fused last stopped; no: start "
      "with every volume detached")(
      "metrics-file", po::value<std::string>()->default_value(d.metrics_file),
      "Prometheus text file with the volumes' I/O figures, rewritten every 10 s "
      "(node-exporter's textfile directory); empty for none")(
      "log-level", po::value<std::string>()->default_value(d.log_level),
      "debug, info, warning or error");
  auto loaded = Load(keys, argc, argv, default_file);
  if (!loaded.ok()) return loaded.status();
  Loaded<FusedConfig> out;
  if (loaded->help || loaded->version) {
    out.exit_now = true;
    out.output = loaded->help ? Usage("shorthorn-fused", keys) : VersionText("shorthorn-fused");
    return out;
  }
  FusedConfig& c = out.config;
  const std::string where = loaded->file.empty() ? "command line" : loaded->file;
  c.state_dir = loaded->values["state-dir"].as<std::string>();
  SH_RETURN_IF_ERROR(CheckAbsolute(*loaded, "state-dir", c.state_dir));
  c.mount_point = loaded->values["mount-point"].as<std::string>();
  SH_RETURN_IF_ERROR(CheckAbsolute(*loaded, "mount-point", c.mount_point));
  c.dev_dir = loaded->values["dev-dir"].as<std::string>();
  SH_RETURN_IF_ERROR(CheckAbsolute(*loaded, "dev-dir", c.dev_dir));
  c.replicads.clear();
  std::istringstream list(loaded->values["replicads"].as<std::string>());
  for (std::string addr; list >> addr;) {
    Status s = ParseHostPort(addr).status();
    if (!s.ok()) return KeyError(where, "replicads", s.message());
    c.replicads.push_back(addr);
  }
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "replica-timeout", 1, 3600, &c.replica_timeout_s));
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "connect-timeout", 1, 600, &c.connect_timeout_s));
  SH_RETURN_IF_ERROR(
      GetRange<uint32_t>(*loaded, "connections-per-replica", 1, 64, &c.connections_per_replica));
  c.replicad_socket_dir = loaded->values["replicad-socket-dir"].as<std::string>();
  if (!c.replicad_socket_dir.empty()) {
    SH_RETURN_IF_ERROR(CheckAbsolute(*loaded, "replicad-socket-dir", c.replicad_socket_dir));
  }
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "fuse-threads", 1, 256, &c.fuse_threads));
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "max-background", 1, 65535, &c.max_background));
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "max-request-kib", 4, 1024, &c.max_request_kib));
  const std::string fuse_uring = loaded->values["fuse-uring"].as<std::string>();
  if (fuse_uring != "yes" && fuse_uring != "no") {
    return KeyError(where, "fuse-uring", "\"" + fuse_uring + "\" is not yes or no");
  }
  c.fuse_uring = fuse_uring == "yes";
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "fuse-uring-depth", 1, 256, &c.fuse_uring_depth));
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "stale-replica-timeout", 0, 525600,
                                        &c.stale_replica_timeout_min));
  SH_RETURN_IF_ERROR(
      GetRange<uint32_t>(*loaded, "rebuild-bandwidth", 0, 100000, &c.rebuild_bandwidth_mib));
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "replica-replenishment-wait", 0, 604800,
                                        &c.replica_replenishment_wait_s));
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "concurrent-rebuilds-per-replicad", 1, 64,
                                        &c.concurrent_rebuilds_per_replicad));
  const std::string host_rule = loaded->values["replica-anti-affinity"].as<std::string>();
  if (host_rule != "hard" && host_rule != "soft") {
    return KeyError(where, "replica-anti-affinity", "\"" + host_rule + "\" is not hard or soft");
  }
  c.replica_anti_affinity_hard = host_rule == "hard";
  c.zone_anti_affinity = loaded->values["zone-anti-affinity"].as<std::string>();
  if (c.zone_anti_affinity != "hard" && c.zone_anti_affinity != "soft" &&
      c.zone_anti_affinity != "off") {
    return KeyError(where, "zone-anti-affinity",
                    "\"" + c.zone_anti_affinity + "\" is not hard, soft or off");
  }
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "replica-over-provisioning", 1, 10000,
                                        &c.replica_over_provisioning_percent));
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "replica-space-reserve", 0, 99,
                                        &c.replica_space_reserve_percent));
  SH_RETURN_IF_ERROR(
      GetRange<uint32_t>(*loaded, "scrub-bandwidth", 0, 100000, &c.scrub_bandwidth_mib));
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "scrub-interval", 0, 87600, &c.scrub_interval_h));
  c.backup_target = loaded->values["backup-target"].as<std::string>();
  if (c.backup_target.rfind("file:///", 0) != 0 && c.backup_target.rfind("s3://", 0) != 0) {
    return KeyError(where, "backup-target",
                    "\"" + c.backup_target + "\" is not file:///<dir> or s3://<bucket>[/<prefix>]");
  }
  c.backup_credentials = loaded->values["backup-credentials"].as<std::string>();
  SH_RETURN_IF_ERROR(CheckAbsolute(*loaded, "backup-credentials", c.backup_credentials));
  SH_RETURN_IF_ERROR(GetRange<uint32_t>(*loaded, "backup-workers", 1, 64, &c.backup_workers));
  c.cluster_key = loaded->values["cluster-key"].as<std::string>();
  SH_RETURN_IF_ERROR(CheckAbsolute(*loaded, "cluster-key", c.cluster_key));
  SH_RETURN_IF_ERROR(
      GetRange<uint64_t>(*loaded, "max-volume-size", 1, uint64_t{1} << 24, &c.max_volume_size_gib));
  const std::string auto_attach = loaded->values["auto-attach"].as<std::string>();
  if (auto_attach != "yes" && auto_attach != "no") {
    return KeyError(where, "auto-attach", "\"" + auto_attach + "\" is not yes or no");
  }
  c.auto_attach = auto_attach == "yes";
  c.metrics_file = loaded->values["metrics-file"].as<std::string>();
  if (!c.metrics_file.empty()) {
    SH_RETURN_IF_ERROR(CheckAbsolute(*loaded, "metrics-file", c.metrics_file));
  }
  c.log_level = loaded->values["log-level"].as<std::string>();
  SH_RETURN_IF_ERROR(CheckLogLevel(*loaded, c.log_level));
  return out;
}

}  // namespace shorthorn::config
