// parseRingRecord: every length in a ring record is checked before it is trusted.
#include "engine/RingDrainer.h"

#include <cstring>
#include <gtest/gtest.h>
#include <vector>

using namespace ringcap;

namespace {

std::vector<uint8_t> record(uint32_t pktLen, uint32_t capLen, uint16_t slot, size_t dataBytes) {
  ringcap_record h{};
  h.tstamp_boot_ns = 123;
  h.cookie = 7;
  h.ifindex = 3;
  h.pkt_len = pktLen;
  h.cap_len = capLen;
  h.slot = slot;
  std::vector<uint8_t> raw(sizeof h + dataBytes, 0xab);
  std::memcpy(raw.data(), &h, sizeof h);
  return raw;
}

} // namespace

TEST(RingRecord, AcceptsAWellFormedRecord) {
  auto raw = record(100, 60, 2, 64); // size class larger than cap_len, as the kernel reserves
  auto r = parseRingRecord(raw);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header.cookie, 7u);
  EXPECT_EQ(r->header.slot, 2u);
  EXPECT_EQ(r->data.size(), 60u);
  EXPECT_EQ(r->data.data(), raw.data() + RINGCAP_RECORD_HDR_LEN);
}

TEST(RingRecord, AcceptsAnEmptyPayload) {
  auto r = parseRingRecord(record(0, 0, 0, 0));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->data.empty());
}

TEST(RingRecord, RejectsBadLengths) {
  struct Case {
    const char *what;
    std::vector<uint8_t> raw;
  } cases[] = {
      {"shorter than the header", std::vector<uint8_t>(RINGCAP_RECORD_HDR_LEN - 1)},
      {"cap_len past the end", record(100, 65, 0, 64)},
      {"cap_len above pkt_len", record(10, 20, 0, 64)},
      {"cap_len above the largest snaplen",
       record(RINGCAP_MAX_SNAPLEN + 10, RINGCAP_MAX_SNAPLEN + 1, 0, RINGCAP_MAX_SNAPLEN + 8)},
      {"slot out of range", record(10, 10, RINGCAP_MAX_SLOTS, 16)},
  };
  for (const auto &c : cases)
    EXPECT_FALSE(parseRingRecord(c.raw)) << c.what;
}

TEST(RingRecord, ClockOffsetIsStable) {
  int64_t a = realtimeMinusBoottimeNs();
  int64_t b = realtimeMinusBoottimeNs();
  // Two readings of the same offset agree to well under a millisecond.
  EXPECT_LT(std::llabs(a - b), 1'000'000);
  EXPECT_GT(a, 0);
}
