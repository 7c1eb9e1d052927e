// RunCtlTest: runs RunCtl with argv words over a FakeStorageClient the test
// keeps, capturing stdout and stderr, and counting connections (help and
// usage errors must make none). `err_is_terminal_` turns progress lines on;
// `now_` is the clock the commands see.
#pragma once

#include <gtest/gtest.h>

#include <ctime>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "dbus/ctl/commands.h"
#include "tests/unit/ctl/fake_storage_client.h"

namespace shorthorn::ctl::testing {

class RunCtlTest : public ::testing::Test {
 protected:
  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    return RunCtl(
        args,
        [this]() -> Result<std::unique_ptr<StorageClient>> {
          ++connects_;
          if (!connect_error_.ok()) return connect_error_;
          return std::unique_ptr<StorageClient>(new ForwardingClient(fake_));
        },
        out_, err_, err_is_terminal_, [this] { return now_; });
  }

  FakeStorageClient fake_;
  Status connect_error_;
  bool err_is_terminal_ = false;
  int connects_ = 0;
  std::time_t now_ = 1735787237;  // 2025-01-02T03:07:17Z
  std::ostringstream out_;
  std::ostringstream err_;
};

}  // namespace shorthorn::ctl::testing
