// The backup store format: object keys, backup names, the JSON records and
// their hostile-input decoders, and backup URLs.
#include "backup/format.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <functional>
#include <set>

namespace shorthorn::backup {
namespace {
namespace json = boost::json;

constexpr char kHashA[] = "0123456789abcdef0123456789abcdef";
constexpr char kHashB[] = "fedcba9876543210fedcba9876543210";

BackupRecord SampleRecord() {
  BackupRecord r;
  r.name = "backup-20240102T030405Z-0a1b2c3d";
  r.volume = "vol1";
  r.snapshot = "snap-7";
  r.snapshot_created = "2024-01-02T03:00:00Z";
  r.created = "2024-01-02T03:04:05Z";
  r.size = 5 * kBlockSize + 4096;
  r.base = "backup-20240101T000000Z-ffffffff";
  r.bytes_read = 3 * kBlockSize;
  r.bytes_uploaded = 12345;
  r.blocks_uploaded = 2;
  r.blocks = {{0, kHashA}, {2 * kBlockSize, kHashB}, {5 * kBlockSize, kHashA}};
  return r;
}

void ExpectSameRecord(const BackupRecord& a, const BackupRecord& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.volume, b.volume);
  EXPECT_EQ(a.snapshot, b.snapshot);
  EXPECT_EQ(a.snapshot_created, b.snapshot_created);
  EXPECT_EQ(a.created, b.created);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.block_size, b.block_size);
  EXPECT_EQ(a.base, b.base);
  EXPECT_EQ(a.bytes_read, b.bytes_read);
  EXPECT_EQ(a.bytes_uploaded, b.bytes_uploaded);
  EXPECT_EQ(a.blocks_uploaded, b.blocks_uploaded);
  EXPECT_EQ(a.blocks, b.blocks);
}

// The sample record as JSON, changed by `edit`.
std::string EditedRecord(const std::function<void(json::object&)>& edit) {
  json::value v = json::parse(EncodeBackupRecord(SampleRecord()));
  edit(v.as_object());
  return json::serialize(v);
}

void ExpectProtocol(const Result<BackupRecord>& r, const std::string& what) {
  ASSERT_FALSE(r.ok()) << what << " was accepted";
  EXPECT_EQ(r.status().kind(), ErrorKind::kProtocol) << r.status().ToString();
  EXPECT_NE(r.status().message().find("rec.json"), std::string::npos) << r.status().message();
}

TEST(FormatTest, KeysLayout) {
  EXPECT_EQ(VolumePrefix("v"), "volumes/v/");
  EXPECT_EQ(VolumeRecordKey("v"), "volumes/v/volume.json");
  EXPECT_EQ(BackupRecordKey("v", "backup-x1234567"), "volumes/v/backups/backup-x1234567.json");
  EXPECT_EQ(BlockKey("v", kHashA), std::string("volumes/v/blocks/01/23/") + kHashA + ".blk");
  EXPECT_EQ(LocksPrefix("v"), "volumes/v/locks/");
  for (const std::string& k : {BackupsPrefix("v"), BlocksPrefix("v"), LocksPrefix("v"),
                               VolumeRecordKey("v"), BlockKey("v", kHashA)}) {
    EXPECT_EQ(k.rfind(VolumePrefix("v"), 0), 0u) << k;
  }
}

TEST(FormatTest, HashOfBlockKey) {
  EXPECT_EQ(HashOfBlockKey(BlockKey("vol", kHashA)), kHashA);
  EXPECT_EQ(HashOfBlockKey(BlockKey("vol", kHashB)), kHashB);
  EXPECT_EQ(HashOfBlockKey(VolumeRecordKey("vol")), "");
  EXPECT_EQ(HashOfBlockKey(BackupRecordKey("vol", "backup-20240102T030405Z-0a1b2c3d")), "");
  EXPECT_EQ(HashOfBlockKey(""), "");
  EXPECT_EQ(HashOfBlockKey(".blk"), "");
  EXPECT_EQ(HashOfBlockKey(std::string("volumes/v/blocks/01/23/") + kHashA + ".tmp"), "");
  EXPECT_EQ(HashOfBlockKey("volumes/v/blocks/01/23/0123456789ABCDEF0123456789abcdef.blk"), "");
  EXPECT_EQ(HashOfBlockKey("volumes/v/blocks/01/23/0123456789abcdef0123456789abcde.blk"), "");
}

TEST(FormatTest, BlockHashes) {
  EXPECT_TRUE(IsBlockHash(kHashA));
  EXPECT_FALSE(IsBlockHash(""));
  EXPECT_FALSE(IsBlockHash("0123456789abcdef0123456789abcde"));    // 31
  EXPECT_FALSE(IsBlockHash("0123456789abcdef0123456789abcdef0"));  // 33
  EXPECT_FALSE(IsBlockHash("0123456789ABCDEF0123456789abcdef"));   // upper case
  EXPECT_FALSE(IsBlockHash("0123456789abcdeg0123456789abcdef"));
}

TEST(FormatTest, NewBackupNamesAreValidAndDistinct) {
  std::set<std::string> names;
  for (int i = 0; i < 50; ++i) {
    std::string name = NewBackupName();
    EXPECT_TRUE(ValidateBackupName(name).ok()) << name;
    EXPECT_EQ(name.rfind("backup-", 0), 0u) << name;
    EXPECT_EQ(name.size(), std::string("backup-20240102T030405Z-0a1b2c3d").size()) << name;
    names.insert(name);
  }
  EXPECT_GT(names.size(), 45u);  // 32 random bits each
}

TEST(FormatTest, ValidateBackupName) {
  EXPECT_TRUE(ValidateBackupName("backup-1").ok());
  EXPECT_TRUE(ValidateBackupName("backup-" + std::string(73, 'a')).ok());  // 80
  for (const std::string bad : {"", "backup-", "backup_1", "Backup-1", "backup-a/b", "backup-a.b",
                                "backup-a b", "snap-12345678", "../backup-1"}) {
    Status s = ValidateBackupName(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ValidateBackupName("backup-" + std::string(74, 'a')).ok());  // 81
}

TEST(FormatTest, RecordRoundTrip) {
  BackupRecord r = SampleRecord();
  auto back = DecodeBackupRecord(EncodeBackupRecord(r), "rec.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameRecord(*back, r);

  // A full backup of an empty volume.
  BackupRecord empty;
  empty.name = "backup-20240102T030405Z-00000000";
  empty.volume = "v";
  empty.snapshot = "s";
  empty.created = "2024-01-02T03:04:05Z";
  auto back2 = DecodeBackupRecord(EncodeBackupRecord(empty), "rec.json");
  ASSERT_TRUE(back2.ok()) << back2.status().ToString();
  ExpectSameRecord(*back2, empty);
}

TEST(FormatTest, RecordOptionalFieldsMayBeAbsent) {
  auto r = DecodeBackupRecord(EditedRecord([](json::object& o) {
                                for (const char* k : {"snapshot_created", "base", "bytes_read",
                                                      "bytes_uploaded", "blocks_uploaded"}) {
                                  o.erase(k);
                                }
                              }),
                              "rec.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->base, "");
  EXPECT_EQ(r->bytes_read, 0u);
  EXPECT_EQ(r->blocks, SampleRecord().blocks);
}

TEST(FormatTest, RecordDecoderRejectsMalformedText) {
  for (const char* text : {"", "{", "not json", "[1,2]", "\"backup\"", "42", "null"}) {
    ExpectProtocol(DecodeBackupRecord(text, "rec.json"), text);
  }
}

TEST(FormatTest, RecordDecoderRejectsUnknownFormat) {
  for (json::value f : {json::value(2), json::value(0), json::value("1"), json::value(-1)}) {
    std::string text = EditedRecord([&](json::object& o) { o["format"] = f; });
    ExpectProtocol(DecodeBackupRecord(text, "rec.json"), text);
  }
  ExpectProtocol(
      DecodeBackupRecord(EditedRecord([](json::object& o) { o.erase("format"); }), "rec.json"),
      "no format");
}

TEST(FormatTest, RecordDecoderRejectsMissingOrMistypedFields) {
  for (const char* field :
       {"name", "volume", "snapshot", "created", "size", "block_size", "blocks"}) {
    auto r = DecodeBackupRecord(EditedRecord([&](json::object& o) { o.erase(field); }), "rec.json");
    ExpectProtocol(r, std::string("without ") + field);
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find(field), std::string::npos) << field;
    }
  }
  std::vector<std::pair<const char*, json::value>> mistyped = {
      {"name", json::value(1)},         {"size", json::value("10")},
      {"size", json::value(-5)},        {"size", json::value(1.5)},
      {"blocks", json::value("none")},  {"blocks", json::object{}},
      {"base", json::value(7)},         {"bytes_read", json::value(-1)},
      {"name", json::value("bad name")}};
  for (const auto& [field, value] : mistyped) {
    std::string text = EditedRecord([&](json::object& o) { o[field] = value; });
    ExpectProtocol(DecodeBackupRecord(text, "rec.json"), text);
  }
}

TEST(FormatTest, RecordDecoderRejectsWrongBlockSize) {
  for (uint64_t bs : {uint64_t{0}, uint64_t{4096}, kBlockSize * 2, kBlockSize - 1}) {
    auto r = DecodeBackupRecord(EditedRecord([&](json::object& o) { o["block_size"] = bs; }),
                                "rec.json");
    ExpectProtocol(r, "block size " + std::to_string(bs));
  }
}

TEST(FormatTest, RecordDecoderRejectsBadBlockLists) {
  const uint64_t k = kBlockSize;
  const uint64_t size = SampleRecord().size;  // 5 blocks and 4 KiB: offsets 0..5*k
  std::vector<std::pair<const char*, json::array>> bad = {
      {"unaligned", {json::array{k + 4096, kHashA}}},
      {"unaligned by one", {json::array{1, kHashA}}},
      {"out of order", {json::array{2 * k, kHashA}, json::array{k, kHashB}}},
      {"duplicate offset", {json::array{k, kHashA}, json::array{k, kHashB}}},
      {"at the size", {json::array{6 * k, kHashA}}},
      {"far past the size", {json::array{1000 * k, kHashA}}},
      {"negative offset", {json::array{-static_cast<int64_t>(k), kHashA}}},
      {"fractional offset", {json::array{0.5, kHashA}}},
      {"short hash", {json::array{0, "0123"}}},
      {"upper-case hash", {json::array{0, "0123456789ABCDEF0123456789ABCDEF"}}},
      {"non-hex hash", {json::array{0, "0123456789abcdefg123456789abcdef"}}},
      {"hash not a string", {json::array{0, 12345}}},
      {"offset not a number", {json::array{"0", kHashA}}},
      {"not a pair", {json::array{0}}},
      {"a triple", {json::array{0, kHashA, 1}}},
      {"an object", {json::object{{"offset", 0}, {"hash", kHashA}}}},
  };
  for (const auto& [why, blocks] : bad) {
    auto r = DecodeBackupRecord(EditedRecord([&](json::object& o) {
                                  o["size"] = size;
                                  o["blocks"] = blocks;
                                }),
                                "rec.json");
    ExpectProtocol(r, why);
  }
  // The last block may start anywhere below the size, even in a partial block.
  auto ok = DecodeBackupRecord(EditedRecord([&](json::object& o) {
                                 o["blocks"] = json::array{json::array{5 * k, kHashA}};
                               }),
                               "rec.json");
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST(FormatTest, VolumeRoundTrip) {
  VolumeBackups v;
  v.volume = "vol1";
  v.backups.push_back(Summarize(SampleRecord()));
  BackupSummary second{"backup-20240103T000000Z-00000001",
                       "snap-8",
                       "2024-01-03T00:00:00Z",
                       "2024-01-03T00:01:00Z",
                       kBlockSize,
                       0};
  v.backups.push_back(second);
  auto back = DecodeVolumeBackups(EncodeVolumeBackups(v), "volume.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->volume, "vol1");
  EXPECT_EQ(back->backups, v.backups);
  EXPECT_EQ(back->backups[0].blocks, 3u);
  EXPECT_EQ(back->backups[0].snapshot, "snap-7");

  VolumeBackups none{"vol2", {}};
  auto back2 = DecodeVolumeBackups(EncodeVolumeBackups(none), "volume.json");
  ASSERT_TRUE(back2.ok()) << back2.status().ToString();
  EXPECT_EQ(back2->volume, "vol2");
  EXPECT_TRUE(back2->backups.empty());
}

TEST(FormatTest, VolumeDecoderRejectsBadInput) {
  VolumeBackups v{"vol1", {Summarize(SampleRecord())}};
  auto edited = [&](const std::function<void(json::object&)>& edit) {
    json::value j = json::parse(EncodeVolumeBackups(v));
    edit(j.as_object());
    return json::serialize(j);
  };
  auto first = [](json::object& o) -> json::object& {
    return o["backups"].as_array()[0].as_object();
  };
  std::vector<std::pair<std::string, std::string>> bad = {
      {"not JSON", "{\"format\": 1,"},
      {"not an object", "[]"},
      {"format 2", edited([](json::object& o) { o["format"] = 2; })},
      {"no format", edited([](json::object& o) { o.erase("format"); })},
      {"no volume", edited([](json::object& o) { o.erase("volume"); })},
      {"no backups", edited([](json::object& o) { o.erase("backups"); })},
      {"backups not a list", edited([](json::object& o) { o["backups"] = 3; })},
      {"backup not an object", edited([](json::object& o) { o["backups"] = json::array{1}; })},
      {"backup without name", edited([&](json::object& o) { first(o).erase("name"); })},
      {"backup without size", edited([&](json::object& o) { first(o).erase("size"); })},
      {"backup with negative size", edited([&](json::object& o) { first(o)["size"] = -1; })},
      {"backup with bad name", edited([&](json::object& o) { first(o)["name"] = "../x"; })},
  };
  for (const auto& [why, text] : bad) {
    auto r = DecodeVolumeBackups(text, "volume.json");
    ASSERT_FALSE(r.ok()) << why;
    EXPECT_EQ(r.status().kind(), ErrorKind::kProtocol) << why << ": " << r.status().ToString();
    EXPECT_NE(r.status().message().find("volume.json"), std::string::npos) << why;
  }
}

TEST(FormatTest, BackupUrlRoundTrip) {
  const std::string name = "backup-20240102T030405Z-0a1b2c3d";
  for (const std::string target : {"s3://bucket/prefix", "file:///srv/backups", "s3://b"}) {
    std::string url = BackupUrl(target, "vol-1", name);
    auto a = ParseBackupUrl(url);
    ASSERT_TRUE(a.ok()) << url << ": " << a.status().ToString();
    EXPECT_EQ(a->target_url, target);
    EXPECT_EQ(a->volume, "vol-1");
    EXPECT_EQ(a->backup, name);
  }
  // Parameters in any order.
  auto a = ParseBackupUrl("file:///b?backup=" + name + "&volume=v");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->target_url, "file:///b");
  EXPECT_EQ(a->volume, "v");
  EXPECT_EQ(a->backup, name);
}

TEST(FormatTest, ParseBackupUrlRejectsBadUrls) {
  const std::string name = "backup-20240102T030405Z-0a1b2c3d";
  const std::vector<std::string> urls = {
      "s3://b/p",
      "s3://b/p?",
      "s3://b/p?volume=v",
      "s3://b/p?backup=" + name,
      "s3://b/p?volume=&backup=" + name,
      "s3://b/p?volume=v&backup=",
      "s3://b/p?volume=v&backup=" + name + "&extra=1",
      "s3://b/p?volume=v&backup",
      "s3://b/p?volume=v&backup=not-a-backup",
      "s3://b/p?volume=v&backup=backup-a/../b",
  };
  for (const std::string& url : urls) {
    auto a = ParseBackupUrl(url);
    ASSERT_FALSE(a.ok()) << url << " was accepted";
    EXPECT_EQ(a.status().kind(), ErrorKind::kInvalidArgument) << url;
    EXPECT_NE(a.status().message().find(url), std::string::npos) << a.status().message();
  }
}

TEST(FormatTest, ParseBackupVolumeUrl) {
  auto a = ParseBackupVolumeUrl("s3://b/p?volume=v1");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->target_url, "s3://b/p");
  EXPECT_EQ(a->volume, "v1");
  EXPECT_EQ(a->backup, "");
  for (const std::string url :
       {"s3://b/p", "s3://b/p?", "s3://b/p?volume=", "s3://b/p?volume=v&extra=1",
        "s3://b/p?volume=v&backup=backup-20240102T030405Z-0a1b2c3d"}) {
    auto bad = ParseBackupVolumeUrl(url);
    ASSERT_FALSE(bad.ok()) << url << " was accepted";
    EXPECT_EQ(bad.status().kind(), ErrorKind::kInvalidArgument) << url;
    EXPECT_NE(bad.status().message().find("backup volume URL " + url), std::string::npos)
        << bad.status().message();
  }
}

}  // namespace
}  // namespace shorthorn::backup
