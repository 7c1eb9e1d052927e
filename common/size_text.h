// Sizes as text for people: "0 B", "512 B", "10 GiB", "1.5 GiB". Used by
// shorthornctl's tables and by the daemons' messages, so both say a size the
// same way. Pure; any thread.
#pragma once

#include <cstdint>
#include <string>

namespace shorthorn {

// The largest binary unit (B, KiB ... EiB) that fits, with one decimal,
// rounded down, when the size is not a whole number of that unit.
std::string FormatSize(uint64_t bytes);

}  // namespace shorthorn
