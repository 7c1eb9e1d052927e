// FuseFdKeeper: keeps the /dev/fuse descriptor of the volume mount alive
// while fused restarts, so that the mount, the loop devices on its files and
// the file systems on those never see the connection end (DESIGN §4).
//
// Under systemd (NOTIFY_SOCKET set) the descriptor goes to the service's file
// descriptor store (FDSTORE=1, FDNAME=fuse; the unit sets
// FileDescriptorStoreMax=), queued in a datagram socket so that systemd's
// watch on stored descriptors is not woken by every FUSE request, and comes
// back on the next start in LISTEN_FDS. Elsewhere (the quickstart, the
// tests) a holder process started from this binary (`shorthorn-fused
// --fuse-fd-holder`) keeps a copy and hands it over a Unix socket to the
// next fused. The holder runs in its own session, only answers root, and
// exits within a second once the FUSE connection ends (unmount or abort), or
// when told to. Take never returns a connection that has ended.
//
// Thread-compatible: one owner.
#pragma once

#include <string>

#include "common/file_util.h"
#include "common/status.h"

namespace shorthorn::fused {

class FuseFdKeeper {
 public:
  // `holder_socket` is the holder's Unix socket path (used without systemd).
  explicit FuseFdKeeper(std::string holder_socket) : socket_(std::move(holder_socket)) {}

  // The descriptor an earlier fused kept; NotFound when there is none.
  Result<UniqueFd> Take();
  // Keeps a copy of `fd` until Release.
  Status Keep(int fd);
  // Drops the kept copy (fused stops for good).
  void Release();

  bool under_systemd() const;

 private:
  Result<UniqueFd> TakeKept();

  std::string socket_;
  bool from_holder_ = false;  // Take got the descriptor from the holder
  bool from_store_ = false;   // ... or from a socket in systemd's store
};

// Entry point of the holder process: argv is {exe, "--fuse-fd-holder",
// socket path}; descriptor 3 is the FUSE connection and 4 the listening
// socket.
int RunFuseFdHolder(int argc, char** argv);
inline constexpr const char* kFuseFdHolderFlag = "--fuse-fd-holder";

}  // namespace shorthorn::fused
