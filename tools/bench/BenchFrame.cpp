#include "bench/BenchFrame.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ringcap::bench {

namespace {

uint16_t ipChecksum(const void *data, size_t len) {
  const auto *p = static_cast<const uint8_t *>(data);
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2)
    sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<uint16_t>(~sum));
}

} // namespace

std::vector<uint8_t> buildUdpFrame(const FrameSpec &spec, uint16_t dstPort) {
  std::vector<uint8_t> f(std::max(spec.size, kMinFrameSize), 0);
  ethhdr eth{};
  std::memcpy(eth.h_dest, spec.dstMac.data(), ETH_ALEN);
  std::memcpy(eth.h_source, spec.srcMac.data(), ETH_ALEN);
  eth.h_proto = htons(ETH_P_IP);
  std::memcpy(f.data(), &eth, sizeof(eth));
  auto *ip = reinterpret_cast<iphdr *>(f.data() + sizeof(ethhdr));
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons(static_cast<uint16_t>(f.size() - sizeof(ethhdr)));
  ip->saddr = spec.srcAddr;
  ip->daddr = spec.dstAddr;
  ip->check = ipChecksum(ip, sizeof(iphdr));
  auto *udp = reinterpret_cast<udphdr *>(f.data() + sizeof(ethhdr) + sizeof(iphdr));
  udp->source = htons(spec.srcPort);
  udp->dest = htons(dstPort);
  udp->len = htons(static_cast<uint16_t>(f.size() - sizeof(ethhdr) - sizeof(iphdr)));
  // A recognisable payload: the byte's offset modulo 251.
  for (size_t i = sizeof(ethhdr) + sizeof(iphdr) + sizeof(udphdr); i < f.size(); i++)
    f[i] = static_cast<uint8_t>(i % 251);
  return f;
}

Result<MacAddress> parseMac(const std::string &text) {
  MacAddress m{};
  unsigned b[6];
  char tail;
  if (std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                  &tail) != 6)
    return Error{EINVAL, "not a MAC address: \"" + text + "\""};
  for (int i = 0; i < 6; i++) {
    if (b[i] > 0xff)
      return Error{EINVAL, "not a MAC address: \"" + text + "\""};
    m[static_cast<size_t>(i)] = static_cast<uint8_t>(b[i]);
  }
  return m;
}

Result<uint32_t> parseIpv4(const std::string &text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1)
    return Error{EINVAL, "not an IPv4 address: \"" + text + "\""};
  return a.s_addr;
}

Result<MacAddress> interfaceMac(const std::string &ifname) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return Error::fromErrno(errno, "socket");
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname.c_str());
  int rc = ioctl(fd, SIOCGIFHWADDR, &ifr);
  int err = errno;
  close(fd);
  if (rc < 0)
    return Error::fromErrno(err, "reading the hardware address of " + ifname);
  MacAddress m{};
  std::memcpy(m.data(), ifr.ifr_hwaddr.sa_data, m.size());
  return m;
}

} // namespace ringcap::bench
