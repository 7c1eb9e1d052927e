// Design notes: fuzzes the loader of a layer's zero map, the sidecar file
// `layer-<id>.zeros` (replicad/core/zero_map.h, doc/replica-format.md "Zero
// maps"), which replicad reads at open and trusts to hide snapshot data.
// Byte 0 sets the layer's size in blocks (1 << (byte % 24)); the rest is the
// file, written into the scratch directory. What Load accepts must be a
// sane map (sorted, disjoint, coalesced runs inside the layer), the file
// must be cut to exactly the records it kept, a second Load must agree,
// and an Add after it must survive a reload. A refused file is left as it
// was, and the error names it.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "replicad/core/zero_map.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shorthorn;
  using replicad::ZeroMap;
  if (size == 0) return 0;
  const uint64_t blocks = uint64_t{1} << (data[0] % 24);
  const std::string dir = fuzz::ScratchDir();
  const std::string file = "layer-1.zeros";
  const std::string path = dir + "/" + file;
  const std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << input;
  }
  ZeroMap map;
  Status s = map.Load(dir, file, blocks);
  if (!s.ok()) {
    fuzz::Check(s.message().find(path) != std::string::npos, "a refusal does not name the file");
    fuzz::Check(Slurp(path) == input, "a refused zero map was changed");
    return 0;
  }
  const auto runs = map.Runs(0, blocks);
  uint64_t end = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    fuzz::Check(runs[i].count > 0, "an empty run was loaded");
    fuzz::Check(runs[i].first <= blocks && runs[i].count <= blocks - runs[i].first,
                "a run past the layer was loaded");
    fuzz::Check(i == 0 || runs[i].first > end, "runs overlap, touch or are out of order");
    end = runs[i].first + runs[i].count;
  }
  fuzz::Check(map.Runs(0, UINT64_MAX) == runs, "runs outside the layer");
  const std::string kept = Slurp(path);
  fuzz::Check(kept.size() == 8 + 24 * map.records(), "the file was not cut to the kept records");
  fuzz::Check(input.compare(0, kept.size(), kept) == 0, "Load rewrote the records it kept");

  ZeroMap again;
  fuzz::Check(again.Load(dir, file, blocks).ok(), "a loaded zero map does not load again");
  fuzz::Check(again.Runs(0, blocks) == runs && again.records() == map.records(),
              "a second Load differs");

  const ZeroMap::Run last{blocks - 1, 1};
  fuzz::Check(map.Add(dir, file, {last, {0, 1}}).ok(), "an Add after Load failed");
  ZeroMap after;
  fuzz::Check(after.Load(dir, file, blocks).ok(), "the map does not load after an Add");
  fuzz::Check(after.Runs(0, blocks) == map.Runs(0, blocks), "an Add did not survive a reload");
  fuzz::Check(after.Runs(blocks - 1, blocks).size() == 1 && after.Runs(0, 1).size() == 1,
              "the added runs are missing");
  return 0;
}
