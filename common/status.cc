#include "common/status.h"

#include <cstring>

namespace shorthorn {

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kOk:
      return "Ok";
    case ErrorKind::kNotFound:
      return "NotFound";
    case ErrorKind::kAlreadyExists:
      return "AlreadyExists";
    case ErrorKind::kInvalidArgument:
      return "InvalidArgument";
    case ErrorKind::kBusy:
      return "Busy";
    case ErrorKind::kNotAuthorized:
      return "NotAuthorized";
    case ErrorKind::kUnavailable:
      return "Unavailable";
    case ErrorKind::kStale:
      return "Stale";
    case ErrorKind::kMoved:
      return "Moved";
    case ErrorKind::kNoSpace:
      return "NoSpace";
    case ErrorKind::kLimitExceeded:
      return "LimitExceeded";
    case ErrorKind::kIoError:
      return "IOError";
    case ErrorKind::kProtocol:
      return "Protocol";
    case ErrorKind::kFailed:
      return "Failed";
  }
  return "Failed";
}

int Status::sys_errno() const {
  if (ok()) return 0;
  if (errno_ != 0) return errno_;
  switch (kind_) {
    case ErrorKind::kNotFound:
      return ENOENT;
    case ErrorKind::kAlreadyExists:
      return EEXIST;
    case ErrorKind::kInvalidArgument:
      return EINVAL;
    case ErrorKind::kBusy:
      return EBUSY;
    case ErrorKind::kNotAuthorized:
      return EPERM;
    case ErrorKind::kStale:
      return ESTALE;
    case ErrorKind::kMoved:
      return EXDEV;
    case ErrorKind::kNoSpace:
      return ENOSPC;
    case ErrorKind::kLimitExceeded:
      return EMLINK;
    case ErrorKind::kProtocol:
      return EPROTO;
    default:
      return EIO;
  }
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(ErrorKindName(kind_)) + ": " + message_;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  return Status(kind_, std::string(context) + ": " + message_, errno_);
}

ErrorKind KindForErrno(int sys_errno) {
  switch (sys_errno) {
    case 0:
      return ErrorKind::kOk;
    case ENOENT:
      return ErrorKind::kNotFound;
    case EEXIST:
      return ErrorKind::kAlreadyExists;
    case EINVAL:
      return ErrorKind::kInvalidArgument;
    case EBUSY:
      return ErrorKind::kBusy;
    case EPERM:
    case EACCES:
      return ErrorKind::kNotAuthorized;
    case ESTALE:
      return ErrorKind::kStale;
    case EXDEV:
      return ErrorKind::kMoved;
    case ENOSPC:
    case EDQUOT:
      return ErrorKind::kNoSpace;
    case EIO:
      return ErrorKind::kIoError;
    case EMLINK:
      return ErrorKind::kLimitExceeded;
    case EPROTO:
    case EBADMSG:
      return ErrorKind::kProtocol;
    case ECONNREFUSED:
    case ECONNRESET:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ETIMEDOUT:
    case EPIPE:
      return ErrorKind::kUnavailable;
    default:
      return ErrorKind::kFailed;
  }
}

Status ErrnoStatus(int sys_errno, std::string_view what) {
  return Status(KindForErrno(sys_errno), std::string(what) + ": " + std::strerror(sys_errno),
                sys_errno);
}

}  // namespace shorthorn
