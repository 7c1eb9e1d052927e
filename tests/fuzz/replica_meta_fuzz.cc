// Design notes: fuzzes the decoder of a replica's replica.json
// (replicad/core/replica_meta.h, doc/replica-format.md), including the layer-tree
// validation it runs (ValidateChain). Metadata that decodes must round-trip:
// what replicad would write back (EncodeReplicaMeta, also the upgrade of
// formats 1 and 2 to 3) decodes again to the same encoding, so an Open that
// rewrites the file never leaves one the next Open refuses.
#include <cstddef>
#include <cstdint>
#include <string>

#include "replicad/core/replica_meta.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shorthorn;
  auto meta = replicad::DecodeReplicaMeta(fuzz::AsText(data, size), "/fuzz/replica.json");
  if (!meta.ok()) return 0;
  fuzz::Check(meta->size > 0 && meta->size % replicad::kSectorSize == 0, "a bad size decoded");
  const std::string once = replicad::EncodeReplicaMeta(*meta);
  auto again = replicad::DecodeReplicaMeta(once, "/fuzz/replica.json");
  fuzz::Check(again.ok(), "an encoded replica.json does not decode: " +
                              (again.ok() ? std::string() : again.status().message()));
  fuzz::Check(replicad::EncodeReplicaMeta(*again) == once,
              "replica.json changes in an encode/decode round trip");
  return 0;
}
