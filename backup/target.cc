// Design notes
//
// ParseTarget accepts a deliberately small URL language: "file://" plus an
// absolute path (or "file://localhost/path"), and "s3://" plus a bucket and
// an optional key prefix. Nothing is percent-decoded, so '%', '?' and '#'
// are refused rather than silently taken literally; "." and ".." components
// are refused so that a target cannot name a different directory than it
// seems to. S3 prefixes follow the object key rule of object_key.h, because
// they become the first components of every key.
//
// A URL that carries user information ("s3://key:secret@bucket") is refused
// and shown with that part replaced by "***": messages must never carry a
// secret, and the URL is in every message.
//
// Comments in the credentials file are lines starting with '#' and, as in
// doc/backup-format.md's example, a '#' after a blank at the end of a line.
//
// LoadS3Settings reads the credentials file through one descriptor: the mode
// check (no group or other bits) and the read see the same file. Messages
// name the file, the line and the key, never a value of access-key or
// secret-key and never a line that failed to parse (it may be a secret).
// Empty environment variables count as unset, so a CI job that exports a
// blank SHORTHORN_S3_* does not erase the file's value.
#include "backup/target.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "backup/object_key.h"
#include "common/file_util.h"

namespace shorthorn::backup {
namespace {

constexpr size_t kMaxPrefixLength = 512;  // leaves room for keys under S3's 1024
constexpr size_t kMaxCredentialsFileSize = 64 * 1024;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool HasControlChar(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// The URL as it may appear in a message: user information hidden.
std::string ShownUrl(const std::string& url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  size_t authority = scheme_end + 3;
  size_t slash = url.find('/', authority);
  size_t at = url.rfind('@', slash == std::string::npos ? std::string::npos : slash);
  if (at == std::string::npos || at < authority) return url;
  return url.substr(0, authority) + "***" + url.substr(at);
}

Status BadUrl(const std::string& url, std::string_view reason) {
  return Status(ErrorKind::kInvalidArgument,
                "parse target " + ShownUrl(url) + ": " + std::string(reason));
}

// Splits `path` on '/', dropping empty components (so "a//b/" is "a/b").
std::vector<std::string_view> Components(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// Only the rule S3 itself enforces for new buckets, minus the rare reserved
// prefixes and suffixes: 3..63 of [a-z0-9.-], a letter or digit at both
// ends, no "..", not an IPv4 address.
std::string BucketProblem(std::string_view bucket) {
  if (bucket.empty()) return "empty bucket name";
  if (bucket.size() < 3 || bucket.size() > 63) return "a bucket name has 3 to 63 characters";
  for (char c : bucket) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    if (!ok) return "a bucket name has only lowercase letters, digits, '.' and '-'";
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(bucket.front()) || !alnum(bucket.back())) {
    return "a bucket name starts and ends with a letter or digit";
  }
  if (bucket.find("..") != std::string_view::npos) return "a bucket name has no '..'";
  int dots = 0;
  bool digits_and_dots = true;
  for (char c : bucket) {
    if (c == '.')
      ++dots;
    else if (c < '0' || c > '9')
      digits_and_dots = false;
  }
  if (digits_and_dots && dots == 3) return "a bucket name is not an IP address";
  return "";
}

Result<Target> ParseFileTarget(const std::string& url, std::string_view rest) {
  if (rest.starts_with("localhost/")) rest.remove_prefix(std::string_view("localhost").size());
  if (rest.empty()) return BadUrl(url, "empty path");
  if (rest.front() != '/') {
    return BadUrl(url, "the path must be absolute (file:///absolute/path)");
  }
  std::vector<std::string_view> parts = Components(rest);
  if (parts.empty()) return BadUrl(url, "empty path (the root directory is not a target)");
  Target t;
  t.kind = Target::Kind::kFile;
  for (std::string_view part : parts) {
    if (part == "." || part == "..") return BadUrl(url, "'.' and '..' are not allowed in the path");
    t.path += "/";
    t.path += part;
  }
  t.url = "file://" + t.path;
  return t;
}

Result<Target> ParseS3Target(const std::string& url, std::string_view rest) {
  size_t slash = rest.find('/');
  std::string_view bucket = rest.substr(0, slash);
  if (bucket.find('@') != std::string_view::npos) {
    return BadUrl(url, "credentials do not belong in the URL (use the credentials file)");
  }
  if (bucket.find(':') != std::string_view::npos) {
    return BadUrl(url,
                  "a bucket name has no ':' (the endpoint and its port belong in the "
                  "credentials file, not the URL)");
  }
  if (std::string problem = BucketProblem(bucket); !problem.empty()) return BadUrl(url, problem);
  Target t;
  t.kind = Target::Kind::kS3;
  t.bucket = std::string(bucket);
  std::string_view prefix = slash == std::string_view::npos ? "" : rest.substr(slash);
  for (std::string_view part : Components(prefix)) {
    if (part == "." || part == "..") {
      return BadUrl(url, "'.' and '..' are not allowed in the prefix");
    }
    for (char c : part) {
      if (!IsObjectKeyChar(c)) {
        return BadUrl(url, "a prefix has only [A-Za-z0-9._-] and '/'");
      }
    }
    if (!t.prefix.empty()) t.prefix += "/";
    t.prefix += part;
  }
  if (t.prefix.size() > kMaxPrefixLength) {
    return BadUrl(url, "a prefix has at most " + std::to_string(kMaxPrefixLength) + " characters");
  }
  t.url = "s3://" + t.bucket + (t.prefix.empty() ? "" : "/" + t.prefix);
  return t;
}

}  // namespace

Result<Target> ParseTarget(const std::string& url) {
  if (url.empty()) return BadUrl(url, "empty URL");
  if (HasControlChar(url)) return BadUrl(url, "control characters in the URL");
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    return BadUrl(url, "not a URL (expected file:///absolute/path or s3://bucket/prefix)");
  }
  if (url.find_first_of("?#%") != std::string::npos) {
    return BadUrl(url, "'?', '#' and '%' are not supported (no queries, fragments or escapes)");
  }
  std::string scheme = Lower(std::string_view(url).substr(0, scheme_end));
  std::string_view rest = std::string_view(url).substr(scheme_end + 3);
  if (scheme == "file") return ParseFileTarget(url, rest);
  if (scheme == "s3") return ParseS3Target(url, rest);
  return BadUrl(url, "unknown scheme '" + scheme + "' (expected file or s3)");
}

namespace {

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// "value   # comment" -> "value": a '#' after a blank starts a comment, so
// a secret may still hold a '#' (but not " #").
std::string_view StripComment(std::string_view value) {
  for (size_t i = 1; i < value.size(); ++i) {
    if (value[i] == '#' && (value[i - 1] == ' ' || value[i - 1] == '\t')) {
      return value.substr(0, i);
    }
  }
  return value;
}

struct SettingKey {
  const char* name;  // in the file
  const char* env;   // the environment variable that overrides it
  bool secret;       // never echo the value
};

constexpr SettingKey kKeys[] = {
    {"endpoint", "SHORTHORN_S3_ENDPOINT", false},
    {"protocol", "SHORTHORN_S3_PROTOCOL", false},
    {"uri-style", "SHORTHORN_S3_URI_STYLE", false},
    {"region", "SHORTHORN_S3_REGION", false},
    {"access-key", "SHORTHORN_S3_ACCESS_KEY", true},
    {"secret-key", "SHORTHORN_S3_SECRET_KEY", true},
};

const SettingKey* FindKey(std::string_view name) {
  for (const SettingKey& k : kKeys) {
    if (name == k.name) return &k;
  }
  return nullptr;
}

// Applies one value; `where` is "line N" or "SHORTHORN_S3_..." for messages.
Status Apply(const SettingKey& key, const std::string& value, const std::string& what,
             const std::string& where, S3Settings* s) {
  auto bad = [&](const std::string& reason) {
    return Status(ErrorKind::kInvalidArgument, what + ": " + where + ": " + reason);
  };
  if (HasControlChar(value)) return bad(std::string(key.name) + " has control characters");
  std::string_view name = key.name;
  if (name == "endpoint") {
    if (value.empty()) return bad("endpoint is empty");
    if (value.find("://") != std::string::npos) {
      return bad(
          "endpoint is a host or host:port without a scheme (set protocol = http for "
          "plain HTTP), got '" +
          value + "'");
    }
    if (value.find_first_of("/ \t@") != std::string::npos) {
      return bad("endpoint is a host or host:port, got '" + value + "'");
    }
    s->endpoint = value;
  } else if (name == "protocol") {
    if (value == "http")
      s->https = false;
    else if (value == "https")
      s->https = true;
    else
      return bad("protocol is http or https, got '" + value + "'");
  } else if (name == "uri-style") {
    if (value == "path")
      s->path_style = true;
    else if (value == "virtual")
      s->path_style = false;
    else
      return bad("uri-style is path or virtual, got '" + value + "'");
  } else if (name == "region") {
    s->region = value;
  } else if (name == "access-key") {
    s->access_key = value;
  } else if (name == "secret-key") {
    s->secret_key = value;
  }
  return Status::Ok();
}

Status ParseSettingsText(const std::string& text, const std::string& what, S3Settings* s) {
  std::vector<std::string_view> seen;
  size_t start = 0;
  int line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = Trim(std::string_view(text).substr(start, end - start));
    start = end + 1;
    ++line_no;
    std::string where = "line " + std::to_string(line_no);
    if (line.empty() || line.front() == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      // The line itself is not shown: it may be a stray secret.
      return Status(ErrorKind::kInvalidArgument, what + ": " + where + ": expected 'key = value'");
    }
    std::string name = Trim(std::string_view(line).substr(0, eq));
    std::string value = Trim(StripComment(std::string_view(line).substr(eq + 1)));
    const SettingKey* key = FindKey(name);
    if (key == nullptr) {
      std::string shown = name.size() <= 32 && !HasControlChar(name) ? name : "?";
      return Status(ErrorKind::kInvalidArgument,
                    what + ": " + where + ": unknown key '" + shown +
                        "' (expected endpoint, protocol, uri-style, region, access-key, "
                        "secret-key)");
    }
    for (std::string_view k : seen) {
      if (k == key->name) {
        return Status(ErrorKind::kInvalidArgument,
                      what + ": " + where + ": " + key->name + " is given twice");
      }
    }
    seen.push_back(key->name);
    SH_RETURN_IF_ERROR(Apply(*key, value, what, where, s));
  }
  return Status::Ok();
}

// Reads the credentials file; NotFound when it does not exist.
Result<std::string> ReadCredentialsFile(const std::string& path, const std::string& what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return ErrnoStatus(errno, what + ": open");
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, what + ": stat");
  if (!S_ISREG(st.st_mode)) {
    return Status(ErrorKind::kInvalidArgument, what + ": not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status(ErrorKind::kInvalidArgument,
                  what + ": the file is accessible by group or others (mode " + mode +
                      "); it holds secrets and must be mode 0600 or stricter (chmod 600 " + path +
                      ")");
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxCredentialsFileSize) {
    return Status(ErrorKind::kInvalidArgument, what + ": larger than 64 KiB");
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, what + ": read");
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxCredentialsFileSize) {
      return Status(ErrorKind::kInvalidArgument, what + ": larger than 64 KiB");
    }
  }
  return text;
}

}  // namespace

Result<S3Settings> LoadS3Settings(const std::string& path) {
  std::string what = "load S3 settings " + (path.empty() ? std::string("(no file)") : path);
  S3Settings s;
  bool file_missing = path.empty();
  if (!path.empty()) {
    Result<std::string> text = ReadCredentialsFile(path, what);
    if (text.ok()) {
      SH_RETURN_IF_ERROR(ParseSettingsText(*text, what, &s));
    } else if (text.status().sys_errno() == ENOENT) {
      file_missing = true;
    } else {
      return text.status();
    }
  }
  bool env_has_keys = true;
  for (const SettingKey& key : kKeys) {
    const char* v = std::getenv(key.env);
    bool set = v != nullptr && *v != '\0';
    if (key.secret && !set) env_has_keys = false;
    if (!set) continue;
    SH_RETURN_IF_ERROR(Apply(key, Trim(v), what, key.env, &s));
  }
  if (file_missing && !env_has_keys) {
    return Status(ErrorKind::kNotFound,
                  what + ": " + (path.empty() ? "no credentials file given" : "no such file") +
                      ", and SHORTHORN_S3_ACCESS_KEY and SHORTHORN_S3_SECRET_KEY are not both set",
                  ENOENT);
  }
  if (s.access_key.empty()) {
    return Status(ErrorKind::kInvalidArgument,
                  what + ": no access-key (set it in the file or SHORTHORN_S3_ACCESS_KEY)");
  }
  if (s.secret_key.empty()) {
    return Status(ErrorKind::kInvalidArgument,
                  what + ": no secret-key (set it in the file or SHORTHORN_S3_SECRET_KEY)");
  }
  return s;
}

}  // namespace shorthorn::backup
