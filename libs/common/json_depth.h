// File: json_depth.h
//
// A nesting limit for JSON text from outside (request bodies, Socket.IO and WebSocket frames,
// gRPC `*_json` fields), checked before the text is parsed. nlohmann::json parses without
// recursion, but dumping, comparing and converting a parsed value recurse once per level: a 1 MiB
// body of `[` is 500,000 levels, enough to overflow a thread's stack and crash the process.
//
//   if (absl::Status s = common::CheckJsonDepth(body, "request body"); !s.ok()) return s;
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace ndx::common {

// The deepest nesting of arrays and objects ndx accepts (the JavaScript sandbox has the same
// limit for values it returns).
inline constexpr int kMaxJsonDepth = 1000;

// OK when no array or object in `text` is nested deeper than `max_depth` (brackets inside JSON
// strings do not count; the text need not be valid JSON, parsing checks that). Otherwise
// INVALID_ARGUMENT: "<what>: JSON nested deeper than 1000 levels (at byte 1001)". Linear in the
// size of the text, allocation-free.
absl::Status CheckJsonDepth(std::string_view text, std::string_view what,
                            int max_depth = kMaxJsonDepth);

// The largest number of arrays and objects open at once in `text`: "1" is 0, "[{}]" is 2.
// Brackets inside strings do not count. Any text is accepted (invalid JSON included), in one pass.
int JsonNestingDepth(std::string_view text);

// nlohmann's JsonT::parse(text, nullptr, false) for JSON text from outside (a parameter, a
// response body): a text nested deeper than `max_depth` also gives a discarded value.
template <typename JsonT>
JsonT ParseJsonBounded(std::string_view text, int max_depth = kMaxJsonDepth) {
  if (!CheckJsonDepth(text, "", max_depth).ok()) return JsonT(JsonT::value_t::discarded);
  return JsonT::parse(text, nullptr, /*allow_exceptions=*/false);
}

}  // namespace ndx::common
