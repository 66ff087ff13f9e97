// parseRingRecord: every length and slot in a ring record is checked before it is trusted;
// RingDrainer hands one record to the sink of every slot in its mask, cut to that slot's
// cap_len.
#include "engine/RingDrainer.h"

#include <cstring>
#include <gtest/gtest.h>
#include <vector>

using namespace ringcap;

namespace {

struct Slot {
  unsigned slot;
  uint32_t cookie, capLen;
};

// A record as the kernel writes it: header, one entry per slot (lowest first), dataBytes.
std::vector<uint8_t> record(uint32_t pktLen, std::vector<Slot> slots, size_t dataBytes,
                            uint16_t extraMask = 0, uint16_t flags = 0) {
  ringcap_record h{};
  h.tstamp_boot_ns = 123;
  h.ifindex = 3;
  h.pkt_len = pktLen;
  for (const Slot &s : slots)
    h.slot_mask = uint16_t(h.slot_mask | (1u << s.slot));
  h.slot_mask = uint16_t(h.slot_mask | extraMask);
  h.flags = flags;
  std::vector<uint8_t> raw(sizeof h + slots.size() * RINGCAP_RECORD_SLOT_LEN + dataBytes);
  std::memcpy(raw.data(), &h, sizeof h);
  size_t off = sizeof h;
  for (const Slot &s : slots) {
    ringcap_record_slot e{s.cookie, s.capLen};
    std::memcpy(raw.data() + off, &e, sizeof e);
    off += sizeof e;
  }
  for (size_t i = off; i < raw.size(); i++)
    raw[i] = uint8_t(i - off);
  return raw;
}

std::vector<uint8_t> record(uint32_t pktLen, uint32_t capLen, unsigned slot, size_t dataBytes) {
  return record(pktLen, {{slot, 7, capLen}}, dataBytes);
}

} // namespace

TEST(RingRecord, AcceptsAWellFormedRecord) {
  auto raw = record(100, 60, 2, 64); // size class larger than cap_len, as the kernel reserves
  auto r = parseRingRecord(raw);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header.slot_mask, 1u << 2);
  EXPECT_EQ(r->slots[2].cookie, 7u);
  EXPECT_EQ(r->slots[2].cap_len, 60u);
  EXPECT_EQ(r->data.size(), 60u);
  EXPECT_EQ(r->data.data(), raw.data() + RINGCAP_RECORD_HDR_LEN + RINGCAP_RECORD_SLOT_LEN);
  EXPECT_EQ(r->dataOf(2).size(), 60u);
}

TEST(RingRecord, AcceptsAnEmptyPayload) {
  auto r = parseRingRecord(record(0, 0, 0, 0));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->data.empty());
}

TEST(RingRecord, SeveralSlotsShareOneCopyEachWithItsCapLen) {
  // Slots 1, 4 and 7 in the mask; their entries in slot order; data is the largest cap_len.
  auto raw = record(1500, {{1, 0x11, 96}, {4, 0x44, 1500}, {7, 0x77, 64}}, 1536);
  auto r = parseRingRecord(raw);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header.slot_mask, (1u << 1) | (1u << 4) | (1u << 7));
  EXPECT_EQ(r->slots[1].cookie, 0x11u);
  EXPECT_EQ(r->slots[4].cookie, 0x44u);
  EXPECT_EQ(r->slots[7].cookie, 0x77u);
  EXPECT_EQ(r->data.data(), raw.data() + RINGCAP_RECORD_HDR_LEN + 3 * RINGCAP_RECORD_SLOT_LEN);
  EXPECT_EQ(r->data.size(), 1500u);
  EXPECT_EQ(r->dataOf(1).size(), 96u);
  EXPECT_EQ(r->dataOf(4).size(), 1500u);
  EXPECT_EQ(r->dataOf(7).size(), 64u);
  EXPECT_EQ(r->dataOf(7).data(), r->data.data());
  // All eight slots.
  std::vector<Slot> all;
  for (unsigned s = 0; s < RINGCAP_MAX_SLOTS; s++)
    all.push_back({s, 0x100 + s, 10 + s});
  auto raw8 = record(100, all, 64);
  auto r8 = parseRingRecord(raw8);
  ASSERT_TRUE(r8);
  EXPECT_EQ(r8->header.slot_mask, (1u << RINGCAP_MAX_SLOTS) - 1);
  for (unsigned s = 0; s < RINGCAP_MAX_SLOTS; s++) {
    EXPECT_EQ(r8->slots[s].cookie, 0x100 + s);
    EXPECT_EQ(r8->dataOf(s).size(), 10 + s);
  }
  EXPECT_EQ(r8->data.data(), raw8.data() + RINGCAP_RECORD_MAX_HDR_LEN);
}

TEST(RingRecord, RejectsBadLengthsAndMasks) {
  struct Case {
    const char *what;
    std::vector<uint8_t> raw;
  } cases[] = {
      {"shorter than the header", std::vector<uint8_t>(RINGCAP_RECORD_HDR_LEN - 1)},
      {"cap_len past the end", record(100, 65, 0, 64)},
      {"cap_len above pkt_len", record(10, 20, 0, 64)},
      {"cap_len above the largest snaplen",
       record(RINGCAP_MAX_SNAPLEN + 10, RINGCAP_MAX_SNAPLEN + 1, 0, RINGCAP_MAX_SNAPLEN + 8)},
      {"empty mask", record(10, {}, 16)},
      {"mask names a slot out of range", record(10, {{0, 1, 10}}, 16, 1u << RINGCAP_MAX_SLOTS)},
      {"mask's top bit", record(10, {{0, 1, 10}}, 16, 0x8000)},
      {"flags set", record(10, {{0, 1, 10}}, 16, 0, 1)},
      // Three bits but two entries and no data: the third entry would be the data.
      {"slot entries past the end",
       [] {
         auto r = record(10, {{0, 1, 0}, {1, 2, 0}}, 0);
         r[offsetof(ringcap_record, slot_mask)] |= 0x4;
         return r;
       }()},
      {"the largest cap_len past the end, a smaller one inside",
       record(100, {{0, 1, 10}, {5, 2, 70}}, 64)},
      {"one slot's cap_len above pkt_len", record(50, {{2, 1, 40}, {3, 2, 51}}, 64)},
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
