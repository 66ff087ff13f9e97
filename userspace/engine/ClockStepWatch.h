// Tells when CLOCK_REALTIME was set (settimeofday, clock_settime, an NTP step): a timerfd
// armed on the real-time clock with TFD_TIMER_CANCEL_ON_SET becomes readable then. The
// ring's boot-time stamps are converted with an offset that such a step invalidates.
#pragma once

#include "util/Result.h"

#include <memory>

namespace ringcap {

class ClockStepWatch {
public:
  static Result<std::unique_ptr<ClockStepWatch>> create();
  ~ClockStepWatch();
  ClockStepWatch(const ClockStepWatch &) = delete;
  ClockStepWatch &operator=(const ClockStepWatch &) = delete;

  // Readable (EPOLLIN) when the clock was set; hand it to the event loop.
  int fd() const { return fd_; }
  // Called when fd() is readable: true if the clock was set (the watch is armed again).
  bool stepped();

private:
  ClockStepWatch() = default;
  Result<void> arm();
  int fd_ = -1;
};

} // namespace ringcap
