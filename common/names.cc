#include "common/names.h"

#include <string>

namespace shorthorn {

Status ValidateName(std::string_view what, std::string_view name) {
  auto bad = [&](const std::string& reason) {
    return Status(ErrorKind::kInvalidArgument,
                  std::string(what) + " name '" + std::string(name) + "': " + reason);
  };
  if (name.empty())
    return Status(ErrorKind::kInvalidArgument, std::string(what) + " name is empty");
  if (name.size() > kMaxNameLength) {
    return bad("longer than " + std::to_string(kMaxNameLength) + " characters");
  }
  if (name[0] == '.' || name[0] == '-') return bad("must not start with '.' or '-'");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return bad("only letters, digits, '.', '_' and '-' are allowed");
  }
  if (name.find("..") != std::string_view::npos) return bad("must not contain '..'");
  return Status::Ok();
}

}  // namespace shorthorn
