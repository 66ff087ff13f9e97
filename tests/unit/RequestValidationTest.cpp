#include "request/CaptureRequest.h"

#include <cerrno>
#include <gtest/gtest.h>

namespace ringcap {
namespace {

using nlohmann::json;

constexpr RequestMode Api = RequestMode::Api;
constexpr RequestMode Tool = RequestMode::Tool;

// The request a table row starts from; the row's patch then sets (or adds) keys one by one.
enum class Base { None, Simple, Full };

const char *const kSimple =
    R"({"system":"magic-transit","type":"simple","time_limit":60,"packet_limit":100})";
const char *const kFull = R"({"system":"magic-transit","type":"full","time_limit":60,
    "colo_name":"lab01","destination_conf":"file:///srv/pcaps"})";

// None: the patch is the whole body.
json makeBody(Base base, const json &patch) {
  if (base == Base::None)
    return patch;
  json body = json::parse(base == Base::Simple ? kSimple : kFull);
  for (const auto &item : patch.items())
    body[item.key()] = item.value();
  return body;
}

std::string baseName(Base base) {
  return base == Base::None ? "" : base == Base::Simple ? "simple request + " : "full request + ";
}

// --- valid requests ---

struct GoodCase {
  RequestMode mode;
  Base base;
  const char *patch;
  const char *expected; // toJson() of the result
};

const GoodCase kGoodCases[] = {
    // offset_time: its form here; the history it names is the daemon's check.
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T10:00:00Z"})",
     R"({"system":"magic-transit","type":"simple","time_limit":60,"packet_limit":100,
         "offset_time":"2026-11-26T10:00:00Z"})"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26t10:00:00.123456789+01:00"})",
     R"({"system":"magic-transit","type":"simple","time_limit":60,"packet_limit":100,
         "offset_time":"2026-11-26t10:00:00.123456789+01:00"})"},
    {Api, Base::Simple, R"({"offset_time":"2024-02-29T23:59:60.5-12:30"})",
     R"({"system":"magic-transit","type":"simple","time_limit":60,"packet_limit":100,
         "offset_time":"2024-02-29T23:59:60.5-12:30"})"},
    // Api, simple.
    {Api, Base::Simple, "{}",
     R"({"system":"magic-transit","type":"simple","time_limit":60,"packet_limit":100})"},
    {Api, Base::Simple, R"({"type":"sample"})",
     R"({"system":"magic-transit","type":"simple","time_limit":60,"packet_limit":100})"},
    {Api, Base::Simple, R"({"time_limit":1,"packet_limit":1})",
     R"({"system":"magic-transit","type":"simple","time_limit":1,"packet_limit":1})"},
    {Api, Base::Simple, R"({"time_limit":300,"packet_limit":10000})",
     R"({"system":"magic-transit","type":"simple","time_limit":300,"packet_limit":10000})"},
    {Api, Base::Simple, R"({"filter_v1":{}})",
     R"({"system":"magic-transit","type":"simple","time_limit":60,"packet_limit":100})"},
    {Api, Base::Simple,
     R"({"filter_v1":{"destination_address":"203.0.113.7","destination_port":53,"protocol":17}})",
     R"({"system":"magic-transit","type":"simple","time_limit":60,"packet_limit":100,
         "filter_v1":{"destination_address":"203.0.113.7","destination_port":53,"protocol":17}})"},
    {Api, Base::Simple, R"({"filter_v1":{"source_address":"2001:DB8::1","source_port":0}})",
     R"({"system":"magic-transit","type":"simple","time_limit":60,"packet_limit":100,
         "filter_v1":{"source_address":"2001:db8::1","source_port":0}})"},
    {Api, Base::Simple, R"({"output_format":"pcapng"})",
     R"({"system":"magic-transit","type":"simple","time_limit":60,"packet_limit":100,
         "output_format":"pcapng"})"},
    {Api, Base::Full, R"({"output_format":"pcap"})",
     R"({"system":"magic-transit","type":"full","time_limit":60,"colo_name":"lab01",
         "destination_conf":"file:///srv/pcaps","output_format":"pcap"})"},
    // id (ringcap's own field: a fleet's capture id; who may give one is the daemon's check).
    {Api, Base::Simple, R"({"id":"0123456789abcdef0123456789abcdef"})",
     R"({"system":"magic-transit","type":"simple","time_limit":60,"packet_limit":100,
         "id":"0123456789abcdef0123456789abcdef"})"},
    {Api, Base::Full, R"({"id":null})",
     R"({"system":"magic-transit","type":"full","time_limit":60,"colo_name":"lab01",
         "destination_conf":"file:///srv/pcaps"})"},
    // Null stands for an absent optional field, including full-only fields on a simple capture.
    {Api, Base::Simple,
     R"({"filter_v1":null,"offset_time":null,"byte_limit":null,"colo_name":null,
         "destination_conf":null})",
     R"({"system":"magic-transit","type":"simple","time_limit":60,"packet_limit":100})"},
    // Api, full.
    {Api, Base::Full, "{}",
     R"({"system":"magic-transit","type":"full","time_limit":60,"colo_name":"lab01",
         "destination_conf":"file:///srv/pcaps"})"},
    {Api, Base::Full,
     R"({"packet_limit":10000,"byte_limit":1000000000,"colo_name":"ORD",
         "destination_conf":"s3://bucket/dir?region=us-east-1"})",
     R"({"system":"magic-transit","type":"full","time_limit":60,"packet_limit":10000,
         "byte_limit":1000000000,"colo_name":"ORD",
         "destination_conf":"s3://bucket/dir?region=us-east-1"})"},
    {Api, Base::Full, R"({"time_limit":1,"packet_limit":1,"byte_limit":1})",
     R"({"system":"magic-transit","type":"full","time_limit":1,"packet_limit":1,"byte_limit":1,
         "colo_name":"lab01","destination_conf":"file:///srv/pcaps"})"},
    {Api, Base::Full,
     R"({"colo_name":"a-Z_09-abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcde",
         "packet_limit":null,"byte_limit":null,"offset_time":null,
         "filter_v1":{"source_address":"10.0.0.1","destination_address":"10.0.0.2",
                      "source_port":65535,"destination_port":1,"protocol":255}})",
     R"({"system":"magic-transit","type":"full","time_limit":60,
         "colo_name":"a-Z_09-abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcde",
         "destination_conf":"file:///srv/pcaps",
         "filter_v1":{"source_address":"10.0.0.1","destination_address":"10.0.0.2",
                      "source_port":65535,"destination_port":1,"protocol":255}})"},
    // Tool: everything optional, limits allowed for both types.
    {Tool, Base::None, "{}", R"({"system":"magic-transit","type":"full"})"},
    {Tool, Base::None, R"({"system":null,"type":null,"time_limit":null})",
     R"({"system":"magic-transit","type":"full"})"},
    {Tool, Base::None, R"({"type":"sample","byte_limit":1000000000})",
     R"({"system":"magic-transit","type":"simple","byte_limit":1000000000})"},
    {Tool, Base::None, R"({"type":"full","time_limit":300,"packet_limit":10000})",
     R"({"system":"magic-transit","type":"full","time_limit":300,"packet_limit":10000})"},
    {Tool, Base::None, R"({"filter_v1":{"protocol":6,"destination_port":443}})",
     R"({"system":"magic-transit","type":"full","filter_v1":{"protocol":6,"destination_port":443}})"},
    {Tool, Base::Simple, "{}",
     R"({"system":"magic-transit","type":"simple","time_limit":60,"packet_limit":100})"},
    {Tool, Base::None, R"({"colo_name":null,"destination_conf":null,"offset_time":null})",
     R"({"system":"magic-transit","type":"full"})"},
};

void PrintTo(const GoodCase &c, std::ostream *os) { *os << baseName(c.base) << c.patch; }

class GoodRequestTest : public ::testing::TestWithParam<GoodCase> {};

TEST_P(GoodRequestTest, IsAcceptedAndRoundTrips) {
  const GoodCase &c = GetParam();
  const json body = makeBody(c.base, json::parse(c.patch));
  SCOPED_TRACE(body.dump());
  auto req = validateCaptureRequest(body, c.mode);
  ASSERT_TRUE(req.ok()) << req.error().message;
  EXPECT_EQ(req->toJson(), json::parse(c.expected));
  auto again = validateCaptureRequest(req->toJson(), c.mode);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, *req);
}

INSTANTIATE_TEST_SUITE_P(Table, GoodRequestTest, ::testing::ValuesIn(kGoodCases));

TEST(RequestValidationTest, ParsedValues) {
  auto simple = validateCaptureRequest(
      json::parse(R"({"system":"magic-transit","type":"sample","time_limit":300,
                      "packet_limit":10000,"filter_v1":{"destination_port":53}})"),
      Api);
  ASSERT_TRUE(simple.ok()) << simple.error().message;
  EXPECT_EQ(simple->system, "magic-transit");
  EXPECT_EQ(simple->type, CaptureType::Simple);
  EXPECT_EQ(simple->time_limit, 300u);
  EXPECT_EQ(simple->packet_limit, 10000u);
  EXPECT_FALSE(simple->byte_limit);
  EXPECT_EQ(simple->filter_v1.destination_port, 53);
  EXPECT_FALSE(simple->colo_name);

  auto full = validateCaptureRequest(json::parse(kFull), Api);
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_EQ(full->type, CaptureType::Full);
  EXPECT_FALSE(full->packet_limit);
  EXPECT_EQ(full->colo_name, "lab01");
  EXPECT_EQ(full->destination_conf, "file:///srv/pcaps");
  EXPECT_TRUE(full->filter_v1.empty());

  auto tool = validateCaptureRequest(json::object(), Tool);
  ASSERT_TRUE(tool.ok()) << tool.error().message;
  EXPECT_EQ(tool->system, "magic-transit");
  EXPECT_EQ(tool->type, CaptureType::Full);
  EXPECT_FALSE(tool->time_limit);
  EXPECT_FALSE(tool->packet_limit);
  EXPECT_FALSE(tool->byte_limit);

  EXPECT_EQ(toString(CaptureType::Simple), "simple");
  EXPECT_EQ(toString(CaptureType::Full), "full");
}

TEST(RequestValidationTest, Rfc3339Times) {
  EXPECT_EQ(parseRfc3339Ns("1970-01-01T00:00:00Z"), 0);
  // Beyond int64 nanoseconds (1677-2262): clamped, never wrapped (nor undefined).
  EXPECT_EQ(parseRfc3339Ns("9999-12-31T23:59:59Z"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(parseRfc3339Ns("0001-01-01T00:00:00Z"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(parseRfc3339Ns("2262-04-11T23:47:16Z"), int64_t(9223372036) * 1000000000);
  EXPECT_EQ(parseRfc3339Ns("2026-11-26T10:00:00Z"), int64_t(1795687200) * 1000000000);
  EXPECT_EQ(parseRfc3339Ns("2026-11-26t11:30:00.5+01:30"),
            int64_t(1795687200) * 1000000000 + 500000000);
  EXPECT_EQ(parseRfc3339Ns("2026-11-26T09:59:59.000000001-00:00"),
            int64_t(1795687199) * 1000000000 + 1);
  EXPECT_EQ(parseRfc3339Ns("2024-02-29T23:59:60Z"), int64_t(1709251200) * 1000000000);
  EXPECT_EQ(parseRfc3339Ns("2026-02-29T10:00:00Z"), std::nullopt);
  EXPECT_EQ(parseRfc3339Ns("2026-11-26T10:00:00"), std::nullopt);
}

TEST(RequestValidationTest, OffsetTimeOfAClient) {
  const int64_t now = int64_t(1795687200) * 1000000000 + 700000000; // 2026-11-26T10:00:00.7Z
  auto check = [&](const char *text, const char *expected) {
    auto r = resolveOffsetTime(text, now);
    ASSERT_TRUE(r.ok()) << text << ": " << r.error().message;
    EXPECT_EQ(*r, expected) << text;
  };
  check("-10m", "2026-11-26T09:50:00Z");
  check("-90s", "2026-11-26T09:58:30Z");
  check("-2h", "2026-11-26T08:00:00Z");
  check("-1h30m", "2026-11-26T08:30:00Z");
  check("-1d", "2026-11-25T10:00:00Z");
  check("-0s", "2026-11-26T10:00:00Z");
  check("2026-11-26T09:00:00.5+01:00", "2026-11-26T09:00:00.5+01:00");
  for (const char *bad :
       {"", "-", "-10", "10m", "-10x", "-m", "yesterday", "-1h-2m", "2026-11-26T09:00:00"}) {
    auto r = resolveOffsetTime(bad, now);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("must be an RFC 3339 date-time such as "
                                     "2026-11-26T10:00:00Z, or a time ago such as -10m"),
              std::string::npos)
        << r.error().message;
  }
}

TEST(RequestValidationTest, AcceptsSignedIntegersBuiltInCode) {
  // Values converted from D-Bus (time_limit i 10) may arrive as signed integers.
  const json body = {{"system", "magic-transit"},
                     {"type", "simple"},
                     {"time_limit", int32_t{10}},
                     {"packet_limit", int64_t{5}}};
  auto req = validateCaptureRequest(body, Api);
  ASSERT_TRUE(req.ok()) << req.error().message;
  EXPECT_EQ(req->time_limit, 10u);
  EXPECT_EQ(req->packet_limit, 5u);
}

// --- bad requests ---

struct BadCase {
  RequestMode mode;
  Base base;
  const char *patch;
  const char *error; // expected substring of the message
};

const BadCase kBadCases[] = {
    // The body.
    {Api, Base::None, "[]", "request: must be a JSON object (got an array)"},
    {Api, Base::None, "null", "request: must be a JSON object (got null)"},
    {Api, Base::None, R"("simple")", "request: must be a JSON object (got \"simple\")"},
    {Tool, Base::None, "1", "request: must be a JSON object (got 1)"},
    {Api, Base::None, "{}", "system: required"},
    // Unknown keys come first, in key order.
    {Api, Base::Simple, R"({"foo":1})", "foo: unknown field"},
    {Api, Base::Simple, R"({"foo":null})", "foo: unknown field"},
    {Api, Base::Simple, R"({"System":"magic-transit"})", "System: unknown field"},
    {Api, Base::Simple, R"({"timeLimit":10})", "timeLimit: unknown field"},
    {Api, Base::Simple, R"({"submitted":"x"})", "submitted: unknown field"},
    {Api, Base::Simple, R"({"status":"pending"})", "status: unknown field"},
    {Api, Base::Simple, R"({"a\nb":1})", "\"a\\nb\": unknown field"},
    {Api, Base::Simple, R"({"zzz":1,"aaa":1})", "aaa: unknown field"},
    {Api, Base::Simple, R"({"time_limit":0,"zzz":1})", "zzz: unknown field"},
    {Tool, Base::None, R"({"bar":true})", "bar: unknown field"},
    {Api, Base::Simple, R"({"filter_v1":{"port":53}})", "filter_v1.port: unknown field"},
    {Tool, Base::None, R"({"filter_v1":{"source_port":1,"dst":"x"}})",
     "filter_v1.dst: unknown field"},
    // system.
    {Api, Base::Simple, R"({"system":null})", "system: required"},
    {Api, Base::Simple, R"({"system":"magic_transit"})",
     "system: must be \"magic-transit\" (got \"magic_transit\")"},
    {Api, Base::Simple, R"({"system":""})", "system: must be \"magic-transit\" (got \"\")"},
    {Api, Base::Simple, R"({"system":"Magic-Transit"})", "system: must be \"magic-transit\""},
    {Api, Base::Simple, R"({"system":" magic-transit"})", "system: must be \"magic-transit\""},
    {Api, Base::Simple, R"({"system":1})", "system: must be \"magic-transit\" (got 1)"},
    {Api, Base::Simple, R"({"system":["magic-transit"]})",
     "system: must be \"magic-transit\" (got an array)"},
    {Tool, Base::None, R"({"system":"other"})",
     "system: must be \"magic-transit\" (got \"other\")"},
    // type.
    {Api, Base::Simple, R"({"type":null})", "type: required"},
    {Api, Base::Simple, R"({"type":"x"})",
     "type: must be \"simple\", \"full\" or \"sample\" (got \"x\")"},
    {Api, Base::Simple, R"({"type":"Simple"})", "type: must be \"simple\", \"full\" or \"sample\""},
    {Api, Base::Simple, R"({"type":"FULL"})", "type: must be \"simple\", \"full\" or \"sample\""},
    {Api, Base::Simple, R"({"type":""})",
     "type: must be \"simple\", \"full\" or \"sample\" (got \"\")"},
    {Api, Base::Simple, R"({"type":0})",
     "type: must be \"simple\", \"full\" or \"sample\" (got 0)"},
    {Api, Base::Simple, R"({"type":true})",
     "type: must be \"simple\", \"full\" or \"sample\" (got true)"},
    {Api, Base::Simple, R"({"type":{}})",
     "type: must be \"simple\", \"full\" or \"sample\" (got an object)"},
    {Tool, Base::None, R"({"type":"samples"})", "type: must be \"simple\", \"full\" or \"sample\""},
    // time_limit: presence, range edges, types.
    {Api, Base::Simple, R"({"time_limit":null})", "time_limit: required"},
    {Api, Base::Full, R"({"time_limit":null})", "time_limit: required"},
    {Api, Base::Simple, R"({"time_limit":0})",
     "time_limit: must be an integer from 1 to 300 (got 0)"},
    {Api, Base::Simple, R"({"time_limit":301})",
     "time_limit: must be an integer from 1 to 300 (got 301)"},
    {Api, Base::Full, R"({"time_limit":0})",
     "time_limit: must be an integer from 1 to 300 (got 0)"},
    {Api, Base::Full, R"({"time_limit":301})",
     "time_limit: must be an integer from 1 to 300 (got 301)"},
    {Tool, Base::None, R"({"time_limit":0})",
     "time_limit: must be an integer from 1 to 300 (got 0)"},
    {Tool, Base::None, R"({"time_limit":301})",
     "time_limit: must be an integer from 1 to 300 (got 301)"},
    {Api, Base::Simple, R"({"time_limit":-1})",
     "time_limit: must be an integer from 1 to 300 (got -1)"},
    {Api, Base::Simple, R"({"time_limit":4294967297})", // would wrap to 1 in 32 bits
     "time_limit: must be an integer from 1 to 300 (got 4294967297)"},
    {Api, Base::Simple, R"({"time_limit":18446744073709551617})", // beyond 64 bits: a float
     "time_limit: must be an integer from 1 to 300 (got 1.8446744073709552e+19)"},
    {Api, Base::Simple, R"({"time_limit":10.0})",
     "time_limit: must be an integer from 1 to 300 (got 10.0)"},
    {Api, Base::Simple, R"({"time_limit":1e1})",
     "time_limit: must be an integer from 1 to 300 (got 10.0)"},
    {Api, Base::Simple, R"({"time_limit":10.5})",
     "time_limit: must be an integer from 1 to 300 (got 10.5)"},
    {Api, Base::Simple, R"({"time_limit":"10"})",
     "time_limit: must be an integer from 1 to 300 (got \"10\")"},
    {Api, Base::Simple, R"({"time_limit":true})",
     "time_limit: must be an integer from 1 to 300 (got true)"},
    {Api, Base::Simple, R"({"time_limit":[10]})",
     "time_limit: must be an integer from 1 to 300 (got an array)"},
    {Api, Base::Simple, R"({"time_limit":{"s":10}})",
     "time_limit: must be an integer from 1 to 300 (got an object)"},
    // packet_limit.
    {Api, Base::Simple, R"({"packet_limit":null})", "packet_limit: required for simple captures"},
    {Api, Base::None, R"({"system":"magic-transit","type":"sample","time_limit":10})",
     "packet_limit: required for simple captures"},
    {Api, Base::Simple, R"({"packet_limit":0})",
     "packet_limit: must be an integer from 1 to 10000 (got 0)"},
    {Api, Base::Simple, R"({"packet_limit":10001})",
     "packet_limit: must be an integer from 1 to 10000 (got 10001)"},
    {Api, Base::Full, R"({"packet_limit":0})",
     "packet_limit: must be an integer from 1 to 10000 (got 0)"},
    {Api, Base::Full, R"({"packet_limit":10001})",
     "packet_limit: must be an integer from 1 to 10000 (got 10001)"},
    {Tool, Base::None, R"({"type":"simple","packet_limit":0})",
     "packet_limit: must be an integer from 1 to 10000 (got 0)"},
    {Tool, Base::None, R"({"packet_limit":10001})",
     "packet_limit: must be an integer from 1 to 10000 (got 10001)"},
    {Api, Base::Simple, R"({"packet_limit":-5})",
     "packet_limit: must be an integer from 1 to 10000 (got -5)"},
    {Api, Base::Simple, R"({"packet_limit":100.0})",
     "packet_limit: must be an integer from 1 to 10000 (got 100.0)"},
    {Api, Base::Simple, R"({"packet_limit":"100"})",
     "packet_limit: must be an integer from 1 to 10000 (got \"100\")"},
    {Api, Base::Simple, R"({"packet_limit":false})",
     "packet_limit: must be an integer from 1 to 10000 (got false)"},
    // byte_limit.
    {Api, Base::Simple, R"({"byte_limit":1000})", "byte_limit: only allowed for full captures"},
    {Api, Base::Simple, R"({"type":"sample","byte_limit":"x"})",
     "byte_limit: only allowed for full captures"},
    {Api, Base::Full, R"({"byte_limit":0})",
     "byte_limit: must be an integer from 1 to 1000000000 (got 0)"},
    {Api, Base::Full, R"({"byte_limit":1000000001})",
     "byte_limit: must be an integer from 1 to 1000000000 (got 1000000001)"},
    {Api, Base::Full, R"({"byte_limit":1e9})",
     "byte_limit: must be an integer from 1 to 1000000000 (got 1000000000.0)"},
    {Api, Base::Full, R"({"byte_limit":-1})",
     "byte_limit: must be an integer from 1 to 1000000000 (got -1)"},
    {Api, Base::Full, R"({"byte_limit":18446744073709551615})",
     "byte_limit: must be an integer from 1 to 1000000000 (got 18446744073709551615)"},
    {Api, Base::Full, R"({"byte_limit":"1000"})",
     "byte_limit: must be an integer from 1 to 1000000000 (got \"1000\")"},
    {Tool, Base::None, R"({"type":"simple","byte_limit":0})",
     "byte_limit: must be an integer from 1 to 1000000000 (got 0)"},
    {Tool, Base::None, R"({"byte_limit":1000000001})",
     "byte_limit: must be an integer from 1 to 1000000000 (got 1000000001)"},
    // filter_v1 inside a request.
    {Api, Base::Simple, R"({"filter_v1":[]})", "filter_v1: must be an object (got an array)"},
    {Api, Base::Simple, R"({"filter_v1":"port 53"})",
     "filter_v1: must be an object (got \"port 53\")"},
    {Api, Base::Simple, R"({"filter_v1":{"source_port":-1}})",
     "filter_v1.source_port: must be an integer from 0 to 65535 (got -1)"},
    {Api, Base::Simple, R"({"filter_v1":{"source_port":65536}})",
     "filter_v1.source_port: must be an integer from 0 to 65535 (got 65536)"},
    {Api, Base::Full, R"({"filter_v1":{"destination_port":-1}})",
     "filter_v1.destination_port: must be an integer from 0 to 65535 (got -1)"},
    {Api, Base::Full, R"({"filter_v1":{"destination_port":65536}})",
     "filter_v1.destination_port: must be an integer from 0 to 65535 (got 65536)"},
    {Api, Base::Simple, R"({"filter_v1":{"source_port":70000}})",
     "filter_v1.source_port: must be an integer from 0 to 65535 (got 70000)"},
    {Api, Base::Simple, R"({"filter_v1":{"destination_port":53.0}})",
     "filter_v1.destination_port: must be an integer from 0 to 65535 (got 53.0)"},
    {Api, Base::Simple, R"({"filter_v1":{"destination_port":"53"}})",
     "filter_v1.destination_port: must be an integer from 0 to 65535 (got \"53\")"},
    {Api, Base::Simple, R"({"filter_v1":{"protocol":-1}})",
     "filter_v1.protocol: must be an integer from 0 to 255 (got -1)"},
    {Api, Base::Simple, R"({"filter_v1":{"protocol":256}})",
     "filter_v1.protocol: must be an integer from 0 to 255 (got 256)"},
    {Tool, Base::None, R"({"filter_v1":{"protocol":"tcp"}})",
     "filter_v1.protocol: must be an integer from 0 to 255 (got \"tcp\")"},
    {Api, Base::Simple, R"({"filter_v1":{"source_address":"10.0.0.256"}})",
     "filter_v1.source_address: not an IPv4 or IPv6 address (\"10.0.0.256\")"},
    {Api, Base::Simple, R"({"filter_v1":{"source_address":"10.0.0.0/8"}})",
     "filter_v1.source_address: not an IPv4 or IPv6 address (\"10.0.0.0/8\")"},
    {Api, Base::Simple, R"({"filter_v1":{"source_address":""}})",
     "filter_v1.source_address: not an IPv4 or IPv6 address (\"\")"},
    {Api, Base::Simple, R"({"filter_v1":{"source_address":"10.0.0.1 "}})",
     "filter_v1.source_address: not an IPv4 or IPv6 address (\"10.0.0.1 \")"},
    {Api, Base::Simple, R"({"filter_v1":{"source_address":"01.2.3.4"}})",
     "filter_v1.source_address: not an IPv4 or IPv6 address (\"01.2.3.4\")"},
    {Api, Base::Full, R"({"filter_v1":{"destination_address":"2001:db8::1/64"}})",
     "filter_v1.destination_address: not an IPv4 or IPv6 address (\"2001:db8::1/64\")"},
    {Api, Base::Full, R"({"filter_v1":{"destination_address":"fe80::1%eth0"}})",
     "filter_v1.destination_address: not an IPv4 or IPv6 address (\"fe80::1%eth0\")"},
    {Api, Base::Full, R"({"filter_v1":{"destination_address":"2001:db8::12345"}})",
     "filter_v1.destination_address: not an IPv4 or IPv6 address (\"2001:db8::12345\")"},
    {Api, Base::Full, R"({"filter_v1":{"destination_address":" ::1"}})",
     "filter_v1.destination_address: not an IPv4 or IPv6 address (\" ::1\")"},
    {Api, Base::Full, R"({"filter_v1":{"destination_address":1}})",
     "filter_v1.destination_address: must be a string with an IPv4 or IPv6 address (got 1)"},
    {Api, Base::Simple,
     R"({"filter_v1":{"source_address":"10.0.0.1","destination_address":"::1"}})",
     "filter_v1.destination_address: must be the same address family as source_address (got IPv6, "
     "source_address is IPv4)"},
    // colo_name.
    {Api, Base::Full, R"({"colo_name":null})", "colo_name: required for full captures"},
    {Api, Base::Simple, R"({"colo_name":"lab01"})", "colo_name: only allowed for full captures"},
    {Api, Base::Full, R"({"colo_name":""})",
     "colo_name: must be 1 to 64 letters, digits, '_' or '-' (got \"\")"},
    {Api, Base::Full, R"({"colo_name":"lab 01"})",
     "colo_name: must be 1 to 64 letters, digits, '_' or '-' (got \"lab 01\")"},
    {Api, Base::Full, R"({"colo_name":"lab.01"})",
     "colo_name: must be 1 to 64 letters, digits, '_' or '-'"},
    {Api, Base::Full, R"({"colo_name":"lab/01"})",
     "colo_name: must be 1 to 64 letters, digits, '_' or '-'"},
    {Api, Base::Full, R"({"colo_name":"lab01\n"})",
     "colo_name: must be 1 to 64 letters, digits, '_' or '-' (got \"lab01\\n\")"},
    {Api, Base::Full,
     R"({"colo_name":"a123456789b123456789c123456789d123456789e123456789f123456789g1234"})",
     "colo_name: must be 1 to 64 letters, digits, '_' or '-'"},
    {Api, Base::Full, R"({"colo_name":1})",
     "colo_name: must be 1 to 64 letters, digits, '_' or '-' (got 1)"},
    {Api, Base::Full, R"({"colo_name":["ord02"]})",
     "colo_name: must be 1 to 64 letters, digits, '_' or '-' (got an array)"},
    {Tool, Base::None, R"({"colo_name":"lab01"})",
     "colo_name: not accepted by ringcap-dump (it belongs to the daemon's API)"},
    // destination_conf.
    {Api, Base::Full, R"({"destination_conf":null})",
     "destination_conf: required for full captures"},
    {Api, Base::None,
     R"({"system":"magic-transit","type":"full","time_limit":5,"colo_name":"lab01"})",
     "destination_conf: required for full captures"},
    {Api, Base::Simple, R"({"destination_conf":"file:///srv/pcaps"})",
     "destination_conf: only allowed for full captures"},
    {Api, Base::Full, R"({"destination_conf":""})",
     "destination_conf: must be a non-empty string of at most 2048 bytes (got \"\")"},
    {Api, Base::Full, R"({"destination_conf":7})",
     "destination_conf: must be a non-empty string of at most 2048 bytes (got 7)"},
    {Api, Base::Full, R"({"destination_conf":{"bucket":"b"}})",
     "destination_conf: must be a non-empty string of at most 2048 bytes (got an object)"},
    {Tool, Base::None, R"({"destination_conf":"file:///srv/pcaps"})",
     "destination_conf: not accepted by ringcap-dump (it belongs to the daemon's API)"},
    {Api, Base::Full, R"({"offset_time":"2026-11-26T10:00:00Z"})",
     "offset_time: only allowed for simple captures"},
    {Tool, Base::None, R"({"offset_time":"2026-11-26T10:00:00Z"})",
     "offset_time: not accepted by ringcap-dump (it belongs to the daemon's API)"},
    {Api, Base::Simple, R"({"offset_time":""})",
     "offset_time: must be an RFC 3339 date-time such as \"2026-11-26T10:00:00Z\" (got \"\")"},
    {Api, Base::Simple, R"({"offset_time":1764151200})",
     "offset_time: must be an RFC 3339 date-time such as \"2026-11-26T10:00:00Z\" (got "
     "1764151200)"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T10:00:00"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26 10:00:00Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T10:00Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-13-01T10:00:00Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-00-01T10:00:00Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-00T10:00:00Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-31T10:00:00Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-02-29T10:00:00Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T24:00:00Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T10:60:00Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T10:00:61Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T10:00:00.Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T10:00:00.1234567890Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    // output_format (ringcap's own field).
    {Api, Base::Simple, R"({"output_format":"PCAP"})",
     "output_format: must be \"pcap\" or \"pcapng\" (got \"PCAP\")"},
    {Api, Base::Full, R"({"output_format":1})",
     "output_format: must be \"pcap\" or \"pcapng\" (got 1)"},
    {Tool, Base::None, R"({"output_format":"pcap"})",
     "output_format: not accepted by ringcap-dump (it belongs to the daemon's API)"},
    // id: 32 lowercase hexadecimal digits, ringcapd's own form.
    {Api, Base::Simple, R"({"id":"0123456789ABCDEF0123456789abcdef"})",
     "id: must be 32 lowercase hexadecimal digits (0-9, a-f) (got "
     "\"0123456789ABCDEF0123456789abcdef\")"},
    {Api, Base::Full, R"({"id":"0123456789abcdef0123456789abcde"})",
     "id: must be 32 lowercase hexadecimal digits (0-9, a-f) (got "
     "\"0123456789abcdef0123456789abcde\")"},
    {Api, Base::Full, R"({"id":"0123456789abcdef0123456789abcdef0"})",
     "id: must be 32 lowercase hexadecimal digits (0-9, a-f)"},
    {Api, Base::Simple, R"({"id":"0123456789abcdef0123456789abcdeg"})",
     "id: must be 32 lowercase hexadecimal digits (0-9, a-f)"},
    {Api, Base::Simple, R"({"id":""})", "id: must be 32 lowercase hexadecimal digits (0-9, a-f)"},
    {Api, Base::Simple, R"({"id":12})", "id: must be 32 lowercase hexadecimal digits (0-9, a-f)"},
    {Tool, Base::None, R"({"id":"0123456789abcdef0123456789abcdef"})",
     "id: not accepted by ringcap-dump (it belongs to the daemon's API)"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T10:00:00+24:00"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T10:00:00+01:60"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T10:00:00+0100"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T10:00:00+01"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T10:00:00Z "})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":" 2026-11-26T10:00:00Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-1-26T10:00:00Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"+2026-11-26T10:00:00Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T10:00:00ZZ"})",
     "offset_time: must be an RFC 3339 date-time"},
    {Api, Base::Simple, R"({"offset_time":"2026-11-26T1a:00:00Z"})",
     "offset_time: must be an RFC 3339 date-time"},
    // Full-only and simple-only fields are reported for the type the request names.
    {Api, Base::Full, R"({"type":"sample"})", "packet_limit: required for simple captures"},
    {Api, Base::Full, R"({"type":"simple","packet_limit":5})",
     "colo_name: only allowed for full captures"},
    {Api, Base::Simple, R"({"type":"full"})", "colo_name: required for full captures"},
    // The first problem in the fixed order wins.
    {Api, Base::None, R"({"type":"x","system":"y"})", "system: must be \"magic-transit\""},
    {Api, Base::Simple, R"({"time_limit":0,"packet_limit":0})", "time_limit: must be an integer"},
    {Api, Base::Simple, R"({"packet_limit":0,"byte_limit":5})", "packet_limit: must be an integer"},
    {Api, Base::Simple, R"({"byte_limit":5,"filter_v1":[]})",
     "byte_limit: only allowed for full captures"},
    {Api, Base::Full, R"({"filter_v1":[],"colo_name":""})", "filter_v1: must be an object"},
    {Api, Base::Full, R"({"colo_name":"","destination_conf":""})", "colo_name: must be"},
};

void PrintTo(const BadCase &c, std::ostream *os) { *os << baseName(c.base) << c.patch; }

class BadRequestTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadRequestTest, IsRejectedNamingFieldAndRule) {
  const BadCase &c = GetParam();
  const json body = makeBody(c.base, json::parse(c.patch));
  auto req = validateCaptureRequest(body, c.mode);
  ASSERT_FALSE(req.ok()) << req->toJson().dump();
  EXPECT_EQ(req.error().code, EINVAL);
  EXPECT_NE(req.error().message.find(c.error), std::string::npos)
      << "message: " << req.error().message << "\nexpected: " << c.error;
}

INSTANTIATE_TEST_SUITE_P(Table, BadRequestTest, ::testing::ValuesIn(kBadCases));

// --- huge and hostile strings ---

TEST(RequestValidationTest, HugeStringsAreNotEchoed) {
  const std::string huge(1 << 20, 'A');
  const struct {
    Base base;
    json patch;
    const char *error;
  } cases[] = {
      {Base::Simple, {{"system", huge}}, "system: must be \"magic-transit\" (got \"AAAA"},
      {Base::Simple, {{"type", huge}}, "type: must be \"simple\", \"full\" or \"sample\""},
      {Base::Simple, {{"time_limit", huge}}, "time_limit: must be an integer"},
      {Base::Simple, {{huge, 1}}, "\"AAAA"},
      {Base::Full, {{"colo_name", huge}}, "colo_name: must be 1 to 64"},
      {Base::Full,
       {{"destination_conf", "s3://" + std::string(2044, 'b')}},
       "destination_conf: must be a non-empty string of at most 2048 bytes"},
      {Base::Full, {{"destination_conf", huge}}, "destination_conf: must be a non-empty"},
      {Base::Simple, {{"offset_time", huge}}, "offset_time: must be an RFC 3339 date-time"},
      {Base::Simple,
       {{"filter_v1", {{"source_address", huge}}}},
       "filter_v1.source_address: not an IPv4 or IPv6 address"},
      {Base::Simple, {{"filter_v1", {{huge, 1}}}}, "filter_v1.\"AAAA"},
  };
  for (const auto &c : cases) {
    auto req = validateCaptureRequest(makeBody(c.base, c.patch), Api);
    ASSERT_FALSE(req.ok());
    const std::string &message = req.error().message;
    EXPECT_NE(message.find(c.error), std::string::npos) << message.substr(0, 200);
    EXPECT_LT(message.size(), 300u) << message.substr(0, 200);
  }
}

TEST(RequestValidationTest, LongestDestinationConfIsAccepted) {
  auto req = validateCaptureRequest(
      makeBody(Base::Full, {{"destination_conf", "s3://" + std::string(2043, 'b')}}), Api);
  ASSERT_TRUE(req.ok()) << req.error().message;
  EXPECT_EQ(req->destination_conf->size(), 2048u);
}

TEST(RequestValidationTest, ControlCharactersAreEscaped) {
  // Strings built in code may hold any bytes, including invalid UTF-8.
  for (const std::string &value : {std::string("\x1b[2J\r\n\0x", 7), std::string("\xff\xfe\x80")}) {
    for (const char *key : {"type", "colo_name"}) {
      auto req = validateCaptureRequest(makeBody(Base::Full, {{key, value}}), Api);
      ASSERT_FALSE(req.ok());
      for (char ch : req.error().message)
        EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << json(req.error().message).dump();
    }
  }
  auto req = validateCaptureRequest(makeBody(Base::Full, {{"type", "a\nb"}}), Api);
  ASSERT_FALSE(req.ok());
  EXPECT_NE(req.error().message.find("(got \"a\\nb\")"), std::string::npos);
}

// --- toJson round trip ---

TEST(RequestValidationTest, ToJsonRoundTripsEveryField) {
  CaptureRequest full;
  full.type = CaptureType::Full;
  full.time_limit = 300;
  full.packet_limit = 10000;
  full.byte_limit = 1000000000;
  full.filter_v1.source_address = *IpAddress::parse("2001:db8::1");
  full.filter_v1.destination_address = *IpAddress::parse("2001:db8::2");
  full.filter_v1.source_port = 0;
  full.filter_v1.destination_port = 65535;
  full.filter_v1.protocol = 58;
  full.colo_name = "ord02";
  full.destination_conf = "s3://bucket/dir?region=us-east-1&endpoint=http://127.0.0.1:9000";
  full.id = "ffffffffffffffffffffffffffffffff";
  auto fullAgain = validateCaptureRequest(full.toJson(), Api);
  ASSERT_TRUE(fullAgain.ok()) << fullAgain.error().message;
  EXPECT_EQ(*fullAgain, full);

  CaptureRequest simple;
  simple.type = CaptureType::Simple;
  simple.time_limit = 1;
  simple.packet_limit = 1;
  simple.filter_v1.destination_address = *IpAddress::parse("10.1.2.3");
  simple.offset_time = "2026-11-26T10:00:00Z";
  const json expected = json::parse(R"({"system":"magic-transit","type":"simple","time_limit":1,
      "packet_limit":1,"filter_v1":{"destination_address":"10.1.2.3"},
      "offset_time":"2026-11-26T10:00:00Z"})");
  EXPECT_EQ(simple.toJson(), expected);
  auto simpleAgain = validateCaptureRequest(simple.toJson(), Api);
  ASSERT_TRUE(simpleAgain.ok()) << simpleAgain.error().message;
  EXPECT_EQ(*simpleAgain, simple);

  CaptureRequest tool;
  tool.type = CaptureType::Simple;
  tool.byte_limit = 5;
  auto toolAgain = validateCaptureRequest(tool.toJson(), Tool);
  ASSERT_TRUE(toolAgain.ok()) << toolAgain.error().message;
  EXPECT_EQ(*toolAgain, tool);
}

} // namespace
} // namespace ringcap
