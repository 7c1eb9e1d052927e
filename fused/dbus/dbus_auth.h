// Authorization of mutating D-Bus calls. Reading (properties, ListVolumes,
// Introspect) is open to everyone; every method that changes something asks
// an Authorizer first, which allows uid 0, the uids the policy adds (tests),
// and members of the admin group (default "shorthorn", primary or
// supplementary). The uid comes from the bus daemon (SO_PEERCRED at connect
// time); the groups from the bus when it provides them, else from
// /proc/<pid>/status. The pure decision and parsing are separate from the bus
// so they can be tested without one.
// Methods that take replicad addresses (CreateVolume, RestoreVolume) also
// ask CheckReplicas: fused connects to those addresses as root and starts
// the cluster-key handshake there, so naming a host:port that fused.conf's `replicads`
// does not list is reserved to root. Likewise methods that take a backup
// target (Backup's option "target", ListBackups, DeleteBackup, RestoreVolume)
// ask CheckTarget: fused reads and writes a target as root, so a target other
// than fused.conf's backup-target (a file:// URL naming any directory) is
// reserved to root.
// Threads: CheckCaller, CheckReplicas and CheckTarget run on the event loop thread inside
// a handler (they make a synchronous call to the bus daemon); the rest is
// pure.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sdbus-c++/Message.h>

#include "common/status.h"

namespace shorthorn::fused::dbus {

struct AdminPolicy {
  std::string group = "shorthorn";
  // Allowed besides root; tests add their own uid to run unprivileged.
  std::vector<uid_t> extra_uids;
  // fused.conf's `replicads` (ServiceSettings::default_replicads): the only
  // replicad addresses a caller other than root may name.
  std::vector<std::string> replicads;
  // fused.conf's `backup-target` (ServiceSettings::backup_target): the only
  // backup target a caller other than root may name.
  std::string backup_target;
};

struct CallerCredentials {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  std::vector<gid_t> supplementary_gids;
};

// OK when `caller` may change things, else NotAuthorized with a message like
// "CreateVolume: caller uid 65534 is neither root nor in group shorthorn".
// `admin_gid` is the gid of policy.group, nullopt when that group does not
// exist.
Status CheckCredentials(std::string_view method, const CallerCredentials& caller,
                        const AdminPolicy& policy, std::optional<gid_t> admin_gid);

// OK when a caller with uid `caller_uid` may have fused connect to every
// address of `addresses`: root to any, anyone else only to those in
// `configured`, compared as exact strings (fused uses an address as given,
// without resolving or normalizing it). Else NotAuthorized naming the first
// other address: "CreateVolume: replicad 10.9.9.9:1234 is not in fused.conf's
// replicads; only root may name other replicads".
Status CheckReplicaAddresses(std::string_view method, uid_t caller_uid,
                             const std::vector<std::string>& addresses,
                             const std::vector<std::string>& configured);

// OK when a caller with uid `caller_uid` may have fused use backup target
// `target`: root any, anyone else only `configured` ("" means the
// configured one), compared as strings without trailing '/'. Else
// NotAuthorized: "Backup: backup target file:///tmp/x is not fused.conf's
// backup-target (file:///var/lib/shorthorn/backups); only root may name
// another".
Status CheckBackupTargetUrl(std::string_view method, uid_t caller_uid, const std::string& target,
                            const std::string& configured);
// The target part of a backup URL ("<target>?volume=..&backup=.."), "" when
// it has no '?' (not a backup URL: the manager refuses it).
std::string BackupUrlTarget(const std::string& url);

// The numbers of the line "<field>\t..." of a /proc/<pid>/status text
// ("Groups:", "Gid:"); nullopt when the line is missing or malformed.
std::optional<std::vector<unsigned long>> ParseProcStatusNumbers(std::string_view status,
                                                                 std::string_view field);

class Authorizer {
 public:
  explicit Authorizer(AdminPolicy policy) : policy_(std::move(policy)) {}

  // Reads the credentials of the sender of `call` and decides. OK or
  // NotAuthorized; never throws.
  Status CheckCaller(std::string_view method, const sdbus::MethodCall& call) const;
  // CheckReplicaAddresses for the sender of `call` against policy.replicads;
  // reads the caller's uid only when an address is not listed. OK or
  // NotAuthorized; never throws. Ask CheckCaller first.
  Status CheckReplicas(std::string_view method, const sdbus::MethodCall& call,
                       const std::vector<std::string>& addresses) const;
  // CheckBackupTargetUrl for the sender of `call` against
  // policy.backup_target; reads the uid only when the target is another.
  Status CheckTarget(std::string_view method, const sdbus::MethodCall& call,
                     const std::string& target) const;

 private:
  AdminPolicy policy_;
};

}  // namespace shorthorn::fused::dbus
