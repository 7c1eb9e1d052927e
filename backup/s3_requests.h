// The libs3 request plumbing of the S3 store (s3_store.cc): one state
// struct per kind of request, the libs3 callbacks that fill them, how an
// outcome is judged (transient, credentials, signature V4), and the pool of
// request contexts. Internal to backup/; see s3_store.cc's design notes.
#pragma once

#include <libs3.h>

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace shorthorn::backup::s3_requests {

constexpr uint64_t kMaxObjectSize = 256ull << 20;  // objects are a few MiB

// Sets libs3 up for the process (once; later calls return the first result).
Status InitializeLibs3();

// What one request ended with.
struct Outcome {
  S3Status status = S3StatusInternalError;
  bool timed_out = false;      // no answer within the deadline
  bool short_body = false;     // fewer bytes than Content-Length
  bool too_large = false;      // Get: larger than kMaxObjectSize
  std::string server_message;  // the error XML's Message, if any
  int attempts = 0;
};

// The part of a request's state that every libs3 callback shares. The
// callback data pointer is always a RequestBase*.
struct RequestBase {
  virtual ~RequestBase() = default;
  // Called when the request has ended with S3StatusOK, to check the result.
  virtual void CheckResult() {}

  Outcome outcome;
  bool completed = false;
};

// The callbacks every request shares: properties are ignored, completion
// records the status and the server's message in the RequestBase.
S3Status OnProperties(const S3ResponseProperties*, void*);

void OnComplete(S3Status status, const S3ErrorDetails* details, void* data);

inline constexpr S3ResponseHandler kResponseHandler = {&OnProperties, &OnComplete};

struct HeadRequest : RequestBase {
  uint64_t content_length = 0;
};

S3Status OnHeadProperties(const S3ResponseProperties* p, void* data);

struct PutRequest : RequestBase {
  std::span<const uint8_t> data;
  size_t offset = 0;
};

int OnPutData(int buffer_size, char* buffer, void* data);

struct GetRequest : RequestBase {
  // libs3 reports a body cut short as success (see the notes above).
  void CheckResult() override {
    if (content_length != 0 && data.size() != content_length) outcome.short_body = true;
  }

  std::vector<uint8_t> data;
  uint64_t content_length = 0;  // 0 when the response had none
};

S3Status OnGetProperties(const S3ResponseProperties* p, void* data);

S3Status OnGetData(int buffer_size, const char* buffer, void* data);

struct ListRequest : RequestBase {
  std::vector<std::string> keys;
  bool truncated = false;
  std::string next_marker;
};

// Called every 32 keys and at the end of a page.
S3Status OnListPage(int is_truncated, const char* next_marker, int contents_count,
                    const S3ListBucketContent* contents, int, const char**, void* data);

// Worth another try: cannot connect, connection lost, timeout, a body cut
// short, 5xx, SlowDown, RequestTimeout.
bool IsTransient(const Outcome& o);

// The server refused the credentials (or the clock is too far off).
bool IsCredentialError(S3Status s);

// A server that only takes signature V4 says so in the message of a 400
// (InvalidRequest, which libs3 2.0 does not know) or a 403.
bool AsksForSignatureV4(const std::string& message);

// Returns a pooled S3RequestContext to its store when the lease ends.
class ContextPool {
 public:
  ContextPool() = default;
  ContextPool(const ContextPool&) = delete;
  ContextPool& operator=(const ContextPool&) = delete;
  ~ContextPool() {
    for (S3RequestContext* c : free_) S3_destroy_request_context(c);
  }

  // Null with `*status` set when libs3 cannot make one.
  S3RequestContext* Take(S3Status* status);

  // A context whose request finished goes back; one whose request was cut
  // short is destroyed (which also ends the request).
  void Give(S3RequestContext* c, bool reusable);

 private:
  std::mutex mu_;
  std::vector<S3RequestContext*> free_;
};

}  // namespace shorthorn::backup::s3_requests
