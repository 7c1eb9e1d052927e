// TokenBucket: paces a stream of bytes to a rate, for the background copies
// that must leave the disks and the network to the volumes (a replicad's
// rebuild pull; fused's catch-up, scrub and backup jobs).
//
// The bucket starts empty and earns `rate` bytes of credit per second, up to
// `burst` bytes. Take(bytes) spends credit and goes into debt for what the
// credit does not cover, and returns how long the caller must wait before
// sending those bytes: a request larger than the burst still passes, at the
// rate. The caller does the waiting, so it can be cut short the caller's way
// (a job's cancel, a rebuild's stop). A rate of 0 means no limit.
//
// Pure: the time is passed in. Thread-compatible (callers lock).
#pragma once

#include <chrono>
#include <cstdint>

namespace shorthorn {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // `burst` 0 is taken as 1 byte.
  TokenBucket(uint64_t rate, uint64_t burst, Clock::time_point now = Clock::now());

  // Spends `bytes` at `now`; how long to wait before they may go (zero when
  // the credit covers them). A `now` before the previous one counts as no
  // time passed.
  Clock::duration Take(uint64_t bytes, Clock::time_point now = Clock::now());

 private:
  uint64_t rate_;
  double burst_;
  double tokens_ = 0;  // negative: debt
  Clock::time_point last_;
};

}  // namespace shorthorn
