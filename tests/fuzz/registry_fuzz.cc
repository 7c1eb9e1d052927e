// Design notes: fuzzes fused's volume registry decoder (fused/core/registry.h,
// doc/registry-format.md): the input is a volumes.json. Registry::Decode
// catches Boost.JSON's exceptions and returns a Status; anything else
// escaping is a finding. A registry that decodes must survive a round trip:
// Encode, Decode, Encode gives the same text, so fused never writes a file
// it cannot read back or that means something else.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fused/core/registry.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shorthorn;
  fused::Registry registry("/fuzz/volumes.json");
  if (!registry.Decode(std::string(fuzz::AsText(data, size))).ok()) return 0;
  const std::string once = registry.Encode();
  fused::Registry again("/fuzz/volumes.json");
  Status s = again.Decode(once);
  fuzz::Check(s.ok(), "an encoded registry does not decode: " + s.message());
  fuzz::Check(again.Encode() == once, "a registry changes in an encode/decode round trip");
  return 0;
}
