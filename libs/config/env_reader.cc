#include "libs/config/env_reader.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ndx::config {

EnvLookup ProcessEnv() {
  return [](absl::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

EnvLookup MapEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](absl::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

std::optional<std::string> EnvReader::Get(absl::string_view name) { return env_(name); }

void EnvReader::AddError(absl::string_view name, absl::string_view problem) {
  errors_.push_back(absl::StrCat(name, ": ", problem));
}

std::string EnvReader::String(absl::string_view name, absl::string_view default_value) {
  std::optional<std::string> v = Get(name);
  return v ? *v : std::string(default_value);
}

std::string EnvReader::RequiredString(absl::string_view name, absl::string_view what) {
  std::optional<std::string> v = Get(name);
  if (!v) {
    AddError(name,
             what.empty() ? "required, not set" : absl::StrCat("required, not set (", what, ")"));
    return "";
  }
  return *v;
}

int64_t EnvReader::Int(absl::string_view name, int64_t default_value, int64_t min, int64_t max) {
  std::optional<std::string> v = Get(name);
  if (!v) return default_value;
  int64_t parsed = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*v), &parsed)) {
    AddError(name, absl::StrCat("\"", *v, "\" is not an integer"));
    return default_value;
  }
  if (parsed < min || parsed > max) {
    AddError(name, absl::StrCat(parsed, " is out of range [", min, ", ", max, "]"));
    return default_value;
  }
  return parsed;
}

absl::Duration EnvReader::Duration(absl::string_view name, absl::Duration default_value,
                                   absl::Duration min, absl::Duration max) {
  std::optional<std::string> v = Get(name);
  if (!v) return default_value;
  const absl::string_view text = absl::StripAsciiWhitespace(*v);
  absl::Duration parsed;
  int64_t seconds = 0;
  if (absl::SimpleAtoi(text, &seconds)) {
    parsed = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &parsed) || parsed == absl::InfiniteDuration() ||
             parsed == -absl::InfiniteDuration()) {
    AddError(name, absl::StrCat("\"", *v,
                                "\" is not a duration (use seconds, or a unit: 250ms, 30s, 5m)"));
    return default_value;
  }
  if (parsed < min || parsed > max) {
    AddError(name, absl::StrCat(absl::FormatDuration(parsed), " is out of range [",
                                absl::FormatDuration(min), ", ", absl::FormatDuration(max), "]"));
    return default_value;
  }
  return parsed;
}

bool EnvReader::Bool(absl::string_view name, bool default_value) {
  std::optional<std::string> v = Get(name);
  if (!v) return default_value;
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*v));
  if (lower == "true" || lower == "1" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "0" || lower == "no" || lower == "off") return false;
  AddError(name, absl::StrCat("\"", *v, "\" is not a boolean (true/false)"));
  return default_value;
}

std::string EnvReader::OneOf(absl::string_view name, absl::string_view default_value,
                             const std::vector<absl::string_view>& allowed) {
  std::optional<std::string> v = Get(name);
  if (!v) return std::string(default_value);
  for (absl::string_view a : allowed) {
    if (*v == a) return *v;
  }
  AddError(name, absl::StrCat("\"", *v, "\" is not one of: ", absl::StrJoin(allowed, ", ")));
  return std::string(default_value);
}

std::string EnvReader::ListenAddress(absl::string_view name, absl::string_view default_value) {
  std::optional<std::string> v = Get(name);
  if (!v) return std::string(default_value);
  const size_t colon = v->rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(absl::string_view(*v).substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    AddError(name, absl::StrCat("\"", *v, "\" is not a listen address host:port (port 0-65535)"));
    return std::string(default_value);
  }
  return *v;
}

absl::Status EnvReader::status() const {
  if (errors_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors_, "; "));
}

}  // namespace ndx::config
