// PacketBuilder: test frames layer by layer. Next-protocol fields (EtherType, IPv4 protocol,
// IPv6 next header) and length fields are filled in from the layers that follow, unless a
// layer's next protocol is set explicitly with next().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace ringcap::test {

inline constexpr uint16_t kTpid8021Q = 0x8100;
inline constexpr uint16_t kTpid8021AD = 0x88a8;

inline constexpr uint8_t kIpProtoHopOpts = 0;
inline constexpr uint8_t kIpProtoRouting = 43;
inline constexpr uint8_t kIpProtoFragment = 44;
inline constexpr uint8_t kIpProtoAh = 51;
inline constexpr uint8_t kIpProtoNoNext = 59;
inline constexpr uint8_t kIpProtoDstOpts = 60;
inline constexpr uint8_t kIpProtoMobility = 135;

struct Ipv4Fields {
  std::vector<uint8_t> options{}; // padded with zeros (EOL) to a multiple of 4 bytes
  uint16_t fragOffset = 0;        // in 8-byte units
  bool moreFragments = false;
  uint8_t version = 4;
  std::optional<uint8_t> ihl{}; // header length in 4-byte words; default from the options
};

class PacketBuilder {
public:
  // Ethernet 02:00:00:00:00:01 -> 02:00:00:00:00:02.
  PacketBuilder &eth();
  // A VLAN tag (kTpid8021Q or kTpid8021AD) with this VLAN id.
  PacketBuilder &vlan(uint16_t tpid, uint16_t vid);
  PacketBuilder &ipv4(std::string_view src, std::string_view dst, const Ipv4Fields &f = {});
  PacketBuilder &ipv6(std::string_view src, std::string_view dst);
  // An IPv6 extension header of `bytes` bytes: hop-by-hop, routing, destination options or
  // mobility (a multiple of 8, at least 8), or AH (a multiple of 4, at least 8).
  PacketBuilder &ipv6Ext(uint8_t type, size_t bytes);
  // An IPv6 fragment header: offset in 8-byte units, M flag.
  PacketBuilder &ipv6Frag(uint16_t offset, bool more);
  PacketBuilder &tcp(uint16_t sport, uint16_t dport);
  PacketBuilder &udp(uint16_t sport, uint16_t dport);
  PacketBuilder &sctp(uint16_t sport, uint16_t dport);
  // An 8-byte header starting with the two ports (DCCP, UDP-Lite, ...).
  PacketBuilder &ports(uint8_t protocol, uint16_t sport, uint16_t dport);
  PacketBuilder &icmp(uint8_t type, uint8_t code);
  PacketBuilder &icmpv6(uint8_t type, uint8_t code);
  // ARP request 10.0.0.1 asking for 10.0.0.2.
  PacketBuilder &arp();
  // `n` bytes of a position-dependent pattern.
  PacketBuilder &payload(size_t n);
  // Payload up to a frame of exactly `total` bytes.
  PacketBuilder &padTo(size_t total);
  // Sets the next-protocol field (EtherType or IP protocol) of the last layer.
  PacketBuilder &next(uint16_t value);

  std::vector<uint8_t> build() const;
  // build() cut to its first n bytes (length fields still describe the whole packet).
  std::vector<uint8_t> truncated(size_t n) const;
  // Offset of layer i (in the order added) in the built frame.
  size_t offsetOf(size_t layer) const;
  size_t size() const;

private:
  enum class Kind { L2, Ip4, Ip6, Ext6, L4, Data };
  struct Layer {
    Kind kind;
    std::vector<uint8_t> bytes;
    uint16_t id = 0;                // EtherType (IP layers, ARP) or IP protocol (ext, L4)
    size_t nextAt = 0;              // offset of the next-protocol field in bytes
    std::optional<uint16_t> next{}; // explicit next protocol
  };
  PacketBuilder &add(Layer layer);
  std::vector<Layer> layers_;
};

} // namespace ringcap::test
