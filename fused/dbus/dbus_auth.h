// Authorization of mutating D-Bus calls. Reading (properties, ListVolumes,
// Introspect) is open to everyone; every method that changes something asks
// an Authorizer first, which allows uid 0, the uids the policy adds (tests),
// and members of the admin group (default "shorthorn", primary or
// supplementary). The uid comes from the bus daemon (SO_PEERCRED at connect
// time); the groups from the bus when it provides them, else from
// /proc/<pid>/status. The pure decision and parsing are separate from the bus
// so they can be tested without one.
// Threads: CheckCaller runs on the event loop thread inside a handler (it
// makes a synchronous call to the bus daemon); the rest is pure.
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

 private:
  AdminPolicy policy_;
};

}  // namespace shorthorn::fused::dbus
