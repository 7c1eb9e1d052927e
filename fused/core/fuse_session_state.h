// FuseSessionState: what a new fused needs to serve a FUSE connection that an
// earlier fused mounted and answered INIT on (a takeover after a crash or a
// planned restart): the kernel's INIT request, the request size agreed on,
// and the inode number and size of every volume file the kernel may still
// hold open. Kept in <state-dir>/fuse-session.json, written atomically.
// Pure apart from Load/Save.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/status.h"

namespace shorthorn::fused {

struct FuseInitRequest {
  uint32_t major = 0;
  uint32_t minor = 0;
  uint32_t max_readahead = 0;
  uint32_t flags = 0;
  uint32_t flags2 = 0;
};

// flags2 bit of FUSE_HAS_RESEND (1 << 39 in the 64-bit flag set): the
// kernel can resend the requests a dead daemon read but never answered
// (FUSE_NOTIFY_RESEND, Linux 6.9, protocol 7.40).
inline constexpr uint32_t kFuseHasResendFlag2 = 1u << (39 - 32);

struct FuseSessionState {
  // The mount's device ("0:53"), to tell this connection from an older one.
  std::string mount_device;
  FuseInitRequest init;
  uint32_t max_write = 0;
  uint64_t next_ino = 2;
  struct File {
    uint64_t ino = 0;
    uint64_t size = 0;
  };
  std::map<std::string, File> volumes;

  bool kernel_can_resend() const { return (init.flags2 & kFuseHasResendFlag2) != 0; }
};

std::string EncodeSessionState(const FuseSessionState& state);
// Checks every field (the file is input like any other): InvalidArgument
// naming the field when something is out of range.
Result<FuseSessionState> DecodeSessionState(const std::string& text);

Status SaveSessionState(const std::string& path, const FuseSessionState& state);
// NotFound when there is no file.
Result<FuseSessionState> LoadSessionState(const std::string& path);

}  // namespace shorthorn::fused
