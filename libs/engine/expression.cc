#include "libs/engine/expression.h"

#include <cctype>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

bool IsIdentStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}
bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}

// Finds the "}}" closing an expression that starts at `from` (just after "{{"), skipping string
// literals and balanced braces so that `{{ {a: {b: 1}}.a }}` works. npos if unterminated.
size_t FindClose(absl::string_view s, size_t from) {
  int depth = 0;
  char quote = 0;
  for (size_t i = from; i < s.size(); ++i) {
    char c = s[i];
    if (quote != 0) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == '"' || c == '\'' || c == '`') {
      quote = c;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}') {
      if (depth > 0) {
        --depth;
      } else if (i + 1 < s.size() && s[i + 1] == '}') {
        return i;
      }
    }
  }
  return absl::string_view::npos;
}

// `{{hello world}}`: words only, no JavaScript syntax: the text itself (NodeDrop unwraps it).
bool IsPlainText(absl::string_view code) {
  if (code.empty() || std::isdigit(static_cast<unsigned char>(code[0]))) return false;
  for (char c : code) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ' ' || c == '-')) {
      return false;
    }
  }
  static constexpr absl::string_view kReserved[] = {"true", "false", "null", "undefined",
                                                    "json", "items", "NaN",  "Infinity",
                                                    "this", "Math",  "JSON", "Date"};
  for (absl::string_view r : kReserved) {
    if (code == r) return false;
  }
  return true;
}

// Parses `["x"]` / `['x']` / `[0]` at s[*pos] == '['. Returns false if malformed.
bool ParseBracket(absl::string_view s, size_t* pos, std::string* key) {
  size_t i = *pos + 1;
  if (i >= s.size()) return false;
  if (s[i] == '"' || s[i] == '\'') {
    char q = s[i];
    size_t end = s.find(q, i + 1);
    if (end == absl::string_view::npos || end + 1 >= s.size() || s[end + 1] != ']') return false;
    absl::string_view inner = s.substr(i + 1, end - i - 1);
    if (inner.find('\\') != absl::string_view::npos) return false;  // leave escapes to JS
    *key = std::string(inner);
    *pos = end + 2;
    return true;
  }
  size_t j = i;
  while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
  if (j == i || j >= s.size() || s[j] != ']') return false;
  *key = std::string(s.substr(i, j - i));
  *pos = j + 1;
  return true;
}

std::optional<Json> Step(const Json& value, const std::string& key) {
  if (value.is_object()) {
    auto it = value.find(key);
    if (it == value.end()) return std::nullopt;
    return *it;
  }
  if (value.is_array()) {
    if (key == "length") return Json(value.size());
    if (key.empty() || key.size() > 9) return std::nullopt;
    for (char c : key) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    }
    size_t index = std::stoul(key);
    if (index >= value.size()) return std::nullopt;
    return value[index];
  }
  if (value.is_string() && key == "length") {
    // JavaScript counts UTF-16 units; this counts code points, which agrees for the BMP.
    const std::string& s = value.get_ref<const std::string&>();
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return Json(n);
  }
  return std::nullopt;
}

}  // namespace

std::optional<CompiledTemplate::FastPath> CompiledTemplate::ParseFastPath(absl::string_view code) {
  FastPath path;
  size_t pos = 0;
  auto root_is = [&](absl::string_view name) {
    if (!absl::StartsWith(code, name)) return false;
    if (code.size() > name.size() && IsIdentChar(code[name.size()])) return false;
    pos = name.size();
    return true;
  };
  if (root_is("$json") || root_is("json")) {
    path.root = FastPath::Root::kJson;
  } else if (root_is("$node")) {
    path.root = FastPath::Root::kNode;
    if (pos < code.size() && code[pos] == '[') {
      if (!ParseBracket(code, &pos, &path.node_ref)) return std::nullopt;
    } else if (pos < code.size() && code[pos] == '.') {
      size_t start = ++pos;
      while (pos < code.size() && IsIdentChar(code[pos])) ++pos;
      if (pos == start) return std::nullopt;
      path.node_ref = std::string(code.substr(start, pos - start));
    } else {
      return std::nullopt;
    }
  } else if (root_is("$execution")) {
    path.root = FastPath::Root::kExecution;
  } else if (root_is("$vars")) {
    path.root = FastPath::Root::kVars;
  } else if (root_is("$workflow")) {
    path.root = FastPath::Root::kWorkflow;
  } else if (root_is("$index") || root_is("$itemIndex")) {
    path.root = FastPath::Root::kIndex;
    return pos == code.size() ? std::optional<FastPath>(path) : std::nullopt;
  } else {
    Json literal = Json::parse(code.begin(), code.end(), nullptr, /*allow_exceptions=*/false);
    if (literal.is_discarded() || literal.is_object() || literal.is_array()) return std::nullopt;
    path.root = FastPath::Root::kLiteral;
    path.literal = std::move(literal);
    return path;
  }
  while (pos < code.size()) {
    std::string key;
    if (code[pos] == '.') {
      size_t start = ++pos;
      if (pos >= code.size() || !IsIdentStart(code[pos])) return std::nullopt;
      while (pos < code.size() && IsIdentChar(code[pos])) ++pos;
      key = std::string(code.substr(start, pos - start));
    } else if (code[pos] == '[') {
      if (!ParseBracket(code, &pos, &key)) return std::nullopt;
    } else {
      return std::nullopt;
    }
    path.steps.push_back(std::move(key));
  }
  return path;
}

CompiledTemplate CompiledTemplate::Compile(absl::string_view text) {
  CompiledTemplate t;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    size_t close = open == absl::string_view::npos ? open : FindClose(text, open + 2);
    if (open == absl::string_view::npos || close == absl::string_view::npos) {
      t.parts_.push_back(Part{true, std::string(text.substr(pos)), std::nullopt});
      break;
    }
    if (open > pos) t.parts_.push_back(Part{true, std::string(text.substr(pos, open - pos)), {}});
    absl::string_view code = absl::StripAsciiWhitespace(text.substr(open + 2, close - open - 2));
    Part part;
    if (IsPlainText(code)) {
      part.literal = true;
      part.text = std::string(code);
    } else {
      part.literal = false;
      part.text = std::string(code);
      part.fast = ParseFastPath(code);
    }
    t.parts_.push_back(std::move(part));
    pos = close + 2;
  }
  t.whole_ = t.parts_.size() == 1 && !t.parts_[0].literal;
  return t;
}

bool CompiledTemplate::fast() const {
  for (const Part& p : parts_) {
    if (!p.literal && !p.fast.has_value()) return false;
  }
  return true;
}

absl::StatusOr<std::optional<Json>> CompiledTemplate::EvaluatePart(const Part& part,
                                                                   const Json& item_json,
                                                                   int item_index,
                                                                   const ExpressionEnv& env) const {
  if (part.literal) return std::optional<Json>(Json(part.text));
  if (!part.fast.has_value()) {
    absl::StatusOr<Json> value = env.EvaluateJs(part.text, item_json, item_index);
    if (!value.ok()) {
      return absl::Status(
          value.status().code(),
          absl::StrCat("expression '{{ ", part.text, " }}' failed: ", value.status().message()));
    }
    return std::optional<Json>(*std::move(value));
  }
  const FastPath& path = *part.fast;
  std::optional<Json> current;
  size_t first_step = 0;
  switch (path.root) {
    case FastPath::Root::kJson:
      current = item_json;
      break;
    case FastPath::Root::kNode: {
      const Json* json = env.NodeItemJson(path.node_ref);
      if (json == nullptr) return std::optional<Json>();
      current = *json;
      // `$node["X"].json.f` and `$node["X"].f` both work (NodeDrop).
      if (!path.steps.empty() && path.steps[0] == "json" &&
          !(json->is_object() && json->contains("json"))) {
        first_step = 1;
      }
      break;
    }
    case FastPath::Root::kExecution:
      current = env.Execution();
      break;
    case FastPath::Root::kVars:
      current = env.Vars();
      break;
    case FastPath::Root::kWorkflow:
      current = env.WorkflowInfo();
      break;
    case FastPath::Root::kIndex:
      return std::optional<Json>(Json(item_index < 0 ? 0 : item_index));
    case FastPath::Root::kLiteral:
      return std::optional<Json>(path.literal);
  }
  for (size_t i = first_step; i < path.steps.size() && current.has_value(); ++i) {
    current = Step(*current, path.steps[i]);
  }
  return current;
}

absl::StatusOr<Json> CompiledTemplate::Evaluate(const Json& item_json, int item_index,
                                                const ExpressionEnv& env) const {
  if (whole_) {
    absl::StatusOr<std::optional<Json>> v = EvaluatePart(parts_[0], item_json, item_index, env);
    if (!v.ok()) return v.status();
    return v->has_value() ? **v : Json();
  }
  std::string out;
  for (const Part& part : parts_) {
    if (part.literal) {
      out += part.text;
      continue;
    }
    absl::StatusOr<std::optional<Json>> v = EvaluatePart(part, item_json, item_index, env);
    if (!v.ok()) return v.status();
    if (v->has_value()) out += ValueToText(**v);
  }
  return Json(std::move(out));
}

std::shared_ptr<const TemplateCache> TemplateCache::Build(const Json& parameters) {
  auto cache = std::make_shared<TemplateCache>();
  cache->Add(parameters);
  return cache;
}

void TemplateCache::Add(const Json& value) {
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    if (s.find("{{") == std::string::npos || templates_.contains(s)) return;
    absl::string_view text = s;
    if (!text.empty() && text[0] == '=') text.remove_prefix(1);
    templates_.emplace(s, CompiledTemplate::Compile(text));
  } else if (value.is_structured()) {
    for (const Json& child : value) Add(child);
  }
}

const CompiledTemplate* TemplateCache::Find(const std::string& raw) const {
  auto it = templates_.find(raw);
  return it == templates_.end() ? nullptr : &it->second;
}

absl::StatusOr<Json> ResolveValue(const Json& value, const TemplateCache* cache,
                                  const Json& item_json, int item_index, const ExpressionEnv& env) {
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    if (s.find("{{") == std::string::npos) {
      if (!s.empty() && s[0] == '=') return Json(s.substr(1));
      return value;
    }
    if (const CompiledTemplate* t = cache != nullptr ? cache->Find(s) : nullptr; t != nullptr) {
      return t->Evaluate(item_json, item_index, env);
    }
    absl::string_view text = s;
    if (!text.empty() && text[0] == '=') text.remove_prefix(1);
    return CompiledTemplate::Compile(text).Evaluate(item_json, item_index, env);
  }
  if (value.is_object()) {
    Json out = Json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      absl::StatusOr<Json> v = ResolveValue(it.value(), cache, item_json, item_index, env);
      if (!v.ok()) return v.status();
      out[it.key()] = *std::move(v);
    }
    return out;
  }
  if (value.is_array()) {
    Json out = Json::array();
    for (const Json& child : value) {
      absl::StatusOr<Json> v = ResolveValue(child, cache, item_json, item_index, env);
      if (!v.ok()) return v.status();
      out.push_back(*std::move(v));
    }
    return out;
  }
  return value;
}

}  // namespace ndx::engine
