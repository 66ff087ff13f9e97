#include "engine/DrainLoop.h"

namespace ringcap {

DrainLoop::DrainLoop(RingDrainer &drainer, Options options)
    : DrainLoop(Ring{[&drainer](uint64_t max, uint64_t maxBytes, bool &cut) {
                       return drainer.consume(max, maxBytes, &cut);
                     },
                     [&drainer] { return drainer.maxPendingBytes(); },
                     [&drainer] { return drainer.ringFds(); }},
                options) {}

DrainLoop::DrainLoop(Ring ring, Options options) : ring_(std::move(ring)), options_(options) {
  if (options_.batch == 0)
    options_.batch = UINT64_MAX;
  if (options_.batchBytes == 0)
    options_.batchBytes = UINT64_MAX;
}

void DrainLoop::startPeriod(Clock::time_point now) {
  if (!periodic())
    periodAt_ = now + options_.period;
}

Result<void> DrainLoop::drain(Step &step, Clock::time_point now) {
  // The bound is met by this drain; what it leaves gets a bound of its own below.
  boundAt_ = Clock::time_point::max();
  bool cut = false;
  auto n = ring_.consume(options_.batch, options_.batchBytes, cut);
  if (!n)
    return n.error();
  step.records += *n;
  step.drained = true;
  // Cut by the batch with records left (a ring emptied by exactly a batch is no backlog).
  backlog_ = cut && ring_.maxPendingBytes() > 0;
  if (backlog_) {
    // Cut by the batch: the rest in the next step, after the loop served its other sources.
    // The files are flushed when the last slice is drained.
    boundAt_ = now;
    return {};
  }
  step.flush = true;
  // A record committed during the drain, or reserved before it and committed after, woke
  // nobody (the program wakes for the first record of an empty ring only): drain it within
  // the bound too.
  if (ring_.maxPendingBytes() > 0)
    boundAt_ = now + kDrainBound;
  return {};
}

Result<DrainLoop::Step> DrainLoop::onWake(Clock::time_point now) {
  Step step;
  if (backlog_ || ring_.maxPendingBytes() >= options_.wakeupBytes) {
    // The next slice of a backlog, or a ring crossed the threshold: drain now.
    if (auto r = drain(step, now); !r)
      return r.error();
  } else if (!boundArmed()) {
    // A batch starts: drain it within the bound.
    boundAt_ = now + kDrainBound;
  }
  return step;
}

Result<DrainLoop::Step> DrainLoop::onTimer(Clock::time_point now) {
  Step step;
  bool house = periodAt_ <= now;
  if (house) {
    step.housekeeping = true;
    periodAt_ += options_.period;
    if (periodAt_ <= now) // the loop was held up: no burst of housekeeping to catch up
      periodAt_ = now + options_.period;
  }
  if (boundAt_ <= now || house)
    if (auto r = drain(step, now); !r)
      return r.error();
  return step;
}

Result<DrainLoop::Step> DrainLoop::drainNow(Clock::time_point now) {
  Step step;
  if (auto r = drain(step, now); !r)
    return r.error();
  return step;
}

} // namespace ringcap
