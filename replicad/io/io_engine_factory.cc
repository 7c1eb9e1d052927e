#include "replicad/io/io_engine_factory.h"

#include "common/log.h"
#include "replicad/io/sync_io_engine.h"
#include "replicad/io/uring_io_engine.h"

namespace shorthorn::replicad {

Result<std::unique_ptr<IoEngine>> MakeIoEngine(config::IoEngineKind kind) {
  if (kind != config::IoEngineKind::kSync) {
    auto uring = UringIoEngine::Create();
    if (uring.ok()) return std::unique_ptr<IoEngine>(std::move(*uring));
    if (kind == config::IoEngineKind::kIoUring) {
      return uring.status().WithContext("io-engine=io_uring");
    }
    LogInfo("io_uring is unavailable (" + uring.status().message() + "); using the sync engine");
  }
  return std::unique_ptr<IoEngine>(std::make_unique<SyncIoEngine>(kSyncEngineThreads));
}

}  // namespace shorthorn::replicad
