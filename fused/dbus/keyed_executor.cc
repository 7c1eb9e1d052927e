#include "fused/dbus/keyed_executor.h"

#include <system_error>
#include <utility>

#include "common/log.h"

namespace shorthorn::fused::dbus {

KeyedExecutor::KeyedExecutor(size_t max_threads)
    : max_threads_(max_threads == 0 ? 1 : max_threads) {}

KeyedExecutor::~KeyedExecutor() { Stop(); }

bool KeyedExecutor::Submit(const std::string& key, std::function<void()> task) {
  std::unique_lock lock(mutex_);
  if (stopping_) return false;
  Strand& strand = strands_[key];
  strand.tasks.push_back(std::move(task));
  ++pending_;
  if (strand.running || strand.tasks.size() > 1) return true;  // its turn comes
  ready_.push_back(key);
  // Idle threads take ready keys one each; start another thread when there
  // are more ready keys than idle threads, up to max_threads.
  if (ready_.size() > idle_ && threads_.size() < max_threads_) {
    try {
      threads_.emplace_back([this] { Work(); });
    } catch (const std::system_error& e) {
      // The running threads take it in turn; the log says when there is none.
      if (threads_.empty()) {
        LogError(std::string("D-Bus: cannot start a worker thread: ") + e.what());
      }
    }
  }
  lock.unlock();
  cv_.notify_one();
  return true;
}

void KeyedExecutor::Work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_;
    cv_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
    --idle_;
    if (stopping_) return;
    std::string key = std::move(ready_.front());
    ready_.pop_front();
    auto strand = strands_.find(key);
    std::function<void()> task = std::move(strand->second.tasks.front());
    strand->second.tasks.pop_front();
    strand->second.running = true;
    lock.unlock();
    task();
    task = nullptr;  // its captures go before the next task of the key starts
    lock.lock();
    --pending_;
    strand = strands_.find(key);
    strand->second.running = false;
    if (strand->second.tasks.empty()) {
      strands_.erase(strand);
    } else {
      ready_.push_back(key);
    }
  }
}

void KeyedExecutor::Stop() {
  std::vector<std::thread> threads;
  std::vector<std::function<void()>> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    threads.swap(threads_);
    for (auto& [key, strand] : strands_) {
      for (auto& task : strand.tasks) dropped.push_back(std::move(task));
      pending_ -= strand.tasks.size();
      strand.tasks.clear();
    }
    ready_.clear();
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
  // Tasks that never ran are destroyed here, outside the lock.
}

size_t KeyedExecutor::pending() const {
  std::lock_guard lock(mutex_);
  return pending_;
}

}  // namespace shorthorn::fused::dbus
