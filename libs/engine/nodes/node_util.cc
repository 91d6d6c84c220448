#include "libs/engine/nodes/node_util.h"

#include <cmath>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/engine/value_util.h"

namespace ndx::engine::nodes {
namespace {

bool TypedEqual(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  if (a.is_boolean() && b.is_boolean()) return a.get<bool>() == b.get<bool>();
  return ValueToText(a) == ValueToText(b);
}

bool IsEmptyValue(const Json& v) {
  if (v.is_null()) return true;
  if (v.is_string()) return absl::StripAsciiWhitespace(v.get_ref<const std::string&>()).empty();
  if (v.is_array() || v.is_object()) return v.empty();
  return false;
}

}  // namespace

bool IsKnownOperator(absl::string_view op) {
  static constexpr absl::string_view kOps[] = {
      "equal",        "equals",      "notEqual",       "notEquals",   "larger",
      "greaterThan",  "largerEqual", "greaterOrEqual", "smaller",     "lessThan",
      "smallerEqual", "lessOrEqual", "contains",       "notContains", "startsWith",
      "endsWith",     "isEmpty",     "isNotEmpty",     "regex"};
  for (absl::string_view k : kOps) {
    if (k == op) return true;
  }
  return false;
}

absl::StatusOr<bool> EvaluateCondition(const Json& left, absl::string_view op, const Json& right) {
  const std::string l = ValueToText(left);
  const std::string r = ValueToText(right);
  if (op == "equal" || op == "equals") return TypedEqual(left, right);
  if (op == "notEqual" || op == "notEquals") return !TypedEqual(left, right);
  if (op == "larger" || op == "greaterThan") return ValueToNumber(left) > ValueToNumber(right);
  if (op == "largerEqual" || op == "greaterOrEqual") {
    return ValueToNumber(left) >= ValueToNumber(right);
  }
  if (op == "smaller" || op == "lessThan") return ValueToNumber(left) < ValueToNumber(right);
  if (op == "smallerEqual" || op == "lessOrEqual") {
    return ValueToNumber(left) <= ValueToNumber(right);
  }
  if (op == "contains" || op == "notContains") {
    bool found;
    if (left.is_array()) {
      found = false;
      for (const Json& e : left) found = found || TypedEqual(e, right);
    } else {
      found = absl::StrContains(l, r);
    }
    return op == "contains" ? found : !found;
  }
  if (op == "startsWith") return absl::StartsWith(l, r);
  if (op == "endsWith") return absl::EndsWith(l, r);
  if (op == "isEmpty") return IsEmptyValue(left);
  if (op == "isNotEmpty") return !IsEmptyValue(left);
  if (op == "regex") {
    try {
      std::regex re(r, std::regex::ECMAScript);
      return std::regex_search(l, re);
    } catch (const std::regex_error& e) {
      return absl::InvalidArgumentError(absl::StrCat("Invalid regex pattern: ", r));
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("Unknown operation: ", std::string(op)));
}

const Json& Member(const Json& obj, absl::string_view key) {
  static const Json* const kNull = new Json();
  if (!obj.is_object()) return *kNull;
  auto it = obj.find(std::string(key));
  return it == obj.end() ? *kNull : *it;
}

const Json& Unwrap(const Json& entry) {
  const Json& inner = Member(entry, "values");
  return inner.is_object() ? inner : entry;
}

absl::Status CheckEnum(const Json& value, absl::string_view name,
                       std::initializer_list<absl::string_view> allowed) {
  if (value.is_null() || IsExpression(value)) return absl::OkStatus();
  if (value.is_string()) {
    for (absl::string_view a : allowed) {
      if (value.get_ref<const std::string&>() == a) return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("parameter \"", std::string(name),
                                                 "\" must be one of ", absl::StrJoin(allowed, ", "),
                                                 "; got ", value.dump()));
}

absl::Status CheckNumber(const Json& value, absl::string_view name, double min, double max) {
  if (value.is_null() || IsExpression(value)) return absl::OkStatus();
  absl::StatusOr<double> n = NumberParam(value, name, 0);
  if (!n.ok()) return n.status();
  if (std::isnan(*n) || *n < min || *n > max) {
    return absl::InvalidArgumentError(absl::StrCat("parameter \"", std::string(name),
                                                   "\" must be between ", min, " and ", max,
                                                   "; got ", value.dump()));
  }
  return absl::OkStatus();
}

}  // namespace ndx::engine::nodes
