// fuse_floor: the "FUSE floor" and the "FUSE ceiling" of bench/run.sh. It
// serves ONE regular file through shorthorn-fused's own FUSE frontend
// (fused/fuse: FuseFrontend and the request handlers of fuse_ops.cc, with
// fused's settings: DESIGN §4), over a Backend of its own instead of the
// replicated engine:
//
//   --backend file  (default; the fuse-floor row) a trivial io_uring backend
//                   on a file on a local disk: the best a loop device on
//                   Shorthorn's FUSE file can do on this machine, so what
//                   Shorthorn adds above it is the engine's and the
//                   replicas' cost;
//   --backend null  (the fuse-null row) answers every request at once
//                   without I/O (reads return zeros): what the frontend, the
//                   kernel's FUSE and the loop device cost on their own.
//
// Because the frontend is fused's, every change to it moves fused, the
// floor and the ceiling together.
//
//   fuse_floor --mount DIR [--backend file|null] [--backing FILE]
//              [--size BYTES] [--name NAME] [--threads N]
//              [--max-background N] [--max-request BYTES] [--buffered]
//              [--ring-entries N] [--coop-taskrun] [--tmp-dir DIR]
//              [--fuse-uring [--fuse-uring-depth N] [--own-io-thread]]
//
// The file appears as DIR/NAME (default "floor") once the mount is ready; its
// size is the backing file's (or --size with the null backend), fixed.
// SIGTERM/SIGINT or an unmount ends it: the file is removed, what is in
// flight is answered, DIR is unmounted, and it prints the frontend's request
// counts (and the most requests the file backend had in flight) as its last
// line. While something (a loop device) still holds the file, the unmount is
// lazy and the exit waits until it lets go, as fused's does.
//
// Design notes
//
// The frontend keeps the /dev/fuse descriptor in a holder process (started
// from this binary: `fuse_floor --fuse-fd-holder SOCKET`, as fused does
// with its own binary) and its session state in a state directory, so that
// a restarted fused can take the connection over. The floor never takes
// over: it makes a fresh state directory under --tmp-dir for each run,
// never looks at systemd's descriptor store (NOTIFY_SOCKET and LISTEN_FDS
// are dropped), and at exit FuseFrontend::Stop releases the holder (which
// then exits) and removes the state file; the floor removes the directory.
//
// Threads, and what each calls:
//   * main: options, backend, frontend, then waits for a signal (checking
//     once a second that DIR is still mounted); at the end RemoveVolume,
//     Backend::Close (answers what is in flight), FuseFrontend::Stop.
//   * the frontend's FUSE workers (fused's pool) call FileBackend::Read/
//     Write/Unmap/Flush: they copy write data into a pooled 4 KiB-aligned
//     buffer (the frontend's buffer is reused once the call returns), queue
//     one SQE under mutex_ and io_uring_submit; they never wait for the
//     disk. NullBackend answers on the worker itself.
//   * the file backend's completion thread: the only reader of the CQ ring;
//     it runs the Backend callbacks (the frontend's fuse_reply_*).
// (The backends themselves: fuse_floor_backends.h.)
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>

#include "bench/fuse_floor_backends.h"
#include "common/daemon_signals.h"
#include "common/file_util.h"
#include "common/log.h"
#include "fused/core/io_stats.h"
#include "fused/fuse/fd_keeper.h"
#include "fused/fuse/fuse_frontend.h"

namespace {

using shorthorn::Status;
using shorthorn::fuse_floor::FileBackend;
using shorthorn::fuse_floor::kAlignment;
using shorthorn::fuse_floor::NullBackend;
using shorthorn::fuse_floor::Options;
using shorthorn::fused::Backend;

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: fuse_floor --mount DIR [--backend file|null] [--backing FILE]\n"
               "                  [--size BYTES] [--name NAME] [--threads N]\n"
               "                  [--max-background N] [--max-request BYTES] [--buffered]\n"
               "                  [--ring-entries N] [--coop-taskrun] [--tmp-dir DIR]\n"
               "                  [--fuse-uring [--fuse-uring-depth N] [--own-io-thread]]\n"
               "Serves one file as DIR/NAME (default name 'floor') through shorthorn-fused's\n"
               "FUSE frontend. --backend file (default): FILE through io_uring, O_DIRECT\n"
               "unless --buffered; --backend null: no I/O, reads return zeros, size from\n"
               "--size or FILE. Defaults (fused's): 8 threads (pool to 32), max-background\n"
               "256, max-request 1048576; ring 512; state dir made under --tmp-dir.\n"
               "--fuse-uring: FUSE over io_uring when the kernel offers it (root: echo Y >\n"
               "/sys/module/fuse/parameters/enable_uring), N entries per CPU (default 32);\n"
               "the file backend's I/O then runs on the ring's threads unless --own-io-thread.\n");
}

bool ParseU64(const char* text, uint64_t max, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v == 0 || v > max) return false;
  *out = v;
  return true;
}

// One long option: its name, whether it takes a value and what sets it
// (false: a bad value).
struct Flag {
  const char* name;
  int has_arg;
  std::function<bool(const char*)> set;
};

// Returns false (after printing why) when the command line is not usable.
bool ParseOptions(int argc, char** argv, Options* o) {
  auto text = [](std::string* field) {
    return [field](const char* v) {
      *field = v;
      return true;
    };
  };
  auto yes = [](bool* field) {
    return [field](const char*) {
      *field = true;
      return true;
    };
  };
  // A number in [1, max] that is a multiple of `multiple`.
  auto number = [](auto* field, uint64_t max, uint64_t multiple = 1) {
    return [=](const char* v) {
      uint64_t n;
      if (!ParseU64(v, max, &n) || n % multiple != 0) return false;
      *field = static_cast<std::remove_pointer_t<decltype(field)>>(n);
      return true;
    };
  };
  const Flag flags[] = {
      {"mount", required_argument, text(&o->mount_point)},
      {"backend", required_argument,
       [o](const char* v) {
         o->backend = v;
         return o->backend == "file" || o->backend == "null";
       }},
      {"backing", required_argument, text(&o->backing_file)},
      {"size", required_argument, number(&o->size, uint64_t{1} << 50, kAlignment)},
      {"name", required_argument, text(&o->name)},
      {"threads", required_argument, number(&o->threads, 1024)},
      {"max-background", required_argument, number(&o->max_background, 65535)},
      {"max-request", required_argument, number(&o->max_request, 1u << 30, kAlignment)},
      {"buffered", no_argument, yes(&o->buffered)},
      {"ring-entries", required_argument, number(&o->ring_entries, 32768)},
      {"coop-taskrun", no_argument, yes(&o->coop_taskrun)},
      {"tmp-dir", required_argument, text(&o->tmp_dir)},
      {"fuse-uring", no_argument, yes(&o->fuse_uring)},
      {"fuse-uring-depth", required_argument, number(&o->fuse_uring_depth, 4096)},
      {"own-io-thread", no_argument, yes(&o->own_io_thread)},
  };
  constexpr int kCount = sizeof(flags) / sizeof(flags[0]);
  const int kHelp = kCount + 1;
  option longopts[kCount + 2] = {};
  for (int i = 0; i < kCount; ++i) longopts[i] = {flags[i].name, flags[i].has_arg, nullptr, i + 1};
  longopts[kCount] = {"help", no_argument, nullptr, kHelp};
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, nullptr)) != -1) {
    if (c == kHelp) {
      Usage(stdout);
      std::exit(0);
    }
    if (c < 1 || c > kCount) {
      Usage(stderr);
      return false;
    }
    if (!flags[c - 1].set(optarg)) {
      std::fprintf(stderr, "fuse_floor: bad value '%s' for --%s\n", optarg, flags[c - 1].name);
      return false;
    }
  }
  bool sized = !o->backing_file.empty() || (o->backend == "null" && o->size > 0);
  if (optind != argc || o->mount_point.empty() || !sized || o->name.empty() ||
      o->name.find('/') != std::string::npos) {
    Usage(stderr);
    return false;
  }
  if (o->tmp_dir.empty()) {
    const char* env = std::getenv("TMPDIR");
    o->tmp_dir = env != nullptr && *env != '\0' ? env : "/tmp";
  }
  return true;
}

// True while `path` (canonical, as the frontend resolved it) is a mount
// point in this namespace. Reads mountinfo, so it never sends a FUSE request.
bool IsMounted(const std::string& path) {
  std::string escaped;
  for (char c : path) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\\') {
      char octal[8];
      std::snprintf(octal, sizeof(octal), "\\%03o", static_cast<unsigned char>(c));
      escaped += octal;
    } else {
      escaped += c;
    }
  }
  std::ifstream in("/proc/self/mountinfo");
  std::string id, parent, device, root, point, rest;
  while (in >> id >> parent >> device >> root >> point) {
    if (point == escaped) return true;
    std::getline(in, rest);
  }
  return false;
}

// One line with the frontend's figures of the file (and the backend's peak).
void PrintStats(const Options& o, const shorthorn::fused::IoStats* stats, uint64_t peak) {
  using shorthorn::fused::IoOp;
  auto get = [&](IoOp op) { return stats ? stats->Get(op) : shorthorn::fused::IoFigures{}; };
  auto r = get(IoOp::kRead), w = get(IoOp::kWrite), f = get(IoOp::kFlush), d = get(IoOp::kDiscard);
  auto mean_us = [](const shorthorn::fused::IoFigures& x) {
    return x.requests ? static_cast<double>(x.latency_ns) / x.requests / 1000.0 : 0.0;
  };
  std::fprintf(
      stderr,
      "fuse_floor: %llu reads, %llu writes, %llu fsyncs, %llu discards, %llu errors; "
      "mean in-daemon latency read %.1f us, write %.1f us; %s backend, at most %llu "
      "in flight\n",
      static_cast<unsigned long long>(r.requests), static_cast<unsigned long long>(w.requests),
      static_cast<unsigned long long>(f.requests), static_cast<unsigned long long>(d.requests),
      static_cast<unsigned long long>(r.errors + w.errors + f.errors + d.errors), mean_us(r),
      mean_us(w), o.backend.c_str(), static_cast<unsigned long long>(peak));
}

// Waits for SIGTERM/SIGINT (blocked in every thread), or for the mount to
// go away; SIGHUP is ignored.
void WaitForStop(const sigset_t& signals, const std::string& mount_point) {
  timespec second{1, 0};
  for (;;) {
    int sig = sigtimedwait(&signals, nullptr, &second);
    if (sig == SIGTERM || sig == SIGINT) return;
    if (sig < 0 && errno == EAGAIN && !IsMounted(mount_point)) {
      std::fprintf(stderr, "fuse_floor: %s was unmounted\n", mount_point.c_str());
      return;
    }
  }
}

int Serve(const Options& opts, const sigset_t& signals, const std::string& state_dir) {
  std::shared_ptr<Backend> backend;
  FileBackend* file = nullptr;
  if (opts.backend == "file") {
    auto f = std::make_shared<FileBackend>(opts);
    Status s = f->Open();
    if (!s.ok()) {
      std::fprintf(stderr, "fuse_floor: %s\n", s.message().c_str());
      return 1;
    }
    file = f.get();
    backend = std::move(f);
  } else {
    uint64_t size = opts.size;
    struct stat st;
    if (size == 0) {
      if (::stat(opts.backing_file.c_str(), &st) != 0 || st.st_size <= 0) {
        std::fprintf(stderr, "fuse_floor: cannot size the null file from %s\n",
                     opts.backing_file.c_str());
        return 1;
      }
      size = static_cast<uint64_t>(st.st_size) / kAlignment * kAlignment;
    }
    backend = std::make_shared<NullBackend>(size);
  }

  shorthorn::fused::FuseFrontend fuse({opts.mount_point, opts.threads, opts.max_background,
                                       opts.max_request, state_dir, opts.fuse_uring,
                                       opts.fuse_uring_depth});
  Status s = fuse.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "fuse_floor: %s\n", s.message().c_str());
    (void)backend->Close();
    return 1;
  }
  auto path = fuse.AddVolume(opts.name, backend);
  if (!path.ok()) {
    std::fprintf(stderr, "fuse_floor: %s\n", path.status().message().c_str());
    (void)backend->Close();
    fuse.Stop();
    return 1;
  }
  auto stats = fuse.Stats(opts.name);
  std::fprintf(stderr,
               "fuse_floor: serving %s as %s (%llu bytes) on shorthorn-fused's FUSE frontend, "
               "%s backend%s, %u threads (pool to %u), max_background %u, max_request %u\n",
               opts.backend == "file" ? opts.backing_file.c_str() : "nothing", path->c_str(),
               static_cast<unsigned long long>(backend->Size()), opts.backend.c_str(),
               opts.backend == "null" ? ""
               : opts.buffered        ? " (buffered, io_uring)"
                                      : " (O_DIRECT, io_uring)",
               opts.threads, std::max(opts.threads * 4, 16u), opts.max_background,
               opts.max_request);

  WaitForStop(signals, fuse.mount_point());

  // The file first (new requests get ENOENT), then what is in flight is
  // answered while the session is still there, then the unmount.
  fuse.RemoveVolume(opts.name);
  (void)backend->Close();
  const uint64_t ring_requests = fuse.RingRequests();
  fuse.Stop();
  if (opts.fuse_uring) {
    std::fprintf(stderr, "fuse_floor: %llu requests came through FUSE over io_uring\n",
                 static_cast<unsigned long long>(ring_requests));
  }
  PrintStats(opts, stats.get(), file != nullptr ? file->PeakInFlight() : 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  shorthorn::TuneAllocator();
  // The frontend's holder process is this binary (/proc/self/exe).
  if (argc >= 2 && std::strcmp(argv[1], shorthorn::fused::kFuseFdHolderFlag) == 0) {
    shorthorn::SetLogComponent("fuse-holder");
    shorthorn::SetLogLevel(shorthorn::LogLevel::kWarning);
    return shorthorn::fused::RunFuseFdHolder(argc, argv);
  }
  Options opts;
  if (!ParseOptions(argc, argv, &opts)) return 2;
  shorthorn::SetLogComponent("fuse_floor");
  shorthorn::SetLogLevel(shorthorn::LogLevel::kWarning);
  // Never a service: the connection is the floor's alone and ends with it.
  for (const char* name : {"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}) {
    ::unsetenv(name);
  }

  // Signals are taken by sigtimedwait; no other thread may receive them.
  const sigset_t signals = shorthorn::BlockStopSignals();
  // As fused: memory reclaim must not wait on the daemon under a loop device.
  if (!shorthorn::SetIoFlusher()) {
    std::fprintf(stderr, "fuse_floor: PR_SET_IO_FLUSHER refused\n");
  }

  std::string state_dir = opts.tmp_dir + "/fuse_floor.XXXXXX";
  if (::mkdtemp(state_dir.data()) == nullptr) {
    std::fprintf(stderr, "fuse_floor: create a state directory under %s: %s\n",
                 opts.tmp_dir.c_str(), std::strerror(errno));
    return 1;
  }
  int rc = Serve(opts, signals, state_dir);
  if (::rmdir(state_dir.c_str()) != 0) {
    std::fprintf(stderr, "fuse_floor: remove %s: %s\n", state_dir.c_str(), std::strerror(errno));
    rc = rc == 0 ? 1 : rc;
  }
  return rc;
}
