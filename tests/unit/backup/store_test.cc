// The BackupStore conformance suite: the same tests against FileStore (a
// temp dir) and S3Store (the server SHORTHORN_TEST_S3_ENDPOINT names; skipped
// without it). Each S3 test works under its own random prefix of the bucket
// and deletes what it made.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "backup/file_store.h"
#include "backup/s3_store.h"
#include "backup/store.h"
#include "backup/target.h"
#include "tests/unit/backup/store_test_util.h"

namespace shorthorn::backup {
namespace {

using testing::Pattern;

enum class StoreKind { kFile, kS3 };

std::string KindName(const ::testing::TestParamInfo<StoreKind>& info) {
  return info.param == StoreKind::kFile ? "File" : "S3";
}

std::set<std::string> AsSet(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

class StoreTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    if (GetParam() == StoreKind::kFile) {
      root_ = dir_.path() + "/store";  // OpenFileStore makes it
      auto target = ParseTarget("file://" + root_);
      ASSERT_TRUE(target.ok()) << target.status().ToString();
      auto store = OpenFileStore(*target);
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      store_ = std::move(*store);
      return;
    }
    auto server = testing::S3TestServerFromEnv();
    if (!server) GTEST_SKIP() << testing::kNoS3Reason;
    auto target = ParseTarget("s3://" + server->bucket + "/" + testing::UniqueName("conformance"));
    ASSERT_TRUE(target.ok()) << target.status().ToString();
    S3StoreOptions options;
    options.list_page_size = 7;  // several pages in every list test
    options.backoff = std::chrono::milliseconds(20);
    auto store = OpenS3Store(*target, server->settings, options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }

  void TearDown() override {
    if (store_ == nullptr || GetParam() != StoreKind::kS3) return;
    auto keys = store_->List("");
    if (!keys.ok()) return;
    for (const std::string& k : *keys) (void)store_->Delete(k);
  }

  void PutOk(const std::string& key, const std::vector<uint8_t>& data) {
    Status s = store_->Put(key, data);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void ExpectContent(const std::string& key, const std::vector<uint8_t>& want) {
    auto got = store_->Get(key);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->size(), want.size()) << key;
    EXPECT_TRUE(*got == want) << key << ": content differs";
  }

  testing::TempDir dir_;
  std::string root_;  // file stores only
  std::unique_ptr<BackupStore> store_;
};

TEST_P(StoreTest, RoundTripsEmptySmallAndLargeObjects) {
  const std::vector<uint8_t> empty;
  const std::vector<uint8_t> small = Pattern(13, 1);
  const std::vector<uint8_t> large = Pattern(3 << 20, 2);  // 3 MiB
  PutOk("volumes/v/empty", empty);
  PutOk("volumes/v/backups/b1.json", small);
  PutOk("volumes/v/blocks/ab/cd/abcd.blk", large);
  ExpectContent("volumes/v/empty", empty);
  ExpectContent("volumes/v/backups/b1.json", small);
  ExpectContent("volumes/v/blocks/ab/cd/abcd.blk", large);
}

TEST_P(StoreTest, PutReplacesTheWholeObject) {
  PutOk("volumes/v/volume.json", Pattern(100000, 3));
  PutOk("volumes/v/volume.json", Pattern(10, 4));
  ExpectContent("volumes/v/volume.json", Pattern(10, 4));
  PutOk("volumes/v/volume.json", {});
  ExpectContent("volumes/v/volume.json", {});
}

TEST_P(StoreTest, GetOfAMissingKeyIsNotFoundNamingTheKey) {
  PutOk("volumes/v/other", Pattern(5, 5));
  auto got = store_->Get("volumes/v/backups/missing.json");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().kind(), ErrorKind::kNotFound) << got.status().ToString();
  EXPECT_NE(
      got.status().message().find("get " + store_->url() + " key volumes/v/backups/missing.json"),
      std::string::npos)
      << got.status().message();
  // A "directory" of other keys is not an object either.
  auto dir = store_->Get("volumes/v");
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().kind(), ErrorKind::kNotFound) << dir.status().ToString();
}

TEST_P(StoreTest, ExistsFollowsPutAndDelete) {
  auto before = store_->Exists("volumes/v/locks/l1.json");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_FALSE(*before);
  PutOk("volumes/v/locks/l1.json", Pattern(20, 6));
  auto after = store_->Exists("volumes/v/locks/l1.json");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_TRUE(*after);
  auto parent = store_->Exists("volumes/v/locks");
  ASSERT_TRUE(parent.ok()) << parent.status().ToString();
  EXPECT_FALSE(*parent);
  ASSERT_TRUE(store_->Delete("volumes/v/locks/l1.json").ok());
  auto gone = store_->Exists("volumes/v/locks/l1.json");
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_FALSE(*gone);
}

TEST_P(StoreTest, DeleteOfAMissingKeyIsOk) {
  Status s = store_->Delete("volumes/v/never/was.blk");
  EXPECT_TRUE(s.ok()) << s.ToString();
  PutOk("volumes/v/once", Pattern(3, 7));
  ASSERT_TRUE(store_->Delete("volumes/v/once").ok());
  s = store_->Delete("volumes/v/once");
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto got = store_->Get("volumes/v/once");
  EXPECT_EQ(got.status().kind(), ErrorKind::kNotFound);
}

TEST_P(StoreTest, ListReturnsExactlyTheKeysUnderThePrefixOverSeveralPages) {
  // Keys of one volume as the backup format makes them, nested; the S3 store
  // lists 7 keys a page. Names have fixed widths: s3rver's paging assumes
  // that directory order is key order.
  std::set<std::string> want;
  for (int i = 0; i < 40; ++i) {
    char hash[33];
    std::snprintf(hash, sizeof(hash), "%02x%02x%028x", i % 3, i % 5, i);
    want.insert(std::string("volumes/a/blocks/") + std::string(hash, 2) + "/" +
                std::string(hash + 2, 2) + "/" + hash + ".blk");
  }
  want.insert("volumes/a/backups/backup-0001.json");
  want.insert("volumes/a/backups/backup-0002.json");
  want.insert("volumes/a/volume.json");
  for (const std::string& k : want) PutOk(k, Pattern(k.size(), 8));
  // Neighbours that share the string prefix "volumes/a" but not "volumes/a/".
  PutOk("volumes/ab/volume.json", Pattern(1, 9));
  PutOk("volumes/b/volume.json", Pattern(1, 9));
  PutOk("volumes/a0", Pattern(1, 9));

  auto all = store_->List("volumes/a/");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), want.size()) << "duplicates or extras";
  EXPECT_EQ(AsSet(*all), want);

  auto backups = store_->List("volumes/a/backups/");
  ASSERT_TRUE(backups.ok()) << backups.status().ToString();
  EXPECT_EQ(AsSet(*backups), (std::set<std::string>{"volumes/a/backups/backup-0001.json",
                                                    "volumes/a/backups/backup-0002.json"}));

  auto none = store_->List("volumes/none/");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
}

TEST_P(StoreTest, ConcurrentPutsFromFourThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 12;
  std::vector<std::thread> threads;
  std::vector<Status> failures[kThreads];
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Shared new directories (made concurrently) and one shared key.
        std::string key = "volumes/c/blocks/" + std::to_string(i % 3) + "/t" + std::to_string(t) +
                          "-" + std::to_string(i) + ".blk";
        Status s = store_->Put(key, Pattern(1000 + i, t * 100 + i));
        if (!s.ok()) failures[t].push_back(s);
        s = store_->Put("volumes/c/volume.json", Pattern(64 << 10, t));
        if (!s.ok()) failures[t].push_back(s);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    for (const Status& s : failures[t]) ADD_FAILURE() << s.ToString();
  }
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      std::string key = "volumes/c/blocks/" + std::to_string(i % 3) + "/t" + std::to_string(t) +
                        "-" + std::to_string(i) + ".blk";
      ExpectContent(key, Pattern(1000 + i, t * 100 + i));
    }
  }
  auto shared = store_->Get("volumes/c/volume.json");
  ASSERT_TRUE(shared.ok()) << shared.status().ToString();
  bool whole_from_one_writer = false;
  for (int t = 0; t < kThreads; ++t) whole_from_one_writer |= *shared == Pattern(64 << 10, t);
  EXPECT_TRUE(whole_from_one_writer) << "the shared object mixes writers";
  auto keys = store_->List("volumes/c/");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(keys->size(), static_cast<size_t>(kThreads * kPerThread + 1));
}

TEST_P(StoreTest, RefusesKeysThatAreNotPlainRelativePaths) {
  for (const std::string& key :
       std::vector<std::string>{"", "/abs", "a/../../etc", "..", "a//b", "a/./b", "a/", "a b",
                                "a\nb", "a%2fb", std::string(1100, 'k')}) {
    Status s = store_->Put(key, Pattern(1, 1));
    EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument) << "'" << key << "': " << s.ToString();
    auto g = store_->Get(key);
    EXPECT_EQ(g.status().kind(), ErrorKind::kInvalidArgument) << "'" << key << "'";
  }
  for (const std::string& prefix :
       std::vector<std::string>{"volumes/v", "/volumes/", "../", "volumes//"}) {
    auto l = store_->List(prefix);
    EXPECT_EQ(l.status().kind(), ErrorKind::kInvalidArgument) << "'" << prefix << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreTest, ::testing::Values(StoreKind::kFile, StoreKind::kS3),
                         KindName);

// ---------------------------------------------------------------- FileStore only

class FileStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<BackupStore> Open(const std::string& path) {
    auto target = ParseTarget("file://" + path);
    EXPECT_TRUE(target.ok()) << target.status().ToString();
    if (!target.ok()) return nullptr;
    auto store = OpenFileStore(*target);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }
  testing::TempDir dir_;
};

TEST_F(FileStoreTest, MakesTheRootWithMode0700AtTheFirstPutAndLeavesNoTempFiles) {
  std::string root = dir_.path() + "/a/b/root";
  auto store = Open(root);
  ASSERT_NE(store, nullptr);
  struct stat st;
  // Opening and reading a target that does not exist changes nothing.
  auto listed = store->List("volumes/v/");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_TRUE(listed->empty());
  EXPECT_EQ(store->Get("volumes/v/volume.json").status().kind(), ErrorKind::kNotFound);
  EXPECT_NE(::stat((dir_.path() + "/a").c_str(), &st), 0) << "opening made directories";
  ASSERT_TRUE(store->Put("volumes/v/blocks/00/11/x.blk", Pattern(4096, 1)).ok());
  ASSERT_EQ(::stat(root.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::stat((dir_.path() + "/a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0755, 0755u) << "a directory above the root is not passable";
  ASSERT_TRUE(store->Put("volumes/v/blocks/00/11/x.blk", Pattern(4096, 2)).ok());
  int files = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) {
      ++files;
      EXPECT_EQ(e.path().filename(), "x.blk") << e.path();
    }
  }
  EXPECT_EQ(files, 1);
}

TEST_F(FileStoreTest, ListSkipsTempFilesOfInterruptedPuts) {
  auto store = Open(dir_.path());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("volumes/v/volume.json", Pattern(10, 1)).ok());
  std::ofstream(dir_.path() + "/volumes/v/volume.json.tmp.0123456789abcdef") << "half";
  auto keys = store->List("volumes/v/");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(*keys, std::vector<std::string>{"volumes/v/volume.json"});
}

TEST_F(FileStoreTest, RefusesARootThatIsAFile) {
  std::string file = dir_.path() + "/file";
  std::ofstream(file) << "x";
  auto target = ParseTarget("file://" + file);
  ASSERT_TRUE(target.ok());
  auto store = OpenFileStore(*target);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(file), std::string::npos) << store.status().message();
}

TEST_F(FileStoreTest, AFullFileSystemIsNoSpaceNamingThePath) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
  std::string mnt = dir_.path() + "/small";
  ASSERT_EQ(::mkdir(mnt.c_str(), 0700), 0);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=256k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  auto store = Open(mnt);
  ASSERT_NE(store, nullptr);
  Status s = store->Put("volumes/v/blocks/big.blk", Pattern(1 << 20, 1));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kNoSpace) << s.ToString();
  EXPECT_NE(s.message().find(mnt + "/volumes/v/blocks/big.blk"), std::string::npos) << s.message();
  // The failed Put left nothing behind.
  auto keys = store->List("volumes/v/");
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(keys->empty());
  int entries = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(mnt)) entries += e.is_regular_file();
  EXPECT_EQ(entries, 0);
}

}  // namespace
}  // namespace shorthorn::backup
