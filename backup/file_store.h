// FileStore: a BackupStore in a local directory (file:// targets), for a
// mounted NFS share or disk, and for tests. An object "a/b/c" is the file
// "<root>/a/b/c"; directories are made as needed (mode 0700). Put writes
// "<file>.tmp.<random>", fsyncs it, renames it over the file and fsyncs the
// directory, so readers see the old or the new object whole and the new one
// is durable on return. Temp files left by a crash are never listed.
//
// Threads: one store may be used from several threads at once; two Puts of
// the same key race like two S3 PUTs (the last rename wins, both whole).
#pragma once

#include <memory>

#include "backup/store.h"
#include "backup/target.h"

namespace shorthorn::backup {

// Opens (creating it, mode 0700, if missing) the directory `target.path`.
// NotFound/NotAuthorized/... naming the URL when it cannot be made or is
// not a directory.
Result<std::unique_ptr<BackupStore>> OpenFileStore(const Target& target);

}  // namespace shorthorn::backup
