#include "backup/s3_requests.h"

#include <algorithm>
#include <cstring>

namespace shorthorn::backup::s3_requests {

Status InitializeLibs3() {
  static const S3Status status =
      S3_initialize("shorthorn/" SHORTHORN_VERSION, S3_INIT_ALL, nullptr);
  if (status == S3StatusOK) return Status::Ok();
  return Status(ErrorKind::kFailed, std::string("initialize libs3: ") + S3_get_status_name(status));
}

S3Status OnProperties(const S3ResponseProperties*, void*) { return S3StatusOK; }

void OnComplete(S3Status status, const S3ErrorDetails* details, void* data) {
  auto* r = static_cast<RequestBase*>(data);
  r->outcome.status = status;
  if (details != nullptr && details->message != nullptr) {
    r->outcome.server_message = details->message;
  }
  r->completed = true;
}

S3Status OnListPage(int is_truncated, const char* next_marker, int contents_count,
                    const S3ListBucketContent* contents, int, const char**, void* data) {
  auto* r = static_cast<ListRequest*>(static_cast<RequestBase*>(data));
  // libs3 calls this every 32 keys and at the end; IsTruncated and
  // NextMarker may arrive in any of the calls.
  if (is_truncated) r->truncated = true;
  if (next_marker != nullptr && *next_marker != '\0') r->next_marker = next_marker;
  for (int i = 0; i < contents_count; ++i) r->keys.emplace_back(contents[i].key);
  return S3StatusOK;
}

S3Status OnHeadProperties(const S3ResponseProperties* p, void* data) {
  static_cast<HeadRequest*>(static_cast<RequestBase*>(data))->content_length = p->contentLength;
  return S3StatusOK;
}

int OnPutData(int buffer_size, char* buffer, void* data) {
  auto* r = static_cast<PutRequest*>(static_cast<RequestBase*>(data));
  size_t n = std::min(static_cast<size_t>(buffer_size), r->data.size() - r->offset);
  if (n > 0) std::memcpy(buffer, r->data.data() + r->offset, n);
  r->offset += n;
  return static_cast<int>(n);
}

S3Status OnGetProperties(const S3ResponseProperties* p, void* data) {
  auto* r = static_cast<GetRequest*>(static_cast<RequestBase*>(data));
  r->content_length = p->contentLength;
  if (p->contentLength > kMaxObjectSize) {
    r->outcome.too_large = true;
    return S3StatusAbortedByCallback;
  }
  r->data.reserve(p->contentLength);
  return S3StatusOK;
}

S3Status OnGetData(int buffer_size, const char* buffer, void* data) {
  auto* r = static_cast<GetRequest*>(static_cast<RequestBase*>(data));
  if (r->data.size() + static_cast<size_t>(buffer_size) > kMaxObjectSize) {
    r->outcome.too_large = true;
    return S3StatusAbortedByCallback;
  }
  r->data.insert(r->data.end(), buffer, buffer + buffer_size);
  return S3StatusOK;
}

bool IsTransient(const Outcome& o) {
  if (o.timed_out || o.short_body) return true;
  switch (o.status) {
    case S3StatusInternalError:  // curl send/receive errors land here
    case S3StatusNameLookupError:
    case S3StatusFailedToConnect:
    case S3StatusConnectionFailed:
    case S3StatusErrorInternalError:
    case S3StatusErrorOperationAborted:
    case S3StatusErrorRequestTimeout:
    case S3StatusErrorSlowDown:
    case S3StatusHttpErrorUnknown:  // 502, 504 and other unmapped statuses
      return true;
    default:
      return false;
  }
}

bool IsCredentialError(S3Status s) {
  switch (s) {
    case S3StatusErrorAccessDenied:
    case S3StatusHttpErrorForbidden:
    case S3StatusErrorSignatureDoesNotMatch:
    case S3StatusErrorInvalidAccessKeyId:
    case S3StatusErrorAccountProblem:
    case S3StatusErrorCredentialsNotSupported:
    case S3StatusErrorExpiredToken:
    case S3StatusErrorInvalidToken:
    case S3StatusErrorInvalidSecurity:
    case S3StatusErrorMissingSecurityHeader:
    case S3StatusErrorNotSignedUp:
    case S3StatusErrorTokenRefreshRequired:
    case S3StatusErrorRequestTimeTooSkewed:
      return true;
    default:
      return false;
  }
}

bool AsksForSignatureV4(const std::string& message) {
  return message.find("AWS4-HMAC-SHA256") != std::string::npos ||
         message.find("Signature Version 4") != std::string::npos ||
         message.find("authorization mechanism") != std::string::npos;
}

S3RequestContext* ContextPool::Take(S3Status* status) {
  {
    std::lock_guard lock(mu_);
    if (!free_.empty()) {
      S3RequestContext* c = free_.back();
      free_.pop_back();
      *status = S3StatusOK;
      return c;
    }
  }
  S3RequestContext* c = nullptr;
  *status = S3_create_request_context(&c);
  return *status == S3StatusOK ? c : nullptr;
}

void ContextPool::Give(S3RequestContext* c, bool reusable) {
  if (!reusable) {
    S3_destroy_request_context(c);
    return;
  }
  std::lock_guard lock(mu_);
  free_.push_back(c);
}

}  // namespace shorthorn::backup::s3_requests
