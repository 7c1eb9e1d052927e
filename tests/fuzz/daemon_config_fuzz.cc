// Design notes: fuzzes the configuration files of both daemons
// (config/daemon_config.h, doc/configuration.md): the input is written to a
// file in the scratch directory and loaded as the default config file, the
// way a daemon reads /etc/shorthorn/{replicad,fused}.conf. Byte 0 picks the
// daemon (bit 0: fused) and the rest is the file. Boost.Program_options
// throws on bad input; the loader promises that every error comes back as a
// Status, so an escaping exception is a finding (libFuzzer reports it as a
// crash). A config that loads must hold values inside the documented ranges
// (replicad: a valid host-id or none, at most 32 valid, distinct tags with
// at most one zone).
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "common/names.h"
#include "common/net.h"
#include "config/daemon_config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shorthorn;
  if (size == 0) return 0;
  const bool fused = (data[0] & 1) != 0;
  const std::string path = fuzz::ScratchDir() + "/daemon.conf";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
    if (!out) fuzz::Fail("write " + path);
  }
  const char* argv[] = {fused ? "shorthorn-fused" : "shorthorn-replicad", nullptr};
  if (fused) {
    auto r = config::LoadFusedConfig(1, argv, path);
    if (r.ok() && !r->exit_now) {
      const config::FusedConfig& c = r->config;
      fuzz::Check(!c.state_dir.empty() && c.state_dir[0] == '/', "state-dir not absolute");
      fuzz::Check(c.replica_timeout_s >= 1 && c.replica_timeout_s <= 3600, "replica-timeout range");
      fuzz::Check(c.connections_per_replica >= 1 && c.connections_per_replica <= 64,
                  "connections-per-replica range");
      fuzz::Check(c.max_request_kib >= 4 && c.max_request_kib <= 1024, "max-request-kib range");
      fuzz::Check(c.backup_workers >= 1 && c.backup_workers <= 64, "backup-workers range");
      for (const auto& a : c.replicads) {
        auto parsed = ParseHostPort(a);
        fuzz::Check(parsed.ok() && parsed->port != 0,
                    "a replicads address that does not parse again");
      }
    }
  } else {
    auto r = config::LoadReplicadConfig(1, argv, path);
    if (r.ok() && !r->exit_now) {
      const config::ReplicadConfig& c = r->config;
      fuzz::Check(c.port >= 1, "port range");
      fuzz::Check(!c.data_dir.empty() && c.data_dir[0] == '/', "data-dir not absolute");
      fuzz::Check(c.host_id.empty() || ValidateHostId(c.host_id).ok(), "an invalid host-id");
      fuzz::Check(c.tags.size() <= kMaxTags, "more than kMaxTags tags");
      size_t zones = 0;
      for (size_t i = 0; i < c.tags.size(); ++i) {
        fuzz::Check(ValidateTag(c.tags[i]).ok(), "an invalid tag");
        for (size_t j = i + 1; j < c.tags.size(); ++j) {
          fuzz::Check(c.tags[i] != c.tags[j], "a duplicate tag");
        }
        if (c.tags[i].rfind("zone=", 0) == 0) ++zones;
      }
      fuzz::Check(zones <= 1, "two zone tags");
    }
  }
  return 0;
}
