// Design notes
//
// libs3 2.0 (Debian's libs3-2) in brief, as it matters here:
//  * S3_initialize sets up curl and libs3's handle pool for the whole process
//    and is not thread-safe: it runs once, from a function-local static, and
//    S3_deinitialize is never called (a store may be used until exit).
//  * Every request reports through callbacks on the calling thread; a
//    request's state (a RequestBase subclass) lives on the caller's stack.
//  * It signs with AWS signature V2 only. Servers that require V4 answer
//    with 400 or 403 naming AWS4-HMAC-SHA256; that becomes NotAuthorized
//    with a message that says why.
//  * It has no timeouts of its own except curl's low-speed abort (< 1 KiB/s
//    for 15 s); curl's connect timeout is 300 s. So requests run in an
//    S3RequestContext (a curl multi handle) that this file drives with its
//    own deadline (S3StoreOptions::request_timeout); on expiry the context is
//    destroyed, which ends the request with S3StatusInterrupted. Contexts are
//    pooled per store and reused, so curl keeps connections alive between
//    requests; a thread holds a context for one request only.
//  * It turns a short body (curl's CURLE_PARTIAL_FILE) into S3StatusOK, so
//    Get compares the bytes received with Content-Length itself.
//  * It does not verify TLS certificates (CURLOPT_SSL_VERIFYPEER is 0 and not
//    settable): https protects against eavesdroppers, not against a host that
//    impersonates the endpoint.
//  * It does not report the HTTP status: errors come as S3Status values, from
//    the error XML's code or, when there is no body (HEAD), from the status
//    (404 -> S3StatusHttpErrorNotFound, 403 -> S3StatusHttpErrorForbidden,
//    500 -> ErrorInternalError, 503 -> ErrorSlowDown, other -> Unknown).
//
// Retries: every operation is idempotent (PUT of the same bytes, GET, HEAD,
// DELETE, one LIST page), so a transient failure (cannot connect, connection
// lost, timeout, 5xx, SlowDown, RequestTimeout) is retried up to
// S3StoreOptions::attempts times with doubling backoff. Anything else
// (refused credentials, no such bucket or key) is final at once.
//
// List pages with marker / IsTruncated / NextMarker. S3 sends NextMarker only
// with a delimiter, so without one the last key of a page is the marker of
// the next; a server that says "truncated" without letting the marker move
// forward is a protocol error rather than an endless loop.
//
// OpenS3Store checks the bucket with a one-key LIST under the prefix rather
// than GET ?location (S3_test_bucket): the store needs the list permission
// anyway, and credentials restricted to a prefix often may not read the
// bucket's location.
#include "backup/s3_store.h"

#include <libs3.h>
#include <sys/select.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "backup/object_key.h"
#include "backup/s3_requests.h"

namespace shorthorn::backup {
namespace {

using namespace s3_requests;  // NOLINT: this file's own helpers, kept apart for size

constexpr auto kMaxPollInterval = std::chrono::milliseconds(100);

class S3Store : public BackupStore {
 public:
  S3Store(Target target, S3Settings settings, S3StoreOptions options)
      : target_(std::move(target)),
        settings_(std::move(settings)),
        options_(options),
        root_(target_.prefix.empty() ? "" : target_.prefix + "/"),
        endpoint_url_((settings_.https ? "https://" : "http://") + settings_.endpoint) {
    bucket_context_ = S3BucketContext{
        settings_.endpoint.c_str(),
        target_.bucket.c_str(),
        settings_.https ? S3ProtocolHTTPS : S3ProtocolHTTP,
        settings_.path_style ? S3UriStylePath : S3UriStyleVirtualHost,
        settings_.access_key.c_str(),
        settings_.secret_key.c_str(),
    };
  }

  Status Put(const std::string& key, std::span<const uint8_t> data) override;
  Result<std::vector<uint8_t>> Get(const std::string& key) override;
  Result<bool> Exists(const std::string& key) override;
  Result<std::optional<uint64_t>> Size(const std::string& key) override;
  Status Delete(const std::string& key) override;
  Result<std::vector<std::string>> List(const std::string& prefix) override;
  const std::string& url() const override { return target_.url; }

  // The one request of OpenS3Store.
  Status CheckBucket();

 private:
  enum class Subject { kObject, kBucket };

  static bool Succeeded(const Outcome& o) {
    return o.status == S3StatusOK && !o.timed_out && !o.short_body;
  }
  // Runs one request to its end or its deadline. `start` issues it on the
  // given context with `r` as callback data.
  template <typename Start>
  void Perform(RequestBase* r, const Start& start);
  // Perform with retries of transient failures; `reset` clears the request
  // state before each try.
  template <typename Reset, typename Start>
  Outcome PerformWithRetries(RequestBase* r, const Reset& reset, const Start& start);

  Status ToStatus(const std::string& what, const Outcome& o, Subject subject) const;
  std::string FullKey(const std::string& key) const { return root_ + key; }

  const Target target_;
  const S3Settings settings_;
  const S3StoreOptions options_;
  const std::string root_;  // "" or "<prefix>/"
  const std::string endpoint_url_;
  S3BucketContext bucket_context_;  // points into target_ and settings_
  ContextPool contexts_;
};

template <typename Start>
void S3Store::Perform(RequestBase* r, const Start& start) {
  S3Status status;
  S3RequestContext* ctx = contexts_.Take(&status);
  if (ctx == nullptr) {
    r->outcome.status = status;
    return;
  }
  // libs3 may complete the request inside `start` (a request it refuses to
  // send); then nothing is queued and the loop below ends at once.
  start(ctx);
  const auto deadline = std::chrono::steady_clock::now() + options_.request_timeout;
  bool reusable = true;
  while (!r->completed) {
    int remaining = 0;
    S3Status run = S3_runonce_request_context(ctx, &remaining);
    if (r->completed) break;
    if (run != S3StatusOK || remaining == 0) {
      reusable = false;  // a context that lost track of its request
      if (run != S3StatusOK) r->outcome.status = run;
      break;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      r->outcome.timed_out = true;
      reusable = false;
      break;
    }
    auto wait = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
                         std::chrono::milliseconds(1000));
    int64_t curl_wait = S3_get_request_context_timeout(ctx);
    if (curl_wait >= 0) wait = std::min(wait, std::chrono::milliseconds(curl_wait));
    fd_set rd, wr, ex;
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    FD_ZERO(&ex);
    int max_fd = -1;
    if (S3_get_request_context_fdsets(ctx, &rd, &wr, &ex, &max_fd) != S3StatusOK) max_fd = -1;
    if (max_fd < 0) {
      // No socket yet (resolving, or a descriptor above FD_SETSIZE that
      // select cannot watch): poll, as curl's documentation suggests.
      std::this_thread::sleep_for(std::min(wait, kMaxPollInterval));
    } else {
      struct timeval tv;
      tv.tv_sec = static_cast<time_t>(wait.count() / 1000);
      tv.tv_usec = static_cast<suseconds_t>(wait.count() % 1000 * 1000);
      ::select(max_fd + 1, &rd, &wr, &ex, &tv);
    }
  }
  if (r->completed && reusable) {
    contexts_.Give(ctx, true);
    if (r->outcome.status == S3StatusOK) r->CheckResult();
    return;
  }
  // Destroying a context ends a request still in it (OnComplete runs with
  // S3StatusInterrupted); keep the reason found here.
  Outcome kept = r->outcome;
  contexts_.Give(ctx, false);
  r->outcome = kept;
  r->completed = true;
}

template <typename Reset, typename Start>
Outcome S3Store::PerformWithRetries(RequestBase* r, const Reset& reset, const Start& start) {
  auto backoff = options_.backoff;
  for (int attempt = 1;; ++attempt) {
    reset();
    Perform(r, start);
    r->outcome.attempts = attempt;
    if (Succeeded(r->outcome)) return r->outcome;
    if (!IsTransient(r->outcome) || attempt >= options_.attempts) return r->outcome;
    std::this_thread::sleep_for(backoff);
    backoff *= 2;
  }
}

Status S3Store::ToStatus(const std::string& what, const Outcome& o, Subject subject) const {
  std::string detail = S3_get_status_name(o.status);
  if (!o.server_message.empty()) detail += ": " + o.server_message;
  std::string tries = o.attempts > 1 ? " (" + std::to_string(o.attempts) + " attempts)" : "";
  auto make = [&](ErrorKind kind, const std::string& reason) {
    return Status(kind, what + ": " + reason + tries);
  };
  if (o.too_large) {
    return make(ErrorKind::kProtocol,
                "the object is larger than " + std::to_string(kMaxObjectSize >> 20) + " MiB");
  }
  if (o.timed_out) {
    return make(ErrorKind::kUnavailable, "no answer from " + endpoint_url_ + " within " +
                                             std::to_string(options_.request_timeout.count()) +
                                             " ms");
  }
  if (o.short_body) {
    return make(ErrorKind::kUnavailable,
                "the connection to " + endpoint_url_ + " ended before the whole object came");
  }
  if (IsCredentialError(o.status) || AsksForSignatureV4(o.server_message)) {
    std::string reason = "the server refused the credentials or the signature (" + detail +
                         "); check access-key and secret-key";
    if (o.status == S3StatusErrorRequestTimeTooSkewed) {
      reason += ", and that this host's clock is right";
    }
    reason +=
        "; libs3 signs with AWS signature V2 only, which AWS buckets that require signature V4 "
        "refuse";
    return make(ErrorKind::kNotAuthorized, reason);
  }
  switch (o.status) {
    case S3StatusNameLookupError:
      return make(ErrorKind::kUnavailable, "cannot resolve the host of " + endpoint_url_);
    case S3StatusFailedToConnect:
      return make(ErrorKind::kUnavailable, "cannot connect to " + endpoint_url_);
    case S3StatusConnectionFailed:
    case S3StatusInternalError:
      return make(ErrorKind::kUnavailable,
                  "the connection to " + endpoint_url_ + " failed (" + detail + ")");
    case S3StatusServerFailedVerification:
      return make(ErrorKind::kUnavailable, "TLS verification of " + endpoint_url_ + " failed");
    case S3StatusErrorInternalError:
    case S3StatusErrorSlowDown:
    case S3StatusErrorRequestTimeout:
    case S3StatusErrorOperationAborted:
      return make(ErrorKind::kUnavailable, "the server failed (" + detail + ")");
    case S3StatusErrorNoSuchBucket:
      return make(ErrorKind::kNotFound,
                  "no such bucket " + target_.bucket + " at " + endpoint_url_);
    case S3StatusErrorNoSuchKey:
    case S3StatusHttpErrorNotFound:
      if (subject == Subject::kBucket) {
        return make(ErrorKind::kNotFound,
                    "no such bucket " + target_.bucket + " at " + endpoint_url_);
      }
      return make(ErrorKind::kNotFound, "no such object");
    case S3StatusErrorPermanentRedirect:
    case S3StatusErrorTemporaryRedirect:
    case S3StatusErrorRedirect:
    case S3StatusHttpErrorMovedTemporarily:
      return make(ErrorKind::kInvalidArgument,
                  "the server redirects elsewhere (" + detail +
                      "); the bucket may be in another region (set endpoint) or need "
                      "uri-style virtual");
    case S3StatusInvalidBucketNameTooLong:
    case S3StatusInvalidBucketNameFirstCharacter:
    case S3StatusInvalidBucketNameCharacter:
    case S3StatusInvalidBucketNameCharacterSequence:
    case S3StatusInvalidBucketNameTooShort:
    case S3StatusInvalidBucketNameDotQuadNotation:
    case S3StatusErrorInvalidBucketName:
      return make(ErrorKind::kInvalidArgument, "invalid bucket name (" + detail + ")");
    case S3StatusErrorEntityTooLarge:
      return make(ErrorKind::kLimitExceeded, "the server refuses an object this large");
    default:
      return make(ErrorKind::kFailed, "the S3 request failed (" + detail + ")");
  }
}

Status S3Store::Put(const std::string& key, std::span<const uint8_t> data) {
  SH_RETURN_IF_ERROR(CheckObjectKey("put", url(), key));
  const std::string full_key = FullKey(key);
  S3PutProperties props;
  std::memset(&props, 0, sizeof(props));
  props.contentType = "application/octet-stream";
  props.expires = -1;
  props.cannedAcl = S3CannedAclPrivate;
  static constexpr S3PutObjectHandler kHandler = {kResponseHandler, &OnPutData};
  PutRequest r;
  Outcome o = PerformWithRetries(
      &r,
      [&] {
        r = PutRequest{};
        r.data = data;
      },
      [&](S3RequestContext* ctx) {
        S3_put_object(&bucket_context_, full_key.c_str(), data.size(), &props, ctx, &kHandler,
                      static_cast<RequestBase*>(&r));
      });
  if (Succeeded(o)) return Status::Ok();
  return ToStatus("put " + url() + " key " + key, o, Subject::kObject);
}

Result<std::vector<uint8_t>> S3Store::Get(const std::string& key) {
  SH_RETURN_IF_ERROR(CheckObjectKey("get", url(), key));
  const std::string full_key = FullKey(key);
  static constexpr S3GetObjectHandler kHandler = {{&OnGetProperties, &OnComplete}, &OnGetData};
  GetRequest r;
  Outcome o = PerformWithRetries(
      &r, [&] { r = GetRequest{}; },
      [&](S3RequestContext* ctx) {
        S3_get_object(&bucket_context_, full_key.c_str(), nullptr, 0, 0, ctx, &kHandler,
                      static_cast<RequestBase*>(&r));
      });
  if (Succeeded(o)) return std::move(r.data);
  return ToStatus("get " + url() + " key " + key, o, Subject::kObject);
}

Result<bool> S3Store::Exists(const std::string& key) {
  SH_RETURN_IF_ERROR(CheckObjectKey("exists", url(), key));
  auto size = Size(key);  // one HEAD request
  if (!size.ok()) return size.status();
  return size->has_value();
}

Result<std::optional<uint64_t>> S3Store::Size(const std::string& key) {
  SH_RETURN_IF_ERROR(CheckObjectKey("size", url(), key));
  const std::string full_key = FullKey(key);
  static constexpr S3ResponseHandler kHeadHandler = {&OnHeadProperties, &OnComplete};
  HeadRequest r;
  Outcome o = PerformWithRetries(
      &r, [&] { r = HeadRequest{}; },
      [&](S3RequestContext* ctx) {
        S3_head_object(&bucket_context_, full_key.c_str(), ctx, &kHeadHandler,
                       static_cast<RequestBase*>(&r));
      });
  if (Succeeded(o)) return std::optional<uint64_t>(r.content_length);
  if (!o.timed_out &&
      (o.status == S3StatusHttpErrorNotFound || o.status == S3StatusErrorNoSuchKey)) {
    return std::optional<uint64_t>();
  }
  return ToStatus("size " + url() + " key " + key, o, Subject::kObject);
}

Status S3Store::Delete(const std::string& key) {
  SH_RETURN_IF_ERROR(CheckObjectKey("delete", url(), key));
  const std::string full_key = FullKey(key);
  RequestBase r;
  Outcome o = PerformWithRetries(
      &r, [&] { r = RequestBase{}; },
      [&](S3RequestContext* ctx) {
        S3_delete_object(&bucket_context_, full_key.c_str(), ctx, &kResponseHandler, &r);
      });
  if (o.timed_out) return ToStatus("delete " + url() + " key " + key, o, Subject::kObject);
  // S3 answers 204 for a missing key; some servers answer NoSuchKey.
  if (o.status == S3StatusOK || o.status == S3StatusErrorNoSuchKey ||
      o.status == S3StatusHttpErrorNotFound) {
    return Status::Ok();
  }
  return ToStatus("delete " + url() + " key " + key, o, Subject::kObject);
}

Result<std::vector<std::string>> S3Store::List(const std::string& prefix) {
  SH_RETURN_IF_ERROR(CheckListPrefix(url(), prefix));
  const std::string what = "list " + url() + " prefix " + prefix;
  const std::string full_prefix = root_ + prefix;
  static constexpr S3ListBucketHandler kHandler = {kResponseHandler, &OnListPage};
  std::vector<std::string> keys;
  std::string marker;
  for (;;) {
    ListRequest r;
    Outcome o = PerformWithRetries(
        &r, [&] { r = ListRequest{}; },
        [&](S3RequestContext* ctx) {
          S3_list_bucket(&bucket_context_, full_prefix.empty() ? nullptr : full_prefix.c_str(),
                         marker.empty() ? nullptr : marker.c_str(), nullptr,
                         options_.list_page_size, ctx, &kHandler, static_cast<RequestBase*>(&r));
        });
    if (!Succeeded(o)) {
      return ToStatus(what + (marker.empty() ? "" : " after " + marker), o, Subject::kBucket);
    }
    for (std::string& k : r.keys) {
      // "Folder" markers that consoles make ("a/b/") are not objects.
      if (k.ends_with('/')) continue;
      if (!k.starts_with(full_prefix)) {
        return Status(ErrorKind::kProtocol,
                      what + ": the server listed key " + k + ", which is not under " +
                          (full_prefix.empty() ? std::string("the bucket") : full_prefix));
      }
      keys.push_back(k.substr(root_.size()));
    }
    if (!r.truncated) break;
    std::string next = !r.next_marker.empty() ? r.next_marker
                       : r.keys.empty()       ? std::string()
                                              : r.keys.back();
    if (next.empty() || next <= marker) {
      return Status(ErrorKind::kProtocol,
                    what + ": the server says the listing is truncated but gives no next key");
    }
    marker = std::move(next);
  }
  return keys;
}

Status S3Store::CheckBucket() {
  static constexpr S3ListBucketHandler kHandler = {kResponseHandler, &OnListPage};
  ListRequest r;
  Outcome o = PerformWithRetries(
      &r, [&] { r = ListRequest{}; },
      [&](S3RequestContext* ctx) {
        S3_list_bucket(&bucket_context_, root_.empty() ? nullptr : root_.c_str(), nullptr, nullptr,
                       1, ctx, &kHandler, static_cast<RequestBase*>(&r));
      });
  if (Succeeded(o)) return Status::Ok();
  return ToStatus("open " + url(), o, Subject::kBucket);
}

}  // namespace

Result<std::unique_ptr<BackupStore>> OpenS3Store(const Target& target, const S3Settings& settings,
                                                 const S3StoreOptions& options) {
  const std::string what = "open " + target.url;
  if (target.kind != Target::Kind::kS3 || target.bucket.empty()) {
    return Status(ErrorKind::kInvalidArgument, what + ": not an s3:// target");
  }
  if (settings.endpoint.empty() || settings.access_key.empty() || settings.secret_key.empty()) {
    return Status(ErrorKind::kInvalidArgument,
                  what + ": the S3 settings lack an endpoint, an access key or a secret key");
  }
  if (settings.endpoint.size() >= S3_MAX_HOSTNAME_SIZE) {
    return Status(ErrorKind::kInvalidArgument, what + ": the endpoint is too long");
  }
  if (options.attempts < 1 || options.list_page_size < 1 || options.list_page_size > 1000 ||
      options.request_timeout.count() <= 0) {
    return Status(ErrorKind::kInvalidArgument, what + ": bad S3 store options");
  }
  SH_RETURN_IF_ERROR(InitializeLibs3().WithContext(what));
  auto store = std::make_unique<S3Store>(target, settings, options);
  SH_RETURN_IF_ERROR(store->CheckBucket());
  return std::unique_ptr<BackupStore>(std::move(store));
}

}  // namespace shorthorn::backup
