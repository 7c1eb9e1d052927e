// Design notes: fuzzes the decoder of fused's FUSE session state
// (fused/core/fuse_session_state.h, doc/registry-format.md): the input is a
// fuse-session.json, which a restarted fused reads before it serves the
// kernel. DecodeSessionState catches Boost.JSON's exceptions and returns a
// Status; anything else escaping is a finding. A state that decodes must
// keep its promises (inodes in range and distinct) and survive a round trip.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "fused/core/fuse_session_state.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shorthorn;
  auto state = fused::DecodeSessionState(std::string(fuzz::AsText(data, size)));
  if (!state.ok()) return 0;
  std::set<uint64_t> inodes;
  for (const auto& [name, f] : state->volumes) {
    fuzz::Check(f.ino >= 2 && f.ino < state->next_ino, "an inode out of range decodes");
    fuzz::Check(inodes.insert(f.ino).second, "two files with one inode decode");
  }
  const std::string once = fused::EncodeSessionState(*state);
  auto again = fused::DecodeSessionState(once);
  fuzz::Check(again.ok(), "an encoded session state does not decode");
  fuzz::Check(fused::EncodeSessionState(*again) == once,
              "a session state changes in an encode/decode round trip");
  return 0;
}
