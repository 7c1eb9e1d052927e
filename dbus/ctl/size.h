// Sizes as people write them: "10G", "512M", "1T", "4096" (bytes), with
// binary multiples (K = 1024), and back to text ("10 GiB", "1.5 GiB"); also
// plain counts ("3 replicas"). Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/size_text.h"  // FormatSize
#include "common/status.h"

namespace shorthorn::ctl {

// Parses a whole number with an optional suffix K, M, G, T or P (either
// case, optionally followed by "iB": "10G", "10GiB", "10g"). InvalidArgument
// with a message saying what is wrong for anything else, including decimal
// units ("10GB"), fractions and values past 2^64-1.
Result<uint64_t> ParseSize(std::string_view text);

// A whole number of things, 0 to 2^32-1, digits only; InvalidArgument naming
// `text` otherwise. The daemon judges the range.
Result<uint32_t> ParseCount(std::string_view text);

}  // namespace shorthorn::ctl
