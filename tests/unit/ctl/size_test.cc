// ParseSize and FormatSize: binary suffixes, the errors people will hit, and
// the limits of uint64_t.
#include "dbus/ctl/size.h"

#include <gtest/gtest.h>

namespace shorthorn::ctl {
namespace {

TEST(ParseSizeTest, AcceptsBytesAndBinarySuffixes) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("0"), 0u);
  EXPECT_EQ(*ParseSize("1K"), 1024u);
  EXPECT_EQ(*ParseSize("512M"), 512ull << 20);
  EXPECT_EQ(*ParseSize("10G"), 10ull << 30);
  EXPECT_EQ(*ParseSize("10g"), 10ull << 30);
  EXPECT_EQ(*ParseSize("10GiB"), 10ull << 30);
  EXPECT_EQ(*ParseSize("2T"), 2ull << 40);
  EXPECT_EQ(*ParseSize("1P"), 1ull << 50);
  EXPECT_EQ(*ParseSize("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(*ParseSize("16383P"), 16383ull << 50);
}

TEST(ParseSizeTest, RejectsWithAReason) {
  struct Case {
    const char* text;
    const char* reason;
  };
  for (const Case& c :
       {Case{"", "empty"}, Case{"G", "not a number"}, Case{"-1G", "not a number"},
        Case{"1.5G", "fractions"}, Case{"10GB", "decimal units"}, Case{"10X", "unknown unit 'X'"},
        Case{"10Gi", "unknown unit 'Gi'"}, Case{"10 G", "unknown unit ' G'"},
        Case{"18446744073709551616", "too large"}, Case{"16384P", "too large"}}) {
    Result<uint64_t> r = ParseSize(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.reason), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(std::string("'") + c.text + "'"), std::string::npos);
  }
}

TEST(FormatSizeTest, PicksTheLargestUnit) {
  EXPECT_EQ(FormatSize(0), "0 B");
  EXPECT_EQ(FormatSize(1023), "1023 B");
  EXPECT_EQ(FormatSize(1024), "1 KiB");
  EXPECT_EQ(FormatSize(10ull << 30), "10 GiB");
  EXPECT_EQ(FormatSize(3ull << 29), "1.5 GiB");
  EXPECT_EQ(FormatSize((2ull << 30) - 1), "1.9 GiB");  // rounded down
  EXPECT_EQ(FormatSize(1ull << 40), "1 TiB");
  EXPECT_EQ(FormatSize(UINT64_MAX), "15.9 EiB");
}

TEST(FormatSizeTest, RoundTripsWholeUnits) {
  for (const char* text : {"1K", "7M", "10G", "3T"}) {
    std::string formatted = FormatSize(*ParseSize(text));
    EXPECT_EQ(
        *ParseSize(formatted.substr(0, formatted.find(' ')) + text[std::string(text).size() - 1]),
        *ParseSize(text));
  }
}

}  // namespace
}  // namespace shorthorn::ctl
