#include "fused/core/fuse_session_state.h"

#include <boost/json.hpp>

#include "common/file_util.h"
#include "common/names.h"

namespace shorthorn::fused {
namespace json = boost::json;

namespace {
constexpr int64_t kFormat = 1;
constexpr uint64_t kMaxIno = uint64_t{1} << 48;
constexpr uint32_t kMinWrite = 4096;
constexpr uint32_t kMaxWrite = 16u << 20;
}  // namespace

std::string EncodeSessionState(const FuseSessionState& s) {
  json::object volumes;
  for (const auto& [name, f] : s.volumes) volumes[name] = {{"ino", f.ino}, {"size", f.size}};
  json::object doc{{"format", kFormat},
                   {"mount_device", s.mount_device},
                   {"init",
                    {{"major", s.init.major},
                     {"minor", s.init.minor},
                     {"max_readahead", s.init.max_readahead},
                     {"flags", s.init.flags},
                     {"flags2", s.init.flags2}}},
                   {"max_write", s.max_write},
                   {"next_ino", s.next_ino},
                   {"volumes", volumes}};
  return json::serialize(doc) + "\n";
}

Result<FuseSessionState> DecodeSessionState(const std::string& text) {
  auto bad = [](const std::string& why) {
    return Status(ErrorKind::kInvalidArgument, "FUSE session state: " + why);
  };
  FuseSessionState s;
  try {
    json::value doc = json::parse(text);
    const json::object& root = doc.as_object();
    if (root.at("format").to_number<int64_t>() != kFormat) return bad("unknown format version");
    s.mount_device = json::value_to<std::string>(root.at("mount_device"));
    const json::object& init = root.at("init").as_object();
    s.init.major = init.at("major").to_number<uint32_t>();
    s.init.minor = init.at("minor").to_number<uint32_t>();
    s.init.max_readahead = init.at("max_readahead").to_number<uint32_t>();
    s.init.flags = init.at("flags").to_number<uint32_t>();
    s.init.flags2 = init.at("flags2").to_number<uint32_t>();
    s.max_write = root.at("max_write").to_number<uint32_t>();
    s.next_ino = root.at("next_ino").to_number<uint64_t>();
    for (const auto& [key, value] : root.at("volumes").as_object()) {
      std::string name(key);
      SH_RETURN_IF_ERROR(ValidateName("volume", name));
      FuseSessionState::File f;
      f.ino = value.at("ino").to_number<uint64_t>();
      f.size = value.at("size").to_number<uint64_t>();
      s.volumes[name] = f;
    }
  } catch (const std::exception& e) {
    return bad(e.what());
  }
  if (s.mount_device.empty() || s.mount_device.size() > 32) return bad("bad mount_device");
  // Protocol 7.x with the 64-bit flags (7.36) that every kernel able to
  // resend requests has.
  if (s.init.major != 7 || s.init.minor < 36) {
    return bad("INIT protocol " + std::to_string(s.init.major) + "." +
               std::to_string(s.init.minor) + " is not 7.36 or later");
  }
  if (s.max_write < kMinWrite || s.max_write > kMaxWrite) {
    return bad("max_write " + std::to_string(s.max_write) + " is out of range");
  }
  if (s.next_ino < 2 || s.next_ino > kMaxIno) return bad("next_ino is out of range");
  std::map<uint64_t, std::string> seen;
  for (const auto& [name, f] : s.volumes) {
    if (f.ino < 2 || f.ino >= s.next_ino) {
      return bad("volume " + name + ": inode " + std::to_string(f.ino) + " is out of range");
    }
    if (!seen.emplace(f.ino, name).second) {
      return bad("volumes " + seen[f.ino] + " and " + name + " share inode " +
                 std::to_string(f.ino));
    }
  }
  return s;
}

Status SaveSessionState(const std::string& path, const FuseSessionState& state) {
  return WriteFileAtomic(path, EncodeSessionState(state)).WithContext("save " + path);
}

Result<FuseSessionState> LoadSessionState(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  auto state = DecodeSessionState(*text);
  if (!state.ok()) return state.status().WithContext("read " + path);
  return state;
}

}  // namespace shorthorn::fused
