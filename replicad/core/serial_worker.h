// SerialWorker: one thread that runs posted tasks one at a time, in the
// order they were posted. The thread starts with the first Post, so an
// owner that never posts costs no thread.
//
// The queue and the thread's state live in a block the thread shares, so a
// task may drop the last reference to the worker's owner (whose destructor
// then runs on this very thread): Stop detaches instead of joining itself,
// and the thread leaves without touching the owner again.
//
// Threads: Post and Stop from any thread. Stop waits for the task running
// and drops the tasks still queued (owners keep tasks from being queued by
// then: a replica's Close waits for its unmaps).
#pragma once

#include <functional>
#include <memory>

namespace shorthorn::replicad {

class SerialWorker {
 public:
  SerialWorker();
  ~SerialWorker();  // Stop()
  SerialWorker(const SerialWorker&) = delete;
  SerialWorker& operator=(const SerialWorker&) = delete;

  // Queues `task`; false (the task is dropped) after Stop.
  bool Post(std::function<void()> task);
  void Stop();

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

}  // namespace shorthorn::replicad
