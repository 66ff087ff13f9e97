// JSON <-> a{sv} conversion (dbus/Variant), through real sd-bus messages.
#include "dbus/Variant.h"
#include "api/ServiceApi.h"
#include "engine/SlotCounters.h"

#include <cerrno>
#include <cstdint>
#include <functional>
#include <gtest/gtest.h>
#include <limits>
#include <map>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <unistd.h>
#include <vector>

using namespace ringcap;
using nlohmann::json;

namespace {

// sd-bus builds messages only on a started bus; one end of a socket pair is enough (nothing
// is ever sent).
class VariantTest : public ::testing::Test {
protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    peer_ = fds[1];
    ASSERT_GE(sd_bus_new(&bus_), 0);
    ASSERT_GE(sd_bus_set_fd(bus_, fds[0], fds[0]), 0);
    ASSERT_GE(sd_bus_start(bus_), 0);
  }
  void TearDown() override {
    sd_bus_message_unref(m_);
    sd_bus_close_unref(bus_); // not flushed: the peer never answers
    close(peer_);
  }

  // A new method call, m_.
  sd_bus_message *message() {
    sd_bus_message_unref(m_);
    m_ = nullptr;
    EXPECT_GE(sd_bus_message_new_method_call(bus_, &m_, api::kBusName, api::kManagerPath,
                                             api::kManagerInterface, "CreateCapture"),
              0);
    return m_;
  }

  // Seals m_ and rewinds it, so that it can be read like a received message.
  void seal() {
    ASSERT_GE(sd_bus_message_seal(m_, 1, 0), 0);
    ASSERT_GE(sd_bus_message_rewind(m_, true), 0);
  }

  json roundTrip(const json &in, const VariantTypeHints &hints = captureFieldTypes()) {
    auto written = writeVariantDict(message(), in, hints);
    EXPECT_TRUE(written) << written.error().message;
    seal();
    auto out = readVariantDict(m_);
    EXPECT_TRUE(out) << out.error().message;
    EXPECT_EQ(sd_bus_message_at_end(m_, true), 1);
    return out ? *out : json();
  }

  // The variant signatures of an a{sv} at the current position, by key ("filter_v1.x" for
  // members of nested dictionaries).
  std::map<std::string, std::string> signatures(const std::string &prefix = "") {
    std::map<std::string, std::string> out;
    EXPECT_GE(sd_bus_message_enter_container(m_, 'a', "{sv}"), 0);
    while (sd_bus_message_enter_container(m_, 'e', "sv") > 0) {
      const char *key;
      EXPECT_GE(sd_bus_message_read_basic(m_, 's', &key), 0);
      std::string name = prefix + key;
      char type;
      const char *contents;
      EXPECT_GT(sd_bus_message_peek_type(m_, &type, &contents), 0);
      out[name] = contents;
      if (std::string(contents) == "a{sv}") {
        EXPECT_GE(sd_bus_message_enter_container(m_, 'v', contents), 0);
        out.merge(signatures(name + "."));
        EXPECT_GE(sd_bus_message_exit_container(m_), 0);
      } else {
        EXPECT_GE(sd_bus_message_skip(m_, "v"), 0);
      }
      EXPECT_GE(sd_bus_message_exit_container(m_), 0);
    }
    EXPECT_GE(sd_bus_message_exit_container(m_), 0);
    return out;
  }

  std::map<std::string, std::string>
  signaturesOf(const json &in, const VariantTypeHints &hints = captureFieldTypes()) {
    auto written = writeVariantDict(message(), in, hints);
    EXPECT_TRUE(written) << written.error().message;
    seal();
    return signatures();
  }

  // The error of reading the a{sv} that append adds to a new message.
  std::string readError(const std::function<int(sd_bus_message *)> &append) {
    EXPECT_GE(append(message()), 0);
    seal();
    auto r = readVariantDict(m_);
    EXPECT_FALSE(r) << r->dump();
    return r ? "" : r.error().message;
  }

  sd_bus *bus_ = nullptr;
  sd_bus_message *m_ = nullptr;
  int peer_ = -1;
};

TEST_F(VariantTest, SimpleRequestRoundTrips) {
  json request = json::parse(R"({"system":"magic-transit","type":"simple","time_limit":10,
      "packet_limit":100,"filter_v1":{"destination_port":53}})");
  EXPECT_EQ(roundTrip(request), request);
}

TEST_F(VariantTest, FullRequestRoundTrips) {
  json request = json::parse(R"({"system":"magic-transit","type":"full","time_limit":300,
      "packet_limit":10000,"byte_limit":1000000000,"colo_name":"ord02",
      "destination_conf":"s3://bucket/dir?region=us-east-1",
      "filter_v1":{"source_address":"203.0.113.7","destination_address":"198.51.100.1",
                   "source_port":1024,"destination_port":53,"protocol":17}})");
  EXPECT_EQ(roundTrip(request), request);
}

TEST_F(VariantTest, IntegerFieldsTakeTheirDocumentedTypes) {
  json request = json::parse(R"({"time_limit":10,"packet_limit":100,"byte_limit":5,
      "offset_time":"2024-05-01T10:00:00Z",
      "filter_v1":{"source_port":0,"destination_port":65535,"protocol":255}})");
  std::map<std::string, std::string> expected{
      {"time_limit", "u"},
      {"packet_limit", "u"},
      {"byte_limit", "t"},
      {"offset_time", "s"},
      {"filter_v1", "a{sv}"},
      {"filter_v1.source_port", "q"},
      {"filter_v1.destination_port", "q"},
      {"filter_v1.protocol", "y"},
  };
  EXPECT_EQ(signaturesOf(request), expected);
}

TEST_F(VariantTest, RecordCountersAreSentAsT) {
  json record = json::parse(R"({"id":"ab","time_limit":10,"file_size":7,"filter_v1":{}})");
  putCounters(record, SlotCounters{0, 1, 2, 3, 4, 5, 6, 7});
  std::map<std::string, std::string> expected{
      {"id", "s"}, {"time_limit", "u"}, {"file_size", "t"}, {"filter_v1", "a{sv}"}};
  for (const auto &f : kSlotCounterFields)
    expected.emplace(f.name, "t");
  expected.emplace(kPacketsLostName, "t");
  EXPECT_EQ(signaturesOf(record), expected);
  EXPECT_EQ(roundTrip(record), record);
}

TEST_F(VariantTest, OutOfRangeIntegersAreSentWideForTheDaemonToRefuse) {
  json request = json::parse(R"({"time_limit":-1,"packet_limit":4294967296,
      "byte_limit":18446744073709551615,
      "filter_v1":{"source_port":65536,"destination_port":-5,"protocol":18446744073709551615}})");
  std::map<std::string, std::string> expected{
      {"time_limit", "x"},
      {"packet_limit", "x"},
      {"byte_limit", "t"},
      {"filter_v1", "a{sv}"},
      {"filter_v1.source_port", "x"},
      {"filter_v1.destination_port", "x"},
      {"filter_v1.protocol", "t"},
  };
  EXPECT_EQ(signaturesOf(request), expected);
  EXPECT_EQ(roundTrip(request), request);
}

TEST_F(VariantTest, HintsOfOtherIntegerTypesAreHonouredWhenTheValueFits) {
  VariantTypeHints hints{{"n", 'n'}, {"i", 'i'}, {"x", 'x'}, {"s", 's'}, {"d", 'd'}};
  json value = json::parse(R"({"n":-32768,"i":-2147483648,"x":5,"s":7,"d":8,
      "wide":{"n":32768,"i":-2147483649}})");
  std::map<std::string, std::string> expected{
      {"n", "n"}, {"i", "i"},        {"x", "x"},      {"s", "x"},
      {"d", "x"}, {"wide", "a{sv}"}, {"wide.n", "x"}, {"wide.i", "x"},
  };
  EXPECT_EQ(signaturesOf(value, hints), expected);
  EXPECT_EQ(roundTrip(value, hints), value);
  // Without hints, every integer is x (t above INT64_MAX).
  EXPECT_EQ(signaturesOf(json{{"time_limit", 10}}, {}),
            (std::map<std::string, std::string>{{"time_limit", "x"}}));
}

TEST_F(VariantTest, OtherValuesKeepTheirJsonType) {
  json value = json::parse(R"({"count":-9223372036854775808,"big":18446744073709551615,
      "small":7,"ratio":0.25,"on":true,"off":false,"name":"caf\u00e9 \u2713","empty":{},
      "list":[1,"two",[3.5],{"k":false},[]],"nested":{"deeper":{"x":"y"}}})");
  std::map<std::string, std::string> expected{
      {"count", "x"},
      {"big", "t"},
      {"small", "x"},
      {"ratio", "d"},
      {"on", "b"},
      {"off", "b"},
      {"name", "s"},
      {"empty", "a{sv}"},
      {"list", "av"},
      {"nested", "a{sv}"},
      {"nested.deeper", "a{sv}"},
      {"nested.deeper.x", "s"},
  };
  EXPECT_EQ(signaturesOf(value), expected);
  EXPECT_EQ(roundTrip(value), value);
}

TEST_F(VariantTest, NullMembersAreLeftOut) {
  json in = json::parse(R"({"type":"simple","offset_time":null,"filter_v1":{"protocol":null,
      "destination_port":53}})");
  EXPECT_EQ(roundTrip(in), json::parse(R"({"type":"simple","filter_v1":{"destination_port":53}})"));
}

TEST_F(VariantTest, WhatCannotBeSentIsNamed) {
  auto r = writeVariantDict(message(), json::parse(R"({"filter_v1":{"x":[1,null]}})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_EQ(r.error().message, "filter_v1.x[1]: null cannot be sent inside an array");
  r = writeVariantDict(message(), json{{"colo_name", std::string("a\0b", 3)}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "colo_name: a string holding a NUL character cannot be sent");
  r = writeVariantDict(message(), json{{"list", json::array({"ok", "\xff"})}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "list[1]: a string that is not valid UTF-8 cannot be sent");
  r = writeVariantDict(message(), json{{"k\xc3", 1}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "k\xc3: a string that is not valid UTF-8 cannot be sent");
  r = writeVariantDict(message(), json::array({1, 2}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "the dictionary must be a JSON object (got array)");
  // The sd-bus style form: a negative errno.
  EXPECT_EQ(appendVariantDict(message(), json::array({1, 2})), -EINVAL);
  EXPECT_EQ(appendVariantDict(message(), json{{"x", json::array({nullptr})}}), -EINVAL);
  EXPECT_EQ(appendVariantDict(message(), json{{"time_limit", 10}}), 0);
}

TEST_F(VariantTest, ReadsEveryIntegerTypeAsAJsonInteger) {
  sd_bus_message *m = message();
  ASSERT_GE(sd_bus_message_append(
                m, "a{sv}", 7, "y", "y", uint8_t(255), "n", "n", int16_t(-32768), "q", "q",
                uint16_t(65535), "i", "i", std::numeric_limits<int32_t>::min(), "u", "u",
                std::numeric_limits<uint32_t>::max(), "x", "x", std::numeric_limits<int64_t>::min(),
                "t", "t", std::numeric_limits<uint64_t>::max()),
            0);
  seal();
  auto record = readVariantDict(m);
  ASSERT_TRUE(record) << record.error().message;
  EXPECT_EQ(*record, json::parse(R"({"y":255,"n":-32768,"q":65535,"i":-2147483648,
      "u":4294967295,"x":-9223372036854775808,"t":18446744073709551615})"));
  for (const auto &[key, value] : record->items())
    EXPECT_TRUE(value.is_number_integer()) << key;
}

TEST_F(VariantTest, ReadsEveryOtherSupportedTypeOfARecord) {
  sd_bus_message *m = message();
  ASSERT_GE(sd_bus_message_open_container(m, 'a', "{sv}"), 0);
  ASSERT_GE(sd_bus_message_append(m, "{sv}", "d", "d", 0.5), 0);
  ASSERT_GE(sd_bus_message_append(m, "{sv}", "b", "b", 1), 0);
  ASSERT_GE(sd_bus_message_append(m, "{sv}", "s", "s", "caf\xc3\xa9"), 0);
  const std::string path = api::capturePath("ab");
  ASSERT_GE(sd_bus_message_append(m, "{sv}", "o", "o", path.c_str()), 0);
  ASSERT_GE(sd_bus_message_append(m, "{sv}", "g", "g", "a{sv}"), 0);
  ASSERT_GE(sd_bus_message_append(m, "{sv}", "ay", "ay", 2, 1, 2), 0);
  ASSERT_GE(sd_bus_message_append(m, "{sv}", "as", "as", 0), 0);
  ASSERT_GE(sd_bus_message_append(m, "{sv}", "aas", "aas", 2, 1, "a", 2, "b", "c"), 0);
  ASSERT_GE(sd_bus_message_append(m, "{sv}", "av", "av", 3, "u", 5u, "as", 1, "z", "a{sv}", 1, "k",
                                  "b", 0),
            0);
  ASSERT_GE(sd_bus_message_append(m, "{sv}", "aa{sv}", "aa{sv}", 2, 1, "k", "s", "v", 0), 0);
  ASSERT_GE(sd_bus_message_append(m, "{sv}", "nested", "a{sv}", 1, "deeper", "a{sv}", 1, "n", "q",
                                  uint16_t(80)),
            0);
  ASSERT_GE(sd_bus_message_close_container(m), 0);
  seal();
  auto record = readVariantDict(m);
  ASSERT_TRUE(record) << record.error().message;
  json expected = json::parse(R"({"d":0.5,"b":true,"s":"caf\u00e9","g":"a{sv}","ay":[1,2],
      "as":[],"aas":[["a"],["b","c"]],"av":[5,["z"],{"k":false}],"aa{sv}":[{"k":"v"},{}],
      "nested":{"deeper":{"n":80}}})");
  expected["o"] = path;
  EXPECT_EQ(*record, expected);
  EXPECT_EQ(sd_bus_message_at_end(m, true), 1);
}

// The daemon's requests: what has no JSON form is refused with its key path and signature.
TEST_F(VariantTest, UnsupportedTypesAreNamedByKeyPathAndSignature) {
  EXPECT_EQ(readError([](sd_bus_message *m) {
              return sd_bus_message_append(m, "a{sv}", 1, "time_limit", "(ii)", 1, 2);
            }),
            "time_limit: unsupported D-Bus type \"(ii)\"");
  EXPECT_EQ(readError([](sd_bus_message *m) {
              return sd_bus_message_append(m, "a{sv}", 1, "time_limit", "v", "u", 10u);
            }),
            "time_limit: unsupported D-Bus type \"v\"");
  EXPECT_EQ(readError([](sd_bus_message *m) {
              return sd_bus_message_append(m, "a{sv}", 1, "time_limit", "a{ss}", 1, "k", "v");
            }),
            "time_limit: unsupported D-Bus type \"a{ss}\"");
  EXPECT_EQ(readError([](sd_bus_message *m) {
              return sd_bus_message_append(m, "a{sv}", 1, "r", "a{us}", 1, 7u, "seven");
            }),
            "r: unsupported D-Bus type \"a{us}\"");
  EXPECT_EQ(readError([](sd_bus_message *m) {
              return sd_bus_message_append(m, "a{sv}", 1, "r", "a(su)", 0);
            }),
            "r: unsupported D-Bus type \"a(su)\"");
  EXPECT_EQ(readError([](sd_bus_message *m) {
              return sd_bus_message_append(m, "a{sv}", 2, "time_limit", "u", 10u, "filter_v1",
                                           "a{sv}", 1, "source_port", "(qq)", 1, 2);
            }),
            "filter_v1.source_port: unsupported D-Bus type \"(qq)\"");
  EXPECT_EQ(readError([](sd_bus_message *m) {
              return sd_bus_message_append(m, "a{sv}", 1, "list", "av", 2, "u", 1u, "(ii)", 1, 2);
            }),
            "list[1]: unsupported D-Bus type \"(ii)\"");
  EXPECT_EQ(readError([](sd_bus_message *m) {
              return sd_bus_message_append(m, "a{sv}", 1, "list", "av", 1, "v", "u", 1u);
            }),
            "list[0]: unsupported D-Bus type \"v\"");
}

TEST_F(VariantTest, AKeyGivenTwiceIsRefused) {
  EXPECT_EQ(readError([](sd_bus_message *m) {
              return sd_bus_message_append(m, "a{sv}", 2, "time_limit", "u", 10u, "time_limit", "u",
                                           20u);
            }),
            "time_limit: given more than once");
  EXPECT_EQ(readError([](sd_bus_message *m) {
              return sd_bus_message_append(m, "a{sv}", 1, "filter_v1", "a{sv}", 2, "protocol", "y",
                                           uint8_t(6), "protocol", "y", uint8_t(17));
            }),
            "filter_v1.protocol: given more than once");
}

TEST_F(VariantTest, ReadsAListOfRecords) {
  sd_bus_message *m = message();
  ASSERT_GE(sd_bus_message_open_container(m, 'a', "a{sv}"), 0);
  for (const char *id : {"aa", "bb"})
    ASSERT_GE(
        sd_bus_message_append(m, "a{sv}", 2, "id", "s", id, "packets_captured", "t", uint64_t(12)),
        0);
  ASSERT_GE(sd_bus_message_close_container(m), 0);
  ASSERT_GE(sd_bus_message_append(m, "aa{sv}", 0), 0);
  ASSERT_GE(sd_bus_message_append(m, "a{sv}", 0), 0);
  seal();
  auto list = readVariantDictArray(m);
  ASSERT_TRUE(list) << list.error().message;
  EXPECT_EQ(*list, json::parse(R"([{"id":"aa","packets_captured":12},
      {"id":"bb","packets_captured":12}])"));
  auto empty = readVariantDictArray(m);
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_EQ(*empty, json::array());
  auto notList = readVariantDictArray(m);
  ASSERT_FALSE(notList);
  EXPECT_EQ(notList.error().message, "expected a list of dictionaries (aa{sv}), got \"a{sv}\"");
}

TEST_F(VariantTest, AnUnsupportedTypeInAListIsNamedByItsIndex) {
  sd_bus_message *m = message();
  ASSERT_GE(sd_bus_message_open_container(m, 'a', "a{sv}"), 0);
  ASSERT_GE(sd_bus_message_append(m, "a{sv}", 1, "id", "s", "aa"), 0);
  ASSERT_GE(sd_bus_message_append(m, "a{sv}", 1, "id", "(ss)", "b", "b"), 0);
  ASSERT_GE(sd_bus_message_close_container(m), 0);
  seal();
  auto list = readVariantDictArray(m);
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().message, "[1].id: unsupported D-Bus type \"(ss)\"");
}

TEST_F(VariantTest, ARecordMustBeADictionary) {
  ASSERT_GE(sd_bus_message_append(message(), "s", "no"), 0);
  seal();
  auto r = readVariantDict(m_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "expected a dictionary (a{sv}), got \"s\"");
  ASSERT_GE(sd_bus_message_append(message(), "a{ss}", 0), 0);
  seal();
  r = readVariantDict(m_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "expected a dictionary (a{sv}), got \"a{ss}\"");
  message();
  seal();
  r = readVariantDict(m_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "expected a dictionary (a{sv}), but the message ends");
}

// The resident memory's high-water mark of this process, in KiB.
long peakRssKiB() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// Appends {key: ay of `bytes` bytes} as one entry of an open a{sv}.
int appendByteArrayEntry(sd_bus_message *m, const char *key, size_t bytes) {
  const std::vector<uint8_t> data(bytes, 0x5a);
  int r = sd_bus_message_open_container(m, 'e', "sv");
  if (r >= 0)
    r = sd_bus_message_append(m, "s", key);
  if (r >= 0)
    r = sd_bus_message_open_container(m, 'v', "ay");
  if (r >= 0)
    r = sd_bus_message_append_array(m, 'y', data.data(), data.size());
  if (r >= 0)
    r = sd_bus_message_close_container(m);
  return r < 0 ? r : sd_bus_message_close_container(m);
}

// A request of a{sv} whose `key` holds an ay of 16 MiB (nested in filter_v1 when `nested`).
// As JSON that array would take some 400 MiB; the schema refuses it unread.
TEST_F(VariantTest, TheRequestSchemaRefusesLargeValuesWithoutReadingThem) {
  constexpr size_t kBytes = 16 << 20;
  struct Row {
    const char *key;
    bool nested;
    std::string error;
  } rows[] = {
      {"colour", false, "colour: unknown field"},
      {"vlan", true, "filter_v1.vlan: unknown field"},
      {"time_limit", false,
       "time_limit: unsupported D-Bus type \"ay\" (must be a single value such as s or u, not a "
       "container)"},
      {"source_address", true,
       "filter_v1.source_address: unsupported D-Bus type \"ay\" (must be a single value such as "
       "s or u, not a container)"},
      {"filter_v1", false, "filter_v1: unsupported D-Bus type \"ay\" (must be a dictionary a{sv})"},
  };
  for (const Row &row : rows) {
    SCOPED_TRACE(row.key);
    sd_bus_message *m = message();
    ASSERT_GE(sd_bus_message_open_container(m, 'a', "{sv}"), 0);
    ASSERT_GE(sd_bus_message_append(m, "{sv}", "system", "s", "magic-transit"), 0);
    if (row.nested) {
      ASSERT_GE(sd_bus_message_open_container(m, 'e', "sv"), 0);
      ASSERT_GE(sd_bus_message_append(m, "s", "filter_v1"), 0);
      ASSERT_GE(sd_bus_message_open_container(m, 'v', "a{sv}"), 0);
      ASSERT_GE(sd_bus_message_open_container(m, 'a', "{sv}"), 0);
      ASSERT_GE(sd_bus_message_append(m, "{sv}", "protocol", "y", uint8_t(17)), 0);
      ASSERT_GE(appendByteArrayEntry(m, row.key, kBytes), 0);
      ASSERT_GE(sd_bus_message_close_container(m), 0);
      ASSERT_GE(sd_bus_message_close_container(m), 0);
      ASSERT_GE(sd_bus_message_close_container(m), 0);
    } else {
      ASSERT_GE(appendByteArrayEntry(m, row.key, kBytes), 0);
    }
    ASSERT_GE(sd_bus_message_close_container(m), 0);
    seal();
    const long before = peakRssKiB();
    auto r = readVariantDict(m_, captureRequestSchema());
    const long grown = peakRssKiB() - before;
    ASSERT_FALSE(r) << r->dump().substr(0, 200);
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_EQ(r.error().message, row.error);
    EXPECT_LT(grown, 4096) << "reading the refused request grew the peak RSS by " << grown
                           << " KiB";
  }
}

TEST_F(VariantTest, TheRequestSchemaPassesBasicValuesOnToTheValidator) {
  // Wrong basic types under known keys are read: the validator names the rule they break.
  ASSERT_GE(sd_bus_message_append(message(), "a{sv}", 4, "system", "s", "magic-transit",
                                  "time_limit", "s", "10", "filter_v1", "a{sv}", 1, "source_port",
                                  "s", "53", "type", "b", 1),
            0);
  seal();
  auto r = readVariantDict(m_, captureRequestSchema());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, json::parse(R"({"system":"magic-transit","time_limit":"10",
                                "filter_v1":{"source_port":"53"},"type":true})"));
  // A struct and another dictionary type are refused by type.
  ASSERT_GE(sd_bus_message_append(message(), "a{sv}", 1, "packet_limit", "(ii)", 1, 2), 0);
  seal();
  r = readVariantDict(m_, captureRequestSchema());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "packet_limit: unsupported D-Bus type \"(ii)\" (must be a single "
                               "value such as s or u, not a container)");
  ASSERT_GE(sd_bus_message_append(message(), "a{sv}", 1, "filter_v1", "a{ss}", 1, "protocol", "6"),
            0);
  seal();
  r = readVariantDict(m_, captureRequestSchema());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "filter_v1: unsupported D-Bus type \"a{ss}\" (must be a dictionary a{sv})");
}

} // namespace
