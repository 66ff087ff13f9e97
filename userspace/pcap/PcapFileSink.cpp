#include "pcap/PcapFileSink.h"

namespace ringcap {

PcapFileSink::PcapFileSink(std::unique_ptr<PcapngWriter> writer,
                           std::vector<std::pair<uint32_t, PcapInterface>> interfaces)
    : writer_(std::move(writer)) {
  for (const auto &[ifindex, iface] : interfaces) {
    ifaceId_[ifindex] = static_cast<uint32_t>(ifindexes_.size());
    ifindexes_.push_back(ifindex);
  }
}

void PcapFileSink::onPacket(const CapturedPacket &packet) {
  received_++;
  if (error_) {
    dropped_++;
    return;
  }
  auto it = ifaceId_.find(packet.ifindex);
  if (it == ifaceId_.end()) {
    error_ = Error{EINVAL, "packet from ifindex " + std::to_string(packet.ifindex) +
                               ", which this capture does not use"};
    dropped_++;
    return;
  }
  auto r = packet.data.size() >= kGatherMinBytes
               ? writer_->writePacketRef(it->second, packet.tsNs, packet.pktLen, packet.data)
               : writer_->writePacket(it->second, packet.tsNs, packet.pktLen, packet.data);
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
