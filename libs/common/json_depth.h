// File: json_depth.h
//
// A nesting limit for JSON text from outside the process. nlohmann::json parses and destroys
// values without recursion, but copies them, dumps them and compares them recursively: a document
// nested 100000 levels deep (200 KB of "[") parses fine and then overflows the stack of the thread
// that copies or dumps it, crashing the process. Every JSON text received from a client is checked
// before it is parsed:
//
//   if (common::JsonNestingDepth(body) > common::kMaxJsonDepth) return InvalidArgument(...);
//
// Thread-safe (pure functions).
#pragma once

#include <string_view>

namespace ndx::common {

// The deepest nesting accepted in JSON from clients (the JavaScript sandbox has the same limit
// for the values it returns). Real workflows and payloads stay far below it.
inline constexpr int kMaxJsonDepth = 1000;

// The largest number of arrays and objects open at once in `text`: "1" is 0, "[{}]" is 2.
// Brackets inside strings do not count. Any text is accepted (invalid JSON included), in one pass.
int JsonNestingDepth(std::string_view text);

}  // namespace ndx::common
