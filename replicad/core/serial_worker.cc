#include "replicad/core/serial_worker.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace shorthorn::replicad {

struct SerialWorker::Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> tasks;  // guarded by mu
  bool stop = false;                        // guarded by mu
  std::thread thread;                       // guarded by mu; started by the first Post

  void Loop() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [this] { return stop || !tasks.empty(); });
      if (stop) return;
      std::function<void()> task = std::move(tasks.front());
      tasks.pop_front();
      lock.unlock();
      task();
      task = nullptr;  // its captures go before the lock is taken again
      lock.lock();
    }
  }
};

SerialWorker::SerialWorker() : shared_(std::make_shared<Shared>()) {}

SerialWorker::~SerialWorker() { Stop(); }

bool SerialWorker::Post(std::function<void()> task) {
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->stop) return false;
    shared_->tasks.push_back(std::move(task));
    if (!shared_->thread.joinable()) {
      shared_->thread = std::thread([s = shared_] { s->Loop(); });
    }
  }
  shared_->cv.notify_one();
  return true;
}

void SerialWorker::Stop() {
  std::thread thread;
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(shared_->mu);
    shared_->stop = true;
    thread = std::move(shared_->thread);
    dropped.swap(shared_->tasks);
  }
  shared_->cv.notify_all();
  if (!thread.joinable()) return;
  if (thread.get_id() == std::this_thread::get_id()) {
    thread.detach();  // our owner is being destroyed by the task running here
  } else {
    thread.join();
  }
}

}  // namespace shorthorn::replicad
