#include "common/names.h"

#include <string>

namespace shorthorn {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// A value for a message: host ids and tags also come from the network
// (REPLICAD_INFO), so a hostile one is cut rather than quoted whole.
std::string Quoted(std::string_view value) {
  constexpr size_t kShown = 80;
  if (value.size() <= kShown) return "'" + std::string(value) + "'";
  return "'" + std::string(value.substr(0, kShown)) + "...' (" + std::to_string(value.size()) +
         " characters)";
}

constexpr size_t kMaxHostIdLength = 64;
constexpr size_t kMaxTagLength = 64;

}  // namespace

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
    if (!IsNameChar(c)) return bad("only letters, digits, '.', '_' and '-' are allowed");
  }
  if (name.find("..") != std::string_view::npos) return bad("must not contain '..'");
  return Status::Ok();
}

Status ValidateHostId(std::string_view host_id) {
  auto bad = [&](const std::string& reason) {
    return Status(ErrorKind::kInvalidArgument, "host id " + Quoted(host_id) + ": " + reason);
  };
  if (host_id.empty()) return Status(ErrorKind::kInvalidArgument, "host id is empty");
  if (host_id.size() > kMaxHostIdLength) {
    return bad("longer than " + std::to_string(kMaxHostIdLength) + " characters");
  }
  for (char c : host_id) {
    if (!IsNameChar(c)) return bad("only letters, digits, '.', '_' and '-' are allowed");
  }
  return Status::Ok();
}

Status ValidateTag(std::string_view tag) {
  auto bad = [&](const std::string& reason) {
    return Status(ErrorKind::kInvalidArgument, "tag " + Quoted(tag) + ": " + reason);
  };
  if (tag.empty()) return Status(ErrorKind::kInvalidArgument, "tag is empty");
  if (tag.size() > kMaxTagLength) {
    return bad("longer than " + std::to_string(kMaxTagLength) + " characters");
  }
  const size_t eq = tag.find('=');
  if (eq != std::string_view::npos) {
    if (tag.find('=', eq + 1) != std::string_view::npos) return bad("more than one '='");
    if (eq == 0 || eq + 1 == tag.size()) {
      return bad("a key=value tag needs both a key and a value");
    }
  }
  for (char c : tag) {
    if (c == '=' || IsNameChar(c)) continue;
    if (c == ',' || c == ' ') {
      return bad(
          "one tag is one word or key=value (a list of tags is separated by spaces in "
          "replicad.conf, by commas in replica-tags)");
    }
    return bad(
        "only letters, digits, '.', '_' and '-' are allowed, and one '=' between a key "
        "and a value");
  }
  return Status::Ok();
}

}  // namespace shorthorn
