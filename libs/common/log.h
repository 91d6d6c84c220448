// File: log.h
//
// Structured logs: one JSON object a line on stderr, for every ndx process.
//
//   ndx::log::Init("ndx-worker", ndx::log::Level::kInfo);
//   ndx::log::Info("claimed jobs", {{"count", 12}, {"queue", "default"}});
//   // {"ts":"2026-11-27T19:20:01.123Z","level":"info","svc":"ndx-worker","msg":"claimed jobs",
//   //  "count":12,"queue":"default"}
//
// Never log secrets: pass URLs through a redacting helper (redis::RedactedUrl,
// pg::RedactedConninfo). Thread-safe: each line is written with one write(2) call under a lock.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ndx::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// A log field value: text, integer, floating point or boolean.
class Value {
 public:
  Value(std::string_view v) : v_(v) {}  // NOLINT: implicit by design
  Value(absl::string_view v) : v_(std::string_view(v.data(), v.size())) {}              // NOLINT
  Value(const std::string& v) : v_(std::string_view(v)) {}                              // NOLINT
  Value(const char* v) : v_(std::string_view(v)) {}                                     // NOLINT
  Value(bool v) : v_(v) {}                                                              // NOLINT
  Value(int v) : v_(static_cast<int64_t>(v)) {}                                         // NOLINT
  Value(long v) : v_(static_cast<int64_t>(v)) {}                                        // NOLINT
  Value(long long v) : v_(static_cast<int64_t>(v)) {}                                   // NOLINT
  Value(unsigned v) : v_(static_cast<int64_t>(v)) {}                                    // NOLINT
  Value(unsigned long v) : v_(static_cast<int64_t>(v)) {}                               // NOLINT
  Value(double v) : v_(v) {}                                                            // NOLINT
  Value(const absl::Status& s) : owned_(s.ToString()), v_(std::string_view(owned_)) {}  // NOLINT

  // Appends the JSON encoding of the value.
  void AppendJson(std::string& out) const;

 private:
  std::string owned_;
  std::variant<std::string_view, int64_t, double, bool> v_;
};

struct Field {
  std::string_view key;
  Value value;
};

// Sets the service name written in every line and the lowest level written. Call once in main(),
// before other threads start. Without it: service "ndx", level info.
void Init(std::string_view service, Level min_level);

// Parses "debug" | "info" | "warn" | "error" (anything else: info).
Level ParseLevel(std::string_view name);

bool Enabled(Level level);

void Write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

inline void Debug(std::string_view msg, std::initializer_list<Field> fields = {}) {
  if (Enabled(Level::kDebug)) Write(Level::kDebug, msg, fields);
}
inline void Info(std::string_view msg, std::initializer_list<Field> fields = {}) {
  Write(Level::kInfo, msg, fields);
}
inline void Warn(std::string_view msg, std::initializer_list<Field> fields = {}) {
  Write(Level::kWarn, msg, fields);
}
inline void Error(std::string_view msg, std::initializer_list<Field> fields = {}) {
  Write(Level::kError, msg, fields);
}

// Appends `text` as a JSON string literal (quotes included), escaping control characters and
// replacing invalid UTF-8 bytes with U+FFFD. Shared by everything that writes JSON by hand.
void AppendJsonString(std::string& out, std::string_view text);

// Formats one log line (without the trailing newline); exposed for tests.
std::string FormatLine(absl::Time now, std::string_view service, Level level, std::string_view msg,
                       std::initializer_list<Field> fields);

}  // namespace ndx::log
