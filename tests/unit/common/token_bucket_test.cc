#include "common/token_bucket.h"

#include <gtest/gtest.h>

namespace shorthorn {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = TokenBucket::Clock;

TEST(TokenBucketTest, UnlimitedNeverWaits) {
  Clock::time_point t0{};
  TokenBucket bucket(0, 0, t0);
  EXPECT_EQ(bucket.Take(1ull << 40, t0), Clock::duration::zero());
  EXPECT_EQ(bucket.Take(1ull << 40, t0), Clock::duration::zero());
}

TEST(TokenBucketTest, StartsEmptyAndPacesToTheRate) {
  Clock::time_point t0{};
  TokenBucket bucket(1000, 1000, t0);  // 1000 B/s
  // Nothing earned yet: 500 bytes wait half a second.
  EXPECT_EQ(bucket.Take(500, t0), milliseconds(500));
  // The debt carries: another 500 at the same moment wait a whole second.
  EXPECT_EQ(bucket.Take(500, t0), seconds(1));
  // One second later the debt is paid; the next 250 wait 250 ms.
  EXPECT_EQ(bucket.Take(250, t0 + seconds(1)), milliseconds(250));
}

TEST(TokenBucketTest, CreditIsCappedAtTheBurst) {
  Clock::time_point t0{};
  TokenBucket bucket(1000, 2000, t0);
  // Idle for an hour earns 2000 bytes, not 3.6 MB.
  Clock::time_point t1 = t0 + std::chrono::hours(1);
  EXPECT_EQ(bucket.Take(2000, t1), Clock::duration::zero());
  EXPECT_EQ(bucket.Take(1000, t1), seconds(1));
}

TEST(TokenBucketTest, ARequestLargerThanTheBurstPassesAtTheRate) {
  Clock::time_point t0{};
  TokenBucket bucket(1 << 20, 4096, t0);  // 1 MiB/s, 4 KiB burst
  EXPECT_EQ(bucket.Take(8 << 20, t0), seconds(8));
}

TEST(TokenBucketTest, SteadyStreamAveragesTheRate) {
  Clock::time_point t = Clock::time_point{};
  TokenBucket bucket(10 << 20, 1 << 20, t);  // 10 MiB/s
  // Send 1 MiB pieces, waiting as told: 100 MiB take 10 s.
  for (int i = 0; i < 100; ++i) t += bucket.Take(1 << 20, t);
  EXPECT_NEAR(std::chrono::duration<double>(t - Clock::time_point{}).count(), 10.0, 0.01);
}

TEST(TokenBucketTest, TimeGoingBackwardsEarnsNothing) {
  Clock::time_point t0 = Clock::time_point{} + seconds(10);
  TokenBucket bucket(1000, 1000, t0);
  EXPECT_EQ(bucket.Take(1000, t0 - seconds(5)), seconds(1));
}

TEST(TokenBucketTest, ZeroBurstIsOneByte) {
  Clock::time_point t0{};
  TokenBucket bucket(1000, 0, t0);
  EXPECT_EQ(bucket.Take(1, t0 + seconds(100)), Clock::duration::zero());
  EXPECT_EQ(bucket.Take(1000, t0 + seconds(100)), seconds(1));
}

}  // namespace
}  // namespace shorthorn
