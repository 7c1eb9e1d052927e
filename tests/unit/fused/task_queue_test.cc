// TaskQueue: tasks run in the order posted, on one thread that is not the
// poster's, and the destructor runs what is still queued before it returns.
#include "fused/service/task_queue.h"

#include <gtest/gtest.h>

#include <future>
#include <set>
#include <thread>
#include <vector>

namespace shorthorn::fused {
namespace {

TEST(TaskQueueTest, RunsTasksInOrderOnOneOtherThread) {
  std::vector<int> order;
  std::set<std::thread::id> threads;
  std::promise<void> done;
  {
    TaskQueue queue;
    for (int i = 0; i < 100; ++i) {
      queue.Post([&, i] {
        order.push_back(i);
        threads.insert(std::this_thread::get_id());
        if (i == 99) done.set_value();
      });
    }
    ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  }
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
  ASSERT_EQ(threads.size(), 1u);
  EXPECT_NE(*threads.begin(), std::this_thread::get_id());
}

TEST(TaskQueueTest, DestructorRunsWhatIsQueued) {
  std::atomic<int> ran{0};
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  {
    TaskQueue queue;
    queue.Post([released] { released.wait(); });  // holds the thread
    for (int i = 0; i < 10; ++i) queue.Post([&] { ran++; });
    release.set_value();
  }
  EXPECT_EQ(ran.load(), 10);
}

TEST(TaskQueueTest, TaskMayPostAnother) {
  std::promise<int> second;
  {
    TaskQueue queue;
    queue.Post([&] { queue.Post([&] { second.set_value(2); }); });
    ASSERT_EQ(second.get_future().get(), 2);
  }
}

}  // namespace
}  // namespace shorthorn::fused
