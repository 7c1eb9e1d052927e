// Chooses the IoEngine at start-up from the io-engine setting: "auto" tries
// io_uring and falls back to the sync engine with a log line; "io_uring"
// fails when the ring cannot be set up; "sync" never tries io_uring. Called
// once by main (and by tests).
#pragma once

#include <memory>

#include "common/status.h"
#include "config/daemon_config.h"
#include "replicad/io/io_engine.h"

namespace shorthorn::replicad {

// Worker threads of the sync engine.
inline constexpr int kSyncEngineThreads = 8;

Result<std::unique_ptr<IoEngine>> MakeIoEngine(config::IoEngineKind kind);

}  // namespace shorthorn::replicad
