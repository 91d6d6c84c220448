// File: report.h
//
// The result table of `ndx-bench queue`: from the measurement records of one run (ndx's, the
// BullMQ peer's and redis-benchmark's, all JSON objects with "impl" and "mode"), one Markdown
// table: measurement, ndx, BullMQ, ratio, target, pass/FAIL. Where BullMQ was measured in several
// settings (worker concurrency and processes, addBulk batches in flight), its best is compared.
#pragma once

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace ndx::bench {

struct ReportRow {
  std::string measurement;
  std::string ndx;     // formatted value and setting
  std::string bullmq;  // formatted value and setting, or why there is none
  std::string ratio;   // ndx's advantage: > 1x means ndx is better ("" when not comparable)
  std::string target;  // "" when the row is informative only
  std::string result;  // "pass", "FAIL", or ""
};

// The rows of one run, in a fixed order; rows whose records are missing are left out.
std::vector<ReportRow> BuildReport(const std::vector<nlohmann::json>& records);

// A Markdown table of the rows.
std::string FormatTable(const std::vector<ReportRow>& rows);

// True when no row FAILed.
bool AllTargetsMet(const std::vector<ReportRow>& rows);

}  // namespace ndx::bench
