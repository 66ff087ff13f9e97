// DrainLoop: when to drain the capture ring, flush the files and run the periodic checks.
// One policy for ringcap-dump (an epoll loop) and ringcapd (sd-event): the caller waits on
// ringFds() (edge-triggered) and on one timer armed at deadline(), and acts on the Step that
// onWake() / onTimer() return (docs/design.md, "The drain").
#pragma once

#include "engine/RingDrainer.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

namespace ringcap {

class DrainLoop {
public:
  using Clock = std::chrono::steady_clock;
  // The longest a record waits in the ring: the program (loaded with wakeOnFirstRecord)
  // wakes the loop for the first record into an empty ring, and the loop drains this long
  // after, so that one wake-up and one drain serve a whole batch of a trickle. A ring that
  // fills to the wake-up threshold sooner is drained at once.
  static constexpr Clock::duration kDrainBound = std::chrono::milliseconds(20);

  struct Options {
    // CaptureProgram::wakeupBytes(): a wake-up with this much in a ring drains at once.
    uint64_t wakeupBytes = 0;
    // Records drained at most per step; a drain that reaches it continues in the next step
    // (deadline() is then "now"), so that a full ring does not hold the loop's other sources.
    uint64_t batch = UINT64_MAX;
    // Bytes of records drained at most per step, likewise: a slice of large records written
    // to several files holds the loop for as long as its writes take.
    uint64_t batchBytes = UINT64_MAX;
    // While periodic (startPeriod): how often a Step asks for housekeeping.
    Clock::duration period = std::chrono::seconds(1);
  };

  // What the caller does after a step, in this order: make the drained packets readable in
  // the files (flush: after a drain that emptied the batch, one write per file where packets
  // wait), check the jobs' limits and complete the stopped ones (drained), run the periodic
  // checks (housekeeping: limits by time, counters, the clock offset).
  struct Step {
    uint64_t records = 0;
    bool drained = false;
    bool flush = false;
    bool housekeeping = false;
  };

  // What the loop drains: a RingDrainer's consume, maxPendingBytes and ringFds (a fake in
  // the unit tests).
  struct Ring {
    // Records drained, at most maxRecords and about maxBytes; `cut` set when a limit ended it.
    std::function<Result<uint64_t>(uint64_t maxRecords, uint64_t maxBytes, bool &cut)> consume;
    std::function<uint64_t()> maxPendingBytes;
    std::function<std::vector<int>()> fds;
  };

  DrainLoop(RingDrainer &drainer, Options options);
  DrainLoop(Ring ring, Options options);

  // The rings' fds: wait on each with EPOLLIN | EPOLLET (one event per wake-up of the
  // program, not one while records wait), and call onWake() when one is readable.
  std::vector<int> ringFds() const { return ring_.fds(); }
  // The program woke the loop: a ring at the threshold is drained now; otherwise the bound
  // starts (an armed bound stays as it is).
  Result<Step> onWake(Clock::time_point now = Clock::now());
  // The timer fired (at or after deadline()): drains when the bound passed, runs the
  // housekeeping when the period passed; nothing when neither is due (an early wake-up).
  Result<Step> onTimer(Clock::time_point now = Clock::now());
  // Drains now and asks for a flush (a stop, or a caller that needs the records now).
  Result<Step> drainNow(Clock::time_point now = Clock::now());
  // When onTimer() must run next; Clock::time_point::max() when nothing waits: no timer.
  Clock::time_point deadline() const { return std::min(boundAt_, periodAt_); }
  // Whether the last drain was cut by the batch: records wait and the next step drains on.
  // A caller may then wait on the ring fds level-triggered (readable while records wait)
  // instead of a timer at "now", and onWake() drains the next slice; its timer then needs
  // only timerDeadline().
  bool backlog() const { return backlog_; }
  Clock::time_point timerDeadline() const { return backlog_ ? periodAt_ : deadline(); }

  // Housekeeping every period from now on (while a capture runs), or no more.
  void startPeriod(Clock::time_point now = Clock::now());
  void stopPeriod() { periodAt_ = Clock::time_point::max(); }
  bool periodic() const { return periodAt_ != Clock::time_point::max(); }
  bool boundArmed() const { return boundAt_ != Clock::time_point::max(); }

private:
  Result<void> drain(Step &step, Clock::time_point now);

  Ring ring_;
  Options options_;
  Clock::time_point boundAt_ = Clock::time_point::max();
  Clock::time_point periodAt_ = Clock::time_point::max();
  bool backlog_ = false;
};

} // namespace ringcap
