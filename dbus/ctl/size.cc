#include "dbus/ctl/size.h"

#include <cctype>
#include <limits>

namespace shorthorn::ctl {
namespace {

constexpr char kUnits[] = "KMGTP";

Status BadSize(std::string_view text, std::string_view reason) {
  return Status(ErrorKind::kInvalidArgument,
                "size '" + std::string(text) + "': " + std::string(reason) +
                    " (write a whole number of bytes with an optional K, M, G, T or P "
                    "suffix, binary: 10G = 10 GiB)");
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  size_t i = 0;
  uint64_t value = 0;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (kMax - digit) / 10) return BadSize(text, "too large");
    value = value * 10 + digit;
    ++i;
  }
  if (i == 0) return BadSize(text, text.empty() ? "empty" : "not a number");
  std::string_view suffix = text.substr(i);
  if (suffix.empty()) return value;
  if (suffix[0] == '.' || suffix[0] == ',') return BadSize(text, "fractions are not accepted");
  char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(suffix[0])));
  int shift = 0;
  for (int u = 0; kUnits[u] != '\0'; ++u) {
    if (kUnits[u] == unit) shift = 10 * (u + 1);
  }
  if (shift == 0) return BadSize(text, "unknown unit '" + std::string(suffix) + "'");
  std::string_view rest = suffix.substr(1);
  if (rest == "B" || rest == "b") {
    return BadSize(text, "decimal units are not accepted, use " + std::string(1, unit) + " or " +
                             std::string(1, unit) + "iB");
  }
  if (!rest.empty() && rest != "iB" && rest != "ib") {
    return BadSize(text, "unknown unit '" + std::string(suffix) + "'");
  }
  if (value > (kMax >> shift)) return BadSize(text, "too large");
  return value << shift;
}

Result<uint32_t> ParseCount(std::string_view text) {
  uint64_t value = 0;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      return Status(ErrorKind::kInvalidArgument,
                    "count '" + std::string(text) + "': not a whole number");
    }
    value = value * 10 + static_cast<uint64_t>(c - '0');
    if (value > std::numeric_limits<uint32_t>::max()) {
      return Status(ErrorKind::kInvalidArgument, "count '" + std::string(text) + "': too large");
    }
  }
  if (text.empty()) return Status(ErrorKind::kInvalidArgument, "count '': empty");
  return static_cast<uint32_t>(value);
}

}  // namespace shorthorn::ctl
