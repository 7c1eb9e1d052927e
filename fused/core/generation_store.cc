#include "fused/core/generation_store.h"

#include <unistd.h>

#include "common/file_util.h"

namespace shorthorn::fused {

Status GenerationStore::Init() { return MakeDirs(dir_, 0700); }

uint64_t GenerationStore::Get(const std::string& volume) {
  std::lock_guard lock(mutex_);
  auto text = ReadFileToString(Path(volume));
  if (!text.ok()) return 0;
  try {
    return std::stoull(*text);
  } catch (const std::exception&) {
    return 0;
  }
}

Status GenerationStore::Raise(const std::string& volume, uint64_t generation) {
  std::lock_guard lock(mutex_);
  auto text = ReadFileToString(Path(volume));
  uint64_t current = 0;
  if (text.ok()) {
    try {
      current = std::stoull(*text);
    } catch (const std::exception&) {
    }
  }
  if (generation <= current) return Status::Ok();
  return WriteFileAtomic(Path(volume), std::to_string(generation) + "\n")
      .WithContext("record generation of volume " + volume);
}

void GenerationStore::Forget(const std::string& volume) {
  std::lock_guard lock(mutex_);
  ::unlink(Path(volume).c_str());
}

}  // namespace shorthorn::fused
