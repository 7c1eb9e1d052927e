#include "fused/core/generation_store.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "common/file_util.h"

namespace shorthorn::fused {

Status GenerationStore::Init() { return MakeDirs(dir_, 0700); }

Result<uint64_t> GenerationStore::ReadLocked(const std::string& volume) {
  const std::string path = Path(volume);
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) return uint64_t{0};
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status().WithContext("read generation of volume " + volume);
  std::string_view v = *text;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size()) {
    return Status(ErrorKind::kFailed, "generation of volume " + volume + ": " + path +
                                          " does not hold a number; restore it or attach "
                                          "with salvage=true");
  }
  return value;
}

Result<uint64_t> GenerationStore::Get(const std::string& volume) {
  std::lock_guard lock(mutex_);
  return ReadLocked(volume);
}

Status GenerationStore::Raise(const std::string& volume, uint64_t generation) {
  std::lock_guard lock(mutex_);
  auto current = ReadLocked(volume);
  if (current.ok() && generation <= *current) return Status::Ok();
  return WriteFileAtomic(Path(volume), std::to_string(generation) + "\n")
      .WithContext("record generation of volume " + volume);
}

void GenerationStore::Forget(const std::string& volume) {
  std::lock_guard lock(mutex_);
  ::unlink(Path(volume).c_str());
}

std::mutex* GenerationStore::VolumeLock(const std::string& volume) {
  std::lock_guard lock(mutex_);
  auto& m = volume_locks_[volume];
  if (!m) m = std::make_unique<std::mutex>();
  return m.get();
}

Result<uint64_t> GenerationStore::Bump(const std::string& volume, const MembersFn& members,
                                       const ApplyFn& apply) {
  std::lock_guard bump(*VolumeLock(volume));
  auto current = Get(volume);
  if (!current.ok()) return current.status();
  const uint64_t next = *current + 1;
  SH_RETURN_IF_ERROR(apply(members(), next));
  SH_RETURN_IF_ERROR(Raise(volume, next));
  return next;
}

}  // namespace shorthorn::fused
