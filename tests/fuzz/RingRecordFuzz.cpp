// parseRingRecord on arbitrary bytes, as a ring record would arrive from the kernel.
// Properties: no crash or over-read; an accepted record names only slots in range, each of
// them with a cap_len within the limits; its data lies inside the input right after the slot
// entries and is the largest cap_len bytes long.
#include "FuzzCheck.h"
#include "engine/RingDrainer.h"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

using namespace ringcap;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // A heap copy of exactly `size` bytes, so that AddressSanitizer sees any read past the end.
  std::vector<uint8_t> raw(data, data + size);
  auto record = parseRingRecord(raw);
  if (!record)
    return 0;
  const auto &h = record->header;
  FUZZ_CHECK(size >= RINGCAP_RECORD_HDR_LEN, "record shorter than its header accepted");
  FUZZ_CHECK(h.slot_mask != 0 && (h.slot_mask >> RINGCAP_MAX_SLOTS) == 0,
             "slot_mask " + std::to_string(h.slot_mask));
  FUZZ_CHECK(h.flags == 0, "flags " + std::to_string(h.flags));
  const size_t hdr =
      RINGCAP_RECORD_HDR_LEN + RINGCAP_RECORD_SLOT_LEN * size_t(std::popcount(h.slot_mask));
  uint32_t largest = 0;
  for (unsigned s = 0; s < RINGCAP_MAX_SLOTS; s++) {
    if (!(h.slot_mask & (1u << s)))
      continue;
    uint32_t cap = record->slots[s].cap_len;
    FUZZ_CHECK(cap <= h.pkt_len && cap <= RINGCAP_MAX_SNAPLEN,
               "cap_len " + std::to_string(cap) + " pkt_len " + std::to_string(h.pkt_len));
    FUZZ_CHECK(record->dataOf(s).size() == cap, "a slot's data differs from its cap_len");
    largest = std::max(largest, cap);
  }
  FUZZ_CHECK(record->data.size() == largest, "data size differs from the largest cap_len");
  FUZZ_CHECK(record->data.data() == raw.data() + hdr, "data does not follow the slot entries");
  FUZZ_CHECK(hdr + record->data.size() <= size, "data runs past the input");
  volatile uint8_t sum = 0;
  for (uint8_t b : record->data)
    sum = sum + b;
  (void)sum;
  return 0;
}
