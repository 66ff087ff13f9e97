// The per-job counters on their way out: the record users get, the job store's state, the
// D-Bus types. Every field carries a distinct value, so a field that is dropped or swapped
// anywhere shows.
#include "CaptureRecord.h"
#include "dbus/Variant.h"
#include "engine/SlotCounters.h"

#include <fstream>
#include <gtest/gtest.h>
#include <iterator>
#include <set>
#include <string_view>

using namespace ringcap;

namespace {

CaptureRecord recordWithCounters() {
  CaptureRecord r;
  r.id = newCaptureId();
  r.request = *validateCaptureRequest(
      {{"system", "magic-transit"}, {"type", "simple"}, {"time_limit", 5}, {"packet_limit", 9}},
      RequestMode::Api);
  r.status = CaptureStatus::Running;
  r.submittedNs = 1;
  r.counters = SlotCounters{11, 12, 13, 14, 15, 16, 17, 18};
  return r;
}

} // namespace

TEST(CaptureRecordCounters, RecordNamesEveryCounter) {
  nlohmann::json j = recordWithCounters().toJson();
  EXPECT_EQ(j.value("packets_seen", 0u), 11u);
  EXPECT_EQ(j.value("packets_matched", 0u), 12u);
  EXPECT_EQ(j.value("packets_sampled_out", 0u), 13u);
  EXPECT_EQ(j.value("packets_captured", 0u), 14u);
  EXPECT_EQ(j.value("bytes_captured", 0u), 15u);
  EXPECT_EQ(j.value("packets_lost_ring_full", 0u), 16u);
  EXPECT_EQ(j.value("packets_over_limit", 0u), 17u);
  EXPECT_EQ(j.value("packets_copy_failed", 0u), 18u);
  EXPECT_EQ(j.value("packets_lost", 0u), 16u + 18u) << "lost: ring full + copy failed";
}

TEST(CaptureRecordCounters, StateKeepsEveryCounter) {
  CaptureRecord r = recordWithCounters();
  nlohmann::json state = r.toStateJson();
  nlohmann::json expected = {{"seen", 11},          {"matched", 12},        {"sampled_out", 13},
                             {"captured", 14},      {"bytes_captured", 15}, {"ring_lost", 16},
                             {"limit_reached", 17}, {"copy_failed", 18}};
  EXPECT_EQ(state.at("counters"), expected);
  auto back = CaptureRecord::fromStateJson(state);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->toJson(), r.toJson());
}

TEST(CaptureRecordCounters, EveryRecordCounterIsTypedT) {
  nlohmann::json j = recordWithCounters().toJson();
  const auto &hints = captureFieldTypes();
  for (const char *key : {"packets_seen", "packets_matched", "packets_sampled_out",
                          "packets_captured", "bytes_captured", "packets_lost_ring_full",
                          "packets_over_limit", "packets_copy_failed", "packets_lost"}) {
    EXPECT_TRUE(j.contains(key)) << key;
    auto it = hints.find(key);
    ASSERT_NE(it, hints.end()) << key;
    EXPECT_EQ(it->second, 't') << key;
  }
}

TEST(CaptureRecordCounters, TableFieldsAreDistinctAndReachTheRecord) {
  CaptureRecord r = recordWithCounters();
  nlohmann::json j = r.toJson();
  std::set<std::string_view> fields, names, properties;
  for (const auto &f : kSlotCounterFields) {
    EXPECT_TRUE(fields.insert(f.field).second) << f.field;
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    EXPECT_TRUE(properties.insert(f.property).second) << f.property;
    EXPECT_FALSE(f.description.empty()) << f.field;
    EXPECT_EQ(j.value(std::string(f.name), uint64_t(0)), r.counters.*f.member) << f.name;
  }
  EXPECT_EQ(names.count(kPacketsLostName), 0u);
  EXPECT_EQ(properties.count(kPacketsLostProperty), 0u);
}

TEST(CaptureRecordCounters, MinusAndAddKernelKeepEveryField) {
  ringcap_slot_counters one{};
  SlotCounters base, sum;
  for (size_t i = 0; i < kSlotCounterFields.size(); i++) {
    one.*kSlotCounterFields[i].kernel = 100 * (i + 1);
    base.*kSlotCounterFields[i].member = i + 1;
  }
  addKernel(sum, one);
  addKernel(sum, one);
  SlotCounters d = minus(sum, base);
  for (size_t i = 0; i < kSlotCounterFields.size(); i++)
    EXPECT_EQ(d.*kSlotCounterFields[i].member, 200 * (i + 1) - (i + 1))
        << kSlotCounterFields[i].field;
}

std::string readDoc(const std::string &name) {
  std::ifstream in(std::string(RINGCAP_SOURCE_DIR) + "/docs/" + name);
  EXPECT_TRUE(in) << name;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The docs name every counter as the code does.
TEST(CaptureRecordCounters, DocsNameEveryCounter) {
  std::string dbus = readDoc("dbus-api.md"), ctl = readDoc("ringcapctl.md"),
              dump = readDoc("ringcap-dump.md"), design = readDoc("design.md");
  auto quoted = [](std::string_view s) { return "`" + std::string(s) + "`"; };
  for (const auto &f : kSlotCounterFields) {
    EXPECT_NE(dbus.find(quoted(f.name)), std::string::npos) << f.name << " in dbus-api.md";
    EXPECT_NE(dbus.find(quoted(f.property)), std::string::npos) << f.property << " in dbus-api.md";
    EXPECT_NE(dump.find(quoted(f.name)), std::string::npos) << f.name << " in ringcap-dump.md";
    EXPECT_NE(ctl.find("\n" + std::string(f.name) + " "), std::string::npos)
        << f.name << " in ringcapctl.md's record";
    EXPECT_NE(design.find(quoted(f.field)), std::string::npos) << f.field << " in design.md";
  }
  EXPECT_NE(dbus.find(quoted(kPacketsLostName)), std::string::npos);
  EXPECT_NE(dbus.find(quoted(kPacketsLostProperty)), std::string::npos);
  EXPECT_NE(dump.find(quoted(kPacketsLostName)), std::string::npos);
}
