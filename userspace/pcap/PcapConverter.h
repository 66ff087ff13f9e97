// Conversion of a capture file (the pcapng spool) into classic PCAP, the format ringcapd
// delivers. Packets are streamed one at a time: memory does not grow with the file.
#pragma once

#include <cstdint>
#include <string>

#include "util/Result.h"

namespace ringcap {

struct ConversionSummary {
  uint64_t packets = 0;
  uint64_t bytes = 0; // size of the PCAP file
};

// Writes every packet of `input` (pcap or pcapng, Ethernet interfaces only) to a new classic
// PCAP file `output` (nanosecond timestamps, snaplen the largest of the interfaces'). The
// file is written as `output`.part with the group and mode of `input`, fsynced and renamed
// over `output`; on an error it is removed and `output` is left as it was. pcapng's interface
// ids, names and statistics blocks have no place in classic PCAP and are dropped.
Result<ConversionSummary> convertToPcap(const std::string &input, const std::string &output);

} // namespace ringcap
