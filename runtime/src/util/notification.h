// A one-shot event, like absl::Notification but on std::mutex. Debian's
// abseil is not built with ThreadSanitizer, so TSan cannot see the ordering
// absl's own primitives provide; pthread-based ones it can.
#ifndef MICRO_RUNTIME_UTIL_NOTIFICATION_H_
#define MICRO_RUNTIME_UTIL_NOTIFICATION_H_

#include <condition_variable>
#include <mutex>

#include "absl/time/time.h"

namespace micro::internal {

class Notification {
 public:
  void Notify() {
    // Notifying under the lock lets a waiter destroy this object as soon as
    // it wakes.
    std::lock_guard lock(mu_);
    notified_ = true;
    cv_.notify_all();
  }

  void WaitForNotification() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return notified_; });
  }

  // False if `timeout` passed first.
  bool WaitForNotificationWithTimeout(absl::Duration timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [this] { return notified_; });
  }

  bool HasBeenNotified() {
    std::lock_guard lock(mu_);
    return notified_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

}  // namespace micro::internal

#endif  // MICRO_RUNTIME_UTIL_NOTIFICATION_H_
