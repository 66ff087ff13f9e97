// LinkMonitor: a NETLINK_ROUTE socket subscribed to link changes (RTMGRP_LINK), for the
// event loop: it becomes readable when an interface is created, deleted, renamed or changes
// state. ringcapd then compares its attachments with the interfaces that exist.
#pragma once

#include "util/Result.h"

#include <memory>

namespace ringcap {

class LinkMonitor {
public:
  static Result<std::unique_ptr<LinkMonitor>> open();
  ~LinkMonitor();
  LinkMonitor(const LinkMonitor &) = delete;
  LinkMonitor &operator=(const LinkMonitor &) = delete;

  int fd() const { return fd_; }
  // Reads every waiting message; true if a link was created, deleted or changed (or
  // messages were lost, ENOBUFS: then the caller must look at every link anyway).
  bool drain();

private:
  LinkMonitor() = default;
  int fd_ = -1;
};

} // namespace ringcap
