// CHECKSUM (op 43): the hashes are XXH3-64 of what READ returns, chunk by
// chunk (the last one short), through holes and snapshot layers; every bad
// request is a named EINVAL; fencing as for the other layer ops; refused
// while rebuilding; never a torn chunk under concurrent writes.
#include <xxhash.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <future>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "common/log.h"
#include "replicad/core/replica_store.h"
#include "replicad/core/request_handler.h"
#include "replicad/io/sync_io_engine.h"
#include "tests/unit/replicad/chain_test_util.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;
using testing::ChainFixture;
using testing::RandomBytes;
using testing::TempDir;

constexpr uint64_t kChunk = 64 << 10;
constexpr uint64_t kSize = 5 * kChunk + 12 * 1024;  // the last chunk is short

struct Reply {
  int32_t status = -1;
  std::string payload;
};

std::string Hex(uint64_t x) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(x));
  return hex;
}

class ChecksumTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kWarning);
    ASSERT_TRUE(store_.Create("v", "r", kSize).ok());
    ASSERT_TRUE(store_.Open("v", "r", 1).ok());
    ASSERT_EQ(Call(&conn_, wire::Op::kHello, R"({"volume":"v","replica":"r","epoch":1})").status,
              0);
  }
  Reply Call(ConnectionState* state, wire::Op op, std::string payload, uint64_t epoch = 1,
             uint64_t offset = 0, uint64_t length = 0) {
    Frame f;
    f.payload.assign(payload.begin(), payload.end());
    f.header = wire::MakeRequest(op, ++next_id_, epoch, offset, length, f.payload);
    // UNMAP answers from the replica's unmap thread: wait for the reply.
    auto replied = std::make_shared<std::promise<Reply>>();
    std::future<Reply> answer = replied->get_future();
    Status s = handler_.Handle(state, std::move(f),
                               [replied](const wire::Header&, int32_t st, std::vector<uint8_t> p) {
                                 replied->set_value({st, std::string(p.begin(), p.end())});
                               });
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return {};
    return answer.get();
  }
  Reply Sum(uint64_t offset, uint64_t length, uint64_t chunk, uint64_t epoch = 1) {
    json::object o{{"offset", offset}, {"length", length}, {"chunk", chunk}};
    return Call(&conn_, wire::Op::kChecksum, json::serialize(o), epoch);
  }
  // The hashes of a successful CHECKSUM.
  std::vector<std::string> Hashes(uint64_t offset, uint64_t length, uint64_t chunk) {
    Reply r = Sum(offset, length, chunk);
    EXPECT_EQ(r.status, 0) << r.payload;
    if (r.status != 0) return {};
    json::object o = json::parse(r.payload).as_object();
    EXPECT_EQ(o.at("chunk").to_number<uint64_t>(), chunk);
    std::vector<std::string> out;
    for (const auto& h : o.at("hashes").as_array()) out.emplace_back(h.as_string());
    return out;
  }
  // What the hashes must be, from the test's own copy of the volume.
  std::vector<std::string> Expected(uint64_t offset, uint64_t length, uint64_t chunk) const {
    std::vector<std::string> out;
    for (uint64_t pos = offset; pos < offset + length; pos += chunk) {
      uint64_t n = std::min(chunk, offset + length - pos);
      out.push_back(Hex(XXH3_64bits(model_.data() + pos, n)));
    }
    return out;
  }
  void Write(uint64_t offset, const std::vector<uint8_t>& data) {
    std::string d(data.begin(), data.end());
    ASSERT_EQ(Call(&conn_, wire::Op::kWrite, d, 1, offset, d.size()).status, 0);
    std::copy(data.begin(), data.end(), model_.begin() + static_cast<ptrdiff_t>(offset));
  }
  // Asserts an EINVAL whose message names the replica and `value`.
  void ExpectInvalid(const std::string& body, const std::string& value) {
    Reply r = Call(&conn_, wire::Op::kChecksum, body);
    EXPECT_EQ(r.status, EINVAL) << body << ": " << r.payload;
    EXPECT_NE(r.payload.find("checksum replica r: "), std::string::npos) << r.payload;
    EXPECT_NE(r.payload.find(value), std::string::npos) << r.payload;
  }

  TempDir dir_{/*in_memory=*/true};
  SyncIoEngine engine_{0};
  ReplicaStore store_{dir_.path(), &engine_};
  RequestHandler handler_{&store_};
  ConnectionState conn_;
  uint64_t next_id_ = 0;
  std::vector<uint8_t> model_ = std::vector<uint8_t>(kSize, 0);
  std::mt19937_64 rng_{43};
};

TEST_F(ChecksumTest, HolesHashAsZeros) {
  std::vector<std::string> h = Hashes(0, kSize, kChunk);
  ASSERT_EQ(h.size(), 6u);
  std::vector<uint8_t> zeros(kChunk, 0);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(h[i], Hex(XXH3_64bits(zeros.data(), kChunk)));
  EXPECT_EQ(h[5], Hex(XXH3_64bits(zeros.data(), 12 * 1024)));
  EXPECT_EQ(h, Expected(0, kSize, kChunk));
}

TEST_F(ChecksumTest, HashesAreXxh3OfTheData) {
  Write(0, RandomBytes(rng_, 3 * 4096));
  Write(kChunk + 100, RandomBytes(rng_, 70000));  // unaligned, across chunks
  Write(kSize - 4096, RandomBytes(rng_, 4096));   // in the short last chunk
  EXPECT_EQ(Hashes(0, kSize, kChunk), Expected(0, kSize, kChunk));
  // A range that starts inside and ends before the volume, mid-block.
  EXPECT_EQ(Hashes(3 * 4096, 100001, 8192), Expected(3 * 4096, 100001, 8192));
  // One chunk of the largest size over the whole (smaller) range.
  EXPECT_EQ(Hashes(0, kSize, 4 << 20), Expected(0, kSize, 4 << 20));
  // UNMAP reads as zeros, and so hashes.
  ASSERT_EQ(Call(&conn_, wire::Op::kUnmap, "", 1, kChunk, kChunk).status, 0);
  std::fill(model_.begin() + kChunk, model_.begin() + 2 * kChunk, 0);
  EXPECT_EQ(Hashes(0, kSize, kChunk), Expected(0, kSize, kChunk));
}

TEST_F(ChecksumTest, SeesDataThroughSnapshotLayers) {
  Write(0, RandomBytes(rng_, kSize));
  ASSERT_EQ(Call(&conn_, wire::Op::kSnapshot, R"({"name":"s1"})").status, 0);
  Write(4096, RandomBytes(rng_, 4096));
  ASSERT_EQ(Call(&conn_, wire::Op::kSnapshot, R"({"name":"s2"})").status, 0);
  Write(2 * kChunk + 10, RandomBytes(rng_, 50));
  EXPECT_EQ(Hashes(0, kSize, kChunk), Expected(0, kSize, kChunk));
  // Merging a deleted snapshot changes no hash.
  ASSERT_EQ(Call(&conn_, wire::Op::kDeleteSnapshot, R"({"name":"s2"})").status, 0);
  ASSERT_TRUE((*store_.Find("v", "r"))->WaitIdle());
  EXPECT_EQ(Hashes(0, kSize, kChunk), Expected(0, kSize, kChunk));
}

TEST_F(ChecksumTest, BadRequestsAreNamedEinval) {
  ExpectInvalid(R"({"offset":0,"length":4096,"chunk":0})", "chunk 0");
  ExpectInvalid(R"({"offset":0,"length":4096,"chunk":4095})", "chunk 4095");
  ExpectInvalid(R"({"offset":0,"length":4096,"chunk":6144})", "chunk 6144");
  ExpectInvalid(R"({"offset":0,"length":4096,"chunk":4198400})", "chunk 4198400");
  ExpectInvalid(R"({"offset":100,"length":4096,"chunk":4096})", "offset 100");
  ExpectInvalid(R"({"offset":0,"length":0,"chunk":4096})", "length 0");
  ExpectInvalid(R"({"offset":0,"length":67108865,"chunk":4096})", "length 67108865");
  ExpectInvalid(R"({"offset":4096,"length":)" + std::to_string(kSize) + R"(,"chunk":4096})",
                "beyond the size");
  ExpectInvalid(R"({"offset":)" + std::to_string(kSize + 4096) + R"(,"length":1,"chunk":4096})",
                "beyond the size");
  // offset + length would wrap around 2^64.
  ExpectInvalid(R"({"offset":18446744073709547520,"length":8192,"chunk":4096})",
                "range 18446744073709547520+8192");
  // Missing fields and wrong types.
  ExpectInvalid(R"({"length":4096,"chunk":4096})", "'offset'");
  ExpectInvalid(R"({"offset":0,"chunk":4096})", "'length'");
  ExpectInvalid(R"({"offset":0,"length":4096})", "'chunk'");
  ExpectInvalid(R"({"offset":"0","length":4096,"chunk":4096})", "'offset'");
  ExpectInvalid(R"({"offset":-4096,"length":4096,"chunk":4096})", "'offset'");
  ExpectInvalid(R"({"offset":0,"length":4096.0,"chunk":4096})", "'length'");
  ExpectInvalid(R"({"offset":0,"length":4096,"chunk":1e30})", "'chunk'");
  ExpectInvalid(R"({"offset":0,"length":4096,"chunk":null})", "'chunk'");
  ExpectInvalid(R"({"offset":0,"length":4096,"chunk":true})", "'chunk'");
  // Not JSON at all breaks the stream, as for every control op.
  Frame f;
  std::string text = "[]";
  f.payload.assign(text.begin(), text.end());
  f.header = wire::MakeRequest(wire::Op::kChecksum, ++next_id_, 1, 0, 0, f.payload);
  EXPECT_EQ(handler_.Handle(&conn_, std::move(f), [](auto&&...) {}).kind(), ErrorKind::kProtocol);
}

TEST_F(ChecksumTest, LargestRequest) {
  ASSERT_TRUE(store_.Create("v", "big", 64 << 20).ok());
  ASSERT_TRUE(store_.Open("v", "big", 1).ok());
  ConnectionState big;
  ASSERT_EQ(Call(&big, wire::Op::kHello, R"({"volume":"v","replica":"big","epoch":1})").status, 0);
  Reply r = Call(&big, wire::Op::kChecksum, R"({"offset":0,"length":67108864,"chunk":4096})");
  ASSERT_EQ(r.status, 0) << r.payload.substr(0, 200);
  EXPECT_LE(r.payload.size(), wire::kMaxControlPayload);
  EXPECT_EQ(json::parse(r.payload).at("hashes").as_array().size(), 16384u);
}

TEST_F(ChecksumTest, FencedLikeTheOtherLayerOps) {
  Reply stale = Sum(0, 4096, 4096, /*epoch=*/0);
  Reply snapshot = Call(&conn_, wire::Op::kSnapshot, R"({"name":"s"})", 0);
  EXPECT_EQ(stale.status, ESTALE);
  EXPECT_EQ(snapshot.status, ESTALE);
  // The current epoch is not revealed.
  EXPECT_EQ(stale.payload,
            "checksum replica r: epoch 0 is not the replica's current epoch (fenced)");
  EXPECT_EQ(snapshot.payload,
            "snapshot replica r: epoch 0 is not the replica's current epoch (fenced)");
  // A newer engine fences the old connection.
  ASSERT_TRUE(store_.Open("v", "r", 2).ok());
  EXPECT_EQ(Sum(0, 4096, 4096, 1).status, ESTALE);
  ConnectionState unbound;
  Reply r = Call(&unbound, wire::Op::kChecksum, R"({"offset":0,"length":4096,"chunk":4096})");
  EXPECT_EQ(r.status, EPROTO);
  EXPECT_NE(r.payload.find("no HELLO"), std::string::npos) << r.payload;
  ASSERT_TRUE(store_.Close("v", "r", 2).ok());
  EXPECT_EQ(Sum(0, 4096, 4096, 2).status, ESHUTDOWN);
}

TEST_F(ChecksumTest, RefusedWhileRebuilding) {
  ASSERT_TRUE(store_.Create("v", "target", kSize, /*rebuilding=*/true).ok());
  ASSERT_TRUE(store_.Open("v", "target", 1).ok());
  ConnectionState conn;
  ASSERT_EQ(Call(&conn, wire::Op::kHello, R"({"volume":"v","replica":"target","epoch":1})").status,
            0);
  Reply r = Call(&conn, wire::Op::kChecksum, R"({"offset":0,"length":4096,"chunk":4096})");
  EXPECT_EQ(r.status, EBUSY);
  EXPECT_NE(r.payload.find("checksum replica target: replica target is rebuilding"),
            std::string::npos)
      << r.payload;
}

// Writes of whole chunks, each of one byte value, race with CHECKSUM and
// SNAPSHOT: every hash is that of one uniform chunk, never of a mix (a read
// without the range lock sees a write half done).
TEST(ChecksumConcurrencyTest, NoTornChunk) {
  SyncIoEngine engine(2);
  ChainFixture f(&engine, 2 * kChunk);
  std::set<uint64_t> uniform;
  for (int b = 0; b < 256; ++b) {
    std::vector<uint8_t> v(kChunk, static_cast<uint8_t>(b));
    uniform.insert(XXH3_64bits(v.data(), v.size()));
  }
  std::atomic<bool> stop{false};
  auto writer = [&](int seed) {
    for (int i = seed; !stop; i += 2) {
      std::vector<uint8_t> v(kChunk, static_cast<uint8_t>(i % 255 + 1));
      EXPECT_TRUE(f.Write((i % 2) * kChunk, v).ok());
    }
  };
  std::thread w1(writer, 0), w2(writer, 1), w3(writer, 2);
  std::thread snapshots([&] {
    for (int i = 0; i < 20 && !stop; ++i) EXPECT_TRUE(f.Snapshot("s" + std::to_string(i)).ok());
  });
  for (int round = 0; round < 3000; ++round) {
    auto sums = f.r().Checksum(0, 0, 2 * kChunk, kChunk);
    ASSERT_TRUE(sums.ok()) << sums.status().ToString();
    ASSERT_EQ(sums->size(), 2u);
    for (uint64_t x : *sums) ASSERT_EQ(uniform.count(x), 1u) << "torn chunk in round " << round;
  }
  stop = true;
  w1.join();
  w2.join();
  w3.join();
  snapshots.join();
}

}  // namespace
}  // namespace shorthorn::replicad
