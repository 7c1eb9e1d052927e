// Design notes: fuzzes the backup store's metadata decoders
// (backup/format.h, doc/backup-format.md), which read objects from a
// backup target that may be damaged or written by someone else. Byte 0
// picks the object (bit 0: a backup record backups/<b>.json, else a
// volume.json); the rest is its text. Decoded metadata must round-trip
// (encode, decode, encode gives the same text), and a decoded record must
// hold what the decoder promises: aligned block offsets inside the size, in
// order, with 32-hex-digit hashes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "backup/format.h"
#include "tests/fuzz/fuzz_util.h"

namespace shorthorn::backup {
namespace {

void Record(std::string_view text) {
  auto r = DecodeBackupRecord(text, "backups/fuzz.json");
  if (!r.ok()) {
    fuzz::Check(r.status().kind() == ErrorKind::kProtocol, "a record error that is not kProtocol");
    return;
  }
  fuzz::Check(r->block_size == kBlockSize, "a record with another block size decoded");
  fuzz::Check(ValidateBackupName(r->name).ok(), "a record with a bad name decoded");
  for (size_t i = 0; i < r->blocks.size(); ++i) {
    const BlockRef& b = r->blocks[i];
    fuzz::Check(b.offset % kBlockSize == 0 && b.offset < r->size, "a block offset out of place");
    fuzz::Check(i == 0 || r->blocks[i - 1].offset < b.offset, "block offsets out of order");
    fuzz::Check(IsBlockHash(b.hash), "a bad block hash decoded");
  }
  const std::string once = EncodeBackupRecord(*r);
  auto again = DecodeBackupRecord(once, "backups/fuzz.json");
  fuzz::Check(again.ok(), "an encoded record does not decode");
  fuzz::Check(EncodeBackupRecord(*again) == once, "a record changes in a round trip");
}

void Volume(std::string_view text) {
  auto v = DecodeVolumeBackups(text, "volume.json");
  if (!v.ok()) {
    fuzz::Check(v.status().kind() == ErrorKind::kProtocol,
                "a volume.json error that is not kProtocol");
    return;
  }
  for (const auto& b : v->backups) {
    fuzz::Check(ValidateBackupName(b.name).ok(), "a volume.json with a bad backup name decoded");
  }
  const std::string once = EncodeVolumeBackups(*v);
  auto again = DecodeVolumeBackups(once, "volume.json");
  fuzz::Check(again.ok(), "an encoded volume.json does not decode");
  fuzz::Check(EncodeVolumeBackups(*again) == once, "a volume.json changes in a round trip");
}

}  // namespace
}  // namespace shorthorn::backup

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text = shorthorn::fuzz::AsText(data + 1, size - 1);
  if (data[0] & 1) {
    shorthorn::backup::Record(text);
  } else {
    shorthorn::backup::Volume(text);
  }
  return 0;
}
