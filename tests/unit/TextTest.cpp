// safeText: text from outside made valid UTF-8, on one line and bounded.
#include "util/Text.h"

#include <gtest/gtest.h>

using namespace ringcap;

TEST(SafeText, KeepsValidUtf8AndEscapesTheRest) {
  struct Row {
    std::string in, out;
  } rows[] = {
      {"plain ascii", "plain ascii"},
      {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa6", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa6"},
      {"lone \xff byte", "lone \\xff byte"},
      {"latin-1 caf\xe9", "latin-1 caf\\xe9"},
      {"cut \xe2\x82", "cut \\xe2\\x82"},           // a 3-byte character cut short
      {"overlong \xc0\xaf", "overlong \\xc0\\xaf"}, // '/' spelled in two bytes
      {"surrogate \xed\xa0\x80", "surrogate \\xed\\xa0\\x80"},
      {"too high \xf4\x90\x80\x80", "too high \\xf4\\x90\\x80\\x80"},
      {"line\nbreak\ttab\x7f", "line\\x0abreak\\x09tab\\x7f"},
      {std::string("nul\0byte", 8), "nul\\x00byte"},
  };
  for (const auto &r : rows) {
    EXPECT_EQ(safeText(r.in), r.out) << r.in;
    EXPECT_TRUE(isValidUtf8(safeText(r.in))) << r.in;
    EXPECT_EQ(safeText(safeText(r.in)), safeText(r.in)) << "not idempotent: " << r.in;
  }
  EXPECT_FALSE(isValidUtf8("\xff"));
  EXPECT_TRUE(isValidUtf8("\xe2\x82\xac"));
}

TEST(SafeText, CutsOnCharacterBoundaries) {
  // 10 euro signs (3 bytes each): a bound of 10 keeps 3 of them, never a piece of the 4th.
  std::string euros;
  for (int i = 0; i < 10; i++)
    euros += "\xe2\x82\xac";
  EXPECT_EQ(safeText(euros, 10), "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac...");
  // An escape is not cut either.
  EXPECT_EQ(safeText("ab\xff\xff", 5), "ab...");
  EXPECT_EQ(safeText("abcdef", 6), "abcdef");
  EXPECT_EQ(safeText("abcdefg", 6), "abcdef...");
  for (size_t max = 0; max < 40; max++) {
    std::string s = safeText("x\xc3\xa9\xff\xe2\x82\xac\n\xf0\x9f\x93\xa6 end \xe2\x82", max);
    EXPECT_TRUE(isValidUtf8(s)) << max;
    EXPECT_LE(s.size(), max + 3) << max;
  }
}
