// DrainLoop: the drain policy of ringcap-dump and ringcapd, on a fake ring.
#include "engine/DrainLoop.h"

#include <gtest/gtest.h>

using namespace ringcap;
using namespace std::chrono_literals;

namespace {

// A ring that holds `records` records of `recordBytes` bytes each.
struct FakeRing {
  uint64_t records = 0;
  uint64_t recordBytes = 100;
  uint64_t consumeCalls = 0;
  // Records committed during the next drain (they woke nobody).
  uint64_t arriveDuringDrain = 0;
  std::optional<Error> error;

  DrainLoop::Ring ring() {
    return {[this](uint64_t max, uint64_t maxBytes, bool &cut) -> Result<uint64_t> {
              consumeCalls++;
              if (error)
                return *error;
              // Whole records: one that starts below maxBytes is taken.
              uint64_t byBytes =
                  maxBytes == UINT64_MAX ? UINT64_MAX : (maxBytes + recordBytes - 1) / recordBytes;
              uint64_t n = std::min({records, max, byBytes});
              cut = n == max || n == byBytes;
              records -= n;
              records += arriveDuringDrain;
              arriveDuringDrain = 0;
              return n;
            },
            [this] { return records * recordBytes; },
            [] {
              return std::vector<int>{7, 8};
            }};
  }
};

constexpr auto kMax = DrainLoop::Clock::time_point::max();
const DrainLoop::Clock::time_point t0 = DrainLoop::Clock::time_point() + 1000s;

DrainLoop::Options options(uint64_t wakeupBytes = 1000, uint64_t batch = UINT64_MAX) {
  DrainLoop::Options o;
  o.wakeupBytes = wakeupBytes;
  o.batch = batch;
  o.period = 250ms;
  return o;
}

} // namespace

TEST(DrainLoop, IdleHasNoDeadline) {
  FakeRing fake;
  DrainLoop loop(fake.ring(), options());
  EXPECT_EQ(loop.deadline(), kMax);
  EXPECT_EQ(loop.ringFds(), (std::vector<int>{7, 8}));
  auto step = loop.onTimer(t0); // an early wake-up does nothing
  ASSERT_TRUE(step);
  EXPECT_FALSE(step->drained);
  EXPECT_EQ(fake.consumeCalls, 0u);
}

TEST(DrainLoop, AWakeUpBelowTheThresholdDrainsWithinTheBound) {
  FakeRing fake;
  fake.records = 1;
  DrainLoop loop(fake.ring(), options());
  auto step = loop.onWake(t0);
  ASSERT_TRUE(step);
  EXPECT_FALSE(step->drained);
  EXPECT_EQ(fake.consumeCalls, 0u);
  EXPECT_EQ(loop.deadline(), t0 + DrainLoop::kDrainBound);
  // Wake-ups meanwhile (another ring's first record) keep the bound as it is.
  fake.records = 2;
  ASSERT_TRUE(loop.onWake(t0 + 5ms));
  EXPECT_EQ(loop.deadline(), t0 + DrainLoop::kDrainBound);
  // Before the bound: nothing.
  ASSERT_TRUE(loop.onTimer(t0 + 19ms));
  EXPECT_EQ(fake.consumeCalls, 0u);
  step = loop.onTimer(t0 + DrainLoop::kDrainBound);
  ASSERT_TRUE(step);
  EXPECT_TRUE(step->drained);
  EXPECT_TRUE(step->flush);
  EXPECT_FALSE(step->housekeeping);
  EXPECT_EQ(step->records, 2u);
  EXPECT_EQ(loop.deadline(), kMax) << "an empty ring leaves no timer";
}

TEST(DrainLoop, AWakeUpAtTheThresholdDrainsAtOnce) {
  FakeRing fake;
  fake.records = 10; // 1000 bytes: the threshold
  DrainLoop loop(fake.ring(), options(1000));
  auto step = loop.onWake(t0);
  ASSERT_TRUE(step);
  EXPECT_TRUE(step->drained);
  EXPECT_TRUE(step->flush);
  EXPECT_EQ(step->records, 10u);
  EXPECT_EQ(loop.deadline(), kMax);
}

TEST(DrainLoop, RecordsLeftByADrainGetABoundOfTheirOwn) {
  FakeRing fake;
  fake.records = 10;
  fake.arriveDuringDrain = 3; // committed into a non-empty ring: no wake-up for them
  DrainLoop loop(fake.ring(), options(1000));
  ASSERT_TRUE(loop.onWake(t0));
  EXPECT_EQ(fake.records, 3u);
  EXPECT_EQ(loop.deadline(), t0 + DrainLoop::kDrainBound);
  auto step = loop.onTimer(t0 + DrainLoop::kDrainBound);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->records, 3u);
  EXPECT_EQ(loop.deadline(), kMax);
}

TEST(DrainLoop, ABatchCutsTheDrainIntoSlicesDueAtOnce) {
  FakeRing fake;
  fake.records = 25;
  DrainLoop loop(fake.ring(), options(1000, 10));
  auto step = loop.onWake(t0);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->records, 10u);
  EXPECT_TRUE(step->drained);
  EXPECT_FALSE(step->flush) << "the files are flushed after the last slice";
  EXPECT_EQ(loop.deadline(), t0) << "the next slice is due at once";
  step = loop.onTimer(t0 + 1ms);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->records, 10u);
  EXPECT_EQ(loop.deadline(), t0 + 1ms);
  step = loop.onTimer(t0 + 2ms);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->records, 5u);
  EXPECT_TRUE(step->flush);
  EXPECT_EQ(loop.deadline(), kMax);
}

// ringcapd's way: while a backlog lasts the ring fds are level-triggered, each readiness is
// an onWake() that drains the next slice (below the threshold too), and the timer is not
// needed for the slices.
TEST(DrainLoop, ABacklogIsDrainedByWakeUpsWithoutATimer) {
  FakeRing fake;
  fake.records = 25; // 2,500 bytes: above the threshold
  DrainLoop loop(fake.ring(), options(1000, 10));
  EXPECT_FALSE(loop.backlog());
  auto step = loop.onWake(t0);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->records, 10u);
  EXPECT_TRUE(loop.backlog());
  EXPECT_EQ(loop.timerDeadline(), kMax) << "no timer for the next slice";
  EXPECT_EQ(loop.deadline(), t0) << "a caller with a timer only: due at once";
  step = loop.onWake(t0 + 1ms); // 1,500 bytes left
  ASSERT_TRUE(step);
  EXPECT_EQ(step->records, 10u);
  EXPECT_TRUE(loop.backlog());
  step = loop.onWake(t0 + 2ms); // 500 bytes left, below the threshold: drained all the same
  ASSERT_TRUE(step);
  EXPECT_EQ(step->records, 5u);
  EXPECT_TRUE(step->flush);
  EXPECT_FALSE(loop.backlog());
  EXPECT_EQ(loop.timerDeadline(), kMax);
  // Back to edge-triggered: a wake-up below the threshold starts the bound, drains nothing.
  fake.records = 1;
  step = loop.onWake(t0 + 3ms);
  ASSERT_TRUE(step);
  EXPECT_FALSE(step->drained);
  EXPECT_EQ(loop.timerDeadline(), t0 + 3ms + DrainLoop::kDrainBound);
  // The housekeeping period stays on the timer during a backlog.
  loop.startPeriod(t0 + 3ms);
  fake.records = 30;
  step = loop.onTimer(t0 + 3ms + DrainLoop::kDrainBound);
  ASSERT_TRUE(step);
  EXPECT_TRUE(loop.backlog());
  EXPECT_EQ(loop.timerDeadline(), t0 + 3ms + 250ms);
}

// A ring emptied by exactly a batch: no backlog (a level-triggered fd would not be readable
// again, and the flush and the limits would wait for the housekeeping).
TEST(DrainLoop, ARingEmptiedByExactlyABatchIsNoBacklog) {
  FakeRing fake;
  fake.records = 20;
  DrainLoop loop(fake.ring(), options(1000, 10));
  auto step = loop.onWake(t0);
  ASSERT_TRUE(step);
  EXPECT_TRUE(loop.backlog());
  step = loop.onWake(t0 + 1ms);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->records, 10u);
  EXPECT_FALSE(loop.backlog());
  EXPECT_TRUE(step->flush);
  EXPECT_EQ(loop.deadline(), kMax);
}

// ringcapd's slices are bounded by bytes too: large records to several files are slow.
TEST(DrainLoop, ABatchOfBytesCutsTheDrainToo) {
  FakeRing fake;
  fake.records = 25; // 100 bytes each
  auto o = options(1000, 1024);
  o.batchBytes = 1000;
  DrainLoop loop(fake.ring(), o);
  auto step = loop.onWake(t0);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->records, 10u);
  EXPECT_TRUE(loop.backlog());
  EXPECT_FALSE(step->flush);
  step = loop.onWake(t0 + 1ms);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->records, 10u);
  step = loop.onWake(t0 + 2ms);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->records, 5u);
  EXPECT_FALSE(loop.backlog());
  EXPECT_TRUE(step->flush);
}

TEST(DrainLoop, TheHousekeepingPeriodRunsOnlyWhileStarted) {
  FakeRing fake;
  DrainLoop loop(fake.ring(), options());
  loop.startPeriod(t0);
  EXPECT_TRUE(loop.periodic());
  EXPECT_EQ(loop.deadline(), t0 + 250ms);
  loop.startPeriod(t0 + 100ms); // started already: unchanged
  EXPECT_EQ(loop.deadline(), t0 + 250ms);
  auto step = loop.onTimer(t0 + 250ms);
  ASSERT_TRUE(step);
  EXPECT_TRUE(step->housekeeping);
  EXPECT_TRUE(step->drained) << "the housekeeping drains and flushes too";
  EXPECT_TRUE(step->flush);
  EXPECT_EQ(loop.deadline(), t0 + 500ms);
  // A loop held up for a second does not catch up with a burst of periods.
  step = loop.onTimer(t0 + 1500ms);
  ASSERT_TRUE(step);
  EXPECT_TRUE(step->housekeeping);
  EXPECT_EQ(loop.deadline(), t0 + 1750ms);
  // A bound due before the period comes first.
  fake.records = 1;
  ASSERT_TRUE(loop.onWake(t0 + 1600ms));
  EXPECT_EQ(loop.deadline(), t0 + 1600ms + DrainLoop::kDrainBound);
  step = loop.onTimer(loop.deadline());
  ASSERT_TRUE(step);
  EXPECT_FALSE(step->housekeeping);
  EXPECT_EQ(step->records, 1u);
  EXPECT_EQ(loop.deadline(), t0 + 1750ms);
  loop.stopPeriod();
  EXPECT_FALSE(loop.periodic());
  EXPECT_EQ(loop.deadline(), kMax);
}

TEST(DrainLoop, ARingErrorIsReturned) {
  FakeRing fake;
  fake.records = 10;
  fake.error = Error{EIO, "the ring is broken"};
  DrainLoop loop(fake.ring(), options(1000));
  auto step = loop.onWake(t0);
  ASSERT_FALSE(step);
  EXPECT_EQ(step.error().message, "the ring is broken");
  auto now = loop.drainNow(t0);
  ASSERT_FALSE(now);
}
