// The rules of the rebuild loop (DESIGN §5, fused/service/rebuild_loop.cc):
// whether an attached volume is short of replicas and how it may be
// rebuilt, and which replica a finished full rebuild replaces. Pure
// functions over plain values, tested on tables of cases; VolumeService
// gathers the facts from its registry and engines under its lock and acts
// on the answer. Any thread may call them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shorthorn::fused {

// ---------------------------------------------------------------- the check

// One replica of an attached volume's engine as the rebuild check sees it,
// in engine order.
struct RebuildMember {
  enum class Mode { kRw, kWo, kErr };
  std::string name;
  Mode mode = Mode::kRw;
  // A registry replica of this name is on a draining replicad.
  bool on_draining = false;
  // ERR only: the engine still records what it missed (it can catch up).
  bool can_catch_up = false;
  // The addresses of the registry replicas of this name, in registry order:
  // what is probed before a catch-up.
  std::vector<std::string> addresses;
  // ERR only: when the rebuild loop first saw it ERR.
  std::chrono::steady_clock::time_point failed_at{};
};

// What the rebuild loop does about one attached volume.
struct RebuildNeed {
  // Start a rebuild job (catch-up first): the volume has fewer usable
  // replicas off draining replicads than `replica_count`, or enough but
  // some on a draining one (then `allow_full`, to drop those).
  bool short_of_replicas = false;
  // The job may make a new replica when no failed one catches up. False
  // while the failed replicas that can catch up are still within the wait.
  bool allow_full = false;
  // Without `allow_full`: start the job only when one of these replicads
  // answers (the failed replicas' places). Empty with `allow_full`.
  std::vector<std::string> probe;
  // The volume has enough usable replicas: an operator's forced rebuild
  // is done with.
  bool clear_forced = false;
};

// The rebuild check of one attached volume. Nothing when it has no RW
// replica (nothing to copy from). Usable: not ERR and not on a draining
// replicad (leaving: not ERR and on one). With at least `replica_count`
// usable: clear_forced, and short (allow_full, no probe) only if some are
// leaving. Else short; a failed replica that can catch up is waiting while
// ReplacementDue says not yet (`wait` from `failed_at`, unless `forced`);
// a full rebuild is allowed when more replicas are missing than waiting,
// else the job waits for the addresses of the failed replicas that can
// catch up to answer.
RebuildNeed RebuildNeedOf(const std::vector<RebuildMember>& members, uint32_t replica_count,
                          bool forced, std::chrono::steady_clock::time_point now,
                          std::chrono::seconds wait);

// ---------------------------------------------------------------- retiring

// One replica of a volume as a finished full rebuild sees it, in registry
// order.
struct RetireCandidate {
  std::string name;
  bool usable = false;        // in the engine and not ERR
  bool can_catch_up = false;  // not usable, and the engine records what it missed
};

// The replica a finished full rebuild replaces: the first one not usable
// that cannot catch up, else the first one not usable (one that can catch
// up may still be waiting to); nullopt when all are usable.
std::optional<std::string> ReplacedReplica(const std::vector<RetireCandidate>& members);

}  // namespace shorthorn::fused
