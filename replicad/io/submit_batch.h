// SubmitBatch: disk requests gathered on one thread and handed to the
// kernel together. While a batch is open on a thread, an engine that can
// (io_uring) prepares the requests that thread submits without entering the
// kernel and registers itself with Hold; Kick, or the close of the
// outermost batch, hands them over: one io_uring_enter, and one doorbell of
// a virtual disk, for all the frames a connection's reader found in one
// read of its socket.
//
// A held request has been admitted (it counts as in flight, a write holds
// its range lock) but the kernel does not know of it, so the thread that
// holds it must not wait for anything that could depend on it: it calls
// Kick first. The rule in replicad: a connection's reader opens a batch
// while it has frames buffered, lets only READ, WRITE, FLUSH and PING run
// inside it (everything else kicks first, RequestHandler::Handle), and
// every wait on their path kicks before it waits: a range lock held by
// another op (RangeLock::Lock), a paused replica (Replica::Begin), the
// first write's meta_mu_ (Replica::MarkSessionDirty), a full engine (the
// engine itself), the connection's in-flight cap and the socket
// (Connection::Serve). Blocking disk reads kick too, only so as not to
// delay what is held (an unaligned write's edge blocks).
//
// Threads: each thread has its own batch and its own list of engines
// holding; nothing here is shared (the engines lock themselves).
#pragma once

namespace shorthorn::replicad {

class IoEngine;

class SubmitBatch {
 public:
  SubmitBatch();   // opens a batch, or joins the one open on this thread
  ~SubmitBatch();  // the outermost kicks
  SubmitBatch(const SubmitBatch&) = delete;
  SubmitBatch& operator=(const SubmitBatch&) = delete;

  // A batch is open on this thread: engines may hold its submissions.
  static bool Active();
  // Some engine holds submissions of this thread.
  static bool Holding();
  // Hands every held submission of this thread to the kernel now (no-op
  // when none is held). Call before any wait.
  static void Kick();
  // For engines: `engine` holds a submission of this thread; Kick calls
  // its SubmitHeld. Requires Active().
  static void Hold(IoEngine* engine);
};

}  // namespace shorthorn::replicad
