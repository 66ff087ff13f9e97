// Worker: jobs keyed by destination run side by side, one key's jobs in order, a bounded
// queue, cancellation that ends running work, and exceptions that never escape.
#include "Worker.h"

#include <atomic>
#include <chrono>
#include <future>
#include <gtest/gtest.h>
#include <stdexcept>
#include <systemd/sd-event.h>
#include <vector>

using namespace ringcap;
using namespace std::chrono_literals;

namespace {

class WorkerTest : public ::testing::Test {
protected:
  void SetUp() override { ASSERT_GE(sd_event_new(&event_), 0); }
  void TearDown() override { sd_event_unref(event_); }
  // Runs the event loop until `until` is true or `deadline` passes; returns `until()`.
  template <typename F> bool runUntil(F until, std::chrono::milliseconds deadline = 10s) {
    auto end = std::chrono::steady_clock::now() + deadline;
    while (!until() && std::chrono::steady_clock::now() < end)
      sd_event_run(event_, 20'000);
    return until();
  }
  sd_event *event_ = nullptr;
};

} // namespace

TEST_F(WorkerTest, ASlowDestinationDoesNotDelayAnother) {
  Worker worker(event_);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  bool slowStarted = false, slowDone = false, fastDone = false;
  ASSERT_TRUE(worker.post([released] { released.wait_for(30s); }, [&] { slowDone = true; },
                          [&] { slowStarted = true; }, "s3://slow?region=us-east-1"));
  ASSERT_TRUE(runUntil([&] { return slowStarted; })) << "the slow job never started";
  ASSERT_TRUE(worker.post([] {}, [&] { fastDone = true; }, nullptr, "file:///srv/pcaps/fast"));
  EXPECT_TRUE(runUntil([&] { return fastDone; }, 5s))
      << "a job for another destination waited for the slow one";
  EXPECT_FALSE(slowDone);
  release.set_value();
  EXPECT_TRUE(runUntil([&] { return slowDone; }));
}

TEST_F(WorkerTest, OneDestinationsJobsRunInOrderOneAtATime) {
  Worker worker(event_);
  std::mutex m;
  std::vector<int> order;
  std::atomic<int> inside{0}, most{0};
  int done = 0;
  for (int i = 0; i < 6; i++)
    ASSERT_TRUE(worker.post(
        [&, i] {
          int now = ++inside;
          most = std::max(most.load(), now);
          std::this_thread::sleep_for(5ms);
          {
            std::lock_guard lock(m);
            order.push_back(i);
          }
          --inside;
        },
        [&] { done++; }, nullptr, "s3://one?region=us-east-1"));
  ASSERT_TRUE(runUntil([&] { return done == 6; }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(most.load(), 1);
}

TEST_F(WorkerTest, TheQueueIsBoundedWithAClearError) {
  Worker worker(event_, Worker::Options{1, 2});
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  bool started = false;
  int done = 0;
  ASSERT_TRUE(worker.post([released] { released.wait_for(30s); }, [&] { done++; },
                          [&] { started = true; }));
  ASSERT_TRUE(runUntil([&] { return started; }));
  ASSERT_TRUE(worker.post([] {}, [&] { done++; }));
  ASSERT_TRUE(worker.post([] {}, [&] { done++; }));
  auto refused = worker.post([] { ADD_FAILURE() << "a refused job ran"; }, [&] { done++; });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, EAGAIN);
  EXPECT_EQ(refused.error().message,
            "2 background jobs (deliveries, ownership challenges) are waiting, the most "
            "ringcapd queues; try again when they are done");
  EXPECT_EQ(worker.queued(), 2u);
  release.set_value();
  ASSERT_TRUE(runUntil([&] { return done == 3; }));
  EXPECT_TRUE(worker.post([] {}, [&] { done++; })) << "room again once the queue drained";
  ASSERT_TRUE(runUntil([&] { return done == 4; }));
}

TEST_F(WorkerTest, CancelEndsRunningWorkAndStopIsBounded) {
  auto worker = std::make_unique<Worker>(event_);
  bool started = false;
  std::atomic<bool> sawCancel{false};
  Worker *w = worker.get();
  ASSERT_TRUE(worker->post(
      [w, &sawCancel] {
        if (!w->pause(60s)) // a retry's backoff, or a transfer watching cancellation()
          sawCancel = true;
      },
      [] {}, [&] { started = true; }, "s3://stuck?region=us-east-1"));
  ASSERT_TRUE(worker->post([] { ADD_FAILURE() << "a queued job ran after cancel()"; }, [] {},
                           nullptr, "s3://stuck?region=us-east-1"));
  ASSERT_TRUE(runUntil([&] { return started; }));
  auto t0 = std::chrono::steady_clock::now();
  worker->cancel();
  EXPECT_TRUE(worker->cancellation()->cancelled());
  auto after = worker->post([] {}, [] {});
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, ECANCELED);
  worker.reset();
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(sawCancel);
  EXPECT_LT(took, 2s) << "stopping waited for the job's 60 s wait";
}

TEST_F(WorkerTest, ExceptionsOfJobsAndCompletionsDoNotEscape) {
  Worker worker(event_);
  bool done = false, second = false;
  ASSERT_TRUE(worker.post([] { throw std::runtime_error("bad \xff text"); },
                          [&] {
                            done = true;
                            throw std::runtime_error("completion");
                          }));
  ASSERT_TRUE(worker.post([] {}, [&] { second = true; }));
  EXPECT_TRUE(runUntil([&] { return done && second; }));
}
