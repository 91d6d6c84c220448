// File: value_util.h
//
// Small JSON helpers shared by the engine and the node types: JavaScript-like conversions (what
// NodeDrop's TypeScript did with String()/Number()), dot/bracket paths, ISO-8601 times and the
// item shape.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/engine/js/js_sandbox.h"  // Json

namespace ndx::engine {

// Text of a value as interpolated into a string: strings as they are, null as "", numbers as
// JavaScript prints them (7, 2.5, 1e+21), booleans as true/false, objects and arrays as compact
// JSON.
std::string ValueToText(const Json& value);

// JavaScript Number(value): null -> 0, booleans -> 0/1, numeric strings -> their value, "" -> 0,
// anything else -> NaN.
double ValueToNumber(const Json& value);

// JavaScript truthiness (null, false, 0, NaN and "" are falsy; objects and arrays are truthy).
bool IsTruthy(const Json& value);

// The value at `path` ("a.b", "a[0].b", "a.0.b") inside `root`; nullptr when any step is
// missing. An empty path is `root` itself.
const Json* GetPath(const Json& root, absl::string_view path);

// Sets `path` inside `root` (an object), creating objects, or arrays when the next step is a
// number, as NodeDrop's Set node does. INVALID_ARGUMENT if the path is empty or runs into a
// scalar.
absl::Status SetPath(Json& root, absl::string_view path, Json value);

// "2026-01-01T00:00:00.000Z" (JavaScript's Date.toISOString()).
std::string FormatIsoTime(absl::Time t);
// Parses ISO-8601 / RFC 3339 date-times ("2026-01-01", "2026-01-01T10:00:00",
// "2026-01-01T10:00:00.5Z", "...+02:00"); no offset means UTC. INVALID_ARGUMENT otherwise.
absl::StatusOr<absl::Time> ParseIsoTime(absl::string_view text);

// {"json": value}; a non-object value is kept as is (NodeDrop allows it).
Json MakeItem(Json value);
// The `json` of an item; an item without "json" is its own json. Never null for valid items.
const Json& ItemJson(const Json& item);

// Parses JSON text that comes from outside the workflow's structure (an HTTP response body, a
// string parameter or item field holding JSON). The result is discarded (is_discarded()) when the
// text is not JSON or nests deeper than common::kMaxJsonDepth: such a value would overflow the
// stack when it is later copied or serialized (libs/common/json_depth.h).
Json ParseJsonText(absl::string_view text);

// The integer value of a parameter that may be a number or a numeric string; `fallback` when
// null. INVALID_ARGUMENT naming `name` otherwise.
absl::StatusOr<double> NumberParam(const Json& value, absl::string_view name, double fallback);
// The boolean value of a parameter (true/false, "true"/"false"); `fallback` when null.
absl::StatusOr<bool> BoolParam(const Json& value, absl::string_view name, bool fallback);
// The string value of a parameter (numbers and booleans are converted); `fallback` when null.
absl::StatusOr<std::string> StringParam(const Json& value, absl::string_view name,
                                        absl::string_view fallback);

// True if `s` contains a `{{ ... }}` expression or starts with "=" (resolved at run time, so
// not checkable at parse time).
bool IsExpression(const Json& value);

}  // namespace ndx::engine
