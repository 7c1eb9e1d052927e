// Helpers shared by the fuzz targets (tests/fuzz/*_fuzz.cc, doc/fuzzing.md):
// a failed property check that aborts (so libFuzzer and the replay test both
// report it as a crash, with the input), the input as a string, and a
// scratch directory per process for targets that must go through files.
// Test-only; the targets run one input at a time on one thread.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace shorthorn::fuzz {

// A property the code under test promises does not hold: a bug, reported
// like a crash so that the input is kept.
[[noreturn]] inline void Fail(std::string_view what) {
  std::fprintf(stderr, "fuzz check failed: %.*s\n", static_cast<int>(what.size()), what.data());
  std::fflush(stderr);
  std::abort();
}

inline void Check(bool ok, std::string_view what) {
  if (!ok) Fail(what);
}

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// One directory per process, removed at exit (not after a crash: under
// scripts/fuzz.sh, SHORTHORN_FUZZ_SCRATCH names a directory it removes
// after each target). Made on first use, under SHORTHORN_FUZZ_SCRATCH, else
// /dev/shm when it exists (fsync is free there), else the temp directory.
inline const std::string& ScratchDir() {
  static const std::string dir = [] {
    std::error_code ec;
    const char* env = std::getenv("SHORTHORN_FUZZ_SCRATCH");
    std::filesystem::path base = env != nullptr && *env != '\0' ? std::filesystem::path(env)
                                 : std::filesystem::is_directory("/dev/shm", ec)
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    std::string tmpl = (base / "shorthorn-fuzz-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) Fail("mkdtemp " + tmpl);
    static std::string for_exit = tmpl;
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(for_exit, ignored);
    });
    return tmpl;
  }();
  return dir;
}

}  // namespace shorthorn::fuzz
