#include "replicad/io/submit_batch.h"

#include <algorithm>
#include <cassert>
#include <vector>

#include "replicad/io/io_engine.h"

namespace shorthorn::replicad {
namespace {

thread_local int tl_depth = 0;
thread_local std::vector<IoEngine*> tl_holding;  // usually one engine

}  // namespace

SubmitBatch::SubmitBatch() { ++tl_depth; }

SubmitBatch::~SubmitBatch() {
  if (--tl_depth == 0) Kick();
}

bool SubmitBatch::Active() { return tl_depth > 0; }

bool SubmitBatch::Holding() { return !tl_holding.empty(); }

void SubmitBatch::Kick() {
  // One at a time off the list, which keeps its capacity for the next
  // batch (a swap would allocate anew for every batch on the reader's path).
  while (!tl_holding.empty()) {
    IoEngine* e = tl_holding.back();
    tl_holding.pop_back();
    e->SubmitHeld();
  }
}

void SubmitBatch::Hold(IoEngine* engine) {
  assert(tl_depth > 0);
  if (std::find(tl_holding.begin(), tl_holding.end(), engine) == tl_holding.end()) {
    tl_holding.push_back(engine);
  }
}

}  // namespace shorthorn::replicad
