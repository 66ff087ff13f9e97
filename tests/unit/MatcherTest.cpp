// The userspace filter_v1 matcher (userspace/history/FilterMatcher) against the kernel
// filter's own table (tests/common/FilterCases.h, also run by the bpf test FilterTable).
#include "history/FilterMatcher.h"

#include "../common/FilterCases.h"

#include <gtest/gtest.h>

using namespace ringcap;
using namespace ringcap::test::filter_cases;

namespace {

Parsed parsedOf(const ParsedPacket &m) {
  switch (m.state) {
  case ParsedPacket::State::Bad:
    return Parsed::Malformed;
  case ParsedPacket::State::NonIp:
    return Parsed::NonIp;
  case ParsedPacket::State::Ok:
    break;
  }
  if (m.hasPorts)
    return Parsed::Ports;
  return m.portsMissing ? Parsed::PortsUnknown : Parsed::NoPortProto;
}

const char *name(Parsed p) {
  switch (p) {
  case Parsed::Ports:
    return "Ports";
  case Parsed::NoPortProto:
    return "NoPortProto";
  case Parsed::PortsUnknown:
    return "PortsUnknown";
  case Parsed::NonIp:
    return "NonIp";
  case Parsed::Malformed:
    return "Malformed";
  }
  return "?";
}

TEST(FilterMatcherTest, KernelFilterTable) {
  const auto cases = filterCases();
  ASSERT_GT(cases.size(), 100u);
  for (const FilterCase &c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(matches(toFilterV1(c.filter), c.packet), c.hit);
    EXPECT_STREQ(name(parsedOf(parsePacket(c.packet))), name(c.parsed));
    FilterMatcher matcher(toFilterV1(c.filter));
    EXPECT_EQ(matcher(c.packet), c.hit);
  }
}

// Every prefix of every table packet parses within its bytes (the sanitizer build checks
// the reads) and an empty filter matches it, as in the kernel.
TEST(FilterMatcherTest, EveryTruncationIsSafe) {
  for (const FilterCase &c : filterCases()) {
    SCOPED_TRACE(c.name);
    for (size_t n = 0; n <= c.packet.size(); n++) {
      std::vector<uint8_t> cut(c.packet.begin(), c.packet.begin() + long(n));
      ParsedPacket m = parsePacket(cut);
      if (n < 14) {
        EXPECT_EQ(m.state, ParsedPacket::State::Bad) << n;
      }
      EXPECT_TRUE(matches(FilterV1{}, cut));
    }
  }
}

} // namespace
