// Design notes: the command line is parsed first and stored first; Boost
// keeps the first value stored for a key, so the command line wins over the
// file. Exceptions from Boost stop here: every error leaves as a Status.
#include "config/config_loader.h"

#include <fstream>
#include <sstream>

namespace shorthorn::config {
namespace {

po::options_description GenericOptions() {
  po::options_description generic("Generic options");
  generic.add_options()("help", "print this help and exit")(
      "version", "print the version and exit")("config", po::value<std::string>(),
                                               "configuration file to read");
  return generic;
}

// Boost.Program_options (1.81) makes an error's message by replacing each
// %name% placeholder of its template until none is left, so a value that
// holds its own placeholder ("port = %value%") makes what() loop forever,
// growing the string (found by tests/fuzz/daemon_config_fuzz.cc). When a
// substituted value holds a '%', the message comes from a copy whose '%'
// are replaced by '?'.
class PercentFreeError : public po::error_with_option_name {
 public:
  explicit PercentFreeError(const po::error_with_option_name& e) : po::error_with_option_name(e) {}
  // Replaces every '%' in the substituted values; false when there was none.
  bool Defuse() {
    bool changed = false;
    for (auto& [name, value] : m_substitutions) {
      for (char& c : value) {
        if (c == '%') c = '?', changed = true;
      }
    }
    return changed;
  }
};

std::string What(const po::error& e) {
  auto* named = dynamic_cast<const po::error_with_option_name*>(&e);
  if (named == nullptr) return e.what();
  PercentFreeError copy(*named);
  return copy.Defuse() ? std::string(copy.what()) : std::string(e.what());
}

std::string ExceptionKey(const po::error& e) {
  if (auto* named = dynamic_cast<const po::error_with_option_name*>(&e)) {
    std::string key = named->get_option_name();
    while (!key.empty() && key[0] == '-') key.erase(0, 1);
    return key;
  }
  return "";
}

std::string ExceptionReason(const po::error& e) {
  if (dynamic_cast<const po::unknown_option*>(&e)) return "unknown key";
  if (dynamic_cast<const po::invalid_option_value*>(&e))
    return std::string("invalid value: ") + What(e);
  if (dynamic_cast<const po::multiple_occurrences*>(&e)) return "given more than once";
  return What(e);
}

Status ErrorFor(const std::string& where, const po::error& e) {
  std::string key = ExceptionKey(e);
  if (key.empty()) return Status(ErrorKind::kInvalidArgument, "config " + where + ": " + What(e));
  return KeyError(where, key, ExceptionReason(e));
}

}  // namespace

Status KeyError(const std::string& file, const std::string& key, const std::string& reason) {
  return Status(ErrorKind::kInvalidArgument, "config " + file + ": key '" + key + "': " + reason);
}

Result<LoadedConfig> LoadFromStream(const po::options_description& keys, int argc,
                                    const char* const* argv, std::istream& file,
                                    const std::string& file_name) {
  LoadedConfig out;
  po::options_description all;
  all.add(GenericOptions()).add(keys);
  try {
    po::store(po::command_line_parser(argc, argv).options(all).run(), out.values);
  } catch (const po::error& e) {
    return ErrorFor("command line", e);
  }
  out.help = out.values.count("help") > 0;
  out.version = out.values.count("version") > 0;
  out.file = file_name;
  try {
    if (!file_name.empty()) po::store(po::parse_config_file(file, keys, false), out.values);
    po::notify(out.values);
  } catch (const po::error& e) {
    return ErrorFor(file_name, e);
  }
  return out;
}

Result<LoadedConfig> Load(const po::options_description& keys, int argc, const char* const* argv,
                          const std::string& default_file) {
  // Find --config without failing on the other options yet.
  std::string file = default_file;
  bool explicit_file = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      file = argv[i + 1];
      explicit_file = true;
    } else if (arg.rfind("--config=", 0) == 0) {
      file = arg.substr(9);
      explicit_file = true;
    }
  }
  std::ifstream in(file);
  if (!in) {
    if (explicit_file) {
      return Status(ErrorKind::kNotFound, "config " + file + ": cannot be opened");
    }
    std::istringstream empty;
    return LoadFromStream(keys, argc, argv, empty, "");
  }
  return LoadFromStream(keys, argc, argv, in, file);
}

std::string Usage(const std::string& program, const po::options_description& keys) {
  std::ostringstream out;
  po::options_description all;
  all.add(GenericOptions()).add(keys);
  out << "Usage: " << program << " [options]\n"
      << "Every setting can be given in the configuration file as `key = value` or on the\n"
      << "command line as --key value; the command line wins.\n\n"
      << all;
  return out.str();
}

}  // namespace shorthorn::config
