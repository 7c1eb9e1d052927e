// A JSON object described once, as a table of rows, and the one encoder
// (WriteFields) and one decoder (ReadFields) that walk such a table. The
// replica protocol's control messages (common/control_messages.h) are
// described this way.
//
// A row is usually a Field: the JSON key, a pointer to the struct's member,
// a Policy and a codec (by default the one for the member's type):
//
//   Required("volume", &M::volume), SentIfSet("owner", &M::owner),
//   Optional("hashes", &M::hashes, Array<Hash>{})
//
// Rows are encoded and decoded in table order, so the table gives both the
// order of the keys on the wire and which bad field an error names first.
// Other rows: a Check (a rule over the fields read so far, encodes
// nothing), a Group (a nested object made of members of the same struct),
// and WriteOnly/ReadOnly (a field read at another place than it is sent).
// A codec is an object with
//
//   boost::json::value Write(const M&) const;
//   Status Read(const boost::json::value* v, const Slot& at, M* out) const;
//
// where Read is called with the key's value, or with nullptr when a
// required key is absent. Errors are phrased as json_fields' readers
// phrase them (common/json_fields.h): "<context>: field '<key>' is missing
// or not a string" for a required field, "... is not a string" for an
// optional one that is present. Decoding never throws.
//
// Header-only, pure: callable from any thread.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "common/json_fields.h"
#include "common/status.h"

namespace shorthorn::json_mapping {

using json_fields::FieldContext;

// How a field is decoded and when it is sent.
enum class Policy : uint8_t {
  kRequired,   // missing or of another type: an error; always sent
  kOptional,   // absent: the default stays; another type: an error; always sent
  kSentIfSet,  // as kOptional, but sent only when set (IsSet below)
  kLenient,    // as kOptional, but a value of another type counts as absent
};

// A kSentIfSet value is sent when it is true, not empty, or engaged.
inline bool IsSet(bool b) { return b; }
inline bool IsSet(const std::string& s) { return !s.empty(); }
template <typename T>
bool IsSet(const std::optional<T>& x) {
  return x.has_value();
}
// Any other type (a number would silently convert to bool): no rule yet.
template <typename T>
bool IsSet(const T&) = delete;

// Where a codec reads: the field's key, its context, and whether it is
// required (which changes how a wrong type is phrased).
struct Slot {
  std::string_view key;
  const FieldContext& ctx;
  bool required = false;

  // "field 'key' is missing or not <type>" (required), "... is not <type>".
  Status WrongType(std::string_view type) const {
    return ctx.Error("field '" + std::string(key) +
                     (required ? "' is missing or not " : "' is not ") + std::string(type));
  }
  Status Error(std::string_view reason) const { return ctx.Error(reason); }
  // The context of a nested object: "<context>: <key>".
  FieldContext Nested() const {
    return {ctx.what + ": " + std::string(key), ctx.kind, ctx.sys_errno};
  }
};

// ---- Codecs of the plain types --------------------------------------------

struct String {
  static constexpr std::string_view kType = "a string";
  boost::json::value Write(const std::string& s) const { return boost::json::value(s); }
  Status Read(const boost::json::value* v, const Slot& at, std::string* out) const {
    if (v == nullptr || !v->is_string()) return at.WrongType(kType);
    *out = std::string(v->as_string());
    return Status::Ok();
  }
};

// An integer in [0, 2^64) (json_fields::AsUint64).
struct Uint64 {
  static constexpr std::string_view kType = "an unsigned integer";
  boost::json::value Write(uint64_t x) const { return boost::json::value(x); }
  Status Read(const boost::json::value* v, const Slot& at, uint64_t* out) const {
    if (v == nullptr || !json_fields::AsUint64(*v, out)) return at.WrongType(kType);
    return Status::Ok();
  }
};

struct Bool {
  static constexpr std::string_view kType = "a boolean";
  boost::json::value Write(bool b) const { return boost::json::value(b); }
  Status Read(const boost::json::value* v, const Slot& at, bool* out) const {
    if (v == nullptr || !v->is_bool()) return at.WrongType(kType);
    *out = v->as_bool();
    return Status::Ok();
  }
};

// std::optional<T> of an optional key: absent is nullopt (with kSentIfSet).
template <typename Codec>
struct Maybe {
  Codec codec;
  template <typename T>
  boost::json::value Write(const std::optional<T>& x) const {
    return x ? codec.Write(*x) : boost::json::value(nullptr);
  }
  template <typename T>
  Status Read(const boost::json::value* v, const Slot& at, std::optional<T>* out) const {
    T x{};
    SH_RETURN_IF_ERROR(codec.Read(v, at, &x));
    *out = std::move(x);
    return Status::Ok();
  }
};

// std::optional<T> sent as the value or null (always sent): "field 'key'
// is missing" when required and absent, "field 'key' is not <type> or
// null" for another type.
template <typename Codec>
struct Nullable : Maybe<Codec> {
  template <typename T>
  Status Read(const boost::json::value* v, const Slot& at, std::optional<T>* out) const {
    if (v == nullptr) return at.Error("field '" + std::string(at.key) + "' is missing");
    if (v->is_null()) {
      out->reset();
      return Status::Ok();
    }
    T x{};
    if (!this->codec.Read(v, at, &x).ok()) {
      return at.Error("field '" + std::string(at.key) + "' is not " + std::string(Codec::kType) +
                      " or null");
    }
    *out = std::move(x);
    return Status::Ok();
  }
};

// An array whose elements the codec `Element` reads one by one:
//   json::value Write(const E&) const;
//   Status ReadElement(const json::value& e, size_t index, const Slot& at, E* out) const;
// `no_array`, when set, is the whole error for a required array that is
// missing or not an array (else "field 'key' is missing or not an array").
template <typename Element>
struct Array {
  Element element;
  std::string_view no_array;

  template <typename E>
  boost::json::value Write(const std::vector<E>& items) const {
    boost::json::array a;
    a.reserve(items.size());
    for (const E& x : items) a.push_back(element.Write(x));
    return a;
  }
  template <typename E>
  Status Read(const boost::json::value* v, const Slot& at, std::vector<E>* out) const {
    if (v == nullptr || !v->is_array()) {
      return no_array.empty() ? at.WrongType("an array") : at.Error(no_array);
    }
    const boost::json::array& a = v->as_array();
    std::vector<E> items;
    // Not a.size(): a hostile 1 MiB reply holds ~500k elements, and the
    // first bad one should cost nothing.
    items.reserve(std::min<size_t>(a.size(), 256));
    for (size_t i = 0; i < a.size(); ++i) {
      E x{};
      SH_RETURN_IF_ERROR(element.ReadElement(a[i], i, at, &x));
      items.push_back(std::move(x));
    }
    *out = std::move(items);
    return Status::Ok();
  }
};

// A string element: "field 'key': element N is not a string", or "<noun>
// is not a string" when `noun` is set.
struct StringElement {
  std::string_view noun;
  boost::json::value Write(const std::string& s) const { return boost::json::value(s); }
  Status ReadElement(const boost::json::value& e, size_t index, const Slot& at,
                     std::string* out) const {
    if (!e.is_string()) {
      return at.Error(noun.empty() ? "field '" + std::string(at.key) + "': element " +
                                         std::to_string(index) + " is not a string"
                                   : std::string(noun) + " is not a string");
    }
    *out = std::string(e.as_string());
    return Status::Ok();
  }
};
using Strings = Array<StringElement>;

// The codec a member of type M gets unless its row names another.
template <typename M>
struct DefaultCodec;
template <>
struct DefaultCodec<std::string> {
  using type = String;
};
template <>
struct DefaultCodec<uint64_t> {
  using type = Uint64;
};
template <>
struct DefaultCodec<bool> {
  using type = Bool;
};
template <typename T>
struct DefaultCodec<std::optional<T>> {
  using type = Maybe<typename DefaultCodec<T>::type>;
};
template <>
struct DefaultCodec<std::vector<std::string>> {
  using type = Strings;
};
template <typename M>
using DefaultCodecT = typename DefaultCodec<M>::type;

// ---- Rows and the walkers -------------------------------------------------

template <typename T, typename... Rows>
void WriteFields(const T& m, const std::tuple<Rows...>& rows, boost::json::object& o) {
  std::apply([&](const auto&... row) { (row.Write(m, o), ...); }, rows);
}

// Reads the rows in order into *m; stops at the first error.
template <typename T, typename... Rows>
Status ReadFields(const boost::json::object& o, const FieldContext& ctx,
                  const std::tuple<Rows...>& rows, T* m) {
  Status s = Status::Ok();
  std::apply([&](const auto&... row) { (void)((s = row.Read(o, ctx, m)).ok() && ...); }, rows);
  return s;
}

// The object the rows give for `m`.
template <typename T, typename Rows>
boost::json::object ToJsonObject(const T& m, const Rows& rows) {
  boost::json::object o;
  WriteFields(m, rows, o);
  return o;
}

// Decodes `o` into a new T by `rows`; *out is set only when all is well.
template <typename T, typename Rows>
Status ReadObject(const boost::json::object& o, const FieldContext& ctx, const Rows& rows, T* out) {
  T m{};
  SH_RETURN_IF_ERROR(ReadFields(o, ctx, rows, &m));
  *out = std::move(m);
  return Status::Ok();
}

// One member, under one key.
template <typename T, typename M, typename Codec, Policy policy>
struct Field {
  std::string_view key;
  M T::*member;
  Codec codec;

  void Write(const T& m, boost::json::object& o) const {
    const M& x = m.*member;
    if constexpr (policy == Policy::kSentIfSet) {
      if (!IsSet(x)) return;
    }
    o[key] = codec.Write(x);
  }
  Status Read(const boost::json::object& o, const FieldContext& ctx, T* m) const {
    const boost::json::value* v = o.if_contains(key);
    const bool required = policy == Policy::kRequired;
    if (v == nullptr && !required) return Status::Ok();
    const Slot at{key, ctx, required};
    if constexpr (policy == Policy::kLenient) {
      M x = m->*member;
      if (codec.Read(v, at, &x).ok()) m->*member = std::move(x);
      return Status::Ok();
    } else {
      return codec.Read(v, at, &(m->*member));
    }
  }
};

// The rows of the four policies: Required("key", &M::member), or with a
// codec of its own, Required("key", &M::member, Codec{...}).
template <Policy policy>
struct FieldOf {
  template <typename T, typename M, typename Codec = DefaultCodecT<M>>
  constexpr Field<T, M, Codec, policy> operator()(std::string_view key, M T::*member,
                                                  Codec codec = {}) const {
    return {key, member, codec};
  }
};
inline constexpr FieldOf<Policy::kRequired> Required;
inline constexpr FieldOf<Policy::kOptional> Optional;
inline constexpr FieldOf<Policy::kSentIfSet> SentIfSet;
inline constexpr FieldOf<Policy::kLenient> Lenient;

// A row split in two, for a field sent at one place but read at another
// (where the decoders before the tables read it, so that the first bad
// field an error names stays the same): WriteOnly{row} where the key is
// sent, ReadOnly{row} where it is read.
template <typename Row>
struct WriteOnly {
  Row row;

  template <typename T>
  void Write(const T& m, boost::json::object& o) const {
    row.Write(m, o);
  }
  template <typename T>
  Status Read(const boost::json::object&, const FieldContext&, T*) const {
    return Status::Ok();
  }
};
template <typename Row>
WriteOnly(Row) -> WriteOnly<Row>;

template <typename Row>
struct ReadOnly {
  Row row;

  template <typename T>
  void Write(const T&, boost::json::object&) const {}
  template <typename T>
  Status Read(const boost::json::object& o, const FieldContext& ctx, T* m) const {
    return row.Read(o, ctx, m);
  }
};
template <typename Row>
ReadOnly(Row) -> ReadOnly<Row>;

// A rule over the fields read so far; encodes nothing.
template <typename T>
struct Check {
  Status (*check)(const T& m, const FieldContext& ctx);

  void Write(const T&, boost::json::object&) const {}
  Status Read(const boost::json::object&, const FieldContext& ctx, T* m) const {
    return check(*m, ctx);
  }
};

// A nested object under `key` whose fields are members of the same struct
// (always sent; optional on decode, read with the context "<context>:
// <key>").
template <typename Rows>
struct Group {
  std::string_view key;
  Rows rows;

  template <typename T>
  void Write(const T& m, boost::json::object& o) const {
    o[key] = ToJsonObject(m, rows);
  }
  template <typename T>
  Status Read(const boost::json::object& o, const FieldContext& ctx, T* m) const {
    const boost::json::value* v = o.if_contains(key);
    if (v == nullptr) return Status::Ok();
    const Slot at{key, ctx, false};
    if (!v->is_object()) return at.WrongType("an object");
    return ReadFields(v->as_object(), at.Nested(), rows, m);
  }
};
template <typename Rows>
Group(std::string_view, Rows) -> Group<Rows>;

// A member that is a struct of its own, as a nested object: its rows are
// read with the context "<context>: <key>".
template <typename Rows>
struct Object {
  Rows rows;

  template <typename S>
  boost::json::value Write(const S& x) const {
    return ToJsonObject(x, rows);
  }
  template <typename S>
  Status Read(const boost::json::value* v, const Slot& at, S* out) const {
    if (v == nullptr || !v->is_object()) return at.WrongType("an object");
    return ReadFields(v->as_object(), at.Nested(), rows, out);
  }
};
template <typename Rows>
Object(Rows) -> Object<Rows>;

// Whichever message of a set `m` points to, encoded or decoded by its
// table: `fields(message)` gives the table of any message of the set.
template <typename... Ts, typename FieldsFn>
boost::json::object WriteAny(const std::variant<const Ts*...>& m, const FieldsFn& fields) {
  return std::visit([&](const auto* x) { return ToJsonObject(*x, fields(*x)); }, m);
}
template <typename... Ts, typename FieldsFn>
Status ReadAny(const boost::json::object& o, const FieldContext& ctx,
               const std::variant<Ts*...>& out, const FieldsFn& fields) {
  return std::visit([&](auto* x) { return ReadObject(o, ctx, fields(*x), x); }, out);
}

}  // namespace shorthorn::json_mapping
