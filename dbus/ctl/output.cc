#include "dbus/ctl/output.h"

#include <algorithm>

#include <boost/json/serialize.hpp>

#include "dbus/ctl/size.h"

namespace shorthorn::ctl {
namespace {

std::string OrDash(const std::string& text) { return text.empty() ? "-" : text; }

}  // namespace

std::string Table::Render() const {
  std::vector<size_t> widths(headers_.size(), 0);
  auto cell = [](const std::vector<std::string>& row, size_t i) {
    return i < row.size() ? OrDash(row[i]) : std::string("-");
  };
  for (size_t i = 0; i < headers_.size(); ++i) {
    widths[i] = headers_[i].size();
    for (const auto& row : rows_) widths[i] = std::max(widths[i], cell(row, i).size());
  }
  std::string text;
  auto line = [&](const std::vector<std::string>& row, bool header) {
    std::string l;
    for (size_t i = 0; i < headers_.size(); ++i) {
      std::string c = header ? headers_[i] : cell(row, i);
      l += c;
      if (i + 1 < headers_.size()) l += std::string(widths[i] - c.size() + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    text += l + "\n";
  };
  line(headers_, true);
  for (const auto& row : rows_) line(row, false);
  return text;
}

boost::json::object VolumeToJson(const VolumeInfo& volume) {
  boost::json::array replicas;
  for (const ReplicaInfo& r : volume.replicas) {
    replicas.push_back(
        boost::json::object{{"address", r.address}, {"name", r.name}, {"mode", r.mode}});
  }
  return boost::json::object{
      {"name", volume.name},
      {"object_path", volume.object_path},
      {"size", volume.size},
      {"state", volume.state},
      {"frontend_path", volume.frontend_path},
      {"loop_device", volume.loop_device},
      {"replicas", std::move(replicas)},
  };
}

std::string VolumesTable(const std::vector<VolumeInfo>& volumes) {
  Table table({"NAME", "SIZE", "STATE", "REPLICAS", "DEVICE"});
  for (const VolumeInfo& v : volumes) {
    std::string device = v.loop_device.empty() ? v.frontend_path : v.loop_device;
    table.AddRow({v.name, FormatSize(v.size), v.state, std::to_string(v.replicas.size()), device});
  }
  return table.Render();
}

std::string VolumeDetails(const VolumeInfo& volume) {
  std::string text;
  auto field = [&](const char* key, const std::string& value) {
    std::string k = std::string(key) + ":";
    text += k + std::string(15 - std::min<size_t>(k.size(), 14), ' ') + OrDash(value) + "\n";
  };
  field("Name", volume.name);
  field("Object path", volume.object_path);
  field("Size", FormatSize(volume.size) + " (" + std::to_string(volume.size) + " bytes)");
  field("State", volume.state);
  field("Frontend path", volume.frontend_path);
  field("Loop device", volume.loop_device);
  field("Replicas", std::to_string(volume.replicas.size()));
  if (!volume.replicas.empty()) {
    Table table({"ADDRESS", "REPLICA", "MODE"});
    for (const ReplicaInfo& r : volume.replicas) table.AddRow({r.address, r.name, r.mode});
    std::string rendered = table.Render();
    // Indent the replica table under the fields.
    size_t start = 0;
    while (start < rendered.size()) {
      size_t end = rendered.find('\n', start);
      text += "  " + rendered.substr(start, end - start + 1);
      start = end + 1;
    }
  }
  return text;
}

void Output::Text(const std::string& text) {
  if (!json_) out_ << text;
}

void Output::Json(const boost::json::value& value) {
  if (json_) out_ << boost::json::serialize(value) << "\n";
}

}  // namespace shorthorn::ctl
