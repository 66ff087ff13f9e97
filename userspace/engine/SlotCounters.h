// A job slot's counters in userspace, and the one table of them (generated from
// RINGCAP_SLOT_COUNTERS in capture_abi.h) that every list of counters is made from.
#pragma once

#include "capture_abi.h"

#include <array>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace ringcap {

struct SlotCounters {
#define RINGCAP_X(field, member, name, property, description) uint64_t member = 0;
  RINGCAP_SLOT_COUNTERS(RINGCAP_X)
#undef RINGCAP_X
  bool operator==(const SlotCounters &) const = default;
};

// One counter: its names everywhere and where it lives.
struct SlotCounterField {
  std::string_view field;       // ringcap_slot_counters member; key in the job store's state
  std::string_view name;        // key in records, ringcap-dump --json and ringcapctl
  std::string_view property;    // D-Bus property of capture objects
  std::string_view description; // what it counts
  uint64_t SlotCounters::*member;
  __u64 ringcap_slot_counters::*kernel;
};

inline constexpr std::array kSlotCounterFields = {
#define RINGCAP_X(field, member, name, property, description)                                      \
  SlotCounterField{#field,                                                                         \
                   #name,                                                                          \
                   #property,                                                                      \
                   description,                                                                    \
                   &SlotCounters::member,                                                          \
                   &ringcap_slot_counters::field},
    RINGCAP_SLOT_COUNTERS(RINGCAP_X)
#undef RINGCAP_X
};

static_assert(sizeof(ringcap_slot_counters) == kSlotCounterFields.size() * sizeof(__u64),
              "every field of ringcap_slot_counters is in RINGCAP_SLOT_COUNTERS");
static_assert(sizeof(SlotCounters) == kSlotCounterFields.size() * sizeof(uint64_t),
              "every field of SlotCounters is in RINGCAP_SLOT_COUNTERS");

// Packets that matched and were lost (ring full or copy failed): records' packets_lost,
// the PacketsLost property and the pcapng statistics' isb_ifdrop.
inline constexpr std::string_view kPacketsLostName = "packets_lost";
inline constexpr std::string_view kPacketsLostProperty = "PacketsLost";
uint64_t packetsLost(const SlotCounters &c);

// Adds one CPU's kernel counters.
void addKernel(SlotCounters &sum, const ringcap_slot_counters &one);
// a - b, field by field (counters since a baseline).
SlotCounters minus(const SlotCounters &a, const SlotCounters &b);

// Sets every counter under its name, and packets_lost.
void putCounters(nlohmann::json &record, const SlotCounters &c);
// The job store's form: {field: value} for every counter.
nlohmann::json countersStateJson(const SlotCounters &c);
// Reads countersStateJson(); throws nlohmann::json::exception when a field is missing.
SlotCounters countersFromStateJson(const nlohmann::json &j);
// "packets_seen 1, packets_matched 1, ..." for logs, comments and messages.
std::string describeCounters(const SlotCounters &c);

} // namespace ringcap
