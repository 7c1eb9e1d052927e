// AsyncCalls: D-Bus methods whose work runs off the event loop, so that a
// manager call waiting on an unreachable replicad holds up neither property
// reads, nor introspection, nor calls about other volumes. The loop thread
// hands over a MethodCall and the work; the work runs on a KeyedExecutor
// worker (one at a time per key: the volume a call is about) and returns how
// to reply; the loop thread sends that reply (SendReplies). The MethodCall
// stays in a table of the loop thread meanwhile: sd-bus objects are not
// thread-safe, so no message is created, copied or freed on a worker.
// Threads: Run, SendReplies and fd from the loop thread; Stop from the
// controlling thread after the loop has ended. Work runs on workers and must
// not touch sdbus-c++ objects; a Reply runs on the loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <sdbus-c++/Message.h>

#include "common/file_util.h"
#include "common/status.h"
#include "fused/dbus/keyed_executor.h"

namespace shorthorn::fused::dbus {

class AsyncCalls {
 public:
  // Sends the reply to `call`, or throws sdbus::Error to fail it.
  using Reply = std::function<void(sdbus::MethodCall& call)>;
  // The work of a call; may throw (the call then fails with Error.Failed).
  using Work = std::function<Reply()>;

  static Result<std::unique_ptr<AsyncCalls>> Create(size_t max_threads);
  AsyncCalls(const AsyncCalls&) = delete;
  AsyncCalls& operator=(const AsyncCalls&) = delete;
  ~AsyncCalls();  // Stop()

  // Keeps `call` and queues `work` after the earlier work of `key`. Throws
  // sdbus::Error (Unavailable) when the service is stopping.
  void Run(const std::string& method, const std::string& key, sdbus::MethodCall call, Work work);
  // Readable (POLLIN) while replies are waiting.
  int fd() const { return fd_.get(); }
  // Takes the replies of the finished work, runs `before` (the service
  // applies its queued events: the work queued them before it finished), then
  // sends the replies in the order the work finished.
  void SendReplies(const std::function<void()>& before);
  // Waits for running work, drops queued work and the calls still waiting
  // (their callers see the connection end). Idempotent.
  void Stop();

  // Calls waiting for their reply (loop thread).
  size_t waiting() const { return calls_.size(); }

 private:
  AsyncCalls(UniqueFd fd, size_t max_threads) : fd_(std::move(fd)), executor_(max_threads) {}

  struct Waiting {
    std::string method;
    sdbus::MethodCall call;
  };
  struct Done {
    uint64_t id = 0;
    Reply reply;
  };

  const UniqueFd fd_;
  std::map<uint64_t, Waiting> calls_;  // loop thread only
  uint64_t next_id_ = 1;               // loop thread only
  std::mutex mutex_;
  std::vector<Done> done_;  // guarded by mutex_
  KeyedExecutor executor_;  // last: its workers use the members above until Stop
};

// The Reply that sends `values` in order (none: an empty reply). The values
// are plain data, copied into the Reply on the worker.
template <typename... T>
AsyncCalls::Reply ReplyWith(T... values) {
  return [values...](sdbus::MethodCall& call) {
    auto reply = call.createReply();
    if constexpr (sizeof...(T) > 0) (reply << ... << values);
    reply.send();
  };
}

}  // namespace shorthorn::fused::dbus
