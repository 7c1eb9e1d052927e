#include "fused/dbus/async_calls.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <exception>

#include "common/log.h"
#include "fused/dbus/dbus_names.h"

namespace shorthorn::fused::dbus {

Result<std::unique_ptr<AsyncCalls>> AsyncCalls::Create(size_t max_threads) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return ErrnoStatus(errno, "create the D-Bus reply eventfd");
  return std::unique_ptr<AsyncCalls>(new AsyncCalls(UniqueFd(fd), max_threads));
}

AsyncCalls::~AsyncCalls() { Stop(); }

void AsyncCalls::Run(const std::string& method, const std::string& key, sdbus::MethodCall call,
                     Work work) {
  const uint64_t id = next_id_++;
  calls_.emplace(id, Waiting{method, std::move(call)});
  bool queued = executor_.Submit(key, [this, id, method, work = std::move(work)] {
    Reply reply;
    try {
      reply = work();
    } catch (const sdbus::Error& e) {
      reply = [e](sdbus::MethodCall&) { throw e; };
    } catch (const std::exception& e) {
      sdbus::Error failed(ErrorName(ErrorKind::kFailed), method + ": " + e.what());
      reply = [failed](sdbus::MethodCall&) { throw failed; };
    }
    {
      std::lock_guard lock(mutex_);
      done_.push_back(Done{id, std::move(reply)});
    }
    uint64_t one = 1;
    if (write(fd_.get(), &one, sizeof(one)) < 0) {
      LogError("D-Bus: cannot wake the event loop for the reply to " + method);
    }
  });
  if (!queued) {
    calls_.erase(id);
    throw ToDbusError(
        Status(ErrorKind::kUnavailable, method + ": shorthorn-fused is shutting down"));
  }
}

void AsyncCalls::SendReplies(const std::function<void()>& before) {
  uint64_t count = 0;
  (void)!read(fd_.get(), &count, sizeof(count));  // EAGAIN when nothing is waiting
  std::vector<Done> done;
  {
    std::lock_guard lock(mutex_);
    done.swap(done_);
  }
  if (done.empty()) return;
  // What the work queued before it finished is in the event queue by now.
  if (before) before();
  for (Done& d : done) {
    auto it = calls_.find(d.id);
    if (it == calls_.end()) continue;
    Waiting waiting = std::move(it->second);
    calls_.erase(it);
    try {
      try {
        d.reply(waiting.call);
      } catch (const sdbus::Error& e) {
        waiting.call.createErrorReply(e).send();
      } catch (const std::exception& e) {
        sdbus::Error failed(ErrorName(ErrorKind::kFailed), waiting.method + ": " + e.what());
        waiting.call.createErrorReply(failed).send();
      }
    } catch (const std::exception& e) {
      // The caller may have gone; the call's effect stands.
      LogWarning("D-Bus: cannot send the reply to " + waiting.method + ": " + e.what());
    }
  }
}

void AsyncCalls::Stop() {
  executor_.Stop();
  std::lock_guard lock(mutex_);
  done_.clear();
  calls_.clear();
}

}  // namespace shorthorn::fused::dbus
