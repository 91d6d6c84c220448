// File: expression.h (internal to ndx::engine)
//
// `{{ ... }}` templates in node parameters, resolved per item (DESIGN.md "Execution semantics",
// reference/nodedrop-behaviour.md "Expressions"):
//   - a leading "=" (the editor's expression marker) is stripped from every string;
//   - a string that is exactly one `{{ expr }}` keeps the expression's type (a missing path gives
//     null); otherwise each `{{ }}` is replaced by its text (undefined and null give "", objects
//     compact JSON, numbers as JavaScript prints them);
//   - fast path, without JavaScript: `$json.a.b`, `$json["x"]`, `json.a`, `$json.list[0]`,
//     `$node["Name"].field`, `$node["Name"].json.field` (by name or id), `$execution.id`,
//     `$execution.mode`, `$vars.x`, `$workflow.id`, `$index`, JSON literals, and `.length` of
//     strings and arrays; `{{plain words}}` is the text itself;
//   - anything else is JavaScript through JsSandbox::EvaluateExpression with the globals $json,
//     $node, $execution, $vars, $workflow, $index, $now (ISO string) and items.
// Parameters are compiled once per Workflow (TemplateCache); evaluation does no parsing.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/engine/js/js_sandbox.h"  // Json

namespace ndx::engine {

// What expressions can see besides the current item. Implemented by the engine per node run.
class ExpressionEnv {
 public:
  virtual ~ExpressionEnv() = default;
  // The json of the first item of the latest output of the node with this id or name; nullptr
  // when it has not run or output nothing.
  virtual const Json* NodeItemJson(absl::string_view id_or_name) const = 0;
  virtual const Json& Execution() const = 0;     // {"id": ..., "mode": ...}
  virtual const Json& Vars() const = 0;          // $vars
  virtual const Json& WorkflowInfo() const = 0;  // {"id": ...}
  // Evaluates `code` as JavaScript with $json = item_json and $index = item_index.
  virtual absl::StatusOr<Json> EvaluateJs(const std::string& code, const Json& item_json,
                                          int item_index) const = 0;
};

// One compiled parameter string.
class CompiledTemplate {
 public:
  // `text` is the string with its leading "=" already removed.
  static CompiledTemplate Compile(absl::string_view text);

  // The resolved value. Errors: from JavaScript, as "expression '{{ x }}' failed: ..." with the
  // sandbox's code.
  absl::StatusOr<Json> Evaluate(const Json& item_json, int item_index,
                                const ExpressionEnv& env) const;

  // True if evaluation needs no JavaScript (every part is literal or on the fast path).
  bool fast() const;

 private:
  struct FastPath {
    enum class Root { kJson, kNode, kExecution, kVars, kWorkflow, kIndex, kLiteral };
    Root root = Root::kJson;
    std::string node_ref;
    std::vector<std::string> steps;
    Json literal;
  };
  struct Part {
    bool literal = true;
    std::string text;  // literal text, or the expression's source (inside the braces)
    std::optional<FastPath> fast;
  };

  static std::optional<FastPath> ParseFastPath(absl::string_view code);
  absl::StatusOr<std::optional<Json>> EvaluatePart(const Part& part, const Json& item_json,
                                                   int item_index, const ExpressionEnv& env) const;

  std::vector<Part> parts_;
  bool whole_ = false;  // exactly one expression and nothing else
};

// The compiled templates of one node's parameters, keyed by the raw string.
class TemplateCache {
 public:
  static std::shared_ptr<const TemplateCache> Build(const Json& parameters);
  const CompiledTemplate* Find(const std::string& raw) const;

 private:
  void Add(const Json& value);
  absl::flat_hash_map<std::string, CompiledTemplate> templates_;
};

// Resolves every string inside `value` (recursively through objects and arrays). `cache` may be
// null (strings are then compiled on the fly).
absl::StatusOr<Json> ResolveValue(const Json& value, const TemplateCache* cache,
                                  const Json& item_json, int item_index, const ExpressionEnv& env);

}  // namespace ndx::engine
