// Design notes: fuzzes fused's parser of a REPLICAD_INFO reply
// (ParseReplicadInfo, fused/net/replica_client.h; doc/protocol.md), the
// one reply from any replicad that decides where fused places replicas.
// The input is the reply's JSON text, as ControlCall would hand it over
// (a text that is not a JSON object never reaches the parser).
//
// Properties checked besides "no crash, no sanitizer report": an error is
// kProtocol (EPROTO) naming the replicad, and short (a hostile value is not
// echoed whole); accepted facts hold a valid host id, at most 32 valid,
// distinct tags with at most one zone, free <= total and a hostname of at
// most 255 characters without control characters; and the facts written
// back as a reply parse to the same facts.
#include <boost/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/names.h"
#include "fused/net/replica_client.h"
#include "tests/fuzz/fuzz_util.h"

namespace shorthorn::fused {
namespace {

namespace json = boost::json;

constexpr const char* kAddress = "10.0.0.2:9500";

json::object AsReply(const ReplicadFacts& f) {
  json::array tags;
  for (const auto& t : f.tags) tags.emplace_back(t);
  return {{"host_id", f.host_id},       {"hostname", f.hostname},
          {"tags", std::move(tags)},    {"total_bytes", f.total_bytes},
          {"free_bytes", f.free_bytes}, {"provisioned_bytes", f.provisioned_bytes},
          {"replicas", f.replicas}};
}

void CheckFacts(const ReplicadFacts& f) {
  fuzz::Check(f.address == kAddress, "the facts name another replicad");
  fuzz::Check(ValidateHostId(f.host_id).ok(), "an invalid host id was accepted");
  fuzz::Check(f.hostname.size() <= 255, "a hostname over 255 characters was accepted");
  fuzz::Check(
      std::none_of(f.hostname.begin(), f.hostname.end(),
                   [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }),
      "a hostname with a control character was accepted");
  fuzz::Check(f.tags.size() <= kMaxTags, "more than kMaxTags tags were accepted");
  size_t zones = 0;
  for (size_t i = 0; i < f.tags.size(); ++i) {
    fuzz::Check(ValidateTag(f.tags[i]).ok(), "an invalid tag was accepted");
    fuzz::Check(std::find(f.tags.begin() + i + 1, f.tags.end(), f.tags[i]) == f.tags.end(),
                "a duplicate tag was accepted");
    if (f.tags[i].rfind("zone=", 0) == 0) ++zones;
  }
  fuzz::Check(zones <= 1, "two zones were accepted");
  fuzz::Check(f.free_bytes <= f.total_bytes, "free above total was accepted");
}

void RunOne(const uint8_t* data, size_t size) {
  json::error_code ec;
  json::value v = json::parse(fuzz::AsText(data, size), ec);
  if (ec || !v.is_object()) return;
  auto facts = ParseReplicadInfo(v.as_object(), kAddress);
  if (!facts.ok()) {
    const Status& s = facts.status();
    fuzz::Check(s.kind() == ErrorKind::kProtocol && s.sys_errno() == EPROTO,
                "a refused reply is not a kProtocol error: " + s.ToString());
    fuzz::Check(s.message().find(kAddress) != std::string::npos,
                "an error does not name the replicad: " + s.message());
    fuzz::Check(s.message().size() < 1024, "an error echoes a long value");
    return;
  }
  CheckFacts(*facts);
  auto again = ParseReplicadInfo(AsReply(*facts), kAddress);
  fuzz::Check(again.ok(), "accepted facts written back do not parse: " +
                              (again.ok() ? std::string() : again.status().message()));
  fuzz::Check(again->host_id == facts->host_id && again->hostname == facts->hostname &&
                  again->tags == facts->tags && again->total_bytes == facts->total_bytes &&
                  again->free_bytes == facts->free_bytes &&
                  again->provisioned_bytes == facts->provisioned_bytes &&
                  again->replicas == facts->replicas,
              "accepted facts written back parse to other facts");
}

}  // namespace
}  // namespace shorthorn::fused

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > shorthorn::wire::kMaxControlPayload) return 0;
  shorthorn::fused::RunOne(data, size);
  return 0;
}
