// KeyedExecutor: runs tasks on a small pool of worker threads, one at a time
// per key and in the order they were submitted for that key; tasks of
// different keys run at once, up to max_threads. The D-Bus service uses it
// to take manager calls (which may wait seconds for an unreachable replicad)
// off its event loop: the key is the volume a call is about, so two calls
// on one volume still run in the order the callers sent them.
// Threads are started on demand and kept until Stop.
// Threads: Submit from any thread; Stop from one thread that is not a
// worker. A task must not call Stop.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace shorthorn::fused::dbus {

class KeyedExecutor {
 public:
  explicit KeyedExecutor(size_t max_threads);
  KeyedExecutor(const KeyedExecutor&) = delete;
  KeyedExecutor& operator=(const KeyedExecutor&) = delete;
  ~KeyedExecutor();  // Stop()

  // Queues `task` after the earlier tasks of `key`. False (task dropped)
  // once Stop has begun.
  bool Submit(const std::string& key, std::function<void()> task);
  // Drops the tasks not yet started, waits for the running ones and joins
  // the threads. Idempotent.
  void Stop();

  // Tasks queued or running.
  size_t pending() const;

 private:
  struct Strand {
    std::deque<std::function<void()>> tasks;
    bool running = false;
  };
  void Work();

  const size_t max_threads_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, Strand> strands_;  // only keys with tasks queued or running
  std::deque<std::string> ready_;          // keys with tasks queued and none running
  size_t idle_ = 0;                        // threads waiting for a ready key
  size_t pending_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace shorthorn::fused::dbus
