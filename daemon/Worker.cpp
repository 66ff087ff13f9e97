#include "Worker.h"

#include "util/Text.h"

#include <spdlog/spdlog.h>

#include <sys/eventfd.h>
#include <unistd.h>

namespace ringcap {

Worker::Worker(sd_event *event) {
  eventFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  sd_event_add_io(event, &source_, eventFd_, EPOLLIN, onWake, this);
  thread_ = std::thread([this] { run(); });
}

Worker::~Worker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  thread_.join();
  sd_event_source_disable_unref(source_);
  close(eventFd_);
}

void Worker::post(std::function<void()> work, std::function<void()> done,
                  std::function<void()> started) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back({std::move(work), std::move(done), std::move(started)});
  }
  cv_.notify_one();
}

bool Worker::pause(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

void Worker::complete(std::function<void()> fn) {
  {
    std::lock_guard lock(mutex_);
    completions_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  (void)!write(eventFd_, &one, sizeof one);
}

size_t Worker::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void Worker::run() {
  while (true) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_)
        return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    if (job.started)
      complete(std::move(job.started));
    try {
      job.work();
    } catch (const std::exception &e) { // the job's result stays what it was set to
      spdlog::error("a background job failed: {}", safeText(e.what(), 4096));
    } catch (...) {
      spdlog::error("a background job failed with an unknown exception");
    }
    complete(std::move(job.done));
  }
}

int Worker::onWake(sd_event_source *, int fd, uint32_t, void *userdata) {
  auto *self = static_cast<Worker *>(userdata);
  uint64_t n;
  (void)!read(fd, &n, sizeof n);
  std::deque<std::function<void()>> ready;
  {
    std::lock_guard lock(self->mutex_);
    ready.swap(self->completions_);
  }
  for (auto &done : ready) {
    // An exception here would leave sd-event's callback and end the daemon.
    try {
      done();
    } catch (const std::exception &e) {
      spdlog::error("completing a background job: {}", safeText(e.what(), 4096));
    } catch (...) {
      spdlog::error("completing a background job: unknown exception");
    }
  }
  return 0;
}

} // namespace ringcap
