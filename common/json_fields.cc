// Design notes: every reader looks the key up once and phrases its error
// the same way, so that a message names the context and the key whatever
// read it. The messages of the required readers are those replicad's
// request handler gave before this file existed ("open replica: field
// 'epoch' is missing or not an unsigned integer"), which doc/protocol.md
// and tests quote.
#include "common/json_fields.h"

#include <utility>

namespace shorthorn::json_fields {
namespace {

namespace json = boost::json;

Status Missing(const FieldContext& ctx, std::string_view key, std::string_view type) {
  return ctx.Error("field '" + std::string(key) + "' is missing or not " + std::string(type));
}

Status Wrong(const FieldContext& ctx, std::string_view key, std::string_view type) {
  return ctx.Error("field '" + std::string(key) + "' is not " + std::string(type));
}

constexpr std::string_view kString = "a string", kUint = "an unsigned integer", kBool = "a boolean",
                           kArray = "an array", kObject = "an object";

}  // namespace

Status FieldContext::Error(std::string_view reason) const {
  return Status(kind, what + ": " + std::string(reason), sys_errno);
}

FieldContext RequestContext(std::string what) {
  return {std::move(what), ErrorKind::kInvalidArgument, EINVAL};
}
FieldContext ReplyContext(std::string what) {
  return {std::move(what), ErrorKind::kProtocol, EPROTO};
}
FieldContext FileContext(std::string what) { return {std::move(what), ErrorKind::kIoError, EIO}; }

std::string Excerpt(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return std::string(text.substr(0, n)) + "...";
}

bool AsUint64(const json::value& v, uint64_t* out) {
  if (v.is_uint64()) {
    *out = v.as_uint64();
    return true;
  }
  if (v.is_int64() && v.as_int64() >= 0) {
    *out = static_cast<uint64_t>(v.as_int64());
    return true;
  }
  return false;
}

Status GetString(const json::object& o, std::string_view key, const FieldContext& ctx,
                 std::string* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return Missing(ctx, key, kString);
  *out = std::string(v->as_string());
  return Status::Ok();
}

Status GetOptionalString(const json::object& o, std::string_view key, const FieldContext& ctx,
                         std::string* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_string()) return Wrong(ctx, key, kString);
  *out = std::string(v->as_string());
  return Status::Ok();
}

Status GetOptionalString(const json::object& o, std::string_view key, const FieldContext& ctx,
                         std::optional<std::string>* out) {
  std::string s;
  if (!o.contains(key)) return Status::Ok();
  SH_RETURN_IF_ERROR(GetOptionalString(o, key, ctx, &s));
  *out = std::move(s);
  return Status::Ok();
}

Status GetUint64(const json::object& o, std::string_view key, const FieldContext& ctx,
                 uint64_t* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !AsUint64(*v, out)) return Missing(ctx, key, kUint);
  return Status::Ok();
}

Status GetOptionalUint64(const json::object& o, std::string_view key, const FieldContext& ctx,
                         uint64_t* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return Status::Ok();
  if (!AsUint64(*v, out)) return Wrong(ctx, key, kUint);
  return Status::Ok();
}

Status GetOptionalUint64(const json::object& o, std::string_view key, const FieldContext& ctx,
                         std::optional<uint64_t>* out) {
  uint64_t x = 0;
  if (!o.contains(key)) return Status::Ok();
  SH_RETURN_IF_ERROR(GetOptionalUint64(o, key, ctx, &x));
  *out = x;
  return Status::Ok();
}

Status GetBool(const json::object& o, std::string_view key, const FieldContext& ctx, bool* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_bool()) return Missing(ctx, key, kBool);
  *out = v->as_bool();
  return Status::Ok();
}

Status GetOptionalBool(const json::object& o, std::string_view key, const FieldContext& ctx,
                       bool* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_bool()) return Wrong(ctx, key, kBool);
  *out = v->as_bool();
  return Status::Ok();
}

Status GetArray(const json::object& o, std::string_view key, const FieldContext& ctx,
                const json::array** out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_array()) return Missing(ctx, key, kArray);
  *out = &v->as_array();
  return Status::Ok();
}

Status GetOptionalArray(const json::object& o, std::string_view key, const FieldContext& ctx,
                        const json::array** out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_array()) return Wrong(ctx, key, kArray);
  *out = &v->as_array();
  return Status::Ok();
}

Status GetObject(const json::object& o, std::string_view key, const FieldContext& ctx,
                 const json::object** out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_object()) return Missing(ctx, key, kObject);
  *out = &v->as_object();
  return Status::Ok();
}

Status GetOptionalObject(const json::object& o, std::string_view key, const FieldContext& ctx,
                         const json::object** out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_object()) return Wrong(ctx, key, kObject);
  *out = &v->as_object();
  return Status::Ok();
}

Status GetNullableString(const json::object& o, std::string_view key, const FieldContext& ctx,
                         bool required, std::optional<std::string>* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) {
    if (required) return Missing(ctx, key, "a string or null");
    return Status::Ok();
  }
  if (v->is_null()) {
    out->reset();
    return Status::Ok();
  }
  if (!v->is_string()) {
    return required ? Missing(ctx, key, "a string or null") : Wrong(ctx, key, "a string or null");
  }
  *out = std::string(v->as_string());
  return Status::Ok();
}

Status GetStringArray(const json::object& o, std::string_view key, const FieldContext& ctx,
                      bool required, std::vector<std::string>* out) {
  const json::array* a = nullptr;
  SH_RETURN_IF_ERROR(required ? GetArray(o, key, ctx, &a) : GetOptionalArray(o, key, ctx, &a));
  if (a == nullptr) return Status::Ok();
  std::vector<std::string> items;
  items.reserve(a->size());
  for (size_t i = 0; i < a->size(); ++i) {
    const json::value& e = (*a)[i];
    if (!e.is_string()) {
      return ctx.Error("field '" + std::string(key) + "': element " + std::to_string(i) +
                       " is not a string");
    }
    items.emplace_back(e.as_string());
  }
  *out = std::move(items);
  return Status::Ok();
}

}  // namespace shorthorn::json_fields
