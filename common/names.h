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

}  // namespace shorthorn
