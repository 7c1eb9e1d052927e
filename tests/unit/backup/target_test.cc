// ParseTarget and LoadS3Settings: good and bad URLs, the credentials file's
// syntax and mode, environment overrides, and that no message carries a
// secret.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>

#include "backup/target.h"
#include "tests/unit/backup/store_test_util.h"

namespace shorthorn::backup {
namespace {

TEST(ParseTargetTest, FileUrls) {
  auto t = ParseTarget("file:///srv/backups");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->kind, Target::Kind::kFile);
  EXPECT_EQ(t->path, "/srv/backups");
  EXPECT_EQ(t->url, "file:///srv/backups");

  t = ParseTarget("file:///srv//backups/");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->path, "/srv/backups");
  EXPECT_EQ(t->url, "file:///srv/backups");

  t = ParseTarget("file://localhost/srv/b");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->path, "/srv/b");

  t = ParseTarget("FILE:///x");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->url, "file:///x");
}

TEST(ParseTargetTest, S3Urls) {
  auto t = ParseTarget("s3://my-bucket.1/a/b/");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->kind, Target::Kind::kS3);
  EXPECT_EQ(t->bucket, "my-bucket.1");
  EXPECT_EQ(t->prefix, "a/b");
  EXPECT_EQ(t->url, "s3://my-bucket.1/a/b");

  t = ParseTarget("s3://bkt");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->bucket, "bkt");
  EXPECT_EQ(t->prefix, "");
  EXPECT_EQ(t->url, "s3://bkt");

  t = ParseTarget("s3://bkt//x//y");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->prefix, "x/y");
  EXPECT_EQ(t->url, "s3://bkt/x/y");
}

TEST(ParseTargetTest, RefusesBadUrlsNamingTheUrlAndTheReason) {
  const std::map<std::string, std::string> bad = {
      {"", "empty URL"},
      {"/srv/backups", "not a URL"},
      {"http://host/x", "unknown scheme 'http'"},
      {"nfs://host/x", "unknown scheme"},
      {"file://relative/path", "absolute"},
      {"file://", "empty path"},
      {"file:///", "empty path"},
      {"file:///srv/../etc", "'..'"},
      {"file:///srv/./x", "'.'"},
      {"file:///srv/a%20b", "'%'"},
      {"s3://", "empty bucket"},
      {"s3:///prefix", "empty bucket"},
      {"s3://ab/x", "3 to 63"},
      {std::string("s3://") + std::string(64, 'a'), "3 to 63"},
      {"s3://My-Bucket/x", "lowercase"},
      {"s3://bucket_name", "lowercase"},
      {"s3://-bucket", "starts and ends"},
      {"s3://bucket-", "starts and ends"},
      {"s3://a..b", "'..'"},
      {"s3://192.168.1.10", "IP address"},
      {"s3://bkt:9000/x", "no ':'"},
      {"s3://bkt/a/../b", "'..'"},
      {"s3://bkt/a b", "[A-Za-z0-9._-]"},
      {"s3://bkt/x?versionId=1", "'?'"},
  };
  for (const auto& [url, reason] : bad) {
    auto t = ParseTarget(url);
    ASSERT_FALSE(t.ok()) << "accepted '" << url << "'";
    EXPECT_EQ(t.status().kind(), ErrorKind::kInvalidArgument) << url;
    EXPECT_EQ(t.status().message().rfind("parse target " + url + ": ", 0), 0u)
        << t.status().message();
    EXPECT_NE(t.status().message().find(reason), std::string::npos)
        << url << " -> " << t.status().message();
  }
}

TEST(ParseTargetTest, HidesCredentialsPutInTheUrl) {
  auto t = ParseTarget("s3://AKIAEXAMPLE:sup3rs3cret@bucket/prefix");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message().find("sup3rs3cret"), std::string::npos) << t.status().message();
  EXPECT_EQ(t.status().message().find("AKIAEXAMPLE"), std::string::npos) << t.status().message();
  EXPECT_NE(t.status().message().find("credentials do not belong in the URL"), std::string::npos);
}

// ---------------------------------------------------------------- LoadS3Settings

constexpr const char* kEnvVars[] = {"SHORTHORN_S3_ENDPOINT",   "SHORTHORN_S3_PROTOCOL",
                                    "SHORTHORN_S3_URI_STYLE",  "SHORTHORN_S3_REGION",
                                    "SHORTHORN_S3_ACCESS_KEY", "SHORTHORN_S3_SECRET_KEY"};

class S3SettingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kEnvVars) {
      const char* v = std::getenv(name);
      if (v != nullptr) saved_[name] = v;
      ::unsetenv(name);
    }
    path_ = dir_.path() + "/backup-credentials";
  }
  void TearDown() override {
    for (const char* name : kEnvVars) ::unsetenv(name);
    for (const auto& [name, value] : saved_) ::setenv(name.c_str(), value.c_str(), 1);
  }
  void Write(const std::string& text, mode_t mode = 0600) {
    std::ofstream(path_) << text;
    ASSERT_EQ(::chmod(path_.c_str(), mode), 0);
  }

  testing::TempDir dir_;
  std::string path_;
  std::map<std::string, std::string> saved_;
};

TEST_F(S3SettingsTest, ReadsEveryKey) {
  Write(
      "# Shorthorn backup credentials\n"
      "\n"
      "endpoint = minio.example:9000\n"
      "  protocol=http  \n"
      "uri-style = virtual\n"
      "region = eu-west-1\n"
      "access-key = AKIDEXAMPLE\n"
      "secret-key = wJalr/XUtnFEMI=K7MDENG#bPxRfiCY\n");
  auto s = LoadS3Settings(path_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->endpoint, "minio.example:9000");
  EXPECT_FALSE(s->https);
  EXPECT_FALSE(s->path_style);
  EXPECT_EQ(s->region, "eu-west-1");
  EXPECT_EQ(s->access_key, "AKIDEXAMPLE");
  EXPECT_EQ(s->secret_key, "wJalr/XUtnFEMI=K7MDENG#bPxRfiCY");  // '=' and '#' inside a value
}

TEST_F(S3SettingsTest, ReadsTheExampleOfTheFormatDocument) {
  // doc/backup-format.md, with comments at the ends of lines.
  Write(
      "# /etc/shorthorn/backup-credentials\n"
      "endpoint = minio.example.net:9000   # host or host:port (default s3.amazonaws.com)\n"
      "protocol = https                    # http or https (default https)\n"
      "uri-style = path                    # path (bucket in the path) or virtual (bucket.host)\n"
      "region = us-east-1                  # informational with signature V2\n"
      "access-key = AKIA1234\n"
      "secret-key = abc#def\t# a '#' inside a value stays\n");
  auto s = LoadS3Settings(path_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->endpoint, "minio.example.net:9000");
  EXPECT_TRUE(s->https);
  EXPECT_TRUE(s->path_style);
  EXPECT_EQ(s->region, "us-east-1");
  EXPECT_EQ(s->access_key, "AKIA1234");
  EXPECT_EQ(s->secret_key, "abc#def");
}

TEST_F(S3SettingsTest, DefaultsForWhatTheFileLeavesOut) {
  Write("access-key = A\nsecret-key = S\n");
  auto s = LoadS3Settings(path_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->endpoint, "s3.amazonaws.com");
  EXPECT_TRUE(s->https);
  EXPECT_TRUE(s->path_style);
}

TEST_F(S3SettingsTest, RefusesAFileReadableByGroupOrOthers) {
  for (mode_t mode : {0644, 0640, 0604, 0660, 0606}) {
    Write("access-key = A\nsecret-key = TOPSECRET\n", mode);
    auto s = LoadS3Settings(path_);
    ASSERT_FALSE(s.ok()) << std::oct << mode;
    EXPECT_EQ(s.status().kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(s.status().message().find(path_), std::string::npos) << s.status().message();
    EXPECT_NE(s.status().message().find("0600"), std::string::npos) << s.status().message();
    EXPECT_EQ(s.status().message().find("TOPSECRET"), std::string::npos);
  }
  Write("access-key = A\nsecret-key = S\n", 0400);
  EXPECT_TRUE(LoadS3Settings(path_).ok());
}

TEST_F(S3SettingsTest, BadLinesNameTheLineButNeverASecret) {
  struct Case {
    std::string text;
    std::string want;
  };
  const Case cases[] = {
      {"access-key = A\nwJalrXUtnFEMIK7MDENGbPxRfiCYSECRET\n", "line 2: expected 'key = value'"},
      {"access-key = A\nsecret = wJalrXUtnFEMIK7MDENGbPxRfiCYSECRET\n",
       "line 2: unknown key 'secret'"},
      {"access-key = A\naccess-key = B\n", "line 2: access-key is given twice"},
      {"protocol = ftp\n", "line 1: protocol is http or https, got 'ftp'"},
      {"uri-style = subdomain\n", "line 1: uri-style is path or virtual"},
      {"endpoint = http://minio:9000\n", "without a scheme"},
      {"endpoint =\n", "endpoint is empty"},
      {"access-key = A\n", "no secret-key"},
      {"secret-key = wJalrXUtnFEMIK7MDENGbPxRfiCYSECRET\n", "no access-key"},
  };
  for (const Case& c : cases) {
    Write(c.text);
    auto s = LoadS3Settings(path_);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_EQ(s.status().kind(), ErrorKind::kInvalidArgument) << c.text;
    EXPECT_NE(s.status().message().find("load S3 settings " + path_ + ": "), std::string::npos)
        << s.status().message();
    EXPECT_NE(s.status().message().find(c.want), std::string::npos) << s.status().message();
    EXPECT_EQ(s.status().message().find("wJalrX"), std::string::npos) << s.status().message();
  }
}

TEST_F(S3SettingsTest, TheEnvironmentOverridesEachKey) {
  Write(
      "endpoint = file-host:1\nprotocol = https\nuri-style = path\nregion = r1\n"
      "access-key = FILEKEY\nsecret-key = FILESECRET\n");
  ::setenv("SHORTHORN_S3_ENDPOINT", "127.0.0.1:4568", 1);
  ::setenv("SHORTHORN_S3_PROTOCOL", "http", 1);
  ::setenv("SHORTHORN_S3_URI_STYLE", "virtual", 1);
  ::setenv("SHORTHORN_S3_REGION", "r2", 1);
  ::setenv("SHORTHORN_S3_ACCESS_KEY", "ENVKEY", 1);
  ::setenv("SHORTHORN_S3_SECRET_KEY", "ENVSECRET", 1);
  auto s = LoadS3Settings(path_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->endpoint, "127.0.0.1:4568");
  EXPECT_FALSE(s->https);
  EXPECT_FALSE(s->path_style);
  EXPECT_EQ(s->region, "r2");
  EXPECT_EQ(s->access_key, "ENVKEY");
  EXPECT_EQ(s->secret_key, "ENVSECRET");
}

TEST_F(S3SettingsTest, AnEmptyVariableDoesNotOverride) {
  Write("access-key = FILEKEY\nsecret-key = FILESECRET\n");
  ::setenv("SHORTHORN_S3_ACCESS_KEY", "", 1);
  auto s = LoadS3Settings(path_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->access_key, "FILEKEY");
}

TEST_F(S3SettingsTest, BadEnvironmentValuesNameTheVariable) {
  Write("access-key = A\nsecret-key = S\n");
  ::setenv("SHORTHORN_S3_PROTOCOL", "gopher", 1);
  auto s = LoadS3Settings(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("SHORTHORN_S3_PROTOCOL: protocol is http or https"),
            std::string::npos)
      << s.status().message();
}

TEST_F(S3SettingsTest, AMissingFileIsFineWhenTheEnvironmentGivesBothKeys) {
  std::string missing = dir_.path() + "/none";
  auto s = LoadS3Settings(missing);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().kind(), ErrorKind::kNotFound);
  EXPECT_NE(s.status().message().find(missing), std::string::npos) << s.status().message();

  ::setenv("SHORTHORN_S3_ACCESS_KEY", "K", 1);
  s = LoadS3Settings(missing);
  ASSERT_FALSE(s.ok()) << "one key is not enough";

  ::setenv("SHORTHORN_S3_SECRET_KEY", "S", 1);
  s = LoadS3Settings(missing);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->access_key, "K");
  EXPECT_EQ(s->secret_key, "S");
  s = LoadS3Settings("");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
}

TEST_F(S3SettingsTest, ADirectoryIsNotACredentialsFile) {
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0700), 0);
  auto s = LoadS3Settings(dir_.path());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().kind(), ErrorKind::kInvalidArgument) << s.status().ToString();
}

}  // namespace
}  // namespace shorthorn::backup
