#include "history/FilterMatcher.h"

#include <cstring>

namespace ringcap {

namespace {

constexpr uint16_t kEthP8021Q = 0x8100, kEthP8021AD = 0x88A8, kEthPIp = 0x0800, kEthPIpv6 = 0x86DD;
constexpr uint8_t kHopOpts = 0, kTcp = 6, kUdp = 17, kRouting = 43, kFragment = 44, kDccp = 33,
                  kAh = 51, kDstOpts = 60, kSctp = 132, kMobility = 135, kUdpLite = 136;

uint16_t be16(const uint8_t *p) { return uint16_t(p[0] << 8 | p[1]); }

bool protoHasPorts(uint8_t p) {
  return p == kTcp || p == kUdp || p == kDccp || p == kSctp || p == kUdpLite;
}

bool isExtension(uint8_t h) {
  return h == kHopOpts || h == kRouting || h == kDstOpts || h == kMobility || h == kAh ||
         h == kFragment;
}

// parse_ports: `l4` is the offset of the transport header.
void parsePorts(ParsedPacket &m, std::span<const uint8_t> pkt, size_t l4) {
  if (!protoHasPorts(m.protocol))
    return;
  if (l4 + 4 > pkt.size()) {
    m.portsMissing = true;
    return;
  }
  std::memcpy(&m.srcPort, pkt.data() + l4, 2);
  std::memcpy(&m.dstPort, pkt.data() + l4 + 2, 2);
  m.hasPorts = true;
}

} // namespace

ParsedPacket parsePacket(std::span<const uint8_t> pkt) {
  ParsedPacket m;
  const size_t end = pkt.size();
  const uint8_t *d = pkt.data();
  if (end < 14)
    return m;
  uint16_t proto = be16(d + 12);
  size_t cur = 14;
  // Up to two tags: 802.1Q, 802.1ad (QinQ) in either combination.
  for (int i = 0; i < 2; i++) {
    if (proto != kEthP8021Q && proto != kEthP8021AD)
      break;
    if (cur + 4 > end)
      return m;
    proto = be16(d + cur + 2);
    cur += 4;
  }

  if (proto == kEthPIp) {
    if (cur + 20 > end)
      return m;
    const uint8_t *ip = d + cur;
    size_t ihl = size_t(ip[0] & 0x0F) * 4;
    if ((ip[0] >> 4) != 4 || ihl < 20)
      return m;
    if (cur + ihl > end)
      return m;
    m.family = RINGCAP_FAMILY_IPV4;
    m.protocol = ip[9];
    std::memcpy(m.srcAddr, ip + 12, 4);
    std::memcpy(m.dstAddr, ip + 16, 4);
    m.state = ParsedPacket::State::Ok;
    // Non-first fragments carry no transport header.
    if (be16(ip + 6) & 0x1FFF) {
      m.portsMissing = true;
      return m;
    }
    parsePorts(m, pkt, cur + ihl);
    return m;
  }

  if (proto == kEthPIpv6) {
    if (cur + 40 > end)
      return m;
    const uint8_t *ip6 = d + cur;
    if ((ip6[0] >> 4) != 6)
      return m;
    uint8_t next = ip6[6];
    cur += 40;
    auto setIp = [&](uint8_t protocol) {
      m.family = RINGCAP_FAMILY_IPV6;
      m.protocol = protocol;
      std::memcpy(m.srcAddr, ip6 + 8, 16);
      std::memcpy(m.dstAddr, ip6 + 24, 16);
      m.state = ParsedPacket::State::Ok;
    };
    for (int i = 0; i < RINGCAP_MAX_IPV6_EXT; i++) {
      if (next == kHopOpts || next == kRouting || next == kDstOpts || next == kMobility) {
        if (cur + 2 > end)
          return m;
        uint8_t len = d[cur + 1];
        next = d[cur];
        cur += (size_t(len) + 1) * 8;
      } else if (next == kAh) {
        if (cur + 2 > end)
          return m;
        uint8_t len = d[cur + 1];
        next = d[cur];
        cur += (size_t(len) + 2) * 4;
      } else if (next == kFragment) {
        if (cur + 8 > end)
          return m;
        next = d[cur];
        uint16_t fragOff = be16(d + cur + 2);
        cur += 8;
        if (fragOff & 0xFFF8) {
          // Non-first fragment: no transport header here.
          setIp(next);
          m.portsMissing = true;
          return m;
        }
      } else {
        break;
      }
    }
    // Still an extension header after the walk: the chain is too long.
    if (isExtension(next))
      return m;
    if (cur > end)
      return m;
    setIp(next);
    parsePorts(m, pkt, cur);
    return m;
  }

  m.state = ParsedPacket::State::NonIp;
  return m;
}

bool filterMatches(const ringcap_filter &f, const ParsedPacket &m) {
  const uint32_t fields = f.fields;
  if (!fields)
    return true;
  if (m.state != ParsedPacket::State::Ok)
    return false;
  if ((fields & (RINGCAP_F_SRC_ADDR | RINGCAP_F_DST_ADDR)) && f.family != m.family)
    return false;
  const size_t addrLen = m.family == RINGCAP_FAMILY_IPV4 ? 4 : 16;
  if ((fields & RINGCAP_F_SRC_ADDR) && std::memcmp(f.src_addr, m.srcAddr, addrLen) != 0)
    return false;
  if ((fields & RINGCAP_F_DST_ADDR) && std::memcmp(f.dst_addr, m.dstAddr, addrLen) != 0)
    return false;
  if ((fields & RINGCAP_F_PROTOCOL) && f.protocol != m.protocol)
    return false;
  if (fields & (RINGCAP_F_SRC_PORT | RINGCAP_F_DST_PORT)) {
    if (!m.hasPorts)
      return false;
    if ((fields & RINGCAP_F_SRC_PORT) && f.src_port != m.srcPort)
      return false;
    if ((fields & RINGCAP_F_DST_PORT) && f.dst_port != m.dstPort)
      return false;
  }
  return true;
}

bool matches(const FilterV1 &filter, std::span<const uint8_t> packet) {
  return FilterMatcher(filter)(packet);
}

} // namespace ringcap
