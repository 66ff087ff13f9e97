// The pcap/pcapng reader of ringcap-merge on arbitrary bytes: PcapReader::fromBuffer, then
// next() until the end or an error. Properties: no crash, over-read or leak; every packet names
// a known interface; errors are final (the next call returns the same error).
#include "FuzzCheck.h"
#include "pcap/PcapReader.h"

#include <cstddef>
#include <cstdint>
#include <vector>

using namespace ringcap;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto reader = PcapReader::fromBuffer(std::vector<uint8_t>(data, data + size));
  if (!reader) {
    FUZZ_CHECK(!reader.error().message.empty(), "fromBuffer error without a message");
    return 0;
  }
  PcapReader &r = **reader;
  // Each packet takes at least 12 bytes of input (pcapng SPB) or 16 (classic record header).
  for (size_t packets = 0;; packets++) {
    FUZZ_CHECK(packets <= size / 12 + 1, "more packets than the input can hold");
    auto packet = r.next();
    if (!packet) {
      FUZZ_CHECK(!packet.error().message.empty(), "next() error without a message");
      auto again = r.next();
      FUZZ_CHECK(!again.ok() && again.error().message == packet.error().message,
                  "an error is not final: " + packet.error().message);
      break;
    }
    if (!*packet)
      break;
    const PcapPacket &p = **packet;
    FUZZ_CHECK(p.interfaceId < r.interfaces().size(),
                "packet on interface " + std::to_string(p.interfaceId) + " of " +
                    std::to_string(r.interfaces().size()));
    FUZZ_CHECK(p.data.size() <= size, "packet larger than the input");
  }
  FUZZ_CHECK(r.statistics().size() <= r.interfaces().size(), "statistics of unknown interfaces");
  return 0;
}
