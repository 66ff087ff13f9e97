// PcapReader: streams packets out of a classic pcap or a pcapng file. Every length in the input
// is checked before use; malformed input yields an Error, never a crash or an over-read.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/Result.h"

namespace ringcap {

struct PcapPacket {
  uint32_t interfaceId = 0; // index into PcapReader::interfaces()
  uint64_t tsNs = 0;        // ns since the Unix epoch (0 for pcapng Simple Packet Blocks)
  uint32_t origLen = 0;
  std::vector<uint8_t> data;
};

struct PcapReaderInterface {
  uint16_t linkType = 0;
  uint32_t snaplen = 0;
  std::string name;            // if_name, empty for classic pcap
  uint64_t tsUnitsPerSec = 0;  // timestamp resolution
  int64_t tsOffsetSeconds = 0; // if_tsoffset
};

// Counters of the latest Interface Statistics Block of one interface.
struct PcapReaderStats {
  uint64_t tsNs = 0;
  std::optional<uint64_t> received; // isb_ifrecv
  std::optional<uint64_t> dropped;  // isb_ifdrop
  std::optional<uint64_t> accepted; // isb_filteraccept
  std::string comment;
};

class PcapReader {
public:
  static Result<std::unique_ptr<PcapReader>> open(const std::string &path);
  static Result<std::unique_ptr<PcapReader>> fromBuffer(std::vector<uint8_t> bytes);
  ~PcapReader();
  PcapReader(const PcapReader &) = delete;
  PcapReader &operator=(const PcapReader &) = delete;

  // The next packet, std::nullopt at a clean end of file. A block cut short by the end of the
  // file gives an Error whose message contains "truncated". Errors are final: later calls
  // return the same error.
  Result<std::optional<PcapPacket>> next();

  bool isPcapng() const { return pcapng_; }
  // Interfaces seen so far, over all sections (classic pcap: exactly one).
  const std::vector<PcapReaderInterface> &interfaces() const { return interfaces_; }
  // Latest statistics seen so far, indexed like interfaces().
  const std::vector<std::optional<PcapReaderStats>> &statistics() const { return stats_; }

private:
  class Input;
  PcapReader(std::unique_ptr<Input> in, std::string name);

  Result<void> readHeader();
  Result<void> readSectionHeader(const uint8_t *typeAndLength, uint64_t offset);
  Result<std::optional<PcapPacket>> nextPcap();
  Result<std::optional<PcapPacket>> nextPcapng();
  Result<void> readBody(uint32_t totalLength, size_t consumed, uint64_t offset, bool keep);
  Result<void> parseInterface(uint64_t offset);
  Result<void> parseStatistics(uint64_t offset);
  Result<std::optional<PcapPacket>> parsePacket(uint32_t type, uint64_t offset);
  Result<uint64_t> toNs(size_t id, uint64_t units, uint64_t offset) const;
  Error corrupt(const std::string &what, uint64_t offset) const;
  Error truncated(const std::string &what, uint64_t offset) const;

  std::unique_ptr<Input> in_;
  std::string name_;
  bool pcapng_ = false;
  bool swap_ = false;
  size_t sectionBase_ = 0; // index of the current section's first interface
  std::vector<PcapReaderInterface> interfaces_;
  std::vector<std::optional<PcapReaderStats>> stats_;
  std::vector<uint8_t> body_;
  std::optional<Error> error_;
};

} // namespace ringcap
