// Reads a daemon's configuration: an INI file (Boost.Program_options syntax,
// `key = value`, `#` comments) and the command line, where every key is also
// a `--key value` option and the command line wins. Unknown keys and bad
// values are errors naming the file (or "command line"), the key and the
// reason. Pure apart from opening the file; thread-compatible.
#pragma once

#include <boost/program_options.hpp>
#include <istream>
#include <string>

#include "common/status.h"

namespace shorthorn::config {

namespace po = boost::program_options;

struct LoadedConfig {
  po::variables_map values;
  std::string file;      // the file read ("" when none existed)
  bool help = false;     // --help was given: print Usage and exit 0
  bool version = false;  // --version was given
};

// `keys` are the daemon's settings. `default_file` is read when present;
// --config FILE names another one, which must then exist.
Result<LoadedConfig> Load(const po::options_description& keys, int argc, const char* const* argv,
                          const std::string& default_file);

// The same from an already open stream (for tests); `file_name` is used in
// messages.
Result<LoadedConfig> LoadFromStream(const po::options_description& keys, int argc,
                                    const char* const* argv, std::istream& file,
                                    const std::string& file_name);

// Text for --help: program name, the options with their defaults.
std::string Usage(const std::string& program, const po::options_description& keys);

// An error about one key, worded like the loader's own errors.
Status KeyError(const std::string& file, const std::string& key, const std::string& reason);

}  // namespace shorthorn::config
