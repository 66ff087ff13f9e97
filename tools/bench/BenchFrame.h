// The frames of ringcap-bench's load: Ethernet/IPv4/UDP, one size, the UDP destination port
// cycling through port_spread values so that a port filter can match 1 frame in N.
#pragma once

#include "util/Result.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace ringcap::bench {

using MacAddress = std::array<uint8_t, 6>;

struct FrameSpec {
  // Whole Ethernet frame without the FCS: 60 is the minimum frame, 1514 the usual MTU's.
  size_t size = 60;
  MacAddress srcMac{};
  // Nobody's address by default: the receiving stack sees PACKET_OTHERHOST and drops the
  // frame right after the taps, so no reply (ICMP port unreachable) travels back.
  MacAddress dstMac{0x02, 0x72, 0x63, 0x00, 0x00, 0x01};
  uint32_t srcAddr = 0; // network byte order
  uint32_t dstAddr = 0; // network byte order
  uint16_t srcPort = 4000;
  uint16_t portBase = 5000;
  uint32_t portSpread = 100; // destination ports portBase .. portBase + portSpread - 1
};

constexpr size_t kMinFrameSize = 14 + 20 + 8;
constexpr size_t kMaxFrameSize = 1514;

// One frame of the spec with the given UDP destination port. The UDP checksum is 0 (none).
std::vector<uint8_t> buildUdpFrame(const FrameSpec &spec, uint16_t dstPort);

Result<MacAddress> parseMac(const std::string &text);
Result<uint32_t> parseIpv4(const std::string &text);
// The hardware address of an interface in the current network namespace.
Result<MacAddress> interfaceMac(const std::string &ifname);

} // namespace ringcap::bench
