#include "micro/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

namespace micro {
namespace {

TEST(ThreadPool, DestructorRunsEveryQueuedTask) {
  std::atomic<int> ran{0};
  {
    auto pool = NewThreadPoolExecutor(2);
    for (int i = 0; i < 1000; ++i) pool->Schedule([&ran] { ran.fetch_add(1); });
  }
  EXPECT_EQ(ran.load(), 1000);
}

TEST(ThreadPool, NeverRunsOnTheCallingThread) {
  std::mutex mu;
  std::set<std::thread::id> threads;
  {
    auto pool = NewThreadPoolExecutor(3);
    for (int i = 0; i < 100; ++i) {
      pool->Schedule([&] {
        std::lock_guard lock(mu);
        threads.insert(std::this_thread::get_id());
      });
    }
  }
  EXPECT_FALSE(threads.empty());
  EXPECT_LE(threads.size(), 3u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
}

TEST(ThreadPool, AtLeastOneThread) {
  std::atomic<bool> ran{false};
  {
    auto pool = NewThreadPoolExecutor(0);
    pool->Schedule([&ran] { ran = true; });
  }
  EXPECT_TRUE(ran.load());
}

}  // namespace
}  // namespace micro
