// The id of one fused (one state directory): 32 lowercase hex digits in
// <state-dir>/fused-id, made at the first start and never changed. Replicas
// record the id of the fused that owns them (doc/replica-format.md); a
// volume imported by another fused (ImportVolume) refuses the old one.
#pragma once

#include <string>

#include "common/status.h"

namespace shorthorn::fused {

// Reads <state_dir>/fused-id, or makes one (random, written atomically) when
// the file does not exist. A file that is not 32 lowercase hex digits (and
// an optional newline) is an error: a new id would disown every replica.
Result<std::string> LoadOrCreateFusedId(const std::string& state_dir);

}  // namespace shorthorn::fused
