// Cancellation: a flag that long work on another thread (an S3 transfer, a retry's backoff)
// checks, and that wakes up waits at once when it is raised. Raised once, never lowered.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace ringcap {

class Cancellation {
public:
  void cancel() {
    {
      std::lock_guard lock(mutex_);
      cancelled_ = true;
    }
    cv_.notify_all();
  }
  bool cancelled() const noexcept { return cancelled_.load(std::memory_order_relaxed); }
  // Waits up to `d`; false when cancelled (before or during the wait).
  bool waitFor(std::chrono::milliseconds d) const {
    std::unique_lock lock(mutex_);
    return !cv_.wait_for(lock, d, [this] { return cancelled_.load(); });
  }

private:
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
};

} // namespace ringcap
