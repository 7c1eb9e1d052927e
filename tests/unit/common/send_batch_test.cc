// SendBatch: flushes run when the outermost batch on the thread closes, in
// the order registered, and each thread has its own batch.
#include "common/send_batch.h"

#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace shorthorn {
namespace {

TEST(SendBatchTest, TheOutermostRunsTheFlushesInOrder) {
  std::string ran;
  EXPECT_FALSE(SendBatch::Active());
  {
    SendBatch outer;
    EXPECT_TRUE(SendBatch::Active());
    SendBatch::AtClose([&] { ran += "a"; });
    {
      SendBatch inner;
      SendBatch::AtClose([&] { ran += "b"; });
    }
    EXPECT_EQ(ran, "");  // the inner batch joined the outer one
    SendBatch::AtClose([&] { ran += "c"; });
  }
  EXPECT_EQ(ran, "abc");
  EXPECT_FALSE(SendBatch::Active());
  {
    SendBatch again;  // nothing is left over from the last batch
  }
  EXPECT_EQ(ran, "abc");
}

TEST(SendBatchTest, AFlushSeesNoOpenBatch) {
  bool active_in_flush = true;
  {
    SendBatch b;
    SendBatch::AtClose([&] { active_in_flush = SendBatch::Active(); });
  }
  EXPECT_FALSE(active_in_flush);
}

// A flush may leave work for a later round, which runs after every flush
// of the current one.
TEST(SendBatchTest, AFlushMayAddALaterRound) {
  std::string ran;
  {
    SendBatch b;
    SendBatch::AtClose([&] {
      ran += "a";
      SendBatch::AtClose([&] { ran += "A"; });
    });
    SendBatch::AtClose([&] { ran += "b"; });
  }
  EXPECT_EQ(ran, "abA");
}

TEST(SendBatchTest, EachThreadHasItsOwn) {
  SendBatch b;
  bool other_active = true;
  std::thread([&] { other_active = SendBatch::Active(); }).join();
  EXPECT_FALSE(other_active);
  EXPECT_TRUE(SendBatch::Active());
}

}  // namespace
}  // namespace shorthorn
