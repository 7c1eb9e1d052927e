#include "common/clock.h"

#include <gtest/gtest.h>

namespace shorthorn {
namespace {

TEST(ClockTest, FormatsAndParsesUtcTimes) {
  EXPECT_EQ(Rfc3339(1765000000), "2025-12-06T05:46:40Z");
  EXPECT_EQ(CompactUtc(1765000000), "20251206T054640Z");
  EXPECT_EQ(ParseRfc3339("2025-12-06T05:46:40Z"), std::optional<std::time_t>(1765000000));
  EXPECT_EQ(ParseRfc3339(Rfc3339(0)), std::optional<std::time_t>(0));
  for (const char* bad :
       {"", "2025-12-06", "2025-12-06T05:46:40", "2025-12-06T05:46:40Z ", "2025-12-06 05:46:40Z",
        "x2025-12-06T05:46:40Z", "2025-13-06T05:46:40Z"}) {
    EXPECT_EQ(ParseRfc3339(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace shorthorn
