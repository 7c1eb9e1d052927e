// Design notes: fuzzes the reply decoders of common/control_messages.h
// (control_replies.cc) that fused and the rebuild puller run on what a
// replicad answers: OPEN_REPLICA, HELLO, LIST_REPLICAS, LIST_LAYERS,
// LAYER_EXTENTS and CHECKSUM (REPLICAD_INFO has its own target). The first
// byte picks the reply; the rest is the reply's JSON text, as ControlCall
// hands it over (a text that is not a JSON object never reaches a decoder).
//
// Properties checked besides "no crash, no sanitizer report": a refused
// reply is kProtocol (EPROTO) naming the context and short (a hostile value
// is not echoed whole); an accepted reply encoded again (value_from) decodes
// again, and encodes to the same JSON (nothing is lost or changed).
#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/control_messages.h"
#include "common/wire.h"
#include "tests/fuzz/fuzz_util.h"

namespace shorthorn::msg {
namespace {

namespace json = boost::json;

constexpr const char* kContext = "LIST_LAYERS from 10.0.0.2:9500";

template <typename T>
void Check(const json::object& o) {
  T m;
  Status s = Decode(o, &m, kContext);
  if (!s.ok()) {
    fuzz::Check(s.kind() == ErrorKind::kProtocol && s.sys_errno() == EPROTO,
                "a refused reply is not a kProtocol error: " + s.ToString());
    fuzz::Check(s.message().find(kContext) != std::string::npos,
                "an error does not name its context: " + s.message());
    fuzz::Check(s.message().size() < 1024, "an error echoes a long value");
    return;
  }
  json::value encoded = json::value_from(m);
  fuzz::Check(encoded.is_object(), "an accepted reply does not encode to an object");
  T again;
  Status s2 = Decode(encoded.as_object(), &again, kContext);
  fuzz::Check(s2.ok(), "an accepted reply encoded again does not decode: " + s2.ToString());
  fuzz::Check(json::serialize(json::value_from(again)) == json::serialize(encoded),
              "an accepted reply changes when encoded and decoded again");
}

void RunOne(const uint8_t* data, size_t size) {
  if (size < 1) return;
  json::error_code ec;
  json::value v = json::parse(fuzz::AsText(data + 1, size - 1), ec);
  if (ec || !v.is_object()) return;
  const json::object& o = v.as_object();
  switch (data[0] % 6) {
    case 0:
      return Check<OpenReplicaReply>(o);
    case 1:
      return Check<HelloReply>(o);
    case 2:
      return Check<ListReplicasReply>(o);
    case 3:
      return Check<LayerList>(o);
    case 4:
      return Check<LayerExtentsReply>(o);
    default:
      return Check<ChecksumReply>(o);
  }
}

}  // namespace
}  // namespace shorthorn::msg

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > shorthorn::wire::kMaxControlPayload + 1) return 0;
  shorthorn::msg::RunOne(data, size);
  return 0;
}
