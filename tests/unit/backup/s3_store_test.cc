// S3Store errors and protocol details: against a fake HTTP server (always),
// against s3rver when SHORTHORN_TEST_S3_ENDPOINT is set (wrong credentials,
// missing bucket), and against a closed loopback port.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>

#include "backup/s3_store.h"
#include "backup/store_factory.h"
#include "backup/target.h"
#include "tests/unit/backup/fake_http_server.h"
#include "tests/unit/backup/store_test_util.h"

namespace shorthorn::backup {
namespace {

using testing::FakeHttpServer;
using testing::HttpReply;
using testing::HttpRequest;
using testing::S3ErrorXml;

constexpr char kSecret[] = "fake-secret-never-in-a-message";

S3Settings FakeSettings(const std::string& endpoint) {
  S3Settings s;
  s.endpoint = endpoint;
  s.https = false;
  s.path_style = true;
  s.access_key = "FAKEKEY";
  s.secret_key = kSecret;
  return s;
}

S3StoreOptions FastOptions() {
  S3StoreOptions o;
  o.backoff = std::chrono::milliseconds(10);
  o.request_timeout = std::chrono::milliseconds(5000);
  return o;
}

Target S3Target(const std::string& url) {
  auto t = ParseTarget(url);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return *t;
}

// The decoded value of query parameter `name` in `target`, or nullopt.
std::optional<std::string> QueryParam(const std::string& target, const std::string& name) {
  size_t q = target.find('?');
  if (q == std::string::npos) return std::nullopt;
  std::string query = target.substr(q + 1);
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string pair = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      std::string raw = eq == std::string::npos ? "" : pair.substr(eq + 1), out;
      for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '%' && i + 2 < raw.size()) {
          out += static_cast<char>(std::strtol(raw.substr(i + 1, 2).c_str(), nullptr, 16));
          i += 2;
        } else {
          out += raw[i] == '+' ? ' ' : raw[i];
        }
      }
      return out;
    }
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return std::nullopt;
}

std::string ListXml(const std::vector<std::string>& keys, bool truncated,
                    const std::string& next_marker = "") {
  std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name>"
      "<Prefix></Prefix><Marker></Marker><MaxKeys>1000</MaxKeys><IsTruncated>" +
      std::string(truncated ? "true" : "false") + "</IsTruncated>";
  if (!next_marker.empty()) xml += "<NextMarker>" + next_marker + "</NextMarker>";
  for (const std::string& k : keys) {
    xml += "<Contents><Key>" + k +
           "</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>\"0\"</ETag>"
           "<Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>";
  }
  return xml + "</ListBucketResult>";
}

// libs3 2.0 asks for "/bkt/?prefix=...".
bool IsList(const HttpRequest& r) {
  return r.method == "GET" && (r.target.starts_with("/bkt?") || r.target.starts_with("/bkt/?"));
}

void ExpectNoSecret(const Status& s) {
  EXPECT_EQ(s.message().find(kSecret), std::string::npos) << s.message();
}

// ---------------------------------------------------------------- fake server

TEST(S3StoreFakeServerTest, OpenChecksTheBucketWithOneListRequest) {
  FakeHttpServer server([](const HttpRequest&) { return HttpReply{200, ListXml({}, false)}; });
  auto store =
      OpenS3Store(S3Target("s3://bkt/pfx"), FakeSettings(server.endpoint()), FastOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_TRUE(IsList(reqs[0])) << reqs[0].target;
  EXPECT_EQ(QueryParam(reqs[0].target, "prefix"), "pfx/");
  EXPECT_EQ(QueryParam(reqs[0].target, "max-keys"), "1");
  bool signed_v2 = false;
  for (const auto& [name, value] : reqs[0].headers) {
    if (name == "authorization") signed_v2 = value.starts_with("AWS FAKEKEY:");
  }
  EXPECT_TRUE(signed_v2) << "libs3 2.0 signs with signature V2";
}

TEST(S3StoreFakeServerTest, RetriesTransientServerErrors) {
  int calls = 0;
  FakeHttpServer server([&](const HttpRequest&) {
    if (++calls <= 2) return HttpReply{503, S3ErrorXml("SlowDown", "Please reduce your rate")};
    return HttpReply{200, ListXml({}, false)};
  });
  auto store = OpenS3Store(S3Target("s3://bkt"), FakeSettings(server.endpoint()), FastOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(S3StoreFakeServerTest, GivesUpAfterTheLastAttemptWithUnavailable) {
  FakeHttpServer server([](const HttpRequest&) {
    return HttpReply{500, S3ErrorXml("InternalError", "We encountered an internal error")};
  });
  auto store = OpenS3Store(S3Target("s3://bkt/p"), FakeSettings(server.endpoint()), FastOptions());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().kind(), ErrorKind::kUnavailable) << store.status().ToString();
  EXPECT_NE(store.status().message().find("open s3://bkt/p: "), std::string::npos);
  EXPECT_NE(store.status().message().find("3 attempts"), std::string::npos)
      << store.status().message();
  EXPECT_EQ(server.requests().size(), 3u);
  ExpectNoSecret(store.status());
}

TEST(S3StoreFakeServerTest, AServerThatWantsSignatureV4IsNotAuthorizedAndSaysWhy) {
  FakeHttpServer server([](const HttpRequest&) {
    return HttpReply{400, S3ErrorXml("InvalidRequest",
                                     "The authorization mechanism you have provided is not "
                                     "supported. Please use AWS4-HMAC-SHA256.")};
  });
  auto store = OpenS3Store(S3Target("s3://bkt/p"), FakeSettings(server.endpoint()), FastOptions());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().kind(), ErrorKind::kNotAuthorized) << store.status().ToString();
  EXPECT_NE(store.status().message().find("signature V2"), std::string::npos)
      << store.status().message();
  EXPECT_EQ(server.requests().size(), 1u) << "not retried";
  ExpectNoSecret(store.status());
}

TEST(S3StoreFakeServerTest, AWrongSignatureIsNotAuthorized) {
  FakeHttpServer server([](const HttpRequest&) {
    return HttpReply{403, S3ErrorXml("SignatureDoesNotMatch",
                                     "The request signature we calculated does not match the "
                                     "signature you provided.")};
  });
  auto store = OpenS3Store(S3Target("s3://bkt/p"), FakeSettings(server.endpoint()), FastOptions());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().kind(), ErrorKind::kNotAuthorized) << store.status().ToString();
  EXPECT_NE(store.status().message().find("open s3://bkt/p: the server refused the credentials or "
                                          "the signature (ErrorSignatureDoesNotMatch"),
            std::string::npos)
      << store.status().message();
  EXPECT_NE(store.status().message().find("signature V2"), std::string::npos);
  EXPECT_EQ(server.requests().size(), 1u) << "not retried";
  ExpectNoSecret(store.status());
}

TEST(S3StoreFakeServerTest, AccessDeniedIsNotAuthorized) {
  FakeHttpServer server([](const HttpRequest&) {
    return HttpReply{403, S3ErrorXml("AccessDenied", "Access Denied")};
  });
  auto store = OpenS3Store(S3Target("s3://bkt/p"), FakeSettings(server.endpoint()), FastOptions());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().kind(), ErrorKind::kNotAuthorized) << store.status().ToString();
  EXPECT_NE(store.status().message().find("refused the credentials or the signature"),
            std::string::npos);
}

TEST(S3StoreFakeServerTest, ObjectRequestsUseThePrefixAndMapMissingKeys) {
  FakeHttpServer server([](const HttpRequest& r) {
    if (IsList(r)) return HttpReply{200, ListXml({}, false)};
    if (r.method == "PUT") return HttpReply{200, ""};
    if (r.method == "DELETE") return HttpReply{404, S3ErrorXml("NoSuchKey", "no key")};
    if (r.method == "HEAD") return HttpReply{404, ""};
    return HttpReply{404, S3ErrorXml("NoSuchKey", "The specified key does not exist.")};
  });
  auto store =
      OpenS3Store(S3Target("s3://bkt/p/q"), FakeSettings(server.endpoint()), FastOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const std::vector<uint8_t> data = {1, 2, 3};
  Status put = (*store)->Put("volumes/v/x.blk", data);
  ASSERT_TRUE(put.ok()) << put.ToString();
  auto got = (*store)->Get("volumes/v/y.blk");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(got.status().message().rfind("get s3://bkt/p/q key volumes/v/y.blk: no such object", 0),
            0u)
      << got.status().message();
  auto exists = (*store)->Exists("volumes/v/y.blk");
  ASSERT_TRUE(exists.ok()) << exists.status().ToString();
  EXPECT_FALSE(*exists);
  Status del = (*store)->Delete("volumes/v/y.blk");
  EXPECT_TRUE(del.ok()) << del.ToString();

  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[1].method, "PUT");
  EXPECT_EQ(reqs[1].target, "/bkt/p/q/volumes/v/x.blk");
  EXPECT_EQ(reqs[1].body, std::string("\x01\x02\x03", 3));
  EXPECT_EQ(reqs[2].target, "/bkt/p/q/volumes/v/y.blk");
}

TEST(S3StoreFakeServerTest, AShortBodyIsRetriedAndNeverReturned) {
  int gets = 0;
  bool always_short = false;
  const std::string body(10000, 'b');
  FakeHttpServer server([&](const HttpRequest& r) {
    if (IsList(r)) return HttpReply{200, ListXml({}, false)};
    HttpReply reply{200, body, "application/octet-stream"};
    if (++gets == 1 || always_short) reply.truncate_body_at = 5000;
    return reply;
  });
  auto store = OpenS3Store(S3Target("s3://bkt"), FakeSettings(server.endpoint()), FastOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto got = (*store)->Get("k");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(std::string(got->begin(), got->end()), body);
  EXPECT_EQ(gets, 2);

  always_short = true;
  got = (*store)->Get("k");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().kind(), ErrorKind::kUnavailable) << got.status().ToString();
  EXPECT_EQ(gets, 5);
}

TEST(S3StoreFakeServerTest, ListPagesWithTheLastKeyWhenThereIsNoNextMarker) {
  // A "folder" marker as S3 consoles make them, then ten objects.
  std::vector<std::string> all = {"pfx/volumes/v/"};
  for (int i = 0; i < 10; ++i) all.push_back("pfx/volumes/v/k" + std::to_string(i));
  FakeHttpServer server([&](const HttpRequest& r) {
    size_t max_keys = std::stoul(QueryParam(r.target, "max-keys").value_or("1000"));
    std::string marker = QueryParam(r.target, "marker").value_or("");
    std::vector<std::string> page;
    for (const std::string& k : all) {
      if (k > marker && page.size() < max_keys) page.push_back(k);
    }
    bool truncated = !page.empty() && page.back() != all.back();
    return HttpReply{200, ListXml(page, truncated)};
  });
  S3StoreOptions options = FastOptions();
  options.list_page_size = 3;
  auto store = OpenS3Store(S3Target("s3://bkt/pfx"), FakeSettings(server.endpoint()), options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto keys = (*store)->List("volumes/v/");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  std::vector<std::string> want;
  for (size_t i = 1; i < all.size(); ++i) want.push_back(all[i].substr(4));
  EXPECT_EQ(*keys, want);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 5u);  // open + 4 pages
  EXPECT_EQ(QueryParam(reqs[1].target, "prefix"), "pfx/volumes/v/");
  EXPECT_EQ(QueryParam(reqs[1].target, "max-keys"), "3");
  EXPECT_EQ(QueryParam(reqs[2].target, "marker"), "pfx/volumes/v/k1");
}

TEST(S3StoreFakeServerTest, ListFollowsNextMarker) {
  int lists = 0;
  FakeHttpServer server([&](const HttpRequest& r) {
    ++lists;
    if (lists == 1) return HttpReply{200, ListXml({}, false)};
    if (!QueryParam(r.target, "marker")) return HttpReply{200, ListXml({"a/1"}, true, "a/5")};
    EXPECT_EQ(QueryParam(r.target, "marker"), "a/5");
    return HttpReply{200, ListXml({"a/6"}, false)};
  });
  auto store = OpenS3Store(S3Target("s3://bkt"), FakeSettings(server.endpoint()), FastOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto keys = (*store)->List("a/");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(*keys, (std::vector<std::string>{"a/1", "a/6"}));
}

TEST(S3StoreFakeServerTest, AListingThatNeverEndsIsAProtocolError) {
  int lists = 0;
  FakeHttpServer server([&](const HttpRequest&) {
    if (++lists == 1) return HttpReply{200, ListXml({}, false)};
    return HttpReply{200, ListXml({"a/1"}, true)};  // the same page again and again
  });
  auto store = OpenS3Store(S3Target("s3://bkt"), FakeSettings(server.endpoint()), FastOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto keys = (*store)->List("a/");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().kind(), ErrorKind::kProtocol) << keys.status().ToString();
}

TEST(S3StoreFakeServerTest, NoAnswerWithinTheTimeoutIsUnavailable) {
  FakeHttpServer server([](const HttpRequest&) {
    HttpReply r;
    r.hang = true;
    return r;
  });
  S3StoreOptions options = FastOptions();
  options.request_timeout = std::chrono::milliseconds(300);
  options.attempts = 2;
  auto start = std::chrono::steady_clock::now();
  auto store = OpenS3Store(S3Target("s3://bkt"), FakeSettings(server.endpoint()), options);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().kind(), ErrorKind::kUnavailable) << store.status().ToString();
  EXPECT_NE(store.status().message().find("no answer from http://" + server.endpoint()),
            std::string::npos)
      << store.status().message();
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

// ---------------------------------------------------------------- no server at all

TEST(S3StoreUnreachableTest, AClosedLoopbackPortIsUnavailable) {
  int port = testing::ClosedLoopbackPort();
  std::string endpoint = "127.0.0.1:" + std::to_string(port);
  auto start = std::chrono::steady_clock::now();
  auto store = OpenS3Store(S3Target("s3://bkt/p"), FakeSettings(endpoint), FastOptions());
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().kind(), ErrorKind::kUnavailable) << store.status().ToString();
  EXPECT_NE(store.status().message().find("open s3://bkt/p: cannot connect to http://" + endpoint),
            std::string::npos)
      << store.status().message();
  EXPECT_NE(store.status().message().find("3 attempts"), std::string::npos);
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  ExpectNoSecret(store.status());
}

// ---------------------------------------------------------------- s3rver

class S3ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::S3TestServerFromEnv();
    if (!server_) GTEST_SKIP() << testing::kNoS3Reason;
  }
  std::optional<testing::S3TestServer> server_;
};

// s3rver.sh runs s3rver in a mode that accepts any signature (see there).
TEST_F(S3ServerTest, AWrongSecretIsNotAuthorized) {
  const char* verifies = std::getenv("SHORTHORN_TEST_S3_VERIFIES_SIGNATURES");
  if (verifies != nullptr && std::string(verifies) == "0") {
    GTEST_SKIP() << "this S3 server does not verify signatures "
                    "(SHORTHORN_TEST_S3_VERIFIES_SIGNATURES=0)";
  }
  S3Settings settings = server_->settings;
  settings.secret_key = kSecret;
  auto store = OpenS3Store(S3Target("s3://" + server_->bucket + "/p"), settings, FastOptions());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().kind(), ErrorKind::kNotAuthorized) << store.status().ToString();
  EXPECT_NE(store.status().message().find("refused the credentials or the signature"),
            std::string::npos)
      << store.status().message();
  EXPECT_NE(store.status().message().find("signature V2"), std::string::npos);
  ExpectNoSecret(store.status());
}

TEST_F(S3ServerTest, AnUnknownAccessKeyIsNotAuthorized) {
  S3Settings settings = server_->settings;
  settings.access_key = "NOBODY";
  auto store = OpenS3Store(S3Target("s3://" + server_->bucket + "/p"), settings, FastOptions());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().kind(), ErrorKind::kNotAuthorized) << store.status().ToString();
}

TEST_F(S3ServerTest, AMissingBucketIsNotFoundNamingTheBucket) {
  std::string bucket = "shorthorn-missing-" + std::to_string(::getpid());
  auto store = OpenS3Store(S3Target("s3://" + bucket + "/p"), server_->settings, FastOptions());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().kind(), ErrorKind::kNotFound) << store.status().ToString();
  EXPECT_NE(store.status().message().find("no such bucket " + bucket), std::string::npos)
      << store.status().message();
}

TEST_F(S3ServerTest, OpenStoreTakesCredentialsFromTheEnvironment) {
  ::setenv("SHORTHORN_S3_ENDPOINT", server_->settings.endpoint.c_str(), 1);
  ::setenv("SHORTHORN_S3_PROTOCOL", server_->settings.https ? "https" : "http", 1);
  ::setenv("SHORTHORN_S3_ACCESS_KEY", server_->settings.access_key.c_str(), 1);
  ::setenv("SHORTHORN_S3_SECRET_KEY", server_->settings.secret_key.c_str(), 1);
  auto store = OpenStore("s3://" + server_->bucket + "/" + testing::UniqueName("factory"),
                         "/nonexistent/backup-credentials");
  for (const char* v : {"SHORTHORN_S3_ENDPOINT", "SHORTHORN_S3_PROTOCOL", "SHORTHORN_S3_ACCESS_KEY",
                        "SHORTHORN_S3_SECRET_KEY"}) {
    ::unsetenv(v);
  }
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->Put("k", std::vector<uint8_t>{7}).ok());
  auto got = (*store)->Get("k");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, std::vector<uint8_t>{7});
  EXPECT_TRUE((*store)->Delete("k").ok());
}

// ---------------------------------------------------------------- the factory

TEST(OpenStoreTest, OpensAFileStoreAndRefusesBadUrls) {
  testing::TempDir dir;
  auto store = OpenStore("file://" + dir.path() + "/b", "/nonexistent");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->url(), "file://" + dir.path() + "/b");
  auto bad = OpenStore("ftp://x/y", "/nonexistent");
  EXPECT_EQ(bad.status().kind(), ErrorKind::kInvalidArgument);
  // s3:// reads the credentials; a missing file without the environment fails.
  ::unsetenv("SHORTHORN_S3_ACCESS_KEY");
  ::unsetenv("SHORTHORN_S3_SECRET_KEY");
  auto s3 = OpenStore("s3://bkt/p", dir.path() + "/no-credentials");
  EXPECT_EQ(s3.status().kind(), ErrorKind::kNotFound) << s3.status().ToString();
}

}  // namespace
}  // namespace shorthorn::backup
