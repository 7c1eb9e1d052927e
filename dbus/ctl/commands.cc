// Design notes: the table is the single description of the command line;
// parsing, --help, the man page's synopsis (kept in step by a unit test) and
// the bash completion's word lists all follow it. The client is made only
// after the arguments are valid, so "--help", "--version" and usage errors
// never touch the bus and work without a daemon.
#include "dbus/ctl/commands.h"

#include <boost/json.hpp>

#include "dbus/ctl/backup_commands.h"
#include "dbus/ctl/exit_codes.h"
#include "dbus/ctl/job_commands.h"
#include "dbus/ctl/output.h"
#include "dbus/ctl/recurring_commands.h"
#include "dbus/ctl/replica_commands.h"
#include "dbus/ctl/snapshot_commands.h"
#include "dbus/ctl/volume_commands.h"

#ifndef SHORTHORN_VERSION
#define SHORTHORN_VERSION "unknown"
#endif

namespace shorthorn::ctl {
namespace {

// --wait on a command whose method returns when the change is done: kept so
// scripts can pass --wait to every command that changes something.
constexpr OptionSpec kWait{"wait", 0, ValueType::kFlag, "",
                           "accepted for scripts; the command returns when the change is done"};
// --wait on a command that starts a job (job_wait.h).
constexpr OptionSpec kWaitJob{
    "wait", 0, ValueType::kFlag, "",
    "wait until the job ends (progress on a terminal); exit status is the job's"};
// --replica-tags on the commands that place a new volume's replicas.
constexpr OptionSpec kReplicaTags{
    "replica-tags", 0, ValueType::kTags, "TAGS",
    "tags every replicad holding a replica must have, e.g. ssd,zone=a"};
// --target on the backup commands that name no backup URL.
constexpr OptionSpec kTarget{
    "target", 0, ValueType::kString, "URL",
    "backup target, file:///DIR or s3://BUCKET/PREFIX (default: fused's backup-target)"};

std::vector<CommandSpec> MakeCommands() {
  return {
      {"volume",
       "create",
       {"NAME"},
       {{"size", 's', ValueType::kSize, "SIZE",
         "size, e.g. 10G (binary: K, M, G, T, P); optional with --from-snapshot", true, false,
         "from-snapshot"},
        {"replica", 'r', ValueType::kString, "HOST:PORT",
         "a replicad to hold a replica; repeat for more (default: fused's replicads)", false, true},
        {"replica-count", 0, ValueType::kCount, "COUNT",
         "how many replicas the volume keeps, 1 to 5 (default: one per --replica, else 1)"},
        kReplicaTags,
        {"from-snapshot", 0, ValueType::kString, "VOLUME/SNAPSHOT",
         "make the volume a clone of that snapshot (its data copied by a job)"},
        {"wait", 0, ValueType::kFlag, "",
         "with --from-snapshot: wait until the copy ends; exit status is the job's"}},
       "create a volume, empty or as a clone of a snapshot",
       "Creates volume NAME of SIZE bytes with one replica on each given replicad\n"
       "(the daemon's configured replicads when none is given); with --replica-count,\n"
       "the replicas beyond those given go on configured replicads chosen by the\n"
       "placement rules (different hosts, enough free space). With --replica-tags,\n"
       "every replicad holding a replica, now and after rebuilds, must have every tag.\n"
       "When no placement fits, Unavailable (exit 8) lists each replicad and why it\n"
       "was refused. The volume is detached. With --from-snapshot it is a clone of\n"
       "snapshot SNAPSHOT of VOLUME, of SIZE (at least the snapshot's) or the\n"
       "snapshot's size: it exists at once, but commands on it are Busy (exit 6)\n"
       "until a job has copied the data; the job's object path is printed. A failed\n"
       "copy deletes the volume again. With --wait, waits for the copy; the exit\n"
       "status is the job's.",
       VolumeCreate},
      {"volume",
       "import",
       {"NAME"},
       {{"replicad", 'r', ValueType::kString, "HOST:PORT",
         "a replicad that holds replicas of NAME; repeat for more (every one must answer)", true,
         true}},
       "take over a volume whose fused is gone",
       "Registers volume NAME from the replicas the given replicads hold of it (the\n"
       "host whose fused managed it died). The replicas with the highest generation\n"
       "are trusted; the others are kept as stale and deleted later. The fused that\n"
       "owned them is fenced: it shows the volume as moved (Moved, exit 14).",
       VolumeImport},
      {"volume",
       "list",
       {},
       {{"quiet", 'q', ValueType::kFlag, "", "print the names only, one a line"}},
       "list volumes",
       "Lists every volume: name, size, state (standby for a DR standby), number of\n"
       "replicas and the device (loop device, or the FUSE file when attached with\n"
       "--file).",
       VolumeList},
      {"volume",
       "show",
       {"NAME"},
       {},
       "show one volume",
       "Shows every property of volume NAME, its replicas (address, replica name,\n"
       "mode: RW, WO while rebuilding, ERR, or - while detached) and its recurring\n"
       "jobs (as recurring list); for a DR standby also its source, the backup it\n"
       "holds, the recovery point (that backup's creation and age), when it was\n"
       "applied, and the last poll's error if there was one.",
       VolumeShow},
      {"volume",
       "attach",
       {"NAME"},
       {{"file", 0, ValueType::kFlag, "", "expose the FUSE file only, no loop device"},
        {"maintenance", 0, ValueType::kFlag, "",
         "start the engine only, no file and no device (for snapshot revert)", false, false, "",
         "file"},
        {"salvage", 0, ValueType::kFlag, "",
         "when no replica is provably up to date, use the best one reachable"},
        kWait},
       "attach a volume and print its device",
       "Attaches volume NAME: connects its replicas and exposes it as a loop device\n"
       "(/dev/loopN, also linked as /dev/shorthorn/NAME), or with --file as a file\n"
       "on shorthorn-fused's FUSE mount. Prints the device or file. With --maintenance\n"
       "only the engine runs (state maintenance, no file, no device), as snapshot\n"
       "revert of an attached volume needs. When no replica can be proven up to date\n"
       "(Failed, exit 1, naming every candidate), --salvage takes the best one reachable\n"
       "instead: what it missed is lost.",
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
         "delete even when a replica cannot be; its data is left behind"},
        kWait},
       "delete a detached volume and its replicas",
       "Deletes volume NAME and its replicas on their replicads. The volume must be\n"
       "detached. A replica that cannot be deleted (its replicad cannot be reached)\n"
       "fails the command (Unavailable, exit 8) and the volume stays. With --force the\n"
       "volume is deleted anyway and the data of those replicas is left behind on\n"
       "their replicads; shorthorn-fused logs their names for you to remove them.",
       VolumeDelete},
      {"volume",
       "expand",
       {"NAME", "SIZE"},
       {kWait},
       "grow a volume",
       "Grows volume NAME to SIZE bytes (e.g. 20G), detached or attached; an attached\n"
       "block device grows at once. Grow the file system afterwards (resize2fs).\n"
       "A smaller size, or one that is not a whole number of sectors, is refused.",
       VolumeExpand},
      {"volume",
       "verify",
       {"NAME"},
       {kWaitJob},
       "check the checksums of every snapshot layer (a job)",
       "Starts a job that recomputes the checksum of every snapshot layer of volume\n"
       "NAME on every replica, and prints the job's object path. With --wait, waits\n"
       "for it: exit status 0 when every layer matches, 1 with the job's message\n"
       "(naming each damaged layer) otherwise.",
       VolumeVerify},
      {"volume",
       "scrub",
       {"NAME"},
       {kWaitJob},
       "compare the replicas of an attached volume (a job)",
       "Starts a job that compares the data of the RW replicas of attached volume\n"
       "NAME, a checksum of every MiB on each (at most fused.conf scrub-bandwidth),\n"
       "and prints the job's object path. A replica that differs is marked ERR and\n"
       "the differing ranges are copied back to it. With --wait, waits for it: exit\n"
       "status 0 when the replicas are identical, 1 with the job's message (naming\n"
       "each replica that differed) otherwise.",
       VolumeScrub},
      {"volume",
       "rebuild",
       {"NAME"},
       {},
       "replace the failed replicas of an attached volume now",
       "Starts replacing the failed replicas of attached volume NAME at once, by\n"
       "rebuilds onto replicads chosen by the placement rules (shorthornctl job list\n"
       "shows them). Without it, shorthorn-fused waits replica-replenishment-wait\n"
       "seconds for a failed replica to come back and catch up; volume show says so\n"
       "in its robustness reason. Busy (exit 6) while detached; InvalidArgument (exit\n"
       "5) when no replica is missing.",
       VolumeRebuild},
      {"volume",
       "restore",
       {"NAME", "BACKUP-URL"},
       {{"replica", 'r', ValueType::kString, "HOST:PORT",
         "a replicad to hold a replica; repeat for more (default: fused's replicads)", false, true},
        {"replica-count", 0, ValueType::kCount, "COUNT",
         "how many replicas the volume keeps, 1 to 5 (default: fused's)"},
        kReplicaTags,
        kWaitJob},
       "create a volume from a backup (a job)",
       "Starts a job that creates volume NAME from the backup at BACKUP-URL (as\n"
       "shorthornctl backup list prints it), with replicas as volume create, and prints\n"
       "the job's object path. Every block's checksum is checked as it is written; a\n"
       "missing or damaged block fails the job and the new volume is deleted again.\n"
       "With --wait, waits for it; the exit status is the job's.",
       VolumeRestore},
      {"volume",
       "create-standby",
       {"NAME", "SOURCE-URL"},
       {{"replica", 'r', ValueType::kString, "HOST:PORT",
         "a replicad to hold a replica; repeat for more (default: fused's replicads)", false, true},
        {"replica-count", 0, ValueType::kCount, "COUNT",
         "how many replicas the volume keeps, 1 to 5 (default: fused's)"},
        kReplicaTags,
        {"poll-interval", 0, ValueType::kCount, "SECONDS",
         "how often to look for a newer backup, 1 to 86400 (default: 300)"},
        kWaitJob},
       "create a DR standby that follows a volume's backups (a job)",
       "Starts a job that creates volume NAME from the newest backup of the volume that\n"
       "SOURCE-URL names (<target>?volume=<volume>, e.g. 's3://bucket/prefix?volume=db1'),\n"
       "with replicas as volume create, and prints the job's object path. The volume\n"
       "then stays a DR standby: every SECONDS shorthorn-fused looks for a newer backup\n"
       "and applies it incrementally. A standby cannot be attached, snapshotted or\n"
       "backed up (Busy, exit 6) until volume activate; volume show gives its recovery\n"
       "point. With --wait, waits for the first restore; the exit status is the job's\n"
       "(1 when the source has no backup).",
       VolumeCreateStandby},
      {"volume",
       "activate",
       {"NAME"},
       {{"force", 'f', ValueType::kFlag, "",
         "activate even when it holds no whole backup and the source cannot be reached"}},
       "make a DR standby an ordinary volume",
       "Makes DR standby NAME an ordinary volume: shorthorn-fused first applies the\n"
       "newest backup of its source if one arrived since it last looked (when the\n"
       "source cannot be reached, it keeps what it holds), then stops following the\n"
       "source. Prints the backup the volume holds, when that backup was made, and\n"
       "the recovery point (RPO): how old that backup is. InvalidArgument (exit 5) for\n"
       "a volume that is not a standby; Failed (exit 1) when an interrupted apply left\n"
       "it without a whole backup, unless --force.",
       VolumeActivate},
      {"snapshot",
       "create",
       {"VOLUME", "SNAPSHOT"},
       {kWait},
       "snapshot a volume",
       "Makes the current data of VOLUME snapshot SNAPSHOT; I/O pauses briefly while\n"
       "it is taken. Works attached, in maintenance and detached. At most 250\n"
       "snapshots per volume (LimitExceeded, exit 13).",
       SnapshotCreate},
      {"snapshot",
       "list",
       {"VOLUME"},
       {{"quiet", 'q', ValueType::kFlag, "",
         "print the names only (not those being removed), one a line"}},
       "list the snapshots of a volume",
       "Lists the snapshots of VOLUME in creation order: name, parent, creation time\n"
       "(UTC), bytes held in its own layer, user or system (made by a rebuild or a\n"
       "backup), and whether it was deleted and is still being merged away.",
       SnapshotList},
      {"snapshot",
       "delete",
       {"VOLUME", "SNAPSHOT"},
       {kWaitJob},
       "delete a snapshot (a job)",
       "Starts merging snapshot SNAPSHOT of VOLUME away in the background (I/O goes on)\n"
       "and prints the job's object path. With --wait, waits until the merge has\n"
       "ended; the exit status is the job's.",
       SnapshotDelete},
      {"snapshot",
       "revert",
       {"VOLUME", "SNAPSHOT"},
       {kWait},
       "make a snapshot the volume's data again",
       "Makes snapshot SNAPSHOT the data of VOLUME again; what was written after it is\n"
       "lost. Only while the volume is detached (or attached in maintenance mode);\n"
       "otherwise Busy (exit 6).",
       SnapshotRevert},
      {"backup",
       "create",
       {"VOLUME", "SNAPSHOT"},
       {kTarget, kWaitJob},
       "back up a snapshot (a job)",
       "Starts a job that copies snapshot SNAPSHOT of VOLUME to the backup target\n"
       "(--target, or shorthorn-fused's backup-target), incrementally to the newest\n"
       "backup of an older snapshot, and prints the job's object path. With --wait,\n"
       "waits for it and prints the new backup's URL, which backup show, backup delete\n"
       "and volume restore take.",
       BackupCreate},
      {"backup",
       "list",
       {"VOLUME"},
       {kTarget},
       "list the backups of a volume",
       "Lists the backups of VOLUME in the backup target (--target, or\n"
       "shorthorn-fused's backup-target), oldest first: name, snapshot, creation time\n"
       "(UTC), volume size, 2 MiB blocks holding data, and URL. NotFound (exit 3) when\n"
       "the volume has no backups there.",
       BackupList},
      {"backup",
       "show",
       {"BACKUP-URL"},
       {},
       "show one backup",
       "Shows the backup at BACKUP-URL (<target>?volume=<volume>&backup=<name>, as\n"
       "backup list and backup create --wait print it). NotFound (exit 3) when there\n"
       "is no such backup.",
       BackupShow},
      {"backup",
       "delete",
       {"BACKUP-URL"},
       {kWaitJob},
       "delete a backup (a job)",
       "Starts a job that deletes the backup at BACKUP-URL and the blocks no other\n"
       "backup of its volume needs, and prints the job's object path. With --wait,\n"
       "waits for it; the exit status is the job's (1 for an unknown backup).",
       BackupDelete},
      {"recurring",
       "add",
       {"VOLUME", "NAME"},
       {{"kind", 0, ValueType::kString, "KIND", "snapshot or backup", true},
        {"schedule", 0, ValueType::kString, "SPEC",
         "when to run: '0 2 * * *' (cron, local time), @daily, @every 6h, ...", true},
        {"retain", 0, ValueType::kCount, "N",
         "how many of its snapshots (backups) to keep, 1 to 100", true},
        {"target", 0, ValueType::kString, "URL",
         "backup job: file:///DIR or s3://BUCKET/PREFIX (default: fused's backup-target)"}},
       "snapshot or back up a volume on a schedule",
       "Adds recurring job NAME (at most 46 characters) to VOLUME: at every time SPEC\n"
       "names, shorthorn-fused takes snapshot NAME-<YYYYMMDDTHHMMSSZ> and, for a backup\n"
       "job, backs it up; then it deletes this job's snapshots (backups) beyond the\n"
       "newest N. SPEC is cron's five fields in local time (quote them), @hourly,\n"
       "@daily, @weekly, @monthly, @yearly, or @every N with unit s, m, h or d. Runs\n"
       "missed while fused was down are made up by one run; a failed run is retried\n"
       "after 5 minutes. At most 16 jobs per volume (LimitExceeded, exit 13).",
       RecurringAdd},
      {"recurring",
       "list",
       {"VOLUME"},
       {{"quiet", 'q', ValueType::kFlag, "", "print the names only, one a line"}},
       "list the recurring jobs of a volume",
       "Lists the recurring jobs of VOLUME in the order they were added: name, kind,\n"
       "schedule, how many it keeps, its last run (UTC) and result, and its next run\n"
       "(UTC); the target too when a job names one.",
       RecurringList},
      {"recurring",
       "remove",
       {"VOLUME", "NAME"},
       {},
       "stop a recurring job",
       "Removes recurring job NAME from VOLUME. A run in progress finishes; the\n"
       "snapshots and backups the job made stay.",
       RecurringRemove},
      {"replica",
       "list",
       {"VOLUME"},
       {},
       "list the replicas of a volume",
       "Shows how many replicas VOLUME keeps, its robustness (healthy, degraded,\n"
       "faulted, or unknown while detached) and each replica: replicad address, the\n"
       "host and free space that replicad reports (as replicad list; - when the\n"
       "replicads cannot be listed, e.g. without root or group shorthorn), replica\n"
       "name, and mode (RW, WO while rebuilding, ERR, or - while detached).",
       ReplicaList},
      {"replica",
       "set-count",
       {"VOLUME", "COUNT"},
       {},
       "set how many replicas a volume keeps",
       "Sets how many replicas (1 to 5) VOLUME keeps. Growing starts rebuilds onto\n"
       "replicads chosen by the placement rules (see shorthornctl job list), or fails\n"
       "with Unavailable (exit 8) listing every replicad and why it was refused;\n"
       "shrinking drops the least useful replicas and deletes their data.",
       ReplicaSetCount},
      {"replicad",
       "list",
       {},
       {{"quiet", 'q', ValueType::kFlag, "", "print the addresses only, one a line"}},
       "list the replicads and their space",
       "Lists every replicad shorthorn-fused knows (its configured ones and any that\n"
       "holds a replica of its volumes), asking each now: address, state (up,\n"
       "draining, unreachable), host id, tags, free and total space of its file\n"
       "system, the sum of its replicas' sizes (provisioned), how many replicas it\n"
       "holds, the rebuilds onto it now, and why it is unreachable or what its drain\n"
       "has left. Talks to the replicads: needs root or group shorthorn.",
       ReplicadList},
      {"replicad",
       "drain",
       {"ADDRESS"},
       {kWaitJob},
       "move every replica off a replicad (a job)",
       "Marks the replicad at ADDRESS (host:port) draining, so no new replica goes\n"
       "there, and starts a job that moves every replica of shorthorn-fused's volumes\n"
       "off it, one volume at a time: a new replica is rebuilt elsewhere, then the one\n"
       "there is deleted; volumes stay in use. Prints the job's object path. With\n"
       "--wait, waits for it: exit status 0 when every replica has moved, 1 with the\n"
       "job's message (naming the volume no other replicad can take) otherwise. The\n"
       "replicad stays draining until replicad undrain; run drain again to retry.",
       ReplicadDrain},
      {"replicad",
       "undrain",
       {"ADDRESS"},
       {},
       "let a drained replicad take new replicas again",
       "Ends the drain of the replicad at ADDRESS: it takes new replicas again, and a\n"
       "drain job of it that is still running is cancelled (replicas it moved stay\n"
       "where they are). NotFound (exit 3) when it is not draining.",
       ReplicadUndrain},
      {"job",
       "list",
       {},
       {{"quiet", 'q', ValueType::kFlag, "", "print the job numbers only, one a line"}},
       "list running and recently ended jobs",
       "Lists the jobs shorthorn-fused knows: running ones and those that ended in the\n"
       "last minute (snapshot deletions, verifies, rebuilds), with their state and\n"
       "progress.",
       JobList},
      {"job",
       "show",
       {"JOB"},
       {},
       "show one job",
       "Shows every property of job JOB: operation, volume, target, state, progress,\n"
       "bytes, rate, whether it can be cancelled, and its message. JOB is the job's\n"
       "number or object path (/org/shorthorn/Storage1/jobs/N); shorthorn-fused\n"
       "forgets a job about a minute after it ends.",
       JobShow},
      {"job",
       "wait",
       {"JOB"},
       {},
       "wait until a job ends",
       "Waits until job JOB has ended, redrawing its progress on a terminal. Exit\n"
       "status 0 when it completed, 1 with its message when it failed or was\n"
       "cancelled. Interrupting the wait does not stop the job.",
       JobWait},
      {"job",
       "cancel",
       {"JOB"},
       {{"wait", 0, ValueType::kFlag, "", "wait until the job has stopped"}},
       "ask a job to stop",
       "Asks job JOB to stop. Only some jobs can be stopped (rebuilds); the others\n"
       "are refused with InvalidArgument (exit 5). With --wait, waits until it has\n"
       "stopped.",
       JobCancel},
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
           std::ostream& err, bool err_is_terminal, const Clock& clock) {
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
  Output output(out, invocation.json, err_is_terminal ? &err : nullptr, clock);
  Status status = invocation.command->handler(invocation, **client, output);
  if (!status.ok()) {
    ReportError(status, invocation.json, out, err);
    return ExitCodeFor(status.kind());
  }
  return kExitOk;
}

}  // namespace shorthorn::ctl
