// JSON field readers: the one way Shorthorn reads a field of a JSON object
// it received (a control request or reply of the replica protocol,
// common/control_messages.h) or read from a file (replica.json).
//
// Each reader is strict and never throws: a required field that is missing,
// or any field of the wrong type, is an error Status whose message is
// "<context>: field '<key>' is missing or not <a type>" (required) or
// "<context>: field '<key>' is not <a type>" (optional, present), of the
// kind the FieldContext says: kInvalidArgument/EINVAL for a peer's request,
// kProtocol/EPROTO for a peer's reply, kIoError/EIO for a file. An unsigned
// integer is a JSON integer in [0, 2^64) (Boost.JSON's uint64 or a
// non-negative int64); a double such as 1.0 is not one. On error `*out` is
// unchanged; an absent optional field leaves `*out` unchanged too (the
// caller's default stands).
//
// Pure functions: callable from any thread.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace shorthorn::json_fields {

// Who reads, for messages, and which kind of error a bad field is.
struct FieldContext {
  std::string what;  // "open replica", "read /x/replica.json", "... bad reply"
  ErrorKind kind = ErrorKind::kInvalidArgument;
  int sys_errno = EINVAL;

  // "<what>: <reason>" of this context's kind.
  Status Error(std::string_view reason) const;
};

// A peer's request (EINVAL), a peer's reply (EPROTO), a file (EIO).
FieldContext RequestContext(std::string what);
FieldContext ReplyContext(std::string what);
FieldContext FileContext(std::string what);

// `v` as an unsigned 64-bit integer (see above); false otherwise.
bool AsUint64(const boost::json::value& v, uint64_t* out);

// A peer's text as an error message may quote it: whole up to `max` bytes,
// else its first `max` bytes (never cutting a UTF-8 character) and "...".
// A hostile peer cannot make an error, and so a log line, arbitrarily long.
std::string Excerpt(std::string_view text, size_t max = 64);

Status GetString(const boost::json::object& o, std::string_view key, const FieldContext& ctx,
                 std::string* out);
Status GetOptionalString(const boost::json::object& o, std::string_view key,
                         const FieldContext& ctx, std::string* out);
Status GetOptionalString(const boost::json::object& o, std::string_view key,
                         const FieldContext& ctx, std::optional<std::string>* out);

Status GetUint64(const boost::json::object& o, std::string_view key, const FieldContext& ctx,
                 uint64_t* out);
Status GetOptionalUint64(const boost::json::object& o, std::string_view key,
                         const FieldContext& ctx, uint64_t* out);
Status GetOptionalUint64(const boost::json::object& o, std::string_view key,
                         const FieldContext& ctx, std::optional<uint64_t>* out);

Status GetBool(const boost::json::object& o, std::string_view key, const FieldContext& ctx,
               bool* out);
Status GetOptionalBool(const boost::json::object& o, std::string_view key, const FieldContext& ctx,
                       bool* out);

// Arrays and objects are returned by pointer into `o` (valid while `o` is);
// an absent optional one leaves *out nullptr.
Status GetArray(const boost::json::object& o, std::string_view key, const FieldContext& ctx,
                const boost::json::array** out);
Status GetOptionalArray(const boost::json::object& o, std::string_view key, const FieldContext& ctx,
                        const boost::json::array** out);
Status GetObject(const boost::json::object& o, std::string_view key, const FieldContext& ctx,
                 const boost::json::object** out);
Status GetOptionalObject(const boost::json::object& o, std::string_view key,
                         const FieldContext& ctx, const boost::json::object** out);

// A field that is a string or null (null and absence give nullopt when
// `required` is false; a required one must be present).
Status GetNullableString(const boost::json::object& o, std::string_view key,
                         const FieldContext& ctx, bool required, std::optional<std::string>* out);

// Every element of the array field `key` is a string: "<what>: field 'key':
// element N is not a string" otherwise.
Status GetStringArray(const boost::json::object& o, std::string_view key, const FieldContext& ctx,
                      bool required, std::vector<std::string>* out);

}  // namespace shorthorn::json_fields
