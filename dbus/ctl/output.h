// How shorthornctl shows results: aligned tables and "Key: value" blocks for
// people, one JSON document for scripts (--json), and the JSON shape of each
// object (documented in shorthornctl(1); fields are only ever added). Output
// wraps the stream the commands write to, so tests capture it. Pure.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl {

// Columns separated by two spaces, no trailing blanks; "-" for an empty cell.
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// {"name", "object_path", "size", "state", "frontend_path", "loop_device",
//  "replicas": [{"address", "name", "mode"}]}
boost::json::object VolumeToJson(const VolumeInfo& volume);

// NAME SIZE STATE REPLICAS DEVICE, one row per volume.
std::string VolumesTable(const std::vector<VolumeInfo>& volumes);
// Every property of one volume, then its replicas as a table.
std::string VolumeDetails(const VolumeInfo& volume);

class Output {
 public:
  Output(std::ostream& out, bool json) : out_(out), json_(json) {}
  bool json() const { return json_; }
  // For people: written as is (only when !json()).
  void Text(const std::string& text);
  // For scripts: one compact JSON document and a newline.
  void Json(const boost::json::value& value);

 private:
  std::ostream& out_;
  bool json_;
};

}  // namespace shorthorn::ctl
