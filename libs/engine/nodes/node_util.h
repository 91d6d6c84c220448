// File: node_util.h (internal to the built-in nodes)
//
// Helpers the node files share: condition operators (ifElse, switch), repeated-field unwrapping,
// enum checks.
#pragma once

#include <initializer_list>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/engine/js/js_sandbox.h"  // Json

namespace ndx::engine::nodes {

// Evaluates `left <op> right` for the ifElse/switch operators: equal(s), notEqual(s),
// larger/greaterThan, largerEqual/greaterOrEqual, smaller/lessThan, smallerEqual/lessOrEqual,
// contains, notContains, startsWith, endsWith, isEmpty, isNotEmpty, regex. Values keep their
// types: numbers compare as numbers, everything else as its text (String() in JavaScript);
// contains on an array looks for an element. INVALID_ARGUMENT for an unknown operator or a bad
// regex.
absl::StatusOr<bool> EvaluateCondition(const Json& left, absl::string_view op, const Json& right);
bool IsKnownOperator(absl::string_view op);

// NodeDrop's repeating fields come as {"values": {...}} or flat {...}: the inner object.
const Json& Unwrap(const Json& entry);

// The member `key` of `obj` (null if absent or `obj` is not an object).
const Json& Member(const Json& obj, absl::string_view key);

// OK if `value` is null, an expression, or one of `allowed`; else INVALID_ARGUMENT naming `name`.
absl::Status CheckEnum(const Json& value, absl::string_view name,
                       std::initializer_list<absl::string_view> allowed);

// OK if `value` is null, an expression, or a number (or numeric string) within [min, max].
absl::Status CheckNumber(const Json& value, absl::string_view name, double min, double max);

}  // namespace ndx::engine::nodes
