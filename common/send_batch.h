// SendBatch: small socket writes gathered on one thread and written
// together. While a batch is open on a thread, a sender may append a
// message to a buffer of its own instead of writing it, and register with
// AtClose the flush that writes that buffer; the outermost batch runs the
// flushes, in the order registered, when it closes. A FUSE ring queue's
// thread opens one around each wake-up's requests, so the replica requests
// they make leave in one write per connection instead of one per request
// (and wake the replicad once).
//
// Rules for senders: register a flush only while Active(), or from a flush
// (it then runs in a later round, after every flush of this one: a flush
// sends what it can without blocking and leaves the rest for a later round,
// so one stuck peer does not hold back the others). A flush must not block
// on anything but the socket write itself. Threads: each thread has its own
// batch; nothing is shared.
#pragma once

#include <functional>

namespace shorthorn {

class SendBatch {
 public:
  SendBatch();   // opens a batch, or joins the one already open on this thread
  ~SendBatch();  // the outermost runs every registered flush
  SendBatch(const SendBatch&) = delete;
  SendBatch& operator=(const SendBatch&) = delete;

  // A batch is open on this thread.
  static bool Active();
  // Runs `flush` when this thread's batch closes; requires Active() or a
  // flush of this thread's batch running.
  static void AtClose(std::function<void()> flush);
};

}  // namespace shorthorn
