#include "common/token_bucket.h"

#include <algorithm>

namespace shorthorn {

TokenBucket::TokenBucket(uint64_t rate, uint64_t burst, Clock::time_point now)
    : rate_(rate), burst_(static_cast<double>(std::max<uint64_t>(burst, 1))), last_(now) {}

TokenBucket::Clock::duration TokenBucket::Take(uint64_t bytes, Clock::time_point now) {
  if (rate_ == 0) return Clock::duration::zero();
  if (now > last_) {
    double earned = std::chrono::duration<double>(now - last_).count() * static_cast<double>(rate_);
    tokens_ = std::min(burst_, tokens_ + earned);
    last_ = now;
  }
  tokens_ -= static_cast<double>(bytes);
  if (tokens_ >= 0) return Clock::duration::zero();
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(-tokens_ / static_cast<double>(rate_)));
}

}  // namespace shorthorn
