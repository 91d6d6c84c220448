#include "libs/engine/value_util.h"

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/json_depth.h"

namespace ndx::engine {
namespace {

// Compact JSON; invalid UTF-8 in strings becomes U+FFFD instead of an exception.
std::string ValueToJsonText(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string NumberToText(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  if (d == std::floor(d) && std::fabs(d) < 1e21) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.0f", d);
    return std::string(buf == std::string("-0") ? "0" : buf);
  }
  return Json(d).dump();
}

// Splits "a.b[0].c" into {"a", "b", "0", "c"}.
std::vector<std::string> SplitPath(absl::string_view path) {
  std::string normalized;
  normalized.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '[') {
      size_t end = path.find(']', i);
      if (end != absl::string_view::npos) {
        absl::string_view inner = path.substr(i + 1, end - i - 1);
        if (inner.size() >= 2 && (inner.front() == '"' || inner.front() == '\'') &&
            inner.back() == inner.front()) {
          inner = inner.substr(1, inner.size() - 2);
        }
        if (!normalized.empty()) normalized.push_back('.');
        normalized.append(inner.data(), inner.size());
        i = end;
        continue;
      }
    }
    normalized.push_back(c);
  }
  std::vector<std::string> parts = absl::StrSplit(normalized, '.', absl::SkipEmpty());
  return parts;
}

bool IsIndex(absl::string_view s, size_t* out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  *out = std::strtoul(std::string(s).c_str(), nullptr, 10);
  return true;
}

}  // namespace

std::string ValueToText(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      return "";
    case Json::value_t::string:
      return value.get<std::string>();
    case Json::value_t::boolean:
      return value.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer:
      return std::to_string(value.get<int64_t>());
    case Json::value_t::number_unsigned:
      return std::to_string(value.get<uint64_t>());
    case Json::value_t::number_float:
      return NumberToText(value.get<double>());
    default:
      // Strings inside may hold invalid UTF-8 (an HTTP body taken as text): replaced with U+FFFD,
      // as everywhere JSON is written; the default (strict) dump throws type_error 316.
      return ValueToJsonText(value);
  }
}

double ValueToNumber(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return 0;
    case Json::value_t::boolean:
      return value.get<bool>() ? 1 : 0;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return value.get<double>();
    case Json::value_t::string: {
      std::string s(absl::StripAsciiWhitespace(value.get<std::string>()));
      if (s.empty()) return 0;
      double d;
      if (absl::SimpleAtod(s, &d)) return d;
      return std::nan("");
    }
    default:
      return std::nan("");
  }
}

bool IsTruthy(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      return false;
    case Json::value_t::boolean:
      return value.get<bool>();
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: {
      double d = value.get<double>();
      return d != 0 && !std::isnan(d);
    }
    case Json::value_t::string:
      return !value.get_ref<const std::string&>().empty();
    default:
      return true;
  }
}

const Json* GetPath(const Json& root, absl::string_view path) {
  const Json* current = &root;
  for (const std::string& key : SplitPath(path)) {
    if (current->is_object()) {
      auto it = current->find(key);
      if (it == current->end()) return nullptr;
      current = &*it;
    } else if (current->is_array()) {
      size_t index;
      if (!IsIndex(key, &index) || index >= current->size()) return nullptr;
      current = &(*current)[index];
    } else if (current->is_string() && key == "length") {
      return nullptr;  // not modelled: a computed value cannot be returned by pointer
    } else {
      return nullptr;
    }
  }
  return current;
}

absl::Status SetPath(Json& root, absl::string_view path, Json value) {
  std::vector<std::string> keys = SplitPath(path);
  if (keys.empty()) return absl::InvalidArgumentError("empty field path");
  Json* current = &root;
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string& key = keys[i];
    const bool last = i + 1 == keys.size();
    size_t index = 0;
    if (current->is_array() && IsIndex(key, &index)) {
      if (current->size() <= index) current->get_ref<Json::array_t&>().resize(index + 1);
      current = &(*current)[index];
    } else if (current->is_object()) {
      current = &(*current)[key];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("cannot set '", std::string(path), "': '", key,
                                                     "' is inside a ", current->type_name()));
    }
    if (last) {
      *current = std::move(value);
      return absl::OkStatus();
    }
    if (!current->is_object() && !current->is_array()) {
      size_t unused;
      *current = IsIndex(keys[i + 1], &unused) ? Json::array() : Json::object();
    }
  }
  return absl::OkStatus();
}

std::string FormatIsoTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseIsoTime(absl::string_view text) {
  std::string s(absl::StripAsciiWhitespace(text));
  if (!s.empty() && (s.back() == 'Z' || s.back() == 'z')) {
    s.back() = '+';
    s += "00:00";
  }
  static constexpr const char* kFormats[] = {
      "%Y-%m-%d%ET%H:%M:%E*S%Ez", "%Y-%m-%d%ET%H:%M%Ez", "%Y-%m-%d%ET%H:%M:%E*S",
      "%Y-%m-%d%ET%H:%M",         "%Y-%m-%d %H:%M:%E*S", "%Y-%m-%d",
  };
  for (const char* format : kFormats) {
    absl::Time t;
    std::string err;
    if (absl::ParseTime(format, s, absl::UTCTimeZone(), &t, &err)) return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("invalid date-time '", std::string(text), "' (expected ISO 8601)"));
}

Json MakeItem(Json value) {
  Json item = Json::object();
  item["json"] = std::move(value);
  return item;
}

const Json& ItemJson(const Json& item) {
  if (item.is_object()) {
    auto it = item.find("json");
    if (it != item.end()) return *it;
  }
  return item;
}

Json ParseJsonText(absl::string_view text) {
  if (common::JsonNestingDepth(std::string_view(text.data(), text.size())) >
      common::kMaxJsonDepth) {
    return Json(Json::value_t::discarded);
  }
  return Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
}

absl::StatusOr<double> NumberParam(const Json& value, absl::string_view name, double fallback) {
  if (value.is_null()) return fallback;
  if (value.is_number()) return value.get<double>();
  if (value.is_string()) {
    std::string s(absl::StripAsciiWhitespace(value.get<std::string>()));
    if (s.empty()) return fallback;
    double d;
    if (absl::SimpleAtod(s, &d)) return d;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "parameter '", std::string(name), "' must be a number, got ", ValueToJsonText(value)));
}

absl::StatusOr<bool> BoolParam(const Json& value, absl::string_view name, bool fallback) {
  if (value.is_null()) return fallback;
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    if (s == "true") return true;
    if (s == "false") return false;
    if (s.empty()) return fallback;
  }
  if (value.is_number()) return value.get<double>() != 0;
  return absl::InvalidArgumentError(absl::StrCat(
      "parameter '", std::string(name), "' must be a boolean, got ", ValueToJsonText(value)));
}

absl::StatusOr<std::string> StringParam(const Json& value, absl::string_view name,
                                        absl::string_view fallback) {
  if (value.is_null()) return std::string(fallback);
  if (value.is_string() || value.is_number() || value.is_boolean()) return ValueToText(value);
  return absl::InvalidArgumentError(absl::StrCat(
      "parameter '", std::string(name), "' must be a string, got ", ValueToJsonText(value)));
}

bool IsExpression(const Json& value) {
  if (!value.is_string()) return false;
  const std::string& s = value.get_ref<const std::string&>();
  return (!s.empty() && s[0] == '=') || s.find("{{") != std::string::npos;
}

}  // namespace ndx::engine
