// UndoLog: the memory behind replicad's power-loss test mode
// (SHORTHORN_TEST_POWER_LOSS=1, doc/replicad.md). For one replica it keeps
// the old content of every range of a layer file that the data path changed
// since that file's last fdatasync, so that PowerLoss can put the files back
// the way a power cut would have left them: whatever was not made durable is
// gone, whatever was stays.
//
// Promises:
//  * Begin, called before a change, records each region's old bytes and
//    its allocation: the runs SEEK_DATA reports as data are restored with
//    their bytes, the rest is punched again (a hole in a head means "read
//    the lower layer", so restoring zeros there would be wrong).
//  * Synced(fd, mark) forgets the entries of that file whose change ended
//    before `mark` was taken: an fdatasync started after `mark` made them
//    durable. Changes still in flight at `mark` stay (they may or may not
//    be on the disk, so losing them is a possible power cut too).
//  * PowerLoss refuses every later Begin (EIO) for good, waits for the
//    changes in flight to end, restores every entry newest first and
//    fdatasyncs the files it restored.
//
// The caller orders overlapping changes (the replica's range lock): a change
// that overlaps another begins after the other ended, so restoring in the
// order changes ended, reversed, undoes them correctly.
//
// Threads: every method from any thread. Begin reads the files outside the
// log's lock; End and Synced are short. Test mode only: a replica without
// the mode has no UndoLog at all.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "replicad/core/layer_file.h"

namespace shorthorn::replicad {

class UndoLog {
 public:
  // A range of one open file that a change is about to modify. `keep`
  // holds the file open (its fd valid) as long as an entry names it.
  struct Region {
    int fd = -1;
    std::string file;  // for messages
    std::shared_ptr<const void> keep;
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  struct Dropped {
    uint64_t changes = 0;  // changes undone (one per write or unmap)
    uint64_t bytes = 0;    // bytes of the ranges they had changed
  };

  // One change of several regions: its id for End. EIO after PowerLoss
  // (the change must not be made); a read error of the capture as is.
  Result<uint64_t> Begin(std::vector<Region> regions);
  // The change `id` is over (made, or failed: restoring it is harmless).
  void End(uint64_t id);

  // The point an fdatasync starting now makes durable (see Synced).
  uint64_t Mark();
  void Synced(int fd, uint64_t mark);

  Result<Dropped> PowerLoss();

  // RAII over Begin/End for a change made on one thread.
  class Change {
   public:
    Change() = default;
    Change(UndoLog* log, uint64_t id) : log_(log), id_(id) {}
    Change(Change&& o) noexcept : log_(o.log_), id_(o.id_) { o.log_ = nullptr; }
    Change& operator=(Change&& o) noexcept {
      if (this != &o) {
        if (log_ != nullptr) log_->End(id_);
        log_ = o.log_;
        id_ = o.id_;
        o.log_ = nullptr;
      }
      return *this;
    }
    Change(const Change&) = delete;
    Change& operator=(const Change&) = delete;
    ~Change() {
      if (log_ != nullptr) log_->End(id_);
    }

   private:
    UndoLog* log_ = nullptr;
    uint64_t id_ = 0;
  };

 private:
  struct Entry {
    uint64_t change = 0;
    Region region;
    std::vector<FileExtent> data;  // allocated runs of the region, in order
    std::vector<uint8_t> bytes;    // their old bytes, concatenated
    uint64_t ended = 0;            // clock_ at End
  };
  static Result<Entry> Capture(uint64_t change, Region region);
  static Status Restore(const Entry& e);

  std::mutex mu_;
  std::condition_variable idle_;                 // open_ became empty
  bool lost_ = false;                            // guarded by mu_: PowerLoss ran
  uint64_t next_change_ = 0;                     // guarded by mu_
  uint64_t clock_ = 0;                           // guarded by mu_: counts Ends
  std::map<uint64_t, std::vector<Entry>> open_;  // guarded by mu_: changes in flight
  std::vector<Entry> entries_;                   // guarded by mu_: of ended changes, in end order
};

}  // namespace shorthorn::replicad
