#include "dbus/ctl/progress.h"

#include <algorithm>
#include <cmath>

#include "dbus/ctl/size.h"

namespace shorthorn::ctl {
namespace {

constexpr int kBarWidth = 20;

double Clamp01(double fraction) {
  if (!(fraction > 0)) return 0;  // also NaN
  return std::min(fraction, 1.0);
}

}  // namespace

std::string ProgressBar(double fraction, int width) {
  int filled = static_cast<int>(std::floor(Clamp01(fraction) * width));
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

std::string JobLabel(const JobInfo& job) {
  std::string label = job.operation;
  if (!job.target.empty()) label += " " + job.target;
  if (!job.volume.empty()) label += " of volume " + job.volume;
  return label;
}

std::string ProgressLine(const JobInfo& job) {
  if (job.state == "queued") {
    // Waiting for its turn (a rebuild behind others onto one replicad): no
    // progress to show, the reason instead.
    return "job " + job.id + " " + JobLabel(job) + " queued" +
           (job.message.empty() ? "" : ": " + job.message);
  }
  double fraction = Clamp01(job.progress);
  int percent = static_cast<int>(std::floor(fraction * 100));
  std::string percent_text = std::to_string(percent) + "%";
  std::string line = "job " + job.id + " " + JobLabel(job) + " " +
                     ProgressBar(fraction, kBarWidth) + " " +
                     std::string(4 - std::min<size_t>(percent_text.size(), 4), ' ') + percent_text;
  if (job.total_bytes > 0) {
    line += "  " + FormatSize(job.bytes) + " / " + FormatSize(job.total_bytes);
  } else if (job.bytes > 0) {
    line += "  " + FormatSize(job.bytes);
  }
  if (job.rate > 0) line += "  " + FormatSize(job.rate) + "/s";
  return line;
}

}  // namespace shorthorn::ctl
