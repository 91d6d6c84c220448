// File: bench_util.h
//
// Small helpers shared by the `engine`, `events` and `worker` subcommands of ndx-bench: clocks,
// CPU time of this process / another process / this thread, percentiles, number formatting, and
// the plain result table (measurement, value, target, result) of the subcommands that have no
// BullMQ column.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ndx::bench {

// CLOCK_MONOTONIC nanoseconds (process.hrtime() in the BullMQ peer uses the same clock).
int64_t MonotonicNs();
// CPU time (user + system), microseconds: this process, the calling thread, another process
// (from /proc/<pid>/stat; nullopt when it cannot be read).
double SelfCpuUs();
double ThreadCpuUs();
std::optional<double> PidCpuUs(int pid);

// p in [0, 100] of an ascending vector (nearest rank); 0 when empty.
double PercentileOf(const std::vector<double>& sorted, double p);

std::string Thousands(double v);  // 35012.4 -> "35,012"
std::string Fixed(double v, int digits);

// A row of a subcommand's table: measurement | value | target | result ("pass", "FAIL", "").
struct SimpleRow {
  std::string measurement, value, target, result;
};
std::string FormatSimpleTable(const std::vector<SimpleRow>& rows);

}  // namespace ndx::bench
