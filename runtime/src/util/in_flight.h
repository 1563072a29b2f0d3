// Counts work that has started and not finished, so an owner can wait for it
// before tearing down what that work uses.
#ifndef MICRO_RUNTIME_UTIL_IN_FLIGHT_H_
#define MICRO_RUNTIME_UTIL_IN_FLIGHT_H_

#include <condition_variable>
#include <mutex>

namespace micro::internal {

class InFlight {
 public:
  void Start() {
    std::lock_guard lock(mu_);
    ++count_;
  }

  void Finish() {
    // Notifying under the lock lets a waiter destroy this object as soon as
    // it wakes: Finish touches nothing after the unlock.
    std::lock_guard lock(mu_);
    if (--count_ == 0) idle_.notify_all();
  }

  void WaitUntilIdle() {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [this] { return count_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable idle_;
  int count_ = 0;
};

}  // namespace micro::internal

#endif  // MICRO_RUNTIME_UTIL_IN_FLIGHT_H_
