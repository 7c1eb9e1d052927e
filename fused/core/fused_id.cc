#include "fused/core/fused_id.h"

#include <cerrno>
#include <cstdio>
#include <random>

#include "common/file_util.h"

namespace shorthorn::fused {

Result<std::string> LoadOrCreateFusedId(const std::string& state_dir) {
  const std::string path = state_dir + "/fused-id";
  auto text = ReadFileToString(path);
  if (text.ok()) {
    std::string id = *text;
    if (!id.empty() && id.back() == '\n') id.pop_back();
    bool hex = id.size() == 32;
    for (char c : id) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!hex) {
      return Status(ErrorKind::kInvalidArgument,
                    path +
                        " is not 32 lowercase hex digits; restore it from a backup (a new id "
                        "would make this fused a stranger to its replicas)");
    }
    return id;
  }
  if (text.status().kind() != ErrorKind::kNotFound) return text.status();
  std::random_device rd;  // getrandom(2)
  std::string id;
  for (int i = 0; i < 4; ++i) {
    char part[9];
    std::snprintf(part, sizeof(part), "%08x", static_cast<unsigned>(rd()));
    id += part;
  }
  SH_RETURN_IF_ERROR(WriteFileAtomic(path, id + "\n"));
  return id;
}

}  // namespace shorthorn::fused
