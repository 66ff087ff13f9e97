// The filter cases of the XDP program and of the userspace matcher: one table, so that the
// kernel filter (tests/bpf/CaptureProgramTest.cpp, FilterTable) and
// userspace/history/FilterMatcher (tests/unit/MatcherTest.cpp) can never disagree. Each row
// is a packet, a filter_v1, whether the packet matches, and what the parser makes of it.
#pragma once

#include "../bpf/PacketBuilder.h"
#include "request/FilterV1.h"
#include "request/IpAddress.h"

#include <cstdint>
#include <vector>

namespace ringcap::test::filter_cases {

namespace rt = ringcap::test;
using ringcap::test::PacketBuilder;

using Bytes = std::vector<uint8_t>;

inline constexpr const char *A4 = "10.0.0.1", *B4 = "10.0.0.2";
inline constexpr const char *A6 = "2001:db8::1", *B6 = "2001:db8::2";
inline constexpr uint16_t SP = 1234, DP = 53;
inline constexpr uint8_t TCP = 6, UDP = 17, SCTP = 132, ICMP = 1, ICMP6 = 58, DCCP = 33,
                         UDPLITE = 136;

inline PacketBuilder P() { return PacketBuilder(); }

// A filter_v1 by field; absent fields are unset.
struct Flt {
  const char *src = nullptr, *dst = nullptr;
  int sport = -1, dport = -1, proto = -1;
};

// The filter_v1 of a table row.
inline FilterV1 toFilterV1(const Flt &f) {
  FilterV1 v;
  if (f.src)
    v.source_address = IpAddress::parse(f.src).value();
  if (f.dst)
    v.destination_address = IpAddress::parse(f.dst).value();
  if (f.sport >= 0)
    v.source_port = uint16_t(f.sport);
  if (f.dport >= 0)
    v.destination_port = uint16_t(f.dport);
  if (f.proto >= 0)
    v.protocol = uint8_t(f.proto);
  return v;
}

// What the parser makes of a packet, and the global counter it bumps.
enum class Parsed {
  Ports,        // IP with transport ports
  NoPortProto,  // IP, a protocol without ports (ICMP, GRE): nothing counted
  PortsUnknown, // IP fragment or truncated transport header: no_ports
  NonIp,        // not IPv4/IPv6 after the tags: non_ip
  Malformed,    // truncated or invalid headers: malformed
};

struct FilterCase {
  const char *name;
  Bytes packet;
  Flt filter;
  bool hit;
  Parsed parsed;
};

inline constexpr bool Hit = true, Miss = false;
using enum Parsed;

inline std::vector<FilterCase> filterCases() {
  using rt::kIpProtoAh, rt::kIpProtoDstOpts, rt::kIpProtoHopOpts, rt::kIpProtoMobility,
      rt::kIpProtoRouting, rt::kTpid8021AD, rt::kTpid8021Q;
  // Ethernet / IPv4 10.0.0.1 -> 10.0.0.2 / UDP 1234 -> 53 / 32 bytes (74 bytes)
  Bytes v4udp = P().eth().ipv4(A4, B4).udp(SP, DP).payload(32).build();
  // Ethernet / IPv6 2001:db8::1 -> 2001:db8::2 / UDP 1234 -> 53 / 32 bytes (94 bytes)
  Bytes v6udp = P().eth().ipv6(A6, B6).udp(SP, DP).payload(32).build();
  // Ethernet / IPv6 a00:1:: -> a00:2:: / UDP: first 4 address bytes equal 10.0.0.1 / 10.0.0.2
  Bytes v6like4 = P().eth().ipv6("a00:1::", "a00:2::").udp(SP, DP).payload(8).build();
  // Ethernet / IPv4 / TCP 1234 -> 53 / 10 bytes
  Bytes v4tcp = P().eth().ipv4(A4, B4).tcp(SP, DP).payload(10).build();
  // Ethernet / IPv6 / TCP 1234 -> 53
  Bytes v6tcp = P().eth().ipv6(A6, B6).tcp(SP, DP).build();
  // Ethernet / IPv4 / SCTP 1234 -> 53 / 20 bytes
  Bytes v4sctp = P().eth().ipv4(A4, B4).sctp(SP, DP).payload(20).build();
  // Ethernet / IPv6 / SCTP 1234 -> 53
  Bytes v6sctp = P().eth().ipv6(A6, B6).sctp(SP, DP).build();
  // Ethernet / IPv4 / DCCP 1234 -> 53 (an 8-byte header)
  Bytes v4dccp = P().eth().ipv4(A4, B4).ports(DCCP, SP, DP).build();
  // Ethernet / IPv6 / UDP-Lite 1234 -> 53 (an 8-byte header)
  Bytes v6udplite = P().eth().ipv6(A6, B6).ports(UDPLITE, SP, DP).build();
  // Ethernet / IPv4 / ICMP echo request / 16 bytes
  Bytes v4icmp = P().eth().ipv4(A4, B4).icmp(8, 0).payload(16).build();
  // Ethernet / IPv6 / ICMPv6 echo request / 16 bytes
  Bytes v6icmp = P().eth().ipv6(A6, B6).icmpv6(128, 0).payload(16).build();
  // Ethernet / IPv4 / protocol 47 (GRE) whose first 4 bytes look like ports 1234 -> 53
  Bytes v4gre = P().eth().ipv4(A4, B4).ports(47, SP, DP).build();
  // Ethernet / 802.1Q 100 / IPv4 / UDP 1234 -> 53 / 8 bytes
  Bytes q4 = P().eth().vlan(kTpid8021Q, 100).ipv4(A4, B4).udp(SP, DP).payload(8).build();
  // Ethernet / 802.1ad 200 / IPv4 / UDP
  Bytes ad4 = P().eth().vlan(kTpid8021AD, 200).ipv4(A4, B4).udp(SP, DP).build();
  // Ethernet / 802.1ad 200 / 802.1Q 100 / IPv4 / UDP
  Bytes qinq4 =
      P().eth().vlan(kTpid8021AD, 200).vlan(kTpid8021Q, 100).ipv4(A4, B4).udp(SP, DP).build();
  // Ethernet / 802.1ad 200 / 802.1Q 100 / IPv6 / TCP
  Bytes qinq6 =
      P().eth().vlan(kTpid8021AD, 200).vlan(kTpid8021Q, 100).ipv6(A6, B6).tcp(SP, DP).build();
  // Ethernet / 802.1Q 1 / 802.1Q 2 / IPv6 / UDP
  Bytes qq6 = P().eth().vlan(kTpid8021Q, 1).vlan(kTpid8021Q, 2).ipv6(A6, B6).udp(SP, DP).build();
  // Ethernet / 802.1Q 1 / 802.1ad 2 / IPv4 / UDP (the tags in the unusual order)
  Bytes qad4 = P().eth().vlan(kTpid8021Q, 1).vlan(kTpid8021AD, 2).ipv4(A4, B4).udp(SP, DP).build();
  // Ethernet / three tags 802.1ad 10, 802.1Q 20, 802.1Q 30 / IPv4 / UDP 1234 -> 53
  Bytes tags3 = P().eth()
                    .vlan(kTpid8021AD, 10)
                    .vlan(kTpid8021Q, 20)
                    .vlan(kTpid8021Q, 30)
                    .ipv4(A4, B4)
                    .udp(SP, DP)
                    .payload(8)
                    .build();
  // Ethernet / 802.1Q 5 / ARP
  Bytes qarp = P().eth().vlan(kTpid8021Q, 5).arp().build();
  // Ethernet / IPv4 + 4 bytes of options (NOP NOP NOP EOL: ihl 6) / UDP / 4 bytes
  Bytes opt6 = P().eth().ipv4(A4, B4, {.options = {1, 1, 1, 0}}).udp(SP, DP).payload(4).build();
  // Ethernet / IPv4 + 40 bytes of options (record route: ihl 15) / TCP
  Bytes opt15 = P().eth().ipv4(A4, B4, {.options = {7, 39, 4}}).tcp(SP, DP).build();
  // Ethernet / 802.1Q / IPv4 + 8 bytes of options (ihl 7) / SCTP
  Bytes qopt7 = P().eth()
                    .vlan(kTpid8021Q, 7)
                    .ipv4(A4, B4, {.options = {1, 1, 1, 1, 1, 1, 1, 0}})
                    .sctp(SP, DP)
                    .build();
  // Ethernet / IPv4 with ihl 4 (below the minimum) / UDP
  Bytes ihl4 = P().eth().ipv4(A4, B4, {.ihl = 4}).udp(SP, DP).build();
  // Ethernet / IPv4 header claiming ihl 6, protocol UDP, the frame ends after 20 bytes
  Bytes ihl6cut = P().eth().ipv4(A4, B4, {.ihl = 6}).next(UDP).build();
  // Ethernet / IPv4 header with version 6 / UDP
  Bytes ver6 = P().eth().ipv4(A4, B4, {.version = 6}).udp(SP, DP).build();
  // Ethernet with EtherType IPv6 / an IPv4 header (version 4) / UDP / 32 bytes
  Bytes ver4in6 = P().eth().next(0x86dd).ipv4(A4, B4).udp(SP, DP).payload(32).build();
  // Ethernet / IPv6 / hop-by-hop (8 bytes) / UDP
  Bytes hbh = P().eth().ipv6(A6, B6).ipv6Ext(kIpProtoHopOpts, 8).udp(SP, DP).build();
  // Ethernet / IPv6 / routing (24 bytes) / TCP
  Bytes rth = P().eth().ipv6(A6, B6).ipv6Ext(kIpProtoRouting, 24).tcp(SP, DP).build();
  // Ethernet / IPv6 / destination options (16 bytes) / SCTP
  Bytes dst = P().eth().ipv6(A6, B6).ipv6Ext(kIpProtoDstOpts, 16).sctp(SP, DP).build();
  // Ethernet / IPv6 / mobility (8 bytes) / UDP
  Bytes mob = P().eth().ipv6(A6, B6).ipv6Ext(kIpProtoMobility, 8).udp(SP, DP).build();
  // Ethernet / IPv6 / AH (24 bytes, payload length 4) / UDP
  Bytes ah24 = P().eth().ipv6(A6, B6).ipv6Ext(kIpProtoAh, 24).udp(SP, DP).build();
  // Ethernet / IPv6 / AH (12 bytes, payload length 1) / TCP
  Bytes ah12 = P().eth().ipv6(A6, B6).ipv6Ext(kIpProtoAh, 12).tcp(SP, DP).build();
  // Ethernet / IPv6 / 8 extension headers (HBH, DstOpts, Routing, Frag(0, M), AH(12),
  // Mobility, DstOpts, Routing) / UDP 1234 -> 53 / 8 bytes
  Bytes ext8 = P().eth()
                   .ipv6(A6, B6)
                   .ipv6Ext(kIpProtoHopOpts, 8)
                   .ipv6Ext(kIpProtoDstOpts, 16)
                   .ipv6Ext(kIpProtoRouting, 24)
                   .ipv6Frag(0, true)
                   .ipv6Ext(kIpProtoAh, 12)
                   .ipv6Ext(kIpProtoMobility, 8)
                   .ipv6Ext(kIpProtoDstOpts, 8)
                   .ipv6Ext(kIpProtoRouting, 8)
                   .udp(SP, DP)
                   .payload(8)
                   .build();
  // Ethernet / IPv6 / 9 extension headers (HBH, then 4 x (DstOpts, Routing)) / UDP / 8 bytes
  PacketBuilder nine = P().eth().ipv6(A6, B6).ipv6Ext(kIpProtoHopOpts, 8);
  for (int i = 0; i < 4; i++)
    nine.ipv6Ext(kIpProtoDstOpts, 8).ipv6Ext(kIpProtoRouting, 16);
  Bytes ext9 = nine.udp(SP, DP).payload(8).build();
  // Ethernet / IPv6 / hop-by-hop / ICMPv6 (MLDv2 report) / 20 bytes
  Bytes hbhIcmp =
      P().eth().ipv6(A6, B6).ipv6Ext(kIpProtoHopOpts, 8).icmpv6(143, 0).payload(20).build();
  // Ethernet / IPv6 / hop-by-hop with next header 59 (none) / 8 bytes
  Bytes hbhNone = P().eth().ipv6(A6, B6).ipv6Ext(kIpProtoHopOpts, 8).payload(8).build();
  // Ethernet / IPv6 / hop-by-hop declaring 16 bytes / UDP, cut after 8 bytes of the HBH
  Bytes hbhCut = P().eth().ipv6(A6, B6).ipv6Ext(kIpProtoHopOpts, 16).udp(SP, DP).truncated(62);
  // Ethernet / IPv4 first fragment (offset 0, MF) / UDP 1234 -> 53 / 64 bytes
  Bytes v4first = P().eth().ipv4(A4, B4, {.moreFragments = true}).udp(SP, DP).payload(64).build();
  // Ethernet / IPv4 non-first fragment (offset 185 * 8, MF), protocol UDP / 64 bytes
  Bytes v4frag = P().eth()
                     .ipv4(A4, B4, {.fragOffset = 185, .moreFragments = true})
                     .next(UDP)
                     .payload(64)
                     .build();
  // Ethernet / IPv4 last fragment (offset 8 * 8) / bytes that look like UDP 1234 -> 53
  Bytes v4last = P().eth().ipv4(A4, B4, {.fragOffset = 8}).udp(SP, DP).payload(8).build();
  // Ethernet / IPv6 / fragment (offset 0, M) / UDP 1234 -> 53 / 32 bytes
  Bytes v6first = P().eth().ipv6(A6, B6).ipv6Frag(0, true).udp(SP, DP).payload(32).build();
  // Ethernet / IPv6 / fragment (offset 0, last: an atomic fragment) / UDP 1234 -> 53
  Bytes v6atomic = P().eth().ipv6(A6, B6).ipv6Frag(0, false).udp(SP, DP).build();
  // Ethernet / IPv6 / fragment (offset 185 * 8, last) / bytes that look like UDP 1234 -> 53
  Bytes v6frag = P().eth().ipv6(A6, B6).ipv6Frag(185, false).udp(SP, DP).payload(16).build();
  // Ethernet / IPv6 / hop-by-hop / fragment (offset 100 * 8, M) / TCP look-alike
  Bytes hbhFrag =
      P().eth().ipv6(A6, B6).ipv6Ext(kIpProtoHopOpts, 8).ipv6Frag(100, true).tcp(SP, DP).build();
  // Ethernet / IPv4 / UDP cut after 3 bytes (37 bytes): ports incomplete
  Bytes udpCut3 = P().eth().ipv4(A4, B4).udp(SP, DP).truncated(37);
  // Ethernet / IPv4 / UDP cut after 4 bytes (38 bytes): ports complete
  Bytes udpCut4 = P().eth().ipv4(A4, B4).udp(SP, DP).truncated(38);
  // Ethernet / IPv4 header cut after 19 bytes (33 bytes)
  Bytes ipCut = P().eth().ipv4(A4, B4).udp(SP, DP).truncated(33);
  // Ethernet / IPv6 / TCP with none of the TCP header (54 bytes)
  Bytes tcpCut0 = P().eth().ipv6(A6, B6).tcp(SP, DP).truncated(54);
  // Ethernet / ARP request 10.0.0.1 -> 10.0.0.2 (42 bytes)
  Bytes arp = P().eth().arp().build();
  // Ethernet with an 802.3 length (46) instead of an EtherType / 46 bytes of LLC data
  Bytes llc = P().eth().next(46).payload(46).build();
  // Ethernet header alone (14 bytes) with EtherType IPv4, IPv6, 802.1Q, ARP
  Bytes min4 = P().eth().next(0x0800).build(), min6 = P().eth().next(0x86dd).build();
  Bytes minQ = P().eth().next(0x8100).build(), minArp = P().eth().next(0x0806).build();

  const Flt v4five{A4, B4, SP, DP, UDP}, v6five{A6, B6, SP, DP, UDP};
  return {
      // IPv4 / UDP: every field hitting and missing.
      {"v4 udp, empty filter", v4udp, {}, Hit, Ports},
      {"v4 udp, src addr", v4udp, {.src = A4}, Hit, Ports},
      {"v4 udp, src addr other", v4udp, {.src = "10.0.0.3"}, Miss, Ports},
      {"v4 udp, src addr = packet dst", v4udp, {.src = B4}, Miss, Ports},
      {"v4 udp, dst addr", v4udp, {.dst = B4}, Hit, Ports},
      {"v4 udp, dst addr other", v4udp, {.dst = "10.0.1.2"}, Miss, Ports},
      {"v4 udp, src port", v4udp, {.sport = SP}, Hit, Ports},
      {"v4 udp, src port = packet dst port", v4udp, {.sport = DP}, Miss, Ports},
      {"v4 udp, src port 0", v4udp, {.sport = 0}, Miss, Ports},
      {"v4 udp, dst port", v4udp, {.dport = DP}, Hit, Ports},
      {"v4 udp, dst port other", v4udp, {.dport = DP + 256}, Miss, Ports},
      {"v4 udp, protocol", v4udp, {.proto = UDP}, Hit, Ports},
      {"v4 udp, protocol tcp", v4udp, {.proto = TCP}, Miss, Ports},
      {"v4 udp, 5-tuple", v4udp, v4five, Hit, Ports},
      {"v4 udp, 5-tuple, dst port off", v4udp, {A4, B4, SP, DP + 1, UDP}, Miss, Ports},
      {"v4 udp, IPv6 src addr filter", v4udp, {.src = A6}, Miss, Ports},
      {"v4 udp, IPv4-mapped IPv6 filter", v4udp, {.src = "::ffff:10.0.0.1"}, Miss, Ports},
      // IPv6 / UDP: every field, each 32-bit word of the address.
      {"v6 udp, empty filter", v6udp, {}, Hit, Ports},
      {"v6 udp, src addr", v6udp, {.src = A6}, Hit, Ports},
      {"v6 udp, src addr word 0 off", v6udp, {.src = "2001:db9::1"}, Miss, Ports},
      {"v6 udp, src addr word 1 off", v6udp, {.src = "2001:db8:0:1::1"}, Miss, Ports},
      {"v6 udp, src addr word 2 off", v6udp, {.src = "2001:db8::1:0:0:1"}, Miss, Ports},
      {"v6 udp, src addr word 3 off", v6udp, {.src = "2001:db8::3"}, Miss, Ports},
      {"v6 udp, dst addr", v6udp, {.dst = B6}, Hit, Ports},
      {"v6 udp, dst addr = packet src", v6udp, {.dst = A6}, Miss, Ports},
      {"v6 udp, src port", v6udp, {.sport = SP}, Hit, Ports},
      {"v6 udp, src port other", v6udp, {.sport = SP + 1}, Miss, Ports},
      {"v6 udp, dst port", v6udp, {.dport = DP}, Hit, Ports},
      {"v6 udp, dst port other", v6udp, {.dport = SP}, Miss, Ports},
      {"v6 udp, protocol", v6udp, {.proto = UDP}, Hit, Ports},
      {"v6 udp, protocol icmpv6", v6udp, {.proto = ICMP6}, Miss, Ports},
      {"v6 udp, 5-tuple", v6udp, v6five, Hit, Ports},
      {"v6 udp, IPv4 src addr filter", v6udp, {.src = A4}, Miss, Ports},
      {"v6 a00:1::, IPv4 src filter 10.0.0.1", v6like4, {.src = A4}, Miss, Ports},
      {"v6 a00:1::, IPv4 dst filter 10.0.0.2", v6like4, {.dst = B4}, Miss, Ports},
      {"v6 a00:1::, IPv6 src filter a00:1::", v6like4, {.src = "a00:1::"}, Hit, Ports},
      // Other transports.
      {"v4 tcp, 5-tuple", v4tcp, {A4, B4, SP, DP, TCP}, Hit, Ports},
      {"v6 tcp, 5-tuple", v6tcp, {A6, B6, SP, DP, TCP}, Hit, Ports},
      {"v4 sctp, 5-tuple", v4sctp, {A4, B4, SP, DP, SCTP}, Hit, Ports},
      {"v6 sctp, 5-tuple", v6sctp, {A6, B6, SP, DP, SCTP}, Hit, Ports},
      {"v4 dccp, ports", v4dccp, {.sport = SP, .dport = DP, .proto = DCCP}, Hit, Ports},
      {"v6 udplite, ports", v6udplite, {.sport = SP, .dport = DP, .proto = UDPLITE}, Hit, Ports},
      {"v4 icmp, addresses + protocol", v4icmp, {A4, B4, -1, -1, ICMP}, Hit, NoPortProto},
      {"v4 icmp, src port", v4icmp, {.sport = 2048}, Miss, NoPortProto},
      {"v6 icmpv6, protocol", v6icmp, {.proto = ICMP6}, Hit, NoPortProto},
      {"v6 icmpv6, dst port", v6icmp, {.dport = 0}, Miss, NoPortProto},
      {"v4 gre, protocol", v4gre, {.proto = 47}, Hit, NoPortProto},
      {"v4 gre, ports look-alike", v4gre, {.sport = SP}, Miss, NoPortProto},
      // VLAN and QinQ.
      {"802.1Q v4 udp, 5-tuple", q4, v4five, Hit, Ports},
      {"802.1Q v4 udp, protocol tcp", q4, {.proto = TCP}, Miss, Ports},
      {"802.1ad v4 udp, 5-tuple", ad4, v4five, Hit, Ports},
      {"QinQ v4 udp, 5-tuple", qinq4, v4five, Hit, Ports},
      {"QinQ v4 udp, dst addr other", qinq4, {.dst = "10.0.0.3"}, Miss, Ports},
      {"QinQ v6 tcp, 5-tuple", qinq6, {A6, B6, SP, DP, TCP}, Hit, Ports},
      {"802.1Q 802.1Q v6 udp, 5-tuple", qq6, v6five, Hit, Ports},
      {"802.1Q 802.1ad v4 udp, 5-tuple", qad4, v4five, Hit, Ports},
      {"three tags, empty filter", tags3, {}, Hit, NonIp},
      {"three tags, 5-tuple", tags3, v4five, Miss, NonIp},
      {"802.1Q arp, empty filter", qarp, {}, Hit, NonIp},
      {"802.1Q arp, src addr", qarp, {.src = A4}, Miss, NonIp},
      // IPv4 options and invalid IPv4 headers.
      {"v4 options ihl 6, 5-tuple", opt6, v4five, Hit, Ports},
      {"v4 options ihl 15, 5-tuple", opt15, {A4, B4, SP, DP, TCP}, Hit, Ports},
      {"802.1Q v4 options ihl 7, 5-tuple", qopt7, {A4, B4, SP, DP, SCTP}, Hit, Ports},
      {"v4 ihl 4, empty filter", ihl4, {}, Hit, Malformed},
      {"v4 ihl 4, protocol", ihl4, {.proto = UDP}, Miss, Malformed},
      {"v4 ihl 6 options cut, empty filter", ihl6cut, {}, Hit, Malformed},
      {"v4 ihl 6 options cut, protocol", ihl6cut, {.proto = UDP}, Miss, Malformed},
      {"v4 version 6, empty filter", ver6, {}, Hit, Malformed},
      {"v4 version 6, src addr", ver6, {.src = A4}, Miss, Malformed},
      {"v6 EtherType, version 4, protocol", ver4in6, {.proto = UDP}, Miss, Malformed},
      // IPv6 extension headers.
      {"v6 hbh udp, 5-tuple", hbh, v6five, Hit, Ports},
      {"v6 hbh udp, protocol hbh", hbh, {.proto = kIpProtoHopOpts}, Miss, Ports},
      {"v6 routing tcp, 5-tuple", rth, {A6, B6, SP, DP, TCP}, Hit, Ports},
      {"v6 dstopts sctp, 5-tuple", dst, {A6, B6, SP, DP, SCTP}, Hit, Ports},
      {"v6 mobility udp, 5-tuple", mob, v6five, Hit, Ports},
      {"v6 ah24 udp, 5-tuple", ah24, v6five, Hit, Ports},
      {"v6 ah12 tcp, 5-tuple", ah12, {A6, B6, SP, DP, TCP}, Hit, Ports},
      {"v6 ah12 tcp, protocol ah", ah12, {.proto = kIpProtoAh}, Miss, Ports},
      {"v6 8 ext headers, 5-tuple", ext8, v6five, Hit, Ports},
      {"v6 9 ext headers, empty filter", ext9, {}, Hit, Malformed},
      {"v6 9 ext headers, src addr", ext9, {.src = A6}, Miss, Malformed},
      {"v6 hbh icmpv6, protocol", hbhIcmp, {.proto = ICMP6}, Hit, NoPortProto},
      {"v6 hbh no next header, protocol 59", hbhNone, {.proto = 59}, Hit, NoPortProto},
      {"v6 hbh cut, empty filter", hbhCut, {}, Hit, Malformed},
      {"v6 hbh cut, dst addr", hbhCut, {.dst = B6}, Miss, Malformed},
      // Fragments: the first has ports, the others only addresses and protocol.
      {"v4 first fragment, 5-tuple", v4first, v4five, Hit, Ports},
      {"v4 non-first fragment, empty filter", v4frag, {}, Hit, PortsUnknown},
      {"v4 non-first fragment, addrs + protocol", v4frag, {A4, B4, -1, -1, UDP}, Hit, PortsUnknown},
      {"v4 non-first fragment, protocol tcp", v4frag, {.proto = TCP}, Miss, PortsUnknown},
      {"v4 non-first fragment, dst port", v4frag, {.dport = DP}, Miss, PortsUnknown},
      {"v4 last fragment, src port look-alike", v4last, {.sport = SP}, Miss, PortsUnknown},
      {"v4 last fragment, protocol", v4last, {.proto = UDP}, Hit, PortsUnknown},
      {"v6 first fragment, 5-tuple", v6first, v6five, Hit, Ports},
      {"v6 atomic fragment, 5-tuple", v6atomic, v6five, Hit, Ports},
      {"v6 non-first fragment, addrs + protocol", v6frag, {A6, B6, -1, -1, UDP}, Hit, PortsUnknown},
      {"v6 non-first fragment, protocol tcp", v6frag, {.proto = TCP}, Miss, PortsUnknown},
      {"v6 non-first fragment, src port", v6frag, {.sport = SP}, Miss, PortsUnknown},
      {"v6 non-first fragment, 5-tuple", v6frag, v6five, Miss, PortsUnknown},
      {"v6 hbh non-first frag, dst + proto", hbhFrag, {.dst = B6, .proto = TCP}, Hit, PortsUnknown},
      // Truncated headers.
      {"v4 udp cut in ports, src + proto", udpCut3, {.src = A4, .proto = UDP}, Hit, PortsUnknown},
      {"v4 udp cut in ports, src port", udpCut3, {.sport = SP}, Miss, PortsUnknown},
      {"v4 udp cut after ports, 5-tuple", udpCut4, v4five, Hit, Ports},
      {"v4 header cut, empty filter", ipCut, {}, Hit, Malformed},
      {"v4 header cut, protocol", ipCut, {.proto = UDP}, Miss, Malformed},
      {"v6 tcp cut at transport, dst addr", tcpCut0, {.dst = B6}, Hit, PortsUnknown},
      {"v6 tcp cut at transport, dst port", tcpCut0, {.dport = DP}, Miss, PortsUnknown},
      // Non-IP and minimum frames.
      {"arp, empty filter", arp, {}, Hit, NonIp},
      {"arp, src addr", arp, {.src = A4}, Miss, NonIp},
      {"arp, protocol 0", arp, {.proto = 0}, Miss, NonIp},
      {"802.3 llc, empty filter", llc, {}, Hit, NonIp},
      {"802.3 llc, dst port", llc, {.dport = DP}, Miss, NonIp},
      {"14 bytes IPv4, empty filter", min4, {}, Hit, Malformed},
      {"14 bytes IPv4, protocol 0", min4, {.proto = 0}, Miss, Malformed},
      {"14 bytes IPv6, empty filter", min6, {}, Hit, Malformed},
      {"14 bytes IPv6, src addr", min6, {.src = A6}, Miss, Malformed},
      {"14 bytes 802.1Q, empty filter", minQ, {}, Hit, Malformed},
      {"14 bytes 802.1Q, src addr", minQ, {.src = A4}, Miss, Malformed},
      {"14 bytes ARP, empty filter", minArp, {}, Hit, NonIp},
      {"14 bytes ARP, protocol 0", minArp, {.proto = 0}, Miss, NonIp},
  };
}

} // namespace ringcap::test::filter_cases
