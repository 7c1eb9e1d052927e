// Status and Result: errors as values.
//
// Every fallible function inside Shorthorn returns a Status (or a Result<T>,
// which is a Status or a value). A Status carries an error kind (which the
// D-Bus edge turns into org.shorthorn.Storage1.Error.<Kind>), the errno it came
// from when there is one (which the FUSE edge replies with), and a message
// that reads "<operation> <object>: <reason>". The OK path is one enum
// compare and an empty string. Thread-compatible: a Status is a value.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace shorthorn {

enum class ErrorKind {
  kOk = 0,
  kNotFound,
  kAlreadyExists,
  kInvalidArgument,
  kBusy,
  kNotAuthorized,
  kUnavailable,  // a replica or other peer cannot be reached
  kStale,        // fenced: an older epoch
  kMoved,        // fenced: the volume was imported by another fused (EXDEV)
  kNoSpace,
  kLimitExceeded,  // a count limit (snapshots per volume, ...)
  kIoError,
  kProtocol,  // a malformed frame or reply
  kFailed,    // anything else
};

// Name used in D-Bus error names and logs ("NotFound", "Busy", ...).
std::string_view ErrorKindName(ErrorKind kind);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorKind kind, std::string message, int sys_errno = 0)
      : kind_(kind), errno_(sys_errno), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return kind_ == ErrorKind::kOk; }
  ErrorKind kind() const { return kind_; }
  // The errno this error maps to at the FUSE edge (never 0 for an error).
  int sys_errno() const;
  const std::string& message() const { return message_; }
  // "Kind: message", for logs.
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(std::string_view context) const;

 private:
  ErrorKind kind_ = ErrorKind::kOk;
  int errno_ = 0;
  std::string message_;
};

// Converts an errno into a Status; the only place that chooses a kind for an
// errno. `what` is "<operation> <object>", the errno's text is appended.
Status ErrnoStatus(int sys_errno, std::string_view what);

// The kind an errno received from a peer stands for.
ErrorKind KindForErrno(int sys_errno);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace shorthorn

// Returns early from the enclosing function when `expr` is not OK.
#define SH_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::shorthorn::Status sh_status_ = (expr); \
    if (!sh_status_.ok()) return sh_status_; \
  } while (0)
