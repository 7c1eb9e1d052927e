// common/daemon_signals.h: the start of a daemon's main that serves a loop
// device through FUSE (shorthorn-fused, bench/fuse_floor): which signals it
// takes and that memory reclaim must not wait on it. Header-only. Call both
// from main before any other thread starts (threads inherit the mask).
#pragma once

#include <signal.h>
#include <sys/prctl.h>

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

namespace shorthorn {

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread, so that only a
// sigwait/sigtimedwait on the returned set takes them, and ignores SIGPIPE.
inline sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signals;
}

// PR_SET_IO_FLUSHER: memory reclaim must not wait on a daemon that a loop
// device's writeback waits on. False when the kernel refuses (then it may).
inline bool SetIoFlusher() { return prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == 0; }

}  // namespace shorthorn
