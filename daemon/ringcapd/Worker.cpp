#include "Worker.h"

#include "util/Text.h"

#include <algorithm>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace ringcap {

Worker::Worker(sd_event *event, Options options) : options_(options) {
  if (options_.maxThreads < 1)
    options_.maxThreads = 1;
  eventFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  sd_event_add_io(event, &source_, eventFd_, EPOLLIN, onWake, this);
}

Worker::~Worker() {
  cancel();
  for (auto &t : threads_)
    t.join();
  sd_event_source_disable_unref(source_);
  close(eventFd_);
}

void Worker::cancel() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  cancellation_->cancel();
  cv_.notify_all();
}

Result<void> Worker::post(std::function<void()> work, std::function<void()> done,
                          std::function<void()> started, std::string key) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_)
      return Error{ECANCELED, "ringcapd is stopping"};
    if (queue_.size() >= options_.maxQueued)
      return Error{kQueueFull, std::to_string(queue_.size()) +
                                   " background jobs (deliveries, ownership challenges) are "
                                   "waiting, the most ringcapd queues; try again when they are "
                                   "done"};
    queue_.push_back({std::move(key), std::move(work), std::move(done), std::move(started)});
    // Threads enough for every key that could run now, up to maxThreads.
    std::set<std::string> runnable;
    for (const auto &j : queue_)
      if (!busy_.count(j.key))
        runnable.insert(j.key);
    if (idle_ < runnable.size() && threads_.size() < options_.maxThreads)
      threads_.emplace_back([this] { run(); });
  }
  cv_.notify_all();
  return {};
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

size_t Worker::running() const {
  std::lock_guard lock(mutex_);
  return busy_.size();
}

void Worker::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    // The oldest job whose key is not busy: a key's jobs keep their order.
    auto next = queue_.end();
    idle_++;
    cv_.wait(lock, [&] {
      if (stopping_)
        return true;
      next = std::find_if(queue_.begin(), queue_.end(),
                          [&](const Job &j) { return !busy_.count(j.key); });
      return next != queue_.end();
    });
    idle_--;
    if (stopping_)
      return;
    Job job = std::move(*next);
    queue_.erase(next);
    busy_.insert(job.key);
    lock.unlock();
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
    lock.lock();
    busy_.erase(job.key);
    cv_.notify_all(); // a job of this key may wait
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
