// File: env_reader.h
//
// EnvReader: reads and validates configuration variables from an environment, collecting every
// problem instead of stopping at the first, so that a misconfigured process says everything that is
// wrong at once. Each problem names the variable:
//
//   EnvReader env(ProcessEnv());
//   int64_t slots = env.Int("EXECUTION_WORKER_CONCURRENCY", 5, 1, 1024);
//   std::string url = env.RequiredString("REDIS_URL");
//   if (absl::Status s = env.status(); !s.ok()) { ...exit... }
//   // s.message(): "EXECUTION_WORKER_CONCURRENCY: \"abc\" is not an integer; REDIS_URL: required"
//
// Not thread-safe; used once at start.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace ndx::config {

// Looks a variable up; nullopt when it is not set. An empty value counts as not set.
using EnvLookup = std::function<std::optional<std::string>(absl::string_view name)>;

// The process environment (getenv).
EnvLookup ProcessEnv();
// A fixed map, for tests.
EnvLookup MapEnv(std::map<std::string, std::string> vars);

class EnvReader {
 public:
  explicit EnvReader(EnvLookup env) : env_(std::move(env)) {}

  // The value, or `default_value` when unset.
  std::string String(absl::string_view name, absl::string_view default_value);
  // The value; records "required" when unset (and returns "").
  std::string RequiredString(absl::string_view name, absl::string_view what = "");
  // An integer in [min, max]; `default_value` when unset.
  int64_t Int(absl::string_view name, int64_t default_value, int64_t min, int64_t max);
  // A duration in [min, max]: a plain integer is a number of seconds ("30"); otherwise a Go-style
  // duration ("250ms", "30s", "5m", "1h30m").
  absl::Duration Duration(absl::string_view name, absl::Duration default_value, absl::Duration min,
                          absl::Duration max);
  // true/false, 1/0, yes/no, on/off (any case).
  bool Bool(absl::string_view name, bool default_value);
  // One of `allowed` (exact match).
  std::string OneOf(absl::string_view name, absl::string_view default_value,
                    const std::vector<absl::string_view>& allowed);
  // A listen address "host:port" ("0.0.0.0:4000", "[::]:50051", "127.0.0.1:0").
  std::string ListenAddress(absl::string_view name, absl::string_view default_value);

  // Records a problem found by a caller-side check (e.g. a URL parser).
  void AddError(absl::string_view name, absl::string_view problem);

  // OK, or INVALID_ARGUMENT listing every problem ("NAME: problem; NAME2: problem").
  absl::Status status() const;

 private:
  std::optional<std::string> Get(absl::string_view name);

  EnvLookup env_;
  std::vector<std::string> errors_;
};

}  // namespace ndx::config
