// Pieces of the Prometheus text exposition format, shared by fused's and
// replicad's metrics files (node-exporter's textfile collector reads them).
// Pure functions.
#pragma once

#include <string>

namespace shorthorn::prometheus {

// A label value with backslash, double quote and newline escaped.
std::string LabelValue(const std::string& value);
// Appends the "# HELP" and "# TYPE" lines of metric family `name`.
void AppendHeader(std::string& out, const char* name, const char* type, const char* help);

}  // namespace shorthorn::prometheus
