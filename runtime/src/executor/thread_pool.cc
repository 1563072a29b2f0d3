#include <algorithm>
#include <deque>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "micro/executor.h"

namespace micro {
namespace {

class ThreadPool final : public Executor {
 public:
  explicit ThreadPool(int num_threads) {
    threads_.reserve(num_threads);
    for (int i = 0; i < num_threads; ++i) threads_.emplace_back([this] { Work(); });
  }

  ~ThreadPool() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (std::thread& thread : threads_) thread.join();
  }

  void Schedule(absl::AnyInvocable<void() &&> task) override {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(task));
  }

 private:
  void Work() {
    while (true) {
      absl::AnyInvocable<void() &&> task;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](ThreadPool* pool) { return pool->stopping_ || !pool->queue_.empty(); }, this));
        // Drain the queue before honouring `stopping_`: queued work is never dropped.
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      std::move(task)();
    }
  }

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace

std::shared_ptr<Executor> NewThreadPoolExecutor(int num_threads) {
  return std::make_shared<ThreadPool>(std::max(1, num_threads));
}

}  // namespace micro
