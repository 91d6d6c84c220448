#include "libs/common/json_depth.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace ndx::common {
namespace {

// Scans `text` for arrays and objects outside strings. Returns the byte offset of the first one
// that opens deeper than `limit`, or npos; `deepest` gets the deepest nesting seen up to there.
size_t Scan(std::string_view text, int limit, int& deepest) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
      if (depth > limit) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::string_view::npos;
}

}  // namespace

absl::Status CheckJsonDepth(std::string_view text, std::string_view what, int max_depth) {
  int deepest = 0;
  const size_t at = Scan(text, max_depth, deepest);
  if (at == std::string_view::npos) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(std::string(what), ": JSON nested deeper than ",
                                                 max_depth, " levels (at byte ", at, ")"));
}

int JsonNestingDepth(std::string_view text) {
  int deepest = 0;
  Scan(text, std::numeric_limits<int>::max(), deepest);
  return deepest;
}

}  // namespace ndx::common
