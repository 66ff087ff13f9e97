// FilterMatcher: filter_v1 applied in userspace to a packet's bytes, with the same parse and
// the same rules as the XDP program (bpf/capture.bpf.c parse_packet and filter_match): up to
// two VLAN tags (802.1Q, 802.1ad), IPv4 with options, IPv6 with up to
// RINGCAP_MAX_IPV6_EXT extension headers, transport ports for TCP, UDP, DCCP, SCTP and
// UDP-Lite, none for non-first fragments. tests/common/FilterCases.h is the table both are
// tested against.
#pragma once

#include "capture_abi.h"
#include "request/FilterV1.h"

#include <cstdint>
#include <span>

namespace ringcap {

// What the parser made of a packet (the kernel's pkt_meta).
struct ParsedPacket {
  enum class State : uint8_t {
    Bad,   // truncated or invalid Ethernet/VLAN/IP headers
    NonIp, // neither IPv4 nor IPv6 after the tags
    Ok,    // IP: family, protocol and addresses are set
  };
  State state = State::Bad;
  uint8_t family = RINGCAP_FAMILY_NONE; // RINGCAP_FAMILY_IPV4 / _IPV6
  uint8_t protocol = 0;                 // IPv6: the upper-layer header
  bool hasPorts = false;
  // A protocol with ports whose ports are not there: a non-first fragment or a transport
  // header cut short (the kernel's no_ports counter).
  bool portsMissing = false;
  uint16_t srcPort = 0, dstPort = 0; // network byte order, as the kernel compares them
  uint8_t srcAddr[16] = {}, dstAddr[16] = {};
};

ParsedPacket parsePacket(std::span<const uint8_t> packet);

// The kernel's filter_match on a parsed packet.
bool filterMatches(const ringcap_filter &filter, const ParsedPacket &packet);

// True when `packet` (from its first byte, the Ethernet header) matches `filter`.
bool matches(const FilterV1 &filter, std::span<const uint8_t> packet);

// A filter converted once, for many packets.
class FilterMatcher {
public:
  explicit FilterMatcher(const FilterV1 &filter) : kernel_(filter.toKernel()) {}
  bool operator()(std::span<const uint8_t> packet) const {
    return kernel_.fields == 0 || filterMatches(kernel_, parsePacket(packet));
  }
  bool matchesAll() const { return kernel_.fields == 0; }

private:
  ringcap_filter kernel_;
};

} // namespace ringcap
