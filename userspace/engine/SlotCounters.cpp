#include "engine/SlotCounters.h"

#include <nlohmann/json.hpp>

namespace ringcap {

uint64_t packetsLost(const SlotCounters &c) { return c.ringLost + c.copyFailed; }

void addKernel(SlotCounters &sum, const ringcap_slot_counters &one) {
  for (const auto &f : kSlotCounterFields)
    sum.*f.member += one.*f.kernel;
}

SlotCounters minus(const SlotCounters &a, const SlotCounters &b) {
  SlotCounters d;
  for (const auto &f : kSlotCounterFields)
    d.*f.member = a.*f.member - b.*f.member;
  return d;
}

void putCounters(nlohmann::json &record, const SlotCounters &c) {
  for (const auto &f : kSlotCounterFields)
    record[std::string(f.name)] = c.*f.member;
  record[std::string(kPacketsLostName)] = packetsLost(c);
}

nlohmann::json countersStateJson(const SlotCounters &c) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto &f : kSlotCounterFields)
    j[std::string(f.field)] = c.*f.member;
  return j;
}

SlotCounters countersFromStateJson(const nlohmann::json &j) {
  SlotCounters c;
  for (const auto &f : kSlotCounterFields)
    c.*f.member = j.at(std::string(f.field)).get<uint64_t>();
  return c;
}

std::string describeCounters(const SlotCounters &c) {
  std::string out;
  for (const auto &f : kSlotCounterFields)
    out += (out.empty() ? "" : ", ") + std::string(f.name) + " " + std::to_string(c.*f.member);
  return out;
}

} // namespace ringcap
