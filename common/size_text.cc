#include "common/size_text.h"

namespace shorthorn {

std::string FormatSize(uint64_t bytes) {
  static constexpr const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  while (unit < 6 && (bytes >> (10 * (unit + 1))) != 0) ++unit;
  uint64_t whole = bytes >> (10 * unit);
  uint64_t rest = bytes - (whole << (10 * unit));
  std::string text = std::to_string(whole);
  if (rest != 0) {
    // One decimal, rounded down; rest < 2^60 here, so rest * 10 fits.
    uint64_t tenth = (rest * 10) >> (10 * unit);
    text += "." + std::to_string(tenth);
  }
  return text + " " + kNames[unit];
}

}  // namespace shorthorn
