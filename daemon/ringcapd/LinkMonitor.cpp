#include "LinkMonitor.h"

#include <cerrno>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ringcap {

Result<std::unique_ptr<LinkMonitor>> LinkMonitor::open() {
  std::unique_ptr<LinkMonitor> m(new LinkMonitor());
  m->fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (m->fd_ < 0)
    return Error::fromErrno(errno, "opening a netlink socket for link changes");
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_LINK;
  if (bind(m->fd_, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0)
    return Error::fromErrno(errno, "subscribing to link changes (RTMGRP_LINK)");
  return m;
}

LinkMonitor::~LinkMonitor() {
  if (fd_ >= 0)
    close(fd_);
}

bool LinkMonitor::drain() {
  bool changed = false;
  alignas(nlmsghdr) char buf[16384];
  for (;;) {
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == ENOBUFS) { // the socket overflowed: messages were lost
        changed = true;
        continue;
      }
      if (errno == EINTR)
        continue;
      return changed; // EAGAIN: nothing more
    }
    int len = static_cast<int>(n);
    for (auto *h = reinterpret_cast<nlmsghdr *>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len))
      if (h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK)
        changed = true;
  }
}

} // namespace ringcap
