// shorthorn-replicad: serves replicas of volumes over the replica protocol.
// Thin: configuration, process setup, signals; the work is in the libraries.
//
// Design notes: SIGTERM and SIGINT are blocked before any thread starts and
// taken with sigwait on the main thread, so no signal handler and no global
// state are needed. Shutdown order: stop accepting and wind down connections
// (their requests in flight are answered), then flush and close replicas,
// then the engine.
//
// Power-loss test mode (SHORTHORN_TEST_POWER_LOSS=1, for the integration
// tests only): replicas keep an undo log of what they wrote since their last
// flush, and SIGUSR2 (taken by the same sigwait) drops it from the files and
// ends the process with _exit(137), closing nothing, as kill -9 would. Without
// the mode SIGUSR2 is not blocked and keeps its default action.
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/auth.h"
#include "common/file_util.h"
#include "common/log.h"
#include "config/daemon_config.h"
#include "replicad/core/replica_metrics.h"
#include "replicad/core/replica_store.h"
#include "replicad/core/request_handler.h"
#include "replicad/io/io_engine_factory.h"
#include "replicad/net/server.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

namespace shorthorn::replicad {
namespace {

Status MakeDataDir(const std::string& dir) {
  // Creates missing parents too (like mkdir -p).
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "create data directory " + prefix);
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus(errno, "stat data directory " + dir);
  if (!S_ISDIR(st.st_mode)) {
    return Status(ErrorKind::kInvalidArgument, "use data directory " + dir + ": not a directory");
  }
  return Status::Ok();
}

// Writes the open replicas' figures to the metrics file (tmp + rename, mode
// 0644) every 10 s on its own thread. Makes no directory: node-exporter's
// package owns it. Failures only log (the data path matters more).
class MetricsWriter {
 public:
  MetricsWriter(std::string path, ReplicaStore* store) : path_(std::move(path)), store_(store) {
    const auto slash = path_.rfind('/');
    dir_ = slash == 0 ? "/" : path_.substr(0, slash);  // the path is absolute (config)
  }
  ~MetricsWriter() { Stop(); }
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Writes once now, then starts the thread.
  void Start() {
    WriteOnce();
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // Not concurrently with the thread (call it before Start or after Stop).
  void WriteOnce() {
    struct stat st {};
    if (::stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      // Once per absence: node-exporter may simply not be installed.
      if (!dir_missing_) {
        LogWarning("metrics: " + dir_ + " does not exist (is prometheus-node-exporter " +
                   "installed?); metrics-file " + path_ + " is written once it does");
      }
      dir_missing_ = true;
      return;
    }
    dir_missing_ = false;
    Status s = WriteFileAtomic(path_, FormatReplicaMetrics(store_->Figures()));
    if (s.ok()) return;
    // A full or read-only disk would fail every 10 s: say so once a minute.
    const auto now = std::chrono::steady_clock::now();
    if (!last_warning_ || now - *last_warning_ >= std::chrono::minutes(1)) {
      LogWarning("metrics: write metrics-file " + path_ + ": " + s.message());
      last_warning_ = now;
    }
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::seconds(10), [this] { return stopping_; })) {
      lock.unlock();
      WriteOnce();
      lock.lock();
    }
  }

  const std::string path_;
  std::string dir_;
  ReplicaStore* const store_;
  bool dir_missing_ = false;  // WriteOnce's own; one caller at a time
  std::optional<std::chrono::steady_clock::time_point> last_warning_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

int Run(int argc, char** argv) {
  auto loaded = config::LoadReplicadConfig(argc, argv);
  if (!loaded.ok()) {
    std::fprintf(stderr, "shorthorn-replicad: %s\n", loaded.status().message().c_str());
    return 2;
  }
  if (loaded->exit_now) {
    std::fputs(loaded->output.c_str(), stdout);
    return 0;
  }
  const config::ReplicadConfig& cfg = loaded->config;
  SetLogComponent("replicad");
  LogLevel level = LogLevel::kInfo;
  ParseLogLevel(cfg.log_level, &level);  // validated by the loader
  SetLogLevel(level);

  const char* power_loss_env = std::getenv("SHORTHORN_TEST_POWER_LOSS");
  const bool power_loss_test = power_loss_env != nullptr && std::string(power_loss_env) == "1";
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (power_loss_test) sigaddset(&stop_signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  if (Status s = MakeDataDir(cfg.data_dir); !s.ok()) {
    LogError(s.message());
    return 1;
  }
  // Our writeback must not wait on the memory reclaim it would unblock (the
  // volume may be mounted on this host).
  if (::prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0) {
    LogWarning(std::string("set PR_SET_IO_FLUSHER: ") + std::strerror(errno) +
               "; writeback under memory pressure may deadlock with a local mount");
  }
  // Every layer of every open replica keeps its file open (up to 251 per
  // replica): take the hard limit of open files.
  if (rlimit nofile{};
      ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0) {
      LogWarning(std::string("raise the open-file limit: ") + std::strerror(errno));
    }
  }
  auto engine = MakeIoEngine(cfg.io_engine);
  if (!engine.ok()) {
    LogError(engine.status().message());
    return 1;
  }
  LogInfo("using the " + std::string((*engine)->name()) + " I/O engine" +
          (cfg.direct_io ? " with direct writes" : "") + ", data directory " + cfg.data_dir);
  if (power_loss_test) {
    LogWarning(
        "TEST MODE: SHORTHORN_TEST_POWER_LOSS=1: every replica keeps an in-memory undo log of "
        "its unflushed writes and SIGUSR2 simulates a power loss (drops them and exits 137); "
        "never use this in production");
  }
  // Where this replicad runs, for fused's placement (REPLICAD_INFO).
  ReplicadIdentity identity;
  {
    char name[256] = {};
    if (::gethostname(name, sizeof(name) - 1) != 0) {
      LogWarning(std::string("gethostname: ") + std::strerror(errno));
    }
    // For messages only; fused refuses control characters in it.
    for (const char* c = name; *c != '\0'; ++c) {
      if (static_cast<unsigned char>(*c) >= 0x20 && *c != 0x7f) identity.hostname += *c;
    }
    auto host_id = config::ResolveHostId(cfg.host_id, "/etc/machine-id", identity.hostname);
    if (!host_id.ok()) {
      LogError(host_id.status().message());
      return 1;
    }
    identity.host_id = host_id->id;
    identity.tags = cfg.tags;
    std::string tags;
    for (const auto& t : cfg.tags) tags += (tags.empty() ? "" : " ") + t;
    LogInfo("host id " + identity.host_id + " (from " + host_id->source + ")" +
            (tags.empty() ? ", no tags" : ", tags " + tags));
  }
  auto key = auth::LoadDaemonKey(cfg.cluster_key);
  if (!key.ok()) {
    LogError(key.status().message());
    return 1;
  }
  auto shared_key = std::make_shared<const auth::ClusterKey>(*key);
  {
    ReplicaOptions options;
    options.direct_writes = cfg.direct_io;
    options.rebuild.cluster_key = shared_key;
    options.max_volume_size_gib = cfg.max_volume_size_gib;
    options.power_loss_test = power_loss_test;
    ReplicaStore store(cfg.data_dir, engine->get(), options);
    RequestHandler handler(&store, std::move(identity));
    ServerOptions server_options;
    server_options.connection.key = shared_key;
    server_options.connection.auth_timeout = std::chrono::seconds(cfg.auth_timeout_s);
    server_options.connection.send_timeout = std::chrono::seconds(cfg.send_timeout_s);
    server_options.max_connections = cfg.max_connections;
    server_options.max_unauthenticated = std::min<uint32_t>(64, cfg.max_connections);
    Server server(&handler, std::move(server_options));
    if (Status s = server.Start(cfg.listen, cfg.port, cfg.socket_dir); !s.ok()) {
      LogError(s.message());
      return 1;
    }
    bool bare_v6 = cfg.listen.find(':') != std::string::npos && cfg.listen.front() != '[';
    LogInfo("listening on " + (bare_v6 ? "[" + cfg.listen + "]" : cfg.listen) + ":" +
            std::to_string(server.port()) +
            (server.socket_path().empty() ? "" : " and " + server.socket_path()));
    std::optional<MetricsWriter> metrics;
    if (!cfg.metrics_file.empty()) {
      metrics.emplace(cfg.metrics_file, &store);
      metrics->Start();
    }
    int signo = 0;
    while (sigwait(&stop_signals, &signo) != 0) {
    }
    if (signo == SIGUSR2) {
      LogWarning("received SIGUSR2 in power-loss test mode: simulating a power loss");
      store.SimulatePowerLoss();
      std::fflush(nullptr);
      ::_exit(137);
    }
    LogInfo(std::string("received ") + (signo == SIGTERM ? "SIGTERM" : "SIGINT") +
            ", shutting down");
    server.Stop();
    if (metrics) metrics->Stop();
    store.CloseAll();
    // The last figures of a stopped replicad: no replica open.
    if (metrics) metrics->WriteOnce();
  }
  LogInfo("stopped");
  return 0;
}

}  // namespace
}  // namespace shorthorn::replicad

int main(int argc, char** argv) {
  shorthorn::TuneAllocator();
  return shorthorn::replicad::Run(argc, argv);
}
