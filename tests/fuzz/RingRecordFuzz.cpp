// parseRingRecord on arbitrary bytes, as a ring record would arrive from the kernel.
// Properties: no crash or over-read; an accepted record's data lies inside the input, is
// cap_len bytes long, and its header obeys the documented limits.
#include "FuzzCheck.h"
#include "engine/RingDrainer.h"

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
  FUZZ_CHECK(h.slot < RINGCAP_MAX_SLOTS, "slot " + std::to_string(h.slot));
  FUZZ_CHECK(h.cap_len <= h.pkt_len && h.cap_len <= RINGCAP_MAX_SNAPLEN,
              "cap_len " + std::to_string(h.cap_len) + " pkt_len " + std::to_string(h.pkt_len));
  FUZZ_CHECK(record->data.size() == h.cap_len, "data size differs from cap_len");
  FUZZ_CHECK(record->data.data() == raw.data() + RINGCAP_RECORD_HDR_LEN,
              "data does not follow the header");
  FUZZ_CHECK(RINGCAP_RECORD_HDR_LEN + record->data.size() <= size, "data runs past the input");
  volatile uint8_t sum = 0;
  for (uint8_t b : record->data)
    sum = sum + b;
  (void)sum;
  return 0;
}
