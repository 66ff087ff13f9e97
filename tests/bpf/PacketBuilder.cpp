#include "PacketBuilder.h"

#include <arpa/inet.h>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ringcap::test {
namespace {

void put16(std::vector<uint8_t> &b, size_t at, uint16_t v) {
  b[at] = uint8_t(v >> 8);
  b[at + 1] = uint8_t(v);
}

template <size_t N> void putAddr(std::vector<uint8_t> &b, size_t at, std::string_view text) {
  uint8_t addr[N];
  std::string s(text);
  if (inet_pton(N == 4 ? AF_INET : AF_INET6, s.c_str(), addr) != 1)
    throw std::invalid_argument("bad address " + s);
  std::memcpy(b.data() + at, addr, N);
}

uint16_t ipChecksum(const uint8_t *p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2)
    sum += uint32_t(p[i]) << 8 | p[i + 1];
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

} // namespace

PacketBuilder &PacketBuilder::add(Layer layer) {
  layers_.push_back(std::move(layer));
  return *this;
}

PacketBuilder &PacketBuilder::eth() {
  std::vector<uint8_t> b{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0, 0};
  return add({Kind::L2, std::move(b), 0, 12});
}

PacketBuilder &PacketBuilder::vlan(uint16_t tpid, uint16_t vid) {
  std::vector<uint8_t> b(4, 0);
  put16(b, 0, vid & 0x0fff);
  return add({Kind::L2, std::move(b), tpid, 2});
}

PacketBuilder &PacketBuilder::ipv4(std::string_view src, std::string_view dst,
                                   const Ipv4Fields &f) {
  size_t optLen = (f.options.size() + 3) / 4 * 4;
  std::vector<uint8_t> b(20 + optLen, 0);
  uint8_t ihl = f.ihl.value_or(uint8_t((20 + optLen) / 4));
  b[0] = uint8_t(f.version << 4 | (ihl & 0xf));
  put16(b, 4, 0x1234);
  put16(b, 6, uint16_t((f.moreFragments ? 0x2000 : 0) | (f.fragOffset & 0x1fff)));
  b[8] = 64;
  putAddr<4>(b, 12, src);
  putAddr<4>(b, 16, dst);
  std::copy(f.options.begin(), f.options.end(), b.begin() + 20);
  return add({Kind::Ip4, std::move(b), 0x0800, 9});
}

PacketBuilder &PacketBuilder::ipv6(std::string_view src, std::string_view dst) {
  std::vector<uint8_t> b(40, 0);
  b[0] = 0x60;
  b[7] = 64;
  putAddr<16>(b, 8, src);
  putAddr<16>(b, 24, dst);
  return add({Kind::Ip6, std::move(b), 0x86dd, 6});
}

PacketBuilder &PacketBuilder::ipv6Ext(uint8_t type, size_t bytes) {
  std::vector<uint8_t> b(bytes, 0);
  if (type == kIpProtoAh) {
    if (bytes < 8 || bytes % 4)
      throw std::invalid_argument("AH length must be a multiple of 4, at least 8");
    b[1] = uint8_t(bytes / 4 - 2);
    b[7] = 1; // SPI
  } else {
    if (bytes < 8 || bytes % 8)
      throw std::invalid_argument("extension header length must be a multiple of 8");
    b[1] = uint8_t(bytes / 8 - 1);
    if (type == kIpProtoHopOpts || type == kIpProtoDstOpts) {
      b[2] = 1; // PadN over the rest of the header
      b[3] = uint8_t(bytes - 4);
    } else if (type == kIpProtoRouting) {
      b[2] = 4; // segment routing, segments left 0
    }
  }
  return add({Kind::Ext6, std::move(b), type, 0});
}

PacketBuilder &PacketBuilder::ipv6Frag(uint16_t offset, bool more) {
  std::vector<uint8_t> b(8, 0);
  put16(b, 2, uint16_t(offset << 3 | (more ? 1 : 0)));
  b[7] = 0x42; // identification
  return add({Kind::Ext6, std::move(b), kIpProtoFragment, 0});
}

PacketBuilder &PacketBuilder::tcp(uint16_t sport, uint16_t dport) {
  std::vector<uint8_t> b(20, 0);
  put16(b, 0, sport);
  put16(b, 2, dport);
  b[7] = 1;     // sequence number
  b[12] = 0x50; // data offset 5
  b[13] = 0x10; // ACK
  put16(b, 14, 65535);
  return add({Kind::L4, std::move(b), 6, 0});
}

PacketBuilder &PacketBuilder::udp(uint16_t sport, uint16_t dport) {
  std::vector<uint8_t> b(8, 0);
  put16(b, 0, sport);
  put16(b, 2, dport);
  return add({Kind::L4, std::move(b), 17, 0});
}

PacketBuilder &PacketBuilder::sctp(uint16_t sport, uint16_t dport) {
  std::vector<uint8_t> b(12, 0);
  put16(b, 0, sport);
  put16(b, 2, dport);
  b[7] = 7; // verification tag
  return add({Kind::L4, std::move(b), 132, 0});
}

PacketBuilder &PacketBuilder::ports(uint8_t protocol, uint16_t sport, uint16_t dport) {
  std::vector<uint8_t> b(8, 0);
  put16(b, 0, sport);
  put16(b, 2, dport);
  return add({Kind::L4, std::move(b), protocol, 0});
}

PacketBuilder &PacketBuilder::icmp(uint8_t type, uint8_t code) {
  std::vector<uint8_t> b{type, code, 0, 0, 0x12, 0x34, 0, 1};
  return add({Kind::L4, std::move(b), 1, 0});
}

PacketBuilder &PacketBuilder::icmpv6(uint8_t type, uint8_t code) {
  std::vector<uint8_t> b{type, code, 0, 0, 0x12, 0x34, 0, 1};
  return add({Kind::L4, std::move(b), 58, 0});
}

PacketBuilder &PacketBuilder::arp() {
  std::vector<uint8_t> b{0,  1, 8, 0, 6, 4, 0, 1, 2, 0, 0,  0, 0, 1,
                         10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2};
  return add({Kind::Data, std::move(b), 0x0806, 0});
}

PacketBuilder &PacketBuilder::payload(size_t n) {
  std::vector<uint8_t> b(n);
  size_t start = size();
  for (size_t i = 0; i < n; i++)
    b[i] = uint8_t(uint32_t(start + i) * 2654435761u >> 24);
  return add({Kind::Data, std::move(b), 0, 0});
}

PacketBuilder &PacketBuilder::padTo(size_t total) {
  size_t now = size();
  if (total < now)
    throw std::invalid_argument("padTo below the headers' size");
  return payload(total - now);
}

PacketBuilder &PacketBuilder::next(uint16_t value) {
  if (layers_.empty())
    throw std::logic_error("next() before any layer");
  layers_.back().next = value;
  return *this;
}

size_t PacketBuilder::size() const {
  size_t n = 0;
  for (const auto &l : layers_)
    n += l.bytes.size();
  return n;
}

size_t PacketBuilder::offsetOf(size_t layer) const {
  size_t n = 0;
  for (size_t i = 0; i < layer && i < layers_.size(); i++)
    n += layers_[i].bytes.size();
  return n;
}

std::vector<uint8_t> PacketBuilder::build() const {
  std::vector<uint8_t> out;
  out.reserve(size());
  for (size_t i = 0; i < layers_.size(); i++) {
    const Layer &l = layers_[i];
    size_t off = out.size();
    out.insert(out.end(), l.bytes.begin(), l.bytes.end());
    bool l2 = l.kind == Kind::L2;
    if (l.kind == Kind::L4 || l.kind == Kind::Data)
      continue;
    uint16_t next = l2 ? 0 : kIpProtoNoNext;
    if (i + 1 < layers_.size() && layers_[i + 1].id)
      next = layers_[i + 1].id;
    if (i + 1 < layers_.size() && !l2 && layers_[i + 1].kind == Kind::Ext6)
      next = layers_[i + 1].id; // hop-by-hop options is 0
    next = l.next.value_or(next);
    if (l2)
      put16(out, off + l.nextAt, next);
    else
      out[off + l.nextAt] = uint8_t(next);
  }
  size_t off = 0;
  for (const auto &l : layers_) {
    size_t rest = out.size() - off;
    if (l.kind == Kind::Ip4) {
      put16(out, off + 2, uint16_t(rest));
      put16(out, off + 10, ipChecksum(out.data() + off, l.bytes.size()));
    } else if (l.kind == Kind::Ip6) {
      put16(out, off + 4, uint16_t(rest - 40));
    } else if (l.kind == Kind::L4 && l.id == 17) {
      put16(out, off + 4, uint16_t(rest));
    }
    off += l.bytes.size();
  }
  return out;
}

std::vector<uint8_t> PacketBuilder::truncated(size_t n) const {
  auto out = build();
  if (n > out.size())
    throw std::invalid_argument("truncated() beyond the frame");
  out.resize(n);
  return out;
}

} // namespace ringcap::test
