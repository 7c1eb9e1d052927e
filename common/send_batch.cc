#include "common/send_batch.h"

#include <cassert>
#include <utility>
#include <vector>

namespace shorthorn {

namespace {

thread_local int tl_depth = 0;
thread_local bool tl_closing = false;  // the outermost batch runs its flushes
thread_local std::vector<std::function<void()>> tl_flushes;

}  // namespace

SendBatch::SendBatch() { ++tl_depth; }

SendBatch::~SendBatch() {
  if (--tl_depth > 0) return;
  // Closed before the flushes run: what they cause is written at once.
  // Rounds: what a flush registers runs after the whole current round.
  tl_closing = true;
  std::vector<std::function<void()>> flushes;
  while (!tl_flushes.empty()) {
    flushes.swap(tl_flushes);
    for (auto& flush : flushes) flush();
    flushes.clear();
  }
  tl_closing = false;
}

bool SendBatch::Active() { return tl_depth > 0; }

void SendBatch::AtClose(std::function<void()> flush) {
  assert(tl_depth > 0 || tl_closing);
  tl_flushes.push_back(std::move(flush));
}

}  // namespace shorthorn
