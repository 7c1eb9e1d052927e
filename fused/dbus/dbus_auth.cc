// Design notes
//
// sdbus-c++ 1.2 asks sd-bus for the sender's credentials with
// SD_BUS_CREDS_AUGMENT: what the bus daemon does not report
// (GetConnectionCredentials gives the uid and pid; dbus 1.14 gives no groups)
// sd-bus reads from /proc/<pid>. If that still fails we read
// /proc/<pid>/status ourselves. Groups read by pid are racy in principle (the
// caller could exit and its pid be reused), which is why the uid, which is
// the common case (root), is checked first and never comes from /proc.
// The admin group is looked up on every check so that creating the group or
// adding a user to it takes effect without restarting the daemon.
//
// Replicad addresses. fused runs as root and starts the cluster-key
// handshake with every replicad it connects to, so an admin who is not root
// must not be able to point it at any host:port (a volume created there
// would also make every later attach connect there). Only the uid matters
// here (root or not), never the groups. Addresses are compared as the exact strings of
// fused.conf, because that is how fused uses them: "localhost:9500" is a
// different name from "127.0.0.1:9500", and resolving names to compare them
// would be racy against DNS anyway.
#include "fused/dbus/dbus_auth.h"

#include <grp.h>

#include <algorithm>
#include <charconv>
#include <exception>
#include <functional>

#include "common/file_util.h"

namespace shorthorn::fused::dbus {
namespace {

std::optional<gid_t> LookupGroup(const std::string& name) {
  struct group entry;
  struct group* found = nullptr;
  std::vector<char> buffer(16384);
  if (getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return std::nullopt;
  }
  return found->gr_gid;
}

Status NotAuthorized(std::string_view method, std::string reason) {
  return Status(ErrorKind::kNotAuthorized, std::string(method) + ": " + reason);
}

// Fills caller->gid and caller->supplementary_gids, from the bus or /proc.
Status ReadGroups(const sdbus::MethodCall& call, CallerCredentials* caller) {
  try {
    caller->gid = call.getCredsGid();
    caller->supplementary_gids = call.getCredsSupplementaryGids();
    return Status::Ok();
  } catch (const std::exception& e) {
    // Fall through to /proc.
  }
  pid_t pid = 0;
  try {
    pid = call.getCredsPid();
  } catch (const std::exception& e) {
    return Status(ErrorKind::kNotAuthorized, std::string("cannot read its pid: ") + e.what());
  }
  auto text = ReadFileToString("/proc/" + std::to_string(pid) + "/status");
  if (!text.ok()) return Status(ErrorKind::kNotAuthorized, text.status().message());
  auto gids = ParseProcStatusNumbers(*text, "Gid:");
  auto groups = ParseProcStatusNumbers(*text, "Groups:");
  if (!gids || gids->empty() || !groups) {
    return Status(ErrorKind::kNotAuthorized,
                  "cannot parse /proc/" + std::to_string(pid) + "/status");
  }
  caller->gid = static_cast<gid_t>((*gids)[0]);
  caller->supplementary_gids.assign(groups->begin(), groups->end());
  return Status::Ok();
}

}  // namespace

Status CheckCredentials(std::string_view method, const CallerCredentials& caller,
                        const AdminPolicy& policy, std::optional<gid_t> admin_gid) {
  if (caller.uid == 0) return Status::Ok();
  const auto& extra = policy.extra_uids;
  if (std::find(extra.begin(), extra.end(), caller.uid) != extra.end()) return Status::Ok();
  if (admin_gid) {
    const auto& groups = caller.supplementary_gids;
    if (caller.gid == *admin_gid ||
        std::find(groups.begin(), groups.end(), *admin_gid) != groups.end()) {
      return Status::Ok();
    }
  }
  std::string reason =
      "caller uid " + std::to_string(caller.uid) + " is neither root nor in group " + policy.group;
  if (!admin_gid) reason += " (no such group on this host)";
  return NotAuthorized(method, reason);
}

Status CheckReplicaAddresses(std::string_view method, uid_t caller_uid,
                             const std::vector<std::string>& addresses,
                             const std::vector<std::string>& configured) {
  if (caller_uid == 0) return Status::Ok();
  for (const std::string& address : addresses) {
    if (std::find(configured.begin(), configured.end(), address) != configured.end()) continue;
    return NotAuthorized(method, "replicad " + address +
                                     " is not in fused.conf's replicads; only root may name "
                                     "other replicads");
  }
  return Status::Ok();
}

namespace {
std::string_view WithoutTrailingSlashes(std::string_view url) {
  while (url.size() > 1 && url.back() == '/') url.remove_suffix(1);
  return url;
}
}  // namespace

Status CheckBackupTargetUrl(std::string_view method, uid_t caller_uid, const std::string& target,
                            const std::string& configured) {
  if (caller_uid == 0 || target.empty()) return Status::Ok();
  if (WithoutTrailingSlashes(target) == WithoutTrailingSlashes(configured)) return Status::Ok();
  return NotAuthorized(method, "backup target " + target + " is not fused.conf's backup-target (" +
                                   configured + "); only root may name another");
}

std::string BackupUrlTarget(const std::string& url) {
  size_t q = url.find('?');
  return q == std::string::npos ? std::string() : url.substr(0, q);
}

std::optional<std::vector<unsigned long>> ParseProcStatusNumbers(std::string_view status,
                                                                 std::string_view field) {
  size_t pos = 0;
  while (pos < status.size()) {
    size_t end = status.find('\n', pos);
    if (end == std::string_view::npos) end = status.size();
    std::string_view line = status.substr(pos, end - pos);
    pos = end + 1;
    if (line.substr(0, field.size()) != field) continue;
    std::vector<unsigned long> numbers;
    std::string_view rest = line.substr(field.size());
    size_t i = 0;
    while (i < rest.size()) {
      if (rest[i] == ' ' || rest[i] == '\t') {
        ++i;
        continue;
      }
      unsigned long value = 0;
      auto [next, ec] = std::from_chars(rest.data() + i, rest.data() + rest.size(), value);
      if (ec != std::errc()) return std::nullopt;
      numbers.push_back(value);
      i = next - rest.data();
    }
    return numbers;
  }
  return std::nullopt;
}

Status Authorizer::CheckCaller(std::string_view method, const sdbus::MethodCall& call) const {
  try {
    CallerCredentials caller;
    try {
      caller.uid = call.getCredsUid();
    } catch (const std::exception& e) {
      return NotAuthorized(method, std::string("cannot read the caller's uid: ") + e.what());
    }
    CallerCredentials uid_only = caller;
    if (CheckCredentials(method, uid_only, policy_, std::nullopt).ok()) return Status::Ok();
    std::optional<gid_t> admin_gid = LookupGroup(policy_.group);
    if (admin_gid) {
      Status read = ReadGroups(call, &caller);
      if (!read.ok()) {
        return NotAuthorized(method, "caller uid " + std::to_string(caller.uid) +
                                         ": cannot read its groups: " + read.message());
      }
    }
    return CheckCredentials(method, caller, policy_, admin_gid);
  } catch (const std::exception& e) {
    return NotAuthorized(method, std::string("cannot check the caller: ") + e.what());
  }
}

namespace {

// `check` for a caller that is not root; when that refuses, `check` again
// with the uid of the sender of `call` (asking the bus only then).
Status CheckAsCaller(std::string_view method, const sdbus::MethodCall& call,
                     const std::function<Status(uid_t)>& check) {
  Status as_anyone = check(static_cast<uid_t>(-1));
  if (as_anyone.ok()) return as_anyone;
  uid_t uid = static_cast<uid_t>(-1);
  try {
    uid = call.getCredsUid();
  } catch (const std::exception& e) {
    return NotAuthorized(method, std::string("cannot read the caller's uid: ") + e.what());
  }
  return check(uid);
}

}  // namespace

Status Authorizer::CheckReplicas(std::string_view method, const sdbus::MethodCall& call,
                                 const std::vector<std::string>& addresses) const {
  return CheckAsCaller(method, call, [&](uid_t uid) {
    return CheckReplicaAddresses(method, uid, addresses, policy_.replicads);
  });
}

Status Authorizer::CheckTarget(std::string_view method, const sdbus::MethodCall& call,
                               const std::string& target) const {
  return CheckAsCaller(method, call, [&](uid_t uid) {
    return CheckBackupTargetUrl(method, uid, target, policy_.backup_target);
  });
}

}  // namespace shorthorn::fused::dbus
