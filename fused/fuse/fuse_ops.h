// The request handlers of the volume file system (fuse_ops.cc): libfuse's
// low-level callback table and the custom I/O functions. Their userdata is
// the FuseFrontend, whose public handler interface (Admit, Hold, FindByIno,
// ReadRequest, ...) they call; FuseFrontend builds its sessions with them.
// Internal to fused/fuse.
#pragma once

struct fuse_lowlevel_ops;
struct fuse_custom_io;

namespace shorthorn::fused {

// Lookup, getattr, readdir and open of the root and the volume files; read,
// write, fsync and fallocate(PUNCH_HOLE) handed to the volume's Backend;
// EPERM for anything that would create, remove or rename.
const fuse_lowlevel_ops& FuseOps();
// Reads requests and writes replies through FuseFrontend::ReadRequest and
// WriteReply (which record the INIT request for a takeover).
const fuse_custom_io& FuseIo();

}  // namespace shorthorn::fused
