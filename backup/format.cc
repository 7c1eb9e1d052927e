// Design notes: the records are JSON (Boost.JSON) because operators read
// them with jq when something goes wrong; the block list of a record is an
// array of [offset, hash] pairs, about 60 bytes per 2 MiB block (30 KiB per
// GiB of data). Decoding never throws: a small reader collects the first
// bad field and the decoder returns it as kProtocol.
#include "backup/format.h"

#include <sys/random.h>

#include <boost/json.hpp>
#include <cstdio>
#include <ctime>

#include "common/clock.h"

namespace shorthorn::backup {
namespace json = boost::json;

std::string VolumePrefix(const std::string& volume) { return "volumes/" + volume + "/"; }
std::string VolumeRecordKey(const std::string& volume) {
  return VolumePrefix(volume) + "volume.json";
}
std::string BackupsPrefix(const std::string& volume) { return VolumePrefix(volume) + "backups/"; }
std::string BackupRecordKey(const std::string& volume, const std::string& backup) {
  return BackupsPrefix(volume) + backup + ".json";
}
std::string BlocksPrefix(const std::string& volume) { return VolumePrefix(volume) + "blocks/"; }
std::string BlockKey(const std::string& volume, const std::string& hash) {
  return BlocksPrefix(volume) + hash.substr(0, 2) + "/" + hash.substr(2, 2) + "/" + hash + ".blk";
}
std::string LocksPrefix(const std::string& volume) { return VolumePrefix(volume) + "locks/"; }

std::string HashOfBlockKey(std::string_view key) {
  constexpr std::string_view kExt = ".blk";
  if (key.size() < 32 + kExt.size() || key.substr(key.size() - kExt.size()) != kExt) return "";
  std::string_view hash = key.substr(key.size() - kExt.size() - 32, 32);
  return IsBlockHash(hash) ? std::string(hash) : "";
}

bool IsBlockHash(std::string_view hash) {
  if (hash.size() != 32) return false;
  for (char c : hash) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string NewBackupName() {
  std::time_t now = std::time(nullptr);
  const std::string stamp = CompactUtc(now);
  uint32_t r = 0;
  if (getrandom(&r, sizeof(r), 0) != sizeof(r)) r = static_cast<uint32_t>(now ^ ::clock());
  char tail[16];
  std::snprintf(tail, sizeof(tail), "%08x", r);
  return std::string("backup-") + stamp + "-" + tail;
}

Status ValidateBackupName(const std::string& name) {
  bool ok = name.size() >= 8 && name.size() <= 80 && name.rfind("backup-", 0) == 0;
  for (char c : name) {
    ok = ok &&
         ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-');
  }
  if (ok) return Status::Ok();
  return Status(ErrorKind::kInvalidArgument,
                "backup name \"" + name +
                    "\": expected \"backup-\" followed by letters, digits and '-' (8-80 chars)",
                EINVAL);
}

namespace {

// Strict field reader: the first missing or mistyped field is kept.
class Reader {
 public:
  Reader(const json::object& o, const std::string& what) : o_(o), what_(what) {}

  std::string Str(const char* key, bool required = true) {
    const json::value* v = o_.if_contains(key);
    if (v == nullptr && !required) return "";
    if (v == nullptr || !v->is_string()) return Bad(key, "a string"), "";
    return std::string(v->as_string());
  }
  uint64_t U64(const char* key, bool required = true) {
    const json::value* v = o_.if_contains(key);
    if (v == nullptr && !required) return 0;
    if (v != nullptr && v->is_uint64()) return v->as_uint64();
    if (v != nullptr && v->is_int64() && v->as_int64() >= 0) return v->as_int64();
    return Bad(key, "an unsigned integer"), 0;
  }
  const json::array* Arr(const char* key) {
    const json::value* v = o_.if_contains(key);
    if (v == nullptr || !v->is_array()) return Bad(key, "an array"), nullptr;
    return &v->as_array();
  }
  void Bad(std::string_view field, std::string_view expected) {
    if (status_.ok()) {
      status_ = Status(
          ErrorKind::kProtocol,
          what_ + ": field \"" + std::string(field) + "\" is not " + std::string(expected), EPROTO);
    }
  }
  const Status& status() const { return status_; }

 private:
  const json::object& o_;
  const std::string& what_;
  Status status_;
};

Result<json::object> ParseObject(std::string_view text, const std::string& what) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) {
    return Status(ErrorKind::kProtocol, what + ": not JSON: " + ec.message(), EPROTO);
  }
  if (!v.is_object()) return Status(ErrorKind::kProtocol, what + ": not a JSON object", EPROTO);
  return std::move(v.as_object());
}

Status CheckFormat(Reader& r, const std::string& what) {
  uint64_t format = r.U64("format");
  if (!r.status().ok()) return r.status();
  if (format != kFormat) {
    return Status(ErrorKind::kProtocol,
                  what + ": format " + std::to_string(format) + " is not known (this is format " +
                      std::to_string(kFormat) + ")",
                  EPROTO);
  }
  return Status::Ok();
}

}  // namespace

std::string EncodeBackupRecord(const BackupRecord& r) {
  json::array blocks;
  blocks.reserve(r.blocks.size());
  for (const auto& b : r.blocks) blocks.push_back(json::array{b.offset, b.hash});
  json::object o{{"format", kFormat},
                 {"name", r.name},
                 {"volume", r.volume},
                 {"snapshot", r.snapshot},
                 {"snapshot_created", r.snapshot_created},
                 {"created", r.created},
                 {"size", r.size},
                 {"block_size", r.block_size},
                 {"base", r.base},
                 {"bytes_read", r.bytes_read},
                 {"bytes_uploaded", r.bytes_uploaded},
                 {"blocks_uploaded", r.blocks_uploaded},
                 {"blocks", std::move(blocks)}};
  return json::serialize(o);
}

Result<BackupRecord> DecodeBackupRecord(std::string_view text, const std::string& what) {
  auto o = ParseObject(text, what);
  if (!o.ok()) return o.status();
  Reader rd(*o, what);
  SH_RETURN_IF_ERROR(CheckFormat(rd, what));
  BackupRecord r;
  r.name = rd.Str("name");
  r.volume = rd.Str("volume");
  r.snapshot = rd.Str("snapshot");
  r.snapshot_created = rd.Str("snapshot_created", false);
  r.created = rd.Str("created");
  r.size = rd.U64("size");
  r.block_size = rd.U64("block_size");
  r.base = rd.Str("base", false);
  r.bytes_read = rd.U64("bytes_read", false);
  r.bytes_uploaded = rd.U64("bytes_uploaded", false);
  r.blocks_uploaded = rd.U64("blocks_uploaded", false);
  const json::array* blocks = rd.Arr("blocks");
  if (!rd.status().ok()) return rd.status();
  if (r.block_size != kBlockSize) {
    return Status(ErrorKind::kProtocol,
                  what + ": block size " + std::to_string(r.block_size) + " is not " +
                      std::to_string(kBlockSize),
                  EPROTO);
  }
  if (!ValidateBackupName(r.name).ok()) rd.Bad("name", "a backup name");
  r.blocks.reserve(blocks->size());
  for (const auto& item : *blocks) {
    const json::array* pair = item.if_array();
    if (pair == nullptr || pair->size() != 2 || !(*pair)[0].is_number() ||
        !(*pair)[1].is_string()) {
      rd.Bad("blocks", "a list of [offset, hash] pairs");
      break;
    }
    json::error_code ec;
    uint64_t offset = (*pair)[0].to_number<uint64_t>(ec);
    std::string hash((*pair)[1].as_string());
    bool in_order = r.blocks.empty() || r.blocks.back().offset < offset;
    if (ec || offset % kBlockSize != 0 || offset >= r.size || !in_order || !IsBlockHash(hash)) {
      rd.Bad("blocks",
             "a list of [offset, hash] pairs with aligned offsets inside the size, "
             "in order, and 32-hex-digit hashes");
      break;
    }
    r.blocks.push_back({offset, std::move(hash)});
  }
  if (!rd.status().ok()) return rd.status();
  return r;
}

BackupSummary Summarize(const BackupRecord& r) {
  return {r.name, r.snapshot, r.snapshot_created, r.created, r.size, r.blocks.size()};
}

std::string EncodeVolumeBackups(const VolumeBackups& v) {
  json::array backups;
  for (const auto& b : v.backups) {
    backups.push_back(json::object{{"name", b.name},
                                   {"snapshot", b.snapshot},
                                   {"snapshot_created", b.snapshot_created},
                                   {"created", b.created},
                                   {"size", b.size},
                                   {"blocks", b.blocks}});
  }
  json::object o{{"format", kFormat}, {"volume", v.volume}, {"backups", std::move(backups)}};
  return json::serialize(o);
}

Result<VolumeBackups> DecodeVolumeBackups(std::string_view text, const std::string& what) {
  auto o = ParseObject(text, what);
  if (!o.ok()) return o.status();
  Reader rd(*o, what);
  SH_RETURN_IF_ERROR(CheckFormat(rd, what));
  VolumeBackups v;
  v.volume = rd.Str("volume");
  const json::array* list = rd.Arr("backups");
  if (!rd.status().ok()) return rd.status();
  for (const auto& item : *list) {
    if (!item.is_object()) {
      rd.Bad("backups", "a list of objects");
      break;
    }
    Reader b(item.as_object(), what);
    BackupSummary s;
    s.name = b.Str("name");
    s.snapshot = b.Str("snapshot");
    s.snapshot_created = b.Str("snapshot_created", false);
    s.created = b.Str("created");
    s.size = b.U64("size");
    s.blocks = b.U64("blocks", false);
    if (!b.status().ok()) return b.status();
    if (!ValidateBackupName(s.name).ok()) {
      rd.Bad("backups", "a list of backups with valid names");
      break;
    }
    v.backups.push_back(std::move(s));
  }
  if (!rd.status().ok()) return rd.status();
  return v;
}

std::string BackupUrl(const std::string& target_url, const std::string& volume,
                      const std::string& backup) {
  return target_url + "?volume=" + volume + "&backup=" + backup;
}

namespace {

// `what` is "backup URL" or "backup volume URL"; a volume URL has no backup=.
Result<BackupAddress> ParseAddress(const std::string& url, bool volume_only) {
  const std::string what = volume_only ? "backup volume URL " : "backup URL ";
  auto bad = [&](const std::string& why) {
    return Status(ErrorKind::kInvalidArgument, what + url + ": " + why, EINVAL);
  };
  size_t q = url.find('?');
  if (q == std::string::npos) {
    return bad(volume_only ? "expected <target>?volume=<volume>"
                           : "expected <target>?volume=<volume>&backup=<backup>");
  }
  BackupAddress a;
  a.target_url = url.substr(0, q);
  std::string_view rest = std::string_view(url).substr(q + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) return bad("\"" + std::string(kv) + "\" is not key=value");
    std::string_view key = kv.substr(0, eq), value = kv.substr(eq + 1);
    if (key == "volume") {
      a.volume = value;
    } else if (key == "backup" && !volume_only) {
      a.backup = value;
    } else {
      return bad("unknown parameter \"" + std::string(key) + "\"");
    }
  }
  if (a.volume.empty()) return bad("no volume=");
  if (volume_only) return a;
  if (a.backup.empty()) return bad("no backup=");
  SH_RETURN_IF_ERROR(ValidateBackupName(a.backup).WithContext("backup URL " + url));
  return a;
}

}  // namespace

Result<BackupAddress> ParseBackupUrl(const std::string& url) { return ParseAddress(url, false); }

Result<BackupAddress> ParseBackupVolumeUrl(const std::string& url) {
  return ParseAddress(url, true);
}

}  // namespace shorthorn::backup
