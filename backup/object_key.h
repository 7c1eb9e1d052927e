// Object keys as the stores accept them: relative paths of 1..1024 chars of
// [A-Za-z0-9._-] separated by single "/", no empty, "." or ".." component,
// no "/" at either end. The same rule for every store, so a key that works
// on a directory works on S3: it cannot escape a directory store's root,
// and libs3 2.0 and S3 servers encode every such character alike (libs3
// turns a space into "+", which S3 reads as a plus, so spaces are out).
// List prefixes are "" or a valid key followed by "/". Pure; any thread.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace shorthorn::backup {

inline constexpr size_t kMaxObjectKeyLength = 1024;

// InvalidArgument "<operation> <url> key <key>: <reason>" when `key` is not
// a valid object key.
Status CheckObjectKey(std::string_view operation, const std::string& url, const std::string& key);

// The same for a List prefix: "" or "<valid key>/".
Status CheckListPrefix(const std::string& url, const std::string& prefix);

// True when `c` may appear in a key component.
bool IsObjectKeyChar(char c);

}  // namespace shorthorn::backup
