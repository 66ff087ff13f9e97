// PcapFileSink: one job's PacketSink that writes its packets to a pcapng file, one
// interface block per capturing interface.
#pragma once

#include "engine/RingDrainer.h"
#include "pcap/PcapngWriter.h"

#include <optional>
#include <vector>

namespace ringcap {

// Packets of at least kGatherMinBytes are written from the ring in place (gathered, one
// writev per batch at endBatch()); smaller ones are copied into the writer's buffer.
class PcapFileSink : public PacketSink {
public:
  static constexpr size_t kGatherMinBytes = 512;

  // `interfaces` pairs each capturing ifindex with the interface block written for it.
  PcapFileSink(std::unique_ptr<PcapngWriter> writer,
               std::vector<std::pair<uint32_t, PcapInterface>> interfaces);

  void onPacket(const CapturedPacket &packet) override;
  // Writes the gathered packets before the ring's memory is given back.
  void endBatch() override;

  // The first write error; once set, later packets are counted in packetsDropped().
  const std::optional<Error> &error() const { return error_; }
  uint64_t packetsDropped() const { return dropped_; }
  // Packets handed to this sink: written plus dropped.
  uint64_t packetsReceived() const { return received_; }
  PcapngWriter &writer() { return *writer_; }
  // Interface ids in file order, for the statistics written at the end.
  const std::vector<uint32_t> &ifindexes() const { return ifindexes_; }

  Result<void> flush();

private:
  std::unique_ptr<PcapngWriter> writer_;
  std::vector<uint32_t> ifindexes_; // interface id -> ifindex (a few: searched in order)
  bool haveLast_ = false;           // the previous packet's ifindex and interface id:
  uint32_t lastIfindex_ = 0, lastId_ = 0;
  std::optional<Error> error_;
  uint64_t dropped_ = 0;
  uint64_t received_ = 0;
};

} // namespace ringcap
