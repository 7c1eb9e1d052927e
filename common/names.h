// Validation of the names people give to objects (volumes, replicas,
// snapshots). A valid name is 1..63 characters of [A-Za-z0-9._-], does not
// start with '.' or '-', and so is safe as a file name, a D-Bus object path
// element (after escaping) and a /dev symlink. Pure.
#pragma once

#include <string_view>

#include "common/status.h"

namespace shorthorn {

inline constexpr size_t kMaxNameLength = 63;

// `what` is the kind of object ("volume", "replica") for the message.
Status ValidateName(std::string_view what, std::string_view name);

// A replicad's host id (replicad.conf host-id; /etc/machine-id by
// default): 1..64 characters of [A-Za-z0-9._-]. Replicads that report the
// same host id are on one host for placement.
Status ValidateHostId(std::string_view host_id);
// A replicad tag (replicad.conf tags, volume option replica-tags): "word"
// or "key=value", each part 1+ characters of [A-Za-z0-9._-], 1..64 in all.
// A tag "zone=<z>" names the replicad's zone.
Status ValidateTag(std::string_view tag);
inline constexpr size_t kMaxTags = 32;

}  // namespace shorthorn
