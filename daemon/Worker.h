// Worker: runs slow jobs (uploads, challenge writes) on one background thread and hands
// their completions back to the sd-event loop, which never blocks on the network.
#pragma once

#include "util/Result.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <systemd/sd-event.h>
#include <thread>

namespace ringcap {

class Worker {
public:
  explicit Worker(sd_event *event);
  ~Worker(); // finishes the running job, drops queued ones, joins the thread
  Worker(const Worker &) = delete;
  Worker &operator=(const Worker &) = delete;

  // On the event loop thread `started` runs when the worker takes the job and `done` after
  // `work` ran on the worker thread.
  void post(std::function<void()> work, std::function<void()> done,
            std::function<void()> started = nullptr);
  // For work functions: waits up to `d`; false when the worker is stopping.
  bool pause(std::chrono::milliseconds d);
  size_t queued() const;

private:
  static int onWake(sd_event_source *, int fd, uint32_t, void *userdata);
  void run();
  void complete(std::function<void()> fn);

  int eventFd_ = -1;
  sd_event_source *source_ = nullptr;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  struct Job {
    std::function<void()> work, done, started;
  };
  std::deque<Job> queue_;
  std::deque<std::function<void()>> completions_;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace ringcap
