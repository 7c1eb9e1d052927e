// Conversion of a method's `a{sv}` options argument into fused::Options, the
// one place that decides which variant types an option may have: b, s, and
// the integer types (y, n, q, i, u, x, t), signed ones widened to int64_t and
// unsigned ones to uint64_t. Anything else is InvalidArgument naming the key.
// Pure; callable from any thread.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include <sdbus-c++/Types.h>

#include "common/status.h"
#include "fused/core/volume_manager.h"

namespace shorthorn::fused::dbus {

using DbusOptions = std::map<std::string, sdbus::Variant>;

// `method` names the D-Bus method for the error message
// ("CreateVolume: option \"x\" has type d; ...").
Result<Options> ConvertOptions(std::string_view method, const DbusOptions& options);

}  // namespace shorthorn::fused::dbus
