// The command table and its parser: where options may go, what is a usage
// error, and that --help wins. Uses the real table (Commands()).
#include "dbus/ctl/command_line.h"

#include <gtest/gtest.h>

#include "dbus/ctl/commands.h"

namespace shorthorn::ctl {
namespace {

using Action = ParsedCommandLine::Action;

ParsedCommandLine Parse(std::vector<std::string> args) {
  return ParseCommandLine(Commands(), args);
}

TEST(CommandLineTest, ParsesCreateWithOptionsAnywhere) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"volume", "create", "vol1", "--size", "10G", "--replica", "a:1", "-r", "b:2"},
           {"--json", "volume", "create", "--size=10G", "vol1", "-r", "a:1", "--replica=b:2"},
           {"volume", "create", "-s", "10G", "-r", "a:1", "vol1", "--replica", "b:2", "--json"}}) {
    ParsedCommandLine p = Parse(args);
    ASSERT_EQ(p.action, Action::kRun) << p.text;
    EXPECT_EQ(p.invocation.command->verb, "create");
    EXPECT_EQ(p.invocation.arguments, std::vector<std::string>{"vol1"});
    EXPECT_EQ(p.invocation.Value("size"), "10G");
    EXPECT_EQ(p.invocation.Values("replica"), (std::vector<std::string>{"a:1", "b:2"}));
    EXPECT_EQ(p.invocation.json, args[0] == "--json" || args.back() == "--json");
  }
}

TEST(CommandLineTest, SizeIsOptionalOnlyWithFromSnapshot) {
  ParsedCommandLine p =
      Parse({"volume", "create", "db2", "--from-snapshot", "db1/s1", "--replica-count=3"});
  ASSERT_EQ(p.action, Action::kRun) << p.text;
  EXPECT_FALSE(p.invocation.Has("size"));
  EXPECT_EQ(p.invocation.Value("from-snapshot"), "db1/s1");
  EXPECT_EQ(p.invocation.Value("replica-count"), "3");
  p = Parse({"volume", "create", "db2", "--from-snapshot=db1/s1", "-s", "20G", "--wait"});
  ASSERT_EQ(p.action, Action::kRun) << p.text;
  EXPECT_EQ(p.invocation.Value("size"), "20G");
  EXPECT_TRUE(p.invocation.Has("wait"));
  p = Parse({"volume", "create", "db2", "--replica-count", "3"});
  EXPECT_EQ(p.action, Action::kUsageError);
}

TEST(CommandLineTest, FlagsAndDoubleDash) {
  ParsedCommandLine p = Parse({"volume", "delete", "--force", "--wait", "--", "vol1"});
  ASSERT_EQ(p.action, Action::kRun) << p.text;
  EXPECT_TRUE(p.invocation.Has("force"));
  EXPECT_TRUE(p.invocation.Has("wait"));
  EXPECT_FALSE(p.invocation.Has("quiet"));
  EXPECT_EQ(p.invocation.arguments, std::vector<std::string>{"vol1"});
}

TEST(CommandLineTest, UsageErrorsSayWhatIsWrong) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "no command given"},
           {{"vol"}, "unknown command 'vol'"},
           {{"volume"},
            "volume: missing subcommand (create, import, list, show, attach, detach, delete, "
            "expand, verify, scrub, rebuild, restore, create-standby, activate)"},
           {{"replicad"}, "replicad: missing subcommand (list, drain, undrain)"},
           {{"replicad", "drain"}, "replicad drain: missing ADDRESS"},
           {{"replicad", "undrain", "a:1", "b:1"}, "replicad undrain: unexpected argument 'b:1'"},
           {{"replicad", "list", "--wait"}, "replicad list: unknown option --wait"},
           {{"volume", "attach", "a", "--maintenance", "--file"},
            "volume attach: options --maintenance and --file exclude each other"},
           {{"volume", "attach", "a", "--file", "--maintenance"},
            "volume attach: options --maintenance and --file exclude each other"},
           {{"volume", "attach", "a", "--salvage=yes"}, "option --salvage takes no value"},
           {{"volume", "create", "a", "-s", "1G", "--replica-tags", ""},
            "volume create: option --replica-tags: no tags given (e.g. ssd,zone=a)"},
           {{"volume", "create", "a", "-s", "1G", "--replica-tags"},
            "option --replica-tags needs a value (TAGS)"},
           {{"volume", "create", "a", "-s", "1G", "--replica-tags", "a", "--replica-tags", "b"},
            "--replica-tags is given more than once"},
           {{"volume", "grow"}, "volume: unknown subcommand 'grow'"},
           {{"volume", "show"}, "volume show: missing NAME"},
           {{"volume", "show", "a", "b"}, "volume show: unexpected argument 'b'"},
           {{"volume", "create", "a"},
            "volume create: option --size is required without --from-snapshot; usage: volume "
            "create NAME --size SIZE"},
           {{"volume", "create", "a", "--from-snapshot"},
            "option --from-snapshot needs a value (VOLUME/SNAPSHOT)"},
           {{"volume", "create", "a", "--from-snapshot", "v/s", "--replica-count", "x"},
            "volume create: option --replica-count: count 'x'"},
           {{"volume", "create", "a", "--size"}, "option --size needs a value (SIZE)"},
           {{"volume", "create", "a", "--size", "10GB"}, "decimal units are not accepted"},
           {{"volume", "create", "a", "-s", "1G", "-s", "2G"}, "--size is given more than once"},
           {{"volume", "attach", "a", "--force"}, "volume attach: unknown option --force"},
           {{"volume", "attach", "a", "--file=yes"}, "option --file takes no value"},
           {{"--size", "1G", "volume", "create", "a"}, "unknown option --size"},
           {{"volume", "expand", "a", "2GB"}, "volume expand: size '2GB': decimal units"},
           {{"replica", "set-count", "a", "two"}, "replica set-count: count 'two': not a whole"},
           {{"job", "show", "abc"}, "job show: job 'abc': not a job number or object path"},
           {{"job", "wait", "/org/shorthorn/Storage1/volumes/x"}, "job wait: job '/org/"},
           {{"snapshot", "create", "vol1"}, "snapshot create: missing SNAPSHOT"},
           {{"volume", "create-standby", "a", "s3://b?backup=x"},
            "volume create-standby: source URL 's3://b?backup=x': no volume="},
           {{"volume", "create-standby", "a", "s3://b?volume=v", "--poll-interval", "5m"},
            "volume create-standby: option --poll-interval: count '5m'"},
           {{"snapshot", "list", "vol1", "--wait"}, "snapshot list: unknown option --wait"},
       }) {
    ParsedCommandLine p = Parse(c.args);
    EXPECT_EQ(p.action, Action::kUsageError) << c.message;
    EXPECT_NE(p.text.find(c.message), std::string::npos) << p.text;
  }
}

TEST(CommandLineTest, PlacementOptions) {
  ParsedCommandLine p = Parse({"volume", "attach", "v", "--maintenance", "--salvage"});
  ASSERT_EQ(p.action, Action::kRun) << p.text;
  EXPECT_TRUE(p.invocation.Has("maintenance"));
  EXPECT_TRUE(p.invocation.Has("salvage"));
  EXPECT_FALSE(p.invocation.Has("file"));
  // Tags are the daemon's to judge: anything but nothing goes through.
  for (const char* tags : {"ssd", "ssd,zone=a", ",", "not a tag"}) {
    p = Parse({"volume", "create", "v", "-s", "1G", "--replica-tags", tags});
    ASSERT_EQ(p.action, Action::kRun) << tags << ": " << p.text;
    EXPECT_EQ(p.invocation.Value("replica-tags"), tags);
  }
  p = Parse({"volume", "restore", "v", "file:///b?volume=a&backup=b", "--replica-tags=ssd"});
  ASSERT_EQ(p.action, Action::kRun) << p.text;
  EXPECT_EQ(p.invocation.Value("replica-tags"), "ssd");
  p = Parse({"replicad", "drain", "10.0.0.2:9500", "--wait"});
  ASSERT_EQ(p.action, Action::kRun) << p.text;
  EXPECT_EQ(p.invocation.arguments, std::vector<std::string>{"10.0.0.2:9500"});
  EXPECT_TRUE(p.invocation.Has("wait"));
  p = Parse({"replicad", "list", "-q", "--json"});
  ASSERT_EQ(p.action, Action::kRun) << p.text;
  EXPECT_TRUE(p.invocation.Has("quiet"));
  EXPECT_TRUE(p.invocation.json);
  // --help still wins over the conflict.
  EXPECT_EQ(Parse({"volume", "attach", "v", "--maintenance", "--file", "--help"}).action,
            Action::kHelp);
}

TEST(CommandLineTest, HelpWinsOverErrors) {
  ParsedCommandLine p = Parse({"volume", "create", "--help"});
  ASSERT_EQ(p.action, Action::kHelp);
  EXPECT_NE(p.text.find("Usage: shorthornctl volume create NAME --size SIZE"), std::string::npos);
  EXPECT_NE(p.text.find("--replica HOST:PORT"), std::string::npos);

  p = Parse({"volume", "-h"});
  ASSERT_EQ(p.action, Action::kHelp);
  EXPECT_NE(p.text.find("shorthornctl volume attach NAME [--file] [--maintenance] [--salvage] "
                        "[--wait]"),
            std::string::npos);

  p = Parse({"--help"});
  ASSERT_EQ(p.action, Action::kHelp);
  for (const CommandSpec& c : Commands()) {
    EXPECT_NE(p.text.find(std::string(c.group) + " " + std::string(c.verb)), std::string::npos);
  }
  EXPECT_EQ(Parse({"--version"}).action, Action::kVersion);
}

TEST(CommandLineTest, SynopsisFollowsTheTable) {
  const CommandSpec& create = Commands().front();
  EXPECT_EQ(CommandSynopsis(create),
            "volume create NAME --size SIZE [--replica HOST:PORT]... [--replica-count COUNT] "
            "[--replica-tags TAGS] [--from-snapshot VOLUME/SNAPSHOT] [--wait]");
}

TEST(CommandLineTest, EveryCommandHasAHandlerAndHelp) {
  for (const CommandSpec& c : Commands()) {
    EXPECT_NE(c.handler, nullptr) << c.verb;
    EXPECT_FALSE(c.summary.empty()) << c.verb;
    EXPECT_FALSE(c.description.empty()) << c.verb;
  }
}

}  // namespace
}  // namespace shorthorn::ctl
