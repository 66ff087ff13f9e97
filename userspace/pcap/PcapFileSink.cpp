#include "pcap/PcapFileSink.h"

#include <algorithm>

namespace ringcap {

PcapFileSink::PcapFileSink(std::unique_ptr<PcapngWriter> writer,
                           std::vector<std::pair<uint32_t, PcapInterface>> interfaces)
    : writer_(std::move(writer)) {
  for (const auto &[ifindex, iface] : interfaces)
    ifindexes_.push_back(ifindex);
}

void PcapFileSink::onPacket(const CapturedPacket &packet) {
  received_++;
  if (error_) {
    dropped_++;
    return;
  }
  if (!haveLast_ || packet.ifindex != lastIfindex_) {
    const auto it = std::find(ifindexes_.begin(), ifindexes_.end(), packet.ifindex);
    if (it == ifindexes_.end()) {
      error_ = Error{EINVAL, "packet from ifindex " + std::to_string(packet.ifindex) +
                                 ", which this capture does not use"};
      dropped_++;
      return;
    }
    haveLast_ = true;
    lastIfindex_ = packet.ifindex;
    lastId_ = static_cast<uint32_t>(it - ifindexes_.begin());
  }
  auto r = packet.data.size() >= kGatherMinBytes
               ? writer_->writePacketRef(lastId_, packet.tsNs, packet.pktLen, packet.data)
               : writer_->writePacket(lastId_, packet.tsNs, packet.pktLen, packet.data);
  if (!r) {
    error_ = r.error();
    dropped_++;
  }
}

void PcapFileSink::endBatch() {
  if (!writer_->holdsReferences())
    return;
  auto r = writer_->flush(); // even after error_: the ring memory is given back next
  if (!r && !error_)
    error_ = r.error();
}

Result<void> PcapFileSink::flush() {
  if (error_)
    return *error_;
  auto r = writer_->flush();
  if (!r)
    error_ = r.error();
  return r;
}

} // namespace ringcap
