#include "engine/ClockStepWatch.h"

#include <cerrno>
#include <cstdint>
#include <sys/timerfd.h>
#include <unistd.h>

namespace ringcap {

Result<std::unique_ptr<ClockStepWatch>> ClockStepWatch::create() {
  std::unique_ptr<ClockStepWatch> w(new ClockStepWatch());
  w->fd_ = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
  if (w->fd_ < 0)
    return Error::fromErrno(errno, "creating the clock-step timer");
  if (auto r = w->arm(); !r)
    return r.error();
  return w;
}

ClockStepWatch::~ClockStepWatch() {
  if (fd_ >= 0)
    close(fd_);
}

// An absolute expiry that never comes: the timer only ever ends by being cancelled.
Result<void> ClockStepWatch::arm() {
  itimerspec never{};
  never.it_value.tv_sec = INT32_MAX;
  if (timerfd_settime(fd_, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &never, nullptr) != 0)
    return Error::fromErrno(errno, "arming the clock-step timer");
  return {};
}

bool ClockStepWatch::stepped() {
  uint64_t expirations = 0;
  ssize_t n = read(fd_, &expirations, sizeof expirations);
  if (n < 0 && errno == ECANCELED) {
    (void)arm();
    return true;
  }
  return false;
}

} // namespace ringcap
