// Design notes: one pass over the words. Global flags (--json, --help,
// --version) are taken wherever they are, so "shorthornctl volume list --json"
// and "shorthornctl --json volume list" mean the same. The first two other
// words pick the command; only then are its options known, so a command
// option before the verb is a usage error rather than a guess. Values are
// checked here (sizes, counts, that tags are not empty, and the arguments
// named SIZE, COUNT, JOB, BACKUP-URL and SOURCE-URL) so that a typo is a
// usage error (exit 2) before anything is sent to the daemon. --help wins
// over every other error, so "shorthornctl volume create --help" works
// without a NAME.
#include "dbus/ctl/command_line.h"

#include <algorithm>
#include <sstream>

#include "dbus/ctl/backup_url.h"
#include "dbus/ctl/job_reference.h"
#include "dbus/ctl/size.h"

namespace shorthorn::ctl {
namespace {

constexpr char kTryHelp[] = "try 'shorthornctl --help'";

bool HasGroup(const std::vector<CommandSpec>& commands, std::string_view group) {
  return std::any_of(commands.begin(), commands.end(),
                     [&](const CommandSpec& c) { return c.group == group; });
}

const CommandSpec* FindCommand(const std::vector<CommandSpec>& commands, std::string_view group,
                               std::string_view verb) {
  for (const CommandSpec& c : commands) {
    if (c.group == group && c.verb == verb) return &c;
  }
  return nullptr;
}

std::string VerbList(const std::vector<CommandSpec>& commands, std::string_view group) {
  std::string list;
  for (const CommandSpec& c : commands) {
    if (c.group != group) continue;
    if (!list.empty()) list += ", ";
    list += c.verb;
  }
  return list;
}

const OptionSpec* FindLong(const CommandSpec& command, std::string_view name) {
  for (const OptionSpec& o : command.options) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

const OptionSpec* FindShort(const CommandSpec& command, char name) {
  for (const OptionSpec& o : command.options) {
    if (o.short_name != 0 && o.short_name == name) return &o;
  }
  return nullptr;
}

std::string CommandName(const CommandSpec& command) {
  return std::string(command.group) + " " + std::string(command.verb);
}

// Checks a positional argument by its name; the reason it is wrong, or "".
std::string CheckArgument(std::string_view name, const std::string& value) {
  Status status;
  if (name == "SIZE") {
    status = ParseSize(value).status();
  } else if (name == "COUNT") {
    status = ParseCount(value).status();
  } else if (name == "JOB") {
    status = ParseJobReference(value).status();
  } else if (name == "BACKUP-URL") {
    status = ParseBackupUrl(value).status();
  } else if (name == "SOURCE-URL") {
    status = ParseStandbySource(value).status();
  }
  return status.message();
}

ParsedCommandLine UsageError(std::string message) {
  ParsedCommandLine parsed;
  parsed.action = ParsedCommandLine::Action::kUsageError;
  parsed.text = std::move(message);
  return parsed;
}

std::string OptionSynopsis(const OptionSpec& o) {
  std::string text = "--" + std::string(o.name);
  if (o.type != ValueType::kFlag) text += " " + std::string(o.value_name);
  if (!o.required) text = "[" + text + "]";
  if (o.repeatable) text += "...";
  return text;
}

// Checks that every required option and argument is there and that no two
// options that exclude each other are both given; "" when fine.
std::string MissingPieces(const Invocation& inv) {
  const CommandSpec& c = *inv.command;
  std::string name = CommandName(c);
  if (inv.arguments.size() < c.arguments.size()) {
    return name + ": missing " + std::string(c.arguments[inv.arguments.size()]) +
           "; usage: shorthornctl " + CommandSynopsis(c);
  }
  for (const OptionSpec& o : c.options) {
    if (!o.conflicts_with.empty() && inv.Has(o.name) && inv.Has(o.conflicts_with)) {
      return name + ": options --" + std::string(o.name) + " and --" +
             std::string(o.conflicts_with) + " exclude each other";
    }
    if (!o.required || inv.Has(o.name)) continue;
    if (o.required_unless.empty()) {
      return name + ": option --" + std::string(o.name) +
             " is required; usage: " + CommandSynopsis(c);
    }
    if (!inv.Has(o.required_unless)) {
      return name + ": option --" + std::string(o.name) + " is required without --" +
             std::string(o.required_unless) + "; usage: " + CommandSynopsis(c);
    }
  }
  return "";
}

}  // namespace

bool Invocation::Has(std::string_view option) const {
  return options.find(std::string(option)) != options.end();
}

std::string Invocation::Value(std::string_view option) const {
  auto it = options.find(std::string(option));
  return it == options.end() || it->second.empty() ? "" : it->second.back();
}

std::vector<std::string> Invocation::Values(std::string_view option) const {
  auto it = options.find(std::string(option));
  return it == options.end() ? std::vector<std::string>{} : it->second;
}

ParsedCommandLine ParseCommandLine(const std::vector<CommandSpec>& commands,
                                   const std::vector<std::string>& args) {
  bool help = false;
  bool version = false;
  bool json = false;
  bool options_ended = false;
  std::string group;
  const CommandSpec* command = nullptr;
  Invocation inv;
  std::string error;  // the first usage error; reported unless --help is given

  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    bool is_option = !options_ended && word.size() > 1 && word[0] == '-';
    if (is_option && word == "--") {
      options_ended = true;
      continue;
    }
    if (is_option && (word == "--help" || word == "-h")) {
      help = true;
      continue;
    }
    if (is_option && word == "--version") {
      version = true;
      continue;
    }
    if (is_option && word == "--json") {
      json = true;
      continue;
    }
    if (!is_option) {
      if (group.empty()) {
        group = word;
        if (!HasGroup(commands, group) && error.empty()) {
          error = "unknown command '" + word + "'; " + kTryHelp;
        }
      } else if (command == nullptr && error.empty()) {
        command = FindCommand(commands, group, word);
        if (command == nullptr) {
          error = group + ": unknown subcommand '" + word + "' (" + VerbList(commands, group) + ")";
        }
        inv.command = command;
      } else if (command != nullptr) {
        if (inv.arguments.size() < command->arguments.size()) {
          std::string bad = CheckArgument(command->arguments[inv.arguments.size()], word);
          if (!bad.empty() && error.empty()) error = CommandName(*command) + ": " + bad;
          inv.arguments.push_back(word);
        } else if (error.empty()) {
          error = CommandName(*command) + ": unexpected argument '" + word + "'";
        }
      }
      continue;
    }
    // An option of the command.
    if (command == nullptr) {
      if (error.empty()) error = "unknown option " + word + "; " + kTryHelp;
      continue;
    }
    const OptionSpec* spec = nullptr;
    std::string value;
    bool has_inline_value = false;
    if (word.starts_with("--")) {
      std::string name = word.substr(2);
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
        has_inline_value = true;
      }
      spec = FindLong(*command, name);
    } else if (word.size() == 2) {
      spec = FindShort(*command, word[1]);
    }
    if (spec == nullptr) {
      if (error.empty()) error = CommandName(*command) + ": unknown option " + word;
      continue;
    }
    std::string where = CommandName(*command) + ": option --" + std::string(spec->name);
    if (spec->type == ValueType::kFlag) {
      if (has_inline_value && error.empty()) error = where + " takes no value";
    } else if (!has_inline_value) {
      if (i + 1 >= args.size()) {
        if (error.empty()) error = where + " needs a value (" + std::string(spec->value_name) + ")";
        continue;
      }
      value = args[++i];
    }
    if (spec->type == ValueType::kSize && error.empty()) {
      if (Result<uint64_t> size = ParseSize(value); !size.ok()) {
        error = where + ": " + size.status().message();
      }
    }
    if (spec->type == ValueType::kCount && error.empty()) {
      if (Result<uint32_t> count = ParseCount(value); !count.ok()) {
        error = where + ": " + count.status().message();
      }
    }
    if (spec->type == ValueType::kTags && value.empty() && error.empty()) {
      error = where + ": no tags given (e.g. ssd,zone=a)";
    }
    auto& values = inv.options[std::string(spec->name)];
    if (!values.empty() && !spec->repeatable && error.empty()) {
      error = where + " is given more than once";
    }
    values.push_back(value);
  }

  ParsedCommandLine parsed;
  if (help) {
    parsed.action = ParsedCommandLine::Action::kHelp;
    if (command != nullptr) {
      parsed.text = CommandHelp(*command);
    } else if (!group.empty() && HasGroup(commands, group)) {
      parsed.text = GroupHelp(commands, group);
    } else {
      parsed.text = ProgramHelp(commands);
    }
    return parsed;
  }
  if (version) {
    parsed.action = ParsedCommandLine::Action::kVersion;
    return parsed;
  }
  if (!error.empty()) return UsageError(error);
  if (group.empty()) return UsageError(std::string("no command given; ") + kTryHelp);
  if (command == nullptr) {
    return UsageError(group + ": missing subcommand (" + VerbList(commands, group) + ")");
  }
  if (std::string missing = MissingPieces(inv); !missing.empty()) return UsageError(missing);
  inv.json = json;
  parsed.action = ParsedCommandLine::Action::kRun;
  parsed.invocation = std::move(inv);
  return parsed;
}

std::string CommandSynopsis(const CommandSpec& command) {
  std::string text = CommandName(command);
  for (std::string_view a : command.arguments) text += " " + std::string(a);
  for (const OptionSpec& o : command.options) text += " " + OptionSynopsis(o);
  return text;
}

std::string ProgramHelp(const std::vector<CommandSpec>& commands) {
  std::ostringstream out;
  out << "Usage: shorthornctl [--json] COMMAND [ARGUMENTS] [OPTIONS]\n\n"
         "Manages Shorthorn volumes through shorthorn-fused (org.shorthorn.Storage1 on the\n"
         "system bus, or on DBUS_SYSTEM_BUS_ADDRESS when set).\n\nCommands:\n";
  size_t width = 0;
  for (const CommandSpec& c : commands) width = std::max(width, CommandName(c).size());
  for (const CommandSpec& c : commands) {
    std::string name = CommandName(c);
    out << "  " << name << std::string(width - name.size() + 2, ' ') << c.summary << "\n";
  }
  out << "\nGlobal options:\n"
         "  --json      machine-readable output (one JSON document on stdout)\n"
         "  -h, --help  show help (of a command: shorthornctl volume create --help)\n"
         "  --version   show the version\n\n"
         "Exit status: 0 success, 1 failure, 2 usage, 3 NotFound, 4 AlreadyExists,\n"
         "5 InvalidArgument, 6 Busy, 7 NotAuthorized, 8 Unavailable, 9 Stale, 10 NoSpace,\n"
         "11 IOError, 12 Protocol, 13 LimitExceeded. See shorthornctl(1).\n";
  return out.str();
}

std::string GroupHelp(const std::vector<CommandSpec>& commands, std::string_view group) {
  std::ostringstream out;
  out << "Usage: shorthornctl " << group << " SUBCOMMAND [ARGUMENTS] [OPTIONS]\n\n";
  for (const CommandSpec& c : commands) {
    if (c.group != group) continue;
    out << "  shorthornctl " << CommandSynopsis(c) << "\n      " << c.summary << "\n";
  }
  out << "\nshorthornctl " << group << " SUBCOMMAND --help shows one subcommand.\n";
  return out.str();
}

std::string CommandHelp(const CommandSpec& command) {
  std::ostringstream out;
  out << "Usage: shorthornctl " << CommandSynopsis(command) << "\n\n"
      << command.description << "\n";
  out << "\nOptions:\n";
  std::vector<std::pair<std::string, std::string_view>> rows;
  for (const OptionSpec& o : command.options) {
    std::string left = o.short_name != 0 ? std::string("-") + o.short_name + ", " : "    ";
    left += "--" + std::string(o.name);
    if (o.type != ValueType::kFlag) left += " " + std::string(o.value_name);
    rows.emplace_back(left, o.help);
  }
  rows.emplace_back("    --json", "machine-readable output");
  rows.emplace_back("-h, --help", "show this help");
  size_t width = 0;
  for (const auto& [left, help] : rows) width = std::max(width, left.size());
  for (const auto& [left, help] : rows) {
    out << "  " << left << std::string(width - left.size() + 2, ' ') << help << "\n";
  }
  return out.str();
}

}  // namespace shorthorn::ctl
