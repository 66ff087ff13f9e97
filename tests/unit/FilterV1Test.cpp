#include "request/FilterV1.h"

#include <arpa/inet.h>
#include <cerrno>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ringcap {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

// --- IpAddress ---

struct GoodAddress {
  std::string input;
  int family;
  std::string text;                  // canonical form
  std::vector<uint8_t> leadingBytes; // bytes[0..n)
};

const GoodAddress kGoodAddresses[] = {
    {"10.1.2.3", 4, "10.1.2.3", {10, 1, 2, 3}},
    {"0.0.0.0", 4, "0.0.0.0", {0, 0, 0, 0}},
    {"255.255.255.255", 4, "255.255.255.255", {255, 255, 255, 255}},
    {"203.0.113.7", 4, "203.0.113.7", {203, 0, 113, 7}},
    {"2001:db8::1", 6, "2001:db8::1", {0x20, 0x01, 0x0d, 0xb8}},
    {"2001:DB8:0:0:0:0:0:1", 6, "2001:db8::1", {0x20, 0x01, 0x0d, 0xb8, 0, 0}},
    {"2001:0db8::0001", 6, "2001:db8::1", {0x20, 0x01, 0x0d, 0xb8}},
    {"::", 6, "::", {0, 0, 0, 0}},
    {"::1", 6, "::1", {0, 0, 0, 0}},
    {"fe80::1", 6, "fe80::1", {0xfe, 0x80}},
    {"::ffff:10.1.2.3", 6, "::ffff:10.1.2.3", {0, 0, 0, 0}},
};

TEST(IpAddressTest, ParsesValidAddresses) {
  for (const auto &c : kGoodAddresses) {
    SCOPED_TRACE(c.input);
    auto addr = IpAddress::parse(c.input);
    ASSERT_TRUE(addr.ok()) << addr.error().message;
    EXPECT_EQ(addr->family, c.family);
    EXPECT_EQ(addr->text(), c.text);
    for (size_t i = 0; i < c.leadingBytes.size(); ++i)
      EXPECT_EQ(addr->bytes[i], c.leadingBytes[i]) << "byte " << i;
    // The canonical form parses back to the same address.
    auto again = IpAddress::parse(addr->text());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *addr);
  }
}

TEST(IpAddressTest, Ipv4FillsOnlyTheFirstFourBytes) {
  auto addr = IpAddress::parse("10.1.2.3");
  ASSERT_TRUE(addr.ok());
  const std::array<uint8_t, 16> expected = {10, 1, 2, 3};
  EXPECT_EQ(addr->bytes, expected);
}

TEST(IpAddressTest, Ipv6BytesAreInNetworkOrder) {
  auto addr = IpAddress::parse("2001:db8::a:1");
  ASSERT_TRUE(addr.ok());
  const std::array<uint8_t, 16> expected = {0x20, 0x01, 0x0d, 0xb8, 0, 0,    0, 0,
                                            0,    0,    0,    0,    0, 0x0a, 0, 0x01};
  EXPECT_EQ(addr->bytes, expected);
}

const std::string kBadAddresses[] = {
    "",
    " 10.1.2.3",
    "10.1.2.3 ",
    "\t10.1.2.3",
    "10.1.2.3\n",
    "10.0.0.256",
    "256.0.0.1",
    "10.0.0",
    "10.0.0.1.2",
    "10.1.2.3.",
    ".10.1.2.3",
    "10..2.3",
    "01.2.3.4",
    "10.01.2.3",
    "10.1.2.00",
    "0x0a.1.2.3",
    "-1.2.3.4",
    "10.1.2.3/24",
    "10.1.2.3/32",
    "2001:db8::/32",
    "2001:db8::1/128",
    "fe80::1%eth0",
    "fe80::1%1",
    "2001:db8:::1",
    "2001:db8::1::2",
    "2001:db8::g",
    "12345::1",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "::ffff:01.2.3.4",
    "::ffff:10.1.2.256",
    "[2001:db8::1]",
    "localhost",
    "10.1.2.3:80",
    std::string("10.1.2.3\0", 9),
    std::string(100, '1'),
};

TEST(IpAddressTest, RejectsMalformedAddresses) {
  for (const auto &input : kBadAddresses) {
    SCOPED_TRACE(json(input).dump());
    auto addr = IpAddress::parse(input);
    ASSERT_FALSE(addr.ok()) << addr->text();
    EXPECT_EQ(addr.error().code, EINVAL);
    EXPECT_THAT(addr.error().message, HasSubstr("not an IPv4 or IPv6 address ("));
  }
}

TEST(IpAddressTest, ErrorQuotesTheInput) {
  auto addr = IpAddress::parse("10.0.0.256");
  ASSERT_FALSE(addr.ok());
  EXPECT_EQ(addr.error().message, "not an IPv4 or IPv6 address (\"10.0.0.256\")");
}

TEST(IpAddressTest, ErrorForHugeInputIsShort) {
  const std::string huge(1 << 20, 'a');
  auto addr = IpAddress::parse(huge);
  ASSERT_FALSE(addr.ok());
  EXPECT_LT(addr.error().message.size(), 200u);
  EXPECT_THAT(addr.error().message, HasSubstr("(1048576 bytes)"));
}

// --- quoteForMessage ---

TEST(QuoteForMessageTest, QuotesAndEscapes) {
  EXPECT_EQ(quoteForMessage("abc"), "\"abc\"");
  EXPECT_EQ(quoteForMessage(""), "\"\"");
  EXPECT_EQ(quoteForMessage("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quoteForMessage("a\nb\x01"), "\"a\\nb\\u0001\"");
  EXPECT_EQ(quoteForMessage(std::string("a\0b", 3)), "\"a\\u0000b\"");
  EXPECT_EQ(quoteForMessage("\x1b[31m"), "\"\\u001b[31m\"");
}

TEST(QuoteForMessageTest, OutputIsPrintableAscii) {
  // Non-ASCII text is escaped; invalid UTF-8 is replaced instead of throwing.
  for (const std::string input : {"caf\xc3\xa9", "\xff\xfe",
                                  "\xe2\x80\xae"
                                  "evil",
                                  "a\x7f"}) {
    const std::string quoted = quoteForMessage(input);
    for (char c : quoted)
      EXPECT_TRUE(c >= 0x20 && c < 0x7f) << json(quoted).dump();
  }
  EXPECT_EQ(quoteForMessage("caf\xc3\xa9"), "\"caf\\u00e9\"");
}

TEST(QuoteForMessageTest, TruncatesLongText) {
  const std::string quoted = quoteForMessage(std::string(1 << 20, 'x'));
  EXPECT_EQ(quoted, "\"" + std::string(64, 'x') + "\"... (1048576 bytes)");
  EXPECT_EQ(quoteForMessage(std::string(64, 'x')), "\"" + std::string(64, 'x') + "\"");
  // A cut through a multi-byte character does not break the output.
  const std::string cut = quoteForMessage(std::string(63, 'x') + "\xc3\xa9");
  EXPECT_THAT(cut, HasSubstr("... (65 bytes)"));
}

// --- FilterV1: toKernel and toJson ---

FilterV1 parseOrDie(const char *text) {
  auto filter = parseFilterV1(json::parse(text));
  EXPECT_TRUE(filter.ok()) << text << ": " << filter.error().message;
  return filter.ok() ? *filter : FilterV1{};
}

TEST(FilterV1Test, EmptyFilterIsAllZeroInKernelForm) {
  const FilterV1 filter;
  EXPECT_TRUE(filter.empty());
  const ringcap_filter k = filter.toKernel();
  const ringcap_filter zero{};
  EXPECT_EQ(std::memcmp(&k, &zero, sizeof(k)), 0);
  EXPECT_EQ(filter.toJson(), json::object());
  EXPECT_EQ(filter.toJson().dump(), "{}");
}

TEST(FilterV1Test, ToKernelUsesNetworkByteOrder) {
  const FilterV1 filter = parseOrDie(
      R"({"source_address":"10.1.2.3","destination_address":"192.0.2.200",
          "source_port":53,"destination_port":65535,"protocol":17})");
  EXPECT_FALSE(filter.empty());
  const ringcap_filter k = filter.toKernel();
  EXPECT_EQ(k.fields, unsigned(RINGCAP_F_SRC_ADDR | RINGCAP_F_DST_ADDR | RINGCAP_F_SRC_PORT |
                               RINGCAP_F_DST_PORT | RINGCAP_F_PROTOCOL));
  EXPECT_EQ(k.family, RINGCAP_FAMILY_IPV4);
  EXPECT_EQ(k.protocol, 17);
  EXPECT_EQ(k.src_port, htons(53));
  EXPECT_EQ(k.dst_port, htons(65535));
  const auto *srcPort = reinterpret_cast<const uint8_t *>(&k.src_port);
  EXPECT_EQ(srcPort[0], 0);
  EXPECT_EQ(srcPort[1], 53);
  const uint8_t src[16] = {10, 1, 2, 3};
  const uint8_t dst[16] = {192, 0, 2, 200};
  EXPECT_EQ(std::memcmp(k.src_addr, src, 16), 0);
  EXPECT_EQ(std::memcmp(k.dst_addr, dst, 16), 0);
  EXPECT_EQ(k.pad, 0);
}

TEST(FilterV1Test, ToKernelSetsOnlyGivenFields) {
  const ringcap_filter port = parseOrDie(R"({"destination_port":443})").toKernel();
  EXPECT_EQ(port.fields, unsigned(RINGCAP_F_DST_PORT));
  EXPECT_EQ(port.dst_port, htons(443));
  EXPECT_EQ(port.src_port, 0);
  EXPECT_EQ(port.family, RINGCAP_FAMILY_NONE);

  const ringcap_filter proto = parseOrDie(R"({"protocol":0})").toKernel();
  EXPECT_EQ(proto.fields, unsigned(RINGCAP_F_PROTOCOL));
  EXPECT_EQ(proto.protocol, 0);

  const ringcap_filter portZero = parseOrDie(R"({"source_port":0})").toKernel();
  EXPECT_EQ(portZero.fields, unsigned(RINGCAP_F_SRC_PORT));
}

TEST(FilterV1Test, ToKernelIpv6) {
  const ringcap_filter k = parseOrDie(R"({"destination_address":"2001:db8::1"})").toKernel();
  EXPECT_EQ(k.fields, unsigned(RINGCAP_F_DST_ADDR));
  EXPECT_EQ(k.family, RINGCAP_FAMILY_IPV6);
  const uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(std::memcmp(k.dst_addr, dst, 16), 0);
  const uint8_t zero[16] = {};
  EXPECT_EQ(std::memcmp(k.src_addr, zero, 16), 0);
}

TEST(FilterV1Test, ToJsonIsCanonicalAndOmitsAbsentFields) {
  EXPECT_EQ(parseOrDie(R"({"source_address":"2001:DB8:0::1","protocol":6})").toJson(),
            json::parse(R"({"source_address":"2001:db8::1","protocol":6})"));
  EXPECT_EQ(parseOrDie(R"({"source_port":null,"destination_port":80})").toJson(),
            json::parse(R"({"destination_port":80})"));
}

// --- parseFilterV1 tables ---

const char *const kGoodFilters[] = {
    "null",
    "{}",
    R"({"source_address":"10.1.2.3"})",
    R"({"destination_address":"2001:db8::1"})",
    R"({"source_address":"10.0.0.1","destination_address":"10.0.0.2"})",
    R"({"source_address":"2001:db8::1","destination_address":"::1"})",
    R"({"source_address":"::ffff:10.0.0.1","destination_address":"2001:db8::2"})",
    R"({"source_port":0,"destination_port":65535,"protocol":255})",
    R"({"source_port":1,"destination_port":0,"protocol":0})",
    R"({"source_address":null,"destination_address":null,"source_port":null,
        "destination_port":null,"protocol":null})",
    R"({"source_address":"203.0.113.7","destination_address":"198.51.100.1",
        "source_port":12345,"destination_port":53,"protocol":17})",
};

TEST(ParseFilterV1Test, AcceptsValidFiltersAndRoundTrips) {
  for (const char *text : kGoodFilters) {
    SCOPED_TRACE(text);
    auto filter = parseFilterV1(json::parse(text));
    ASSERT_TRUE(filter.ok()) << filter.error().message;
    auto again = parseFilterV1(filter->toJson());
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(*again, *filter);
  }
}

struct BadFilter {
  const char *json;
  const char *error; // the whole message
};

const BadFilter kBadFilters[] = {
    // Not an object.
    {"[]", "filter_v1: must be an object (got an array)"},
    {R"("10.0.0.1")", "filter_v1: must be an object (got \"10.0.0.1\")"},
    {"1", "filter_v1: must be an object (got 1)"},
    {"true", "filter_v1: must be an object (got true)"},
    // Unknown keys, including Cloudflare-like near misses.
    {R"({"foo":1})", "filter_v1.foo: unknown field"},
    {R"({"src_port":1})", "filter_v1.src_port: unknown field"},
    {R"({"Source_Address":"10.0.0.1"})", "filter_v1.Source_Address: unknown field"},
    {R"({"source_address":"10.0.0.1","zzz":null})", "filter_v1.zzz: unknown field"},
    {R"({"a b":1})", "filter_v1.\"a b\": unknown field"},
    {R"({"":1})", "filter_v1.\"\": unknown field"},
    // Addresses: wrong types.
    {R"({"source_address":1})",
     "filter_v1.source_address: must be a string with an IPv4 or IPv6 address (got 1)"},
    {R"({"source_address":167837955})",
     "filter_v1.source_address: must be a string with an IPv4 or IPv6 address (got 167837955)"},
    {R"({"destination_address":["10.0.0.1"]})",
     "filter_v1.destination_address: must be a string with an IPv4 or IPv6 address (got an "
     "array)"},
    {R"({"destination_address":{}})",
     "filter_v1.destination_address: must be a string with an IPv4 or IPv6 address (got an "
     "object)"},
    {R"({"source_address":false})",
     "filter_v1.source_address: must be a string with an IPv4 or IPv6 address (got false)"},
    // Addresses: malformed.
    {R"({"source_address":"10.0.0.256"})",
     "filter_v1.source_address: not an IPv4 or IPv6 address (\"10.0.0.256\")"},
    {R"({"source_address":""})", "filter_v1.source_address: not an IPv4 or IPv6 address (\"\")"},
    {R"({"source_address":" 10.0.0.1"})",
     "filter_v1.source_address: not an IPv4 or IPv6 address (\" 10.0.0.1\")"},
    {R"({"source_address":"10.0.0.0/24"})",
     "filter_v1.source_address: not an IPv4 or IPv6 address (\"10.0.0.0/24\")"},
    {R"({"source_address":"01.2.3.4"})",
     "filter_v1.source_address: not an IPv4 or IPv6 address (\"01.2.3.4\")"},
    {R"({"destination_address":"2001:db8::/32"})",
     "filter_v1.destination_address: not an IPv4 or IPv6 address (\"2001:db8::/32\")"},
    {R"({"destination_address":"fe80::1%eth0"})",
     "filter_v1.destination_address: not an IPv4 or IPv6 address (\"fe80::1%eth0\")"},
    {R"({"destination_address":"2001:db8:::1"})",
     "filter_v1.destination_address: not an IPv4 or IPv6 address (\"2001:db8:::1\")"},
    {R"({"destination_address":"10.0.0.1\n"})",
     "filter_v1.destination_address: not an IPv4 or IPv6 address (\"10.0.0.1\\n\")"},
    // Mixed families.
    {R"({"source_address":"10.0.0.1","destination_address":"2001:db8::1"})",
     "filter_v1.destination_address: must be the same address family as source_address (got "
     "IPv6, source_address is IPv4)"},
    {R"({"source_address":"::1","destination_address":"127.0.0.1"})",
     "filter_v1.destination_address: must be the same address family as source_address (got "
     "IPv4, source_address is IPv6)"},
    // Ports: range edges and wrong types.
    {R"({"source_port":-1})", "filter_v1.source_port: must be an integer from 0 to 65535 (got -1)"},
    {R"({"source_port":65536})",
     "filter_v1.source_port: must be an integer from 0 to 65535 (got 65536)"},
    {R"({"source_port":70000})",
     "filter_v1.source_port: must be an integer from 0 to 65535 (got 70000)"},
    {R"({"destination_port":-1})",
     "filter_v1.destination_port: must be an integer from 0 to 65535 (got -1)"},
    {R"({"destination_port":65536})",
     "filter_v1.destination_port: must be an integer from 0 to 65535 (got 65536)"},
    {R"({"destination_port":65589})", // 65536 + 53 would wrap to 53
     "filter_v1.destination_port: must be an integer from 0 to 65535 (got 65589)"},
    {R"({"destination_port":18446744073709551615})",
     "filter_v1.destination_port: must be an integer from 0 to 65535 (got 18446744073709551615)"},
    {R"({"destination_port":-9223372036854775808})",
     "filter_v1.destination_port: must be an integer from 0 to 65535 (got "
     "-9223372036854775808)"},
    {R"({"source_port":"53"})",
     "filter_v1.source_port: must be an integer from 0 to 65535 (got \"53\")"},
    {R"({"source_port":53.0})",
     "filter_v1.source_port: must be an integer from 0 to 65535 (got 53.0)"},
    {R"({"source_port":5.3e1})",
     "filter_v1.source_port: must be an integer from 0 to 65535 (got 53.0)"},
    {R"({"source_port":true})",
     "filter_v1.source_port: must be an integer from 0 to 65535 (got true)"},
    {R"({"source_port":[53]})",
     "filter_v1.source_port: must be an integer from 0 to 65535 (got an array)"},
    // Protocol.
    {R"({"protocol":-1})", "filter_v1.protocol: must be an integer from 0 to 255 (got -1)"},
    {R"({"protocol":256})", "filter_v1.protocol: must be an integer from 0 to 255 (got 256)"},
    {R"({"protocol":"udp"})", "filter_v1.protocol: must be an integer from 0 to 255 (got \"udp\")"},
    {R"({"protocol":17.5})", "filter_v1.protocol: must be an integer from 0 to 255 (got 17.5)"},
    // The first problem in a fixed order: unknown keys, addresses, ports, protocol, families.
    {R"({"protocol":256,"source_port":-1,"zzz":1})", "filter_v1.zzz: unknown field"},
    {R"({"protocol":256,"source_port":-1,"source_address":"x"})",
     "filter_v1.source_address: not an IPv4 or IPv6 address (\"x\")"},
    {R"({"protocol":256,"destination_port":-1})",
     "filter_v1.destination_port: must be an integer from 0 to 65535 (got -1)"},
};

TEST(ParseFilterV1Test, RejectsBadFilters) {
  for (const auto &c : kBadFilters) {
    SCOPED_TRACE(c.json);
    auto filter = parseFilterV1(json::parse(c.json));
    ASSERT_FALSE(filter.ok()) << filter->toJson().dump();
    EXPECT_EQ(filter.error().code, EINVAL);
    EXPECT_EQ(filter.error().message, c.error);
  }
}

TEST(ParseFilterV1Test, AcceptsSignedIntegersBuiltInCode) {
  // JSON parsing yields unsigned numbers; values converted from D-Bus may be signed.
  auto filter = parseFilterV1(json{{"source_port", int64_t{53}}, {"protocol", int8_t{17}}});
  ASSERT_TRUE(filter.ok()) << filter.error().message;
  EXPECT_EQ(filter->source_port, 53);
  EXPECT_EQ(filter->protocol, 17);
  auto negative = parseFilterV1(json{{"protocol", int64_t{-6}}});
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.error().message,
            "filter_v1.protocol: must be an integer from 0 to 255 (got -6)");
}

TEST(ParseFilterV1Test, HugeValuesAreNotEchoed) {
  const std::string huge(1 << 20, '1');
  for (const json &filter :
       {json{{"source_address", huge}}, json{{"destination_port", huge}}, json{{huge, 1}}}) {
    auto result = parseFilterV1(filter);
    ASSERT_FALSE(result.ok());
    EXPECT_LT(result.error().message.size(), 256u);
    EXPECT_THAT(result.error().message, HasSubstr("... (1048576 bytes)"));
  }
}

} // namespace
} // namespace ringcap
