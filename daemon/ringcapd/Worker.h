// Worker: runs slow jobs (uploads, challenge writes) on background threads and hands their
// completions back to the sd-event loop, which never blocks on the network.
//
// Jobs have a key (the destination they talk to): jobs of one key run one after another in
// the order they were posted; jobs of different keys run side by side, on up to maxThreads
// threads, so that a slow or stuck server delays only the jobs for it. At most maxQueued
// jobs wait (running ones not counted); more are refused. cancel() aborts what runs (the
// jobs' transfers watch cancellation()) and drops what waits, without waiting for anything.
#pragma once

#include "util/Cancellation.h"
#include "util/Result.h"

#include <cerrno>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <systemd/sd-event.h>
#include <thread>
#include <vector>

namespace ringcap {

class Worker {
public:
  struct Options {
    size_t maxThreads = 8;
    size_t maxQueued = 64;
  };
  explicit Worker(sd_event *event) : Worker(event, Options()) {}
  Worker(sd_event *event, Options options);
  ~Worker(); // cancel(), then joins the threads; completions not yet handed over are dropped
  Worker(const Worker &) = delete;
  Worker &operator=(const Worker &) = delete;

  // On the event loop thread `started` runs when a thread takes the job and `done` after
  // `work` ran on it. Refused (EAGAIN) when maxQueued jobs are waiting, and (ECANCELED)
  // after cancel(); nothing runs then.
  Result<void> post(std::function<void()> work, std::function<void()> done,
                    std::function<void()> started = nullptr, std::string key = {});
  // For work functions: waits up to `d`; false when the worker is cancelled.
  bool pause(std::chrono::milliseconds d) { return cancellation_->waitFor(d); }
  // Raised by cancel(): long work (S3Options::cancel) gives up when it sees it.
  std::shared_ptr<const Cancellation> cancellation() const { return cancellation_; }
  // Aborts the running jobs (through cancellation()), drops the waiting ones, refuses new
  // ones. Does not wait: the destructor joins.
  void cancel();
  size_t queued() const;
  size_t running() const;

  static constexpr int kQueueFull = EAGAIN;

private:
  static int onWake(sd_event_source *, int fd, uint32_t, void *userdata);
  void run();
  void complete(std::function<void()> fn);

  Options options_;
  int eventFd_ = -1;
  sd_event_source *source_ = nullptr;
  std::shared_ptr<Cancellation> cancellation_ = std::make_shared<Cancellation>();
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  struct Job {
    std::string key;
    std::function<void()> work, done, started;
  };
  std::deque<Job> queue_;
  std::set<std::string> busy_; // keys with a job running
  size_t idle_ = 0;            // threads waiting for a job
  std::deque<std::function<void()>> completions_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

} // namespace ringcap
