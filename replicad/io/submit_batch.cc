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
  std::vector<IoEngine*> engines;
  engines.swap(tl_holding);
  for (IoEngine* e : engines) e->SubmitHeld();
}

void SubmitBatch::Hold(IoEngine* engine) {
  assert(tl_depth > 0);
  if (std::find(tl_holding.begin(), tl_holding.end(), engine) == tl_holding.end()) {
    tl_holding.push_back(engine);
  }
}

}  // namespace shorthorn::replicad
