// The command line of shorthornctl: a table of commands (CommandSpec), each a
// group and a verb ("volume create") with positional arguments and options
// (OptionSpec), and the parser that matches argv against the table. Adding a
// command is adding a row (see commands.cc); parsing, --help texts and the
// checks of option values all come from the row. Pure; no I/O.
//
// Syntax: shorthornctl [GLOBAL...] GROUP VERB [ARG|OPTION...]. Options may
// come anywhere after the program name, as --name VALUE, --name=VALUE or -x
// VALUE; "--" ends the options. Global options: --json, -h/--help, --version.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace shorthorn::ctl {

enum class ValueType {
  kFlag,    // no value
  kString,  // any text
  kSize,    // checked with ParseSize ("10G")
  kCount,   // checked with ParseCount ("3")
  kTags,    // replicad tags, "ssd,zone=a": only checked to be non-empty (the daemon judges each)
};

struct OptionSpec {
  std::string_view name;  // long name without "--"
  char short_name = 0;    // 0 for none
  ValueType type = ValueType::kFlag;
  std::string_view value_name;  // "SIZE", for help
  std::string_view help;
  bool required = false;
  bool repeatable = false;
  // A required option that may be left out when this other option is given
  // ("from-snapshot" for --size of volume create); "" for none.
  std::string_view required_unless = "";
  // An option that may not be given with this one ("file" for --maintenance
  // of volume attach); "" for none.
  std::string_view conflicts_with = "";
};

struct Invocation;
class StorageClient;
class Output;

// Runs a parsed command; the Status's kind picks the exit code.
using Handler = Status (*)(const Invocation& invocation, StorageClient& client, Output& output);

struct CommandSpec {
  std::string_view group;  // "volume"
  std::string_view verb;   // "create"
  // Positional, all required: {"NAME"}. SIZE, COUNT, JOB, BACKUP-URL and
  // SOURCE-URL are checked as the parser reads them (ParseSize, ParseCount,
  // ParseJobReference, ParseBackupUrl, ParseStandbySource).
  std::vector<std::string_view> arguments;
  std::vector<OptionSpec> options;
  std::string_view summary;      // one line, for the command list
  std::string_view description;  // a paragraph, for the command's --help
  Handler handler = nullptr;
};

// A command line matched against the table.
struct Invocation {
  const CommandSpec* command = nullptr;
  std::vector<std::string> arguments;                       // in order
  std::map<std::string, std::vector<std::string>> options;  // by long name; flags map to {""}
  bool json = false;

  bool Has(std::string_view option) const;
  // The last value given for `option` ("" when absent).
  std::string Value(std::string_view option) const;
  std::vector<std::string> Values(std::string_view option) const;
};

// What the command line asks for.
struct ParsedCommandLine {
  enum class Action { kRun, kHelp, kVersion, kUsageError };
  Action action = Action::kUsageError;
  Invocation invocation;  // kRun
  std::string text;       // kHelp: the help; kUsageError: the message
};

// Matches `args` (argv without the program name) against `commands`.
ParsedCommandLine ParseCommandLine(const std::vector<CommandSpec>& commands,
                                   const std::vector<std::string>& args);

// The help of the whole program, of one group, or of one command.
std::string ProgramHelp(const std::vector<CommandSpec>& commands);
std::string GroupHelp(const std::vector<CommandSpec>& commands, std::string_view group);
std::string CommandHelp(const CommandSpec& command);
// "volume create NAME --size SIZE [--replica HOST:PORT]..."
std::string CommandSynopsis(const CommandSpec& command);

}  // namespace shorthorn::ctl
