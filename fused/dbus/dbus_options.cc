#include "fused/dbus/dbus_options.h"

#include <cstdint>

namespace shorthorn::fused::dbus {
namespace {

// The widened value of `variant`, or nullopt when its type is not accepted.
std::optional<OptionValue> Widen(const sdbus::Variant& variant) {
  const std::string type = variant.peekValueType();
  if (type == "b") return OptionValue(variant.get<bool>());
  if (type == "s") return OptionValue(variant.get<std::string>());
  if (type == "y") return OptionValue(uint64_t{variant.get<uint8_t>()});
  if (type == "q") return OptionValue(uint64_t{variant.get<uint16_t>()});
  if (type == "u") return OptionValue(uint64_t{variant.get<uint32_t>()});
  if (type == "t") return OptionValue(uint64_t{variant.get<uint64_t>()});
  if (type == "n") return OptionValue(int64_t{variant.get<int16_t>()});
  if (type == "i") return OptionValue(int64_t{variant.get<int32_t>()});
  if (type == "x") return OptionValue(int64_t{variant.get<int64_t>()});
  return std::nullopt;
}

}  // namespace

Result<Options> ConvertOptions(std::string_view method, const DbusOptions& options) {
  Options out;
  for (const auto& [key, variant] : options) {
    std::optional<OptionValue> value = Widen(variant);
    if (!value) {
      std::string type = variant.isEmpty() ? std::string("(empty)") : variant.peekValueType();
      return Status(ErrorKind::kInvalidArgument,
                    std::string(method) + ": option \"" + key + "\" has D-Bus type " + type +
                        "; options must be b, s or an integer type (y n q i u x t)");
    }
    out.emplace(key, std::move(*value));
  }
  return out;
}

}  // namespace shorthorn::fused::dbus
