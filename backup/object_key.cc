#include "backup/object_key.h"

namespace shorthorn::backup {

bool IsObjectKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

namespace {

// The reason `key` is not a valid key, or "" when it is.
std::string KeyProblem(std::string_view key) {
  if (key.empty()) return "empty key";
  if (key.size() > kMaxObjectKeyLength) {
    return "longer than " + std::to_string(kMaxObjectKeyLength) + " characters";
  }
  if (key.front() == '/' || key.back() == '/') return "a key does not start or end with '/'";
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string_view part = key.substr(start, end - start);
    if (part.empty()) return "empty path component";
    if (part == "." || part == "..") return "'.' and '..' components are not allowed";
    for (char c : part) {
      if (!IsObjectKeyChar(c)) return "characters other than [A-Za-z0-9._-] and '/'";
    }
    start = end + 1;
  }
  return "";
}

}  // namespace

Status CheckObjectKey(std::string_view operation, const std::string& url, const std::string& key) {
  std::string problem = KeyProblem(key);
  if (problem.empty()) return Status::Ok();
  return Status(ErrorKind::kInvalidArgument,
                std::string(operation) + " " + url + " key " + key + ": invalid key: " + problem);
}

Status CheckListPrefix(const std::string& url, const std::string& prefix) {
  if (prefix.empty()) return Status::Ok();
  std::string problem = prefix.back() == '/'
                            ? KeyProblem(std::string_view(prefix).substr(0, prefix.size() - 1))
                            : "a list prefix ends with '/'";
  if (problem.empty()) return Status::Ok();
  return Status(ErrorKind::kInvalidArgument,
                "list " + url + " prefix " + prefix + ": invalid prefix: " + problem);
}

}  // namespace shorthorn::backup
