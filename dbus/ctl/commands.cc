// Design notes: the table is the single description of the command line;
// parsing, --help, the man page's synopsis (kept in step by a unit test) and
// the bash completion's word lists all follow it. The client is made only
// after the arguments are valid, so "--help", "--version" and usage errors
// never touch the bus and work without a daemon.
#include "dbus/ctl/commands.h"

#include <boost/json.hpp>

#include "dbus/ctl/exit_codes.h"
#include "dbus/ctl/output.h"
#include "dbus/ctl/volume_commands.h"

#ifndef SHORTHORN_VERSION
#define SHORTHORN_VERSION "unknown"
#endif

namespace shorthorn::ctl {
namespace {

constexpr OptionSpec kWait{
    "wait", 0, ValueType::kFlag, "",
    "wait until the operation has finished (it already does; kept for scripts)"};

std::vector<CommandSpec> MakeCommands() {
  return {
      {"volume",
       "create",
       {"NAME"},
       {{"size", 's', ValueType::kSize, "SIZE", "size, e.g. 10G (binary: K, M, G, T, P)", true},
        {"replica", 'r', ValueType::kString, "HOST:PORT",
         "a replicad to hold a replica; repeat for more (default: fused's replicads)", false, true},
        kWait},
       "create a volume",
       "Creates volume NAME of SIZE bytes with one replica on each given replicad\n"
       "(the daemon's configured replicads when none is given). The volume is detached.",
       VolumeCreate},
      {"volume",
       "list",
       {},
       {{"quiet", 'q', ValueType::kFlag, "", "print the names only, one a line"}},
       "list volumes",
       "Lists every volume: name, size, state, number of replicas and the device\n"
       "(loop device, or the FUSE file when attached with --file).",
       VolumeList},
      {"volume",
       "show",
       {"NAME"},
       {},
       "show one volume",
       "Shows every property of volume NAME and its replicas (address, replica name,\n"
       "mode: RW, WO while rebuilding, ERR, or - while detached).",
       VolumeShow},
      {"volume",
       "attach",
       {"NAME"},
       {{"file", 0, ValueType::kFlag, "", "expose the FUSE file only, no loop device"}, kWait},
       "attach a volume and print its device",
       "Attaches volume NAME: connects its replicas and exposes it as a loop device\n"
       "(/dev/loopN, also linked as /dev/shorthorn/NAME), or with --file as a file\n"
       "on shorthorn-fused's FUSE mount. Prints the device or file.",
       VolumeAttach},
      {"volume",
       "detach",
       {"NAME"},
       {kWait},
       "detach a volume",
       "Flushes volume NAME and releases its loop device and FUSE file. Fails with\n"
       "Busy (exit 6) while the device is in use, e.g. mounted.",
       VolumeDetach},
      {"volume",
       "delete",
       {"NAME"},
       {{"force", 'f', ValueType::kFlag, "",
         "forget replicas that cannot be reached instead of failing"},
        kWait},
       "delete a detached volume and its replicas",
       "Deletes volume NAME and its replicas on their replicads. The volume must be\n"
       "detached. With --force, replicas whose replicad cannot be reached are\n"
       "forgotten (their data stays on that replicad).",
       VolumeDelete},
  };
}

void ReportError(const Status& status, bool json, std::ostream& out, std::ostream& err) {
  err << "shorthornctl: " << status.message() << "\n";
  if (json) {
    out << boost::json::serialize(boost::json::object{
               {"error", boost::json::object{{"kind", ErrorKindName(status.kind())},
                                             {"message", status.message()},
                                             {"exit_code", ExitCodeFor(status.kind())}}}})
        << "\n";
  }
}

}  // namespace

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> commands = MakeCommands();
  return commands;
}

int RunCtl(const std::vector<std::string>& args, const ClientFactory& connect, std::ostream& out,
           std::ostream& err) {
  ParsedCommandLine parsed = ParseCommandLine(Commands(), args);
  switch (parsed.action) {
    case ParsedCommandLine::Action::kHelp:
      out << parsed.text;
      return kExitOk;
    case ParsedCommandLine::Action::kVersion:
      out << "shorthornctl " << SHORTHORN_VERSION << "\n";
      return kExitOk;
    case ParsedCommandLine::Action::kUsageError:
      err << "shorthornctl: " << parsed.text << "\n";
      return kExitUsage;
    case ParsedCommandLine::Action::kRun:
      break;
  }
  const Invocation& invocation = parsed.invocation;
  Result<std::unique_ptr<StorageClient>> client = connect();
  if (!client.ok()) {
    ReportError(client.status(), invocation.json, out, err);
    return ExitCodeFor(client.status().kind());
  }
  Output output(out, invocation.json);
  Status status = invocation.command->handler(invocation, **client, output);
  if (!status.ok()) {
    ReportError(status, invocation.json, out, err);
    return ExitCodeFor(status.kind());
  }
  return kExitOk;
}

}  // namespace shorthorn::ctl
