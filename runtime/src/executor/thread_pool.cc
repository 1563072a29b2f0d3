#include <algorithm>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "micro/executor.h"
#include "util/write_batch.h"

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
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (std::thread& thread : threads_) thread.join();
  }

  void Schedule(absl::AnyInvocable<void() &&> task) override {
    // Notify under the lock: once it is released the task may run and lead
    // to this pool's destruction, so nothing may touch the pool afterwards.
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(task));
    ready_.notify_one();
  }

 private:
  // A task that starts while others wait holds back what it publishes,
  // which is written once the queue runs dry (util/write_batch.h): while
  // tasks keep coming, their writes go together.
  void Work() {
    std::unique_lock lock(mu_);
    while (true) {
      if (queue_.empty()) {
        lock.unlock();
        internal::WriteBatch::FlushThisThread();
        lock.lock();
      }
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      // Drain the queue before honouring `stopping_`: queued work is never dropped.
      if (queue_.empty()) return;
      {
        absl::AnyInvocable<void()&&> task = std::move(queue_.front());
        queue_.pop_front();
        internal::WriteBatch batch(/*hold=*/!queue_.empty());
        lock.unlock();
        std::move(task)();
        batch.End(/*idle=*/false);
      }  // The task is gone before the lock is taken again.
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<absl::AnyInvocable<void() &&>> queue_;  // Guarded by mu_.
  bool stopping_ = false;                            // Guarded by mu_.
  std::vector<std::thread> threads_;
};

}  // namespace

std::shared_ptr<Executor> NewThreadPoolExecutor(int num_threads) {
  return std::make_shared<ThreadPool>(std::max(1, num_threads));
}

}  // namespace micro
