// The replicad metrics file: per-replica counters through the request
// handler, the store's figures, the text format, and the metrics-file key.
#include <cerrno>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "config/daemon_config.h"
#include "replicad/core/replica_metrics.h"
#include "replicad/core/replica_store.h"
#include "replicad/core/request_handler.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;
using testing::FailingSyncEngine;
using testing::TempDir;

class MetricsHandlerTest : public ::testing::Test {
 protected:
  // Handles one frame on `state` and returns the reply's status.
  int32_t Call(ConnectionState* state, wire::Op op, std::string payload, uint64_t epoch = 0,
               uint64_t offset = 0, uint64_t length = 0) {
    Frame f;
    f.payload.assign(payload.begin(), payload.end());
    f.header = wire::MakeRequest(op, ++next_id_, epoch, offset, length, f.payload);
    auto replied = std::make_shared<std::promise<int32_t>>();
    std::future<int32_t> answer = replied->get_future();
    Status s = handler_.Handle(state, std::move(f),
                               [replied](const wire::Header&, int32_t st, std::vector<uint8_t>) {
                                 replied->set_value(st);
                               });
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return -1;
    EXPECT_EQ(answer.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return answer.get();
  }
  int32_t Control(wire::Op op, const json::object& o) {
    return Call(&control_, op, json::serialize(o));
  }
  // Creates and opens replica `r` of volume `v` at `epoch` and binds `conn` to it.
  void OpenAndBind(ConnectionState* conn, uint64_t epoch) {
    ASSERT_EQ(
        Control(wire::Op::kCreateReplica, {{"volume", "v"}, {"replica", "r"}, {"size", 65536}}), 0);
    ASSERT_EQ(
        Control(wire::Op::kOpenReplica, {{"volume", "v"}, {"replica", "r"}, {"epoch", epoch}}), 0);
    ASSERT_EQ(
        Call(conn, wire::Op::kHello,
             json::serialize(json::object{{"volume", "v"}, {"replica", "r"}, {"epoch", epoch}})),
        0);
  }
  ReplicaIoFigures Get(ReplicaIoOp op) { return control_replica()->io_stats().Get(op); }
  std::shared_ptr<Replica> control_replica() {
    auto r = store_.Find("v", "r");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : nullptr;
  }

  TempDir dir_;
  FailingSyncEngine engine_;
  ReplicaStore store_{dir_.path(), &engine_};
  RequestHandler handler_{&store_};
  ConnectionState control_;
  uint64_t next_id_ = 0;
};

TEST_F(MetricsHandlerTest, DataRequestsAreCountedOnceWithTheirBytes) {
  ConnectionState conn;
  ASSERT_NO_FATAL_FAILURE(OpenAndBind(&conn, 1));
  const std::string data(5000, 'x');
  EXPECT_EQ(Call(&conn, wire::Op::kWrite, data, 1, 100, data.size()), 0);
  EXPECT_EQ(Call(&conn, wire::Op::kWrite, std::string(4096, 'y'), 1, 8192, 4096), 0);
  EXPECT_EQ(Call(&conn, wire::Op::kRead, "", 1, 100, 5000), 0);
  EXPECT_EQ(Call(&conn, wire::Op::kFlush, "", 1), 0);
  EXPECT_EQ(Call(&conn, wire::Op::kUnmap, "", 1, 0, 8192), 0);
  EXPECT_EQ(Call(&conn, wire::Op::kPing, "", 1), 0);  // not an I/O op

  ReplicaIoFigures w = Get(ReplicaIoOp::kWrite), r = Get(ReplicaIoOp::kRead),
                   f = Get(ReplicaIoOp::kFlush), u = Get(ReplicaIoOp::kUnmap);
  EXPECT_EQ(w.requests, 2u);
  EXPECT_EQ(w.bytes, 5000u + 4096u);
  EXPECT_EQ(w.errors, 0u);
  EXPECT_EQ(r.requests, 1u);
  EXPECT_EQ(r.bytes, 5000u);
  EXPECT_EQ(f.requests, 1u);
  EXPECT_EQ(f.bytes, 0u);
  EXPECT_EQ(u.requests, 1u);
  EXPECT_EQ(u.bytes, 8192u);
  EXPECT_EQ(u.errors, 0u);

  // The store's figures carry them with the replica's state.
  auto figures = store_.Figures();
  ASSERT_EQ(figures.size(), 1u);
  EXPECT_EQ(figures[0].name, "r");
  EXPECT_EQ(figures[0].volume, "v");
  EXPECT_EQ(figures[0].size, 65536u);
  EXPECT_EQ(figures[0].epoch, 1u);
  EXPECT_EQ(figures[0].generation, 0u);
  EXPECT_EQ(figures[0].io[static_cast<size_t>(ReplicaIoOp::kWrite)].bytes, 9096u);
  EXPECT_EQ(figures[0].io[static_cast<size_t>(ReplicaIoOp::kUnmap)].requests, 1u);

  // Closed replicas are not listed.
  ASSERT_EQ(Control(wire::Op::kCloseReplica, {{"volume", "v"}, {"replica", "r"}, {"epoch", 1}}), 0);
  EXPECT_TRUE(store_.Figures().empty());
}

TEST_F(MetricsHandlerTest, ErrorsAreCountedWithoutBytes) {
  ConnectionState conn;
  ASSERT_NO_FATAL_FAILURE(OpenAndBind(&conn, 2));
  EXPECT_EQ(Call(&conn, wire::Op::kRead, "", 2, 65536, 1), EINVAL);  // beyond the size
  EXPECT_EQ(Call(&conn, wire::Op::kWrite, std::string(10, 'x'), 1, 0, 10), ESTALE);
  EXPECT_EQ(Call(&conn, wire::Op::kUnmap, "", 2, 61440, 8192), EINVAL);
  engine_.fail_sync = true;
  EXPECT_EQ(Call(&conn, wire::Op::kFlush, "", 2), EIO);

  for (ReplicaIoOp op :
       {ReplicaIoOp::kRead, ReplicaIoOp::kWrite, ReplicaIoOp::kFlush, ReplicaIoOp::kUnmap}) {
    ReplicaIoFigures f = conn.replica->io_stats().Get(op);
    EXPECT_EQ(f.requests, 1u) << ReplicaIoOpName(op);
    EXPECT_EQ(f.errors, 1u) << ReplicaIoOpName(op);
    EXPECT_EQ(f.bytes, 0u) << ReplicaIoOpName(op);
  }
}

ReplicaFigures Example() {
  ReplicaFigures r;
  r.name = "r1";
  r.volume = "data";
  r.size = 1048576;
  r.epoch = 3;
  r.generation = 7;
  r.io[0] = {10, 40960, 1};  // read
  r.io[1] = {5, 20480, 0};   // write
  r.io[2] = {2, 0, 0};       // flush
  r.io[3] = {1, 4096, 0};    // unmap
  return r;
}

TEST(ReplicaMetricsFormat, OneReplicaExactly) {
  const std::string expected =
      R"(# HELP shorthorn_replica_open 1 for each replica open in this replicad.
# TYPE shorthorn_replica_open gauge
shorthorn_replica_open{replica="r1",volume="data"} 1
# HELP shorthorn_replica_size_bytes Size of the replica (its volume's size).
# TYPE shorthorn_replica_size_bytes gauge
shorthorn_replica_size_bytes{replica="r1",volume="data"} 1048576
# HELP shorthorn_replica_epoch Epoch the replica was last opened with.
# TYPE shorthorn_replica_epoch gauge
shorthorn_replica_epoch{replica="r1",volume="data"} 3
# HELP shorthorn_replica_generation Generation recorded in the replica.
# TYPE shorthorn_replica_generation gauge
shorthorn_replica_generation{replica="r1",volume="data"} 7
# HELP shorthorn_replica_io_requests_total Data requests answered since the replica was opened, by operation.
# TYPE shorthorn_replica_io_requests_total counter
shorthorn_replica_io_requests_total{replica="r1",volume="data",op="read"} 10
shorthorn_replica_io_requests_total{replica="r1",volume="data",op="write"} 5
shorthorn_replica_io_requests_total{replica="r1",volume="data",op="flush"} 2
shorthorn_replica_io_requests_total{replica="r1",volume="data",op="unmap"} 1
# HELP shorthorn_replica_io_bytes_total Bytes read, written or unmapped by successful requests, by operation.
# TYPE shorthorn_replica_io_bytes_total counter
shorthorn_replica_io_bytes_total{replica="r1",volume="data",op="read"} 40960
shorthorn_replica_io_bytes_total{replica="r1",volume="data",op="write"} 20480
shorthorn_replica_io_bytes_total{replica="r1",volume="data",op="flush"} 0
shorthorn_replica_io_bytes_total{replica="r1",volume="data",op="unmap"} 4096
# HELP shorthorn_replica_io_errors_total Data requests answered with an error, by operation.
# TYPE shorthorn_replica_io_errors_total counter
shorthorn_replica_io_errors_total{replica="r1",volume="data",op="read"} 1
shorthorn_replica_io_errors_total{replica="r1",volume="data",op="write"} 0
shorthorn_replica_io_errors_total{replica="r1",volume="data",op="flush"} 0
shorthorn_replica_io_errors_total{replica="r1",volume="data",op="unmap"} 0
)";
  EXPECT_EQ(FormatReplicaMetrics({Example()}), expected);
}

TEST(ReplicaMetricsFormat, NoReplicaStillHasEveryFamily) {
  const std::string out = FormatReplicaMetrics({});
  size_t help = 0, type = 0;
  for (size_t pos = 0; (pos = out.find("# HELP ", pos)) != std::string::npos; ++pos) ++help;
  for (size_t pos = 0; (pos = out.find("# TYPE ", pos)) != std::string::npos; ++pos) ++type;
  EXPECT_EQ(help, 7u);
  EXPECT_EQ(type, 7u);
  EXPECT_EQ(out.find("{"), std::string::npos) << out;
}

TEST(ReplicaMetricsFormat, LabelValuesAreEscaped) {
  ReplicaFigures r = Example();
  r.name = "a\"b";
  r.volume = "c\\d\ne";
  const std::string out = FormatReplicaMetrics({r});
  EXPECT_NE(out.find(R"(shorthorn_replica_open{replica="a\"b",volume="c\\d\ne"} 1)"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find('\n' + std::string("e\"")), std::string::npos) << "raw newline: " << out;
}

TEST(ReplicadMetricsConfig, DefaultCommandLineAndEmpty) {
  const char* defaults[] = {"replicad"};
  auto c = config::LoadReplicadConfig(1, defaults, "/nonexistent/replicad.conf");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.metrics_file, "");  // off: the packaged daemon may not write there

  const char* set[] = {"replicad", "--metrics-file", "/tmp/x/replicad-9600.prom"};
  c = config::LoadReplicadConfig(3, set, "/nonexistent/replicad.conf");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.metrics_file, "/tmp/x/replicad-9600.prom");

  const char* none[] = {"replicad", "--metrics-file", ""};
  c = config::LoadReplicadConfig(3, none, "/nonexistent/replicad.conf");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.metrics_file, "");

  const char* relative[] = {"replicad", "--metrics-file", "replicad.prom"};
  c = config::LoadReplicadConfig(3, relative, "/nonexistent/replicad.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("'metrics-file'"), std::string::npos) << c.status().message();
}

}  // namespace
}  // namespace shorthorn::replicad
