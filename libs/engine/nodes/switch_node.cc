// switch: routes each item to one of the outputs `output0`..`outputN-1`.
//   mode rules (default): N = number of rules; `rules` [{condition {key, expression, value}}]
//     (also NodeDrop editor's `outputs` [{values: {rule {key, expression, value}}}]); each item
//     goes to the first matching rule's output, unmatched items are dropped. A rule key with an
//     expression is its value; a plain key is a field path in the item. No rules: all items on
//     `main` (NodeDrop).
//   mode expression: N = outputsCount (2..10, default 4); `outputExpression` (or `expression`)
//     resolved per item to a 0-based output index; items with an index out of range are dropped.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

const Json& Rules(const Json& p) {
  const Json& rules = nodes::Member(p, "rules");
  if (!rules.is_null()) return rules;
  return nodes::Member(p, "outputs");
}

// The {key, expression, value} of one rule entry.
Json RuleOf(const Json& entry) {
  const Json& inner = nodes::Unwrap(entry);
  const Json& cond = nodes::Member(inner, "condition");
  if (cond.is_object()) return cond;
  const Json& rule = nodes::Member(inner, "rule");
  if (rule.is_object()) return rule;
  return {{"key", nodes::Member(inner, "field")},
          {"expression", nodes::Member(inner, "condition")},
          {"value", nodes::Member(inner, "value")}};
}

int OutputsCount(const Json& p) {
  absl::StatusOr<double> n = NumberParam(nodes::Member(p, "outputsCount"), "outputsCount", 4);
  return n.ok() ? static_cast<int>(*n) : 4;
}

class SwitchNode final : public NodeType {
 public:
  std::vector<std::string> Outputs(const Json& p) const override {
    int n;
    if (nodes::Member(p, "mode") == "expression") {
      n = OutputsCount(p);
    } else {
      const Json& rules = Rules(p);
      n = rules.is_array() ? static_cast<int>(rules.size()) : 0;
      if (n == 0) return {"main"};
    }
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back(absl::StrCat("output", i));
    return out;
  }

  absl::Status Validate(const Json& p) const override {
    absl::Status st = nodes::CheckEnum(nodes::Member(p, "mode"), "mode", {"rules", "expression"});
    if (!st.ok()) return st;
    if (nodes::Member(p, "mode") == "expression") {
      const Json& count = nodes::Member(p, "outputsCount");
      if (IsExpression(count)) {
        return absl::InvalidArgumentError("parameter \"outputsCount\" cannot be an expression");
      }
      return nodes::CheckNumber(count, "outputsCount", 1, 64);
    }
    const Json& rules = Rules(p);
    if (rules.is_null()) return absl::OkStatus();
    if (!rules.is_array()) {
      return absl::InvalidArgumentError("parameter \"rules\" must be an array (not an expression)");
    }
    for (size_t i = 0; i < rules.size(); ++i) {
      const Json rule = RuleOf(rules[i]);
      const Json& op = nodes::Member(rule, "expression");
      if (op.is_null() || IsExpression(op)) continue;
      if (!op.is_string() || !nodes::IsKnownOperator(op.get<std::string>())) {
        return absl::InvalidArgumentError(
            absl::StrCat("rule ", i, ": unknown operator ", op.dump()));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    const Node& node = ctx.node();
    const Json& p = node.parameters;
    const Json& items = ctx.items();
    NodeResult result;
    if (node.outputs.size() == 1 && node.outputs[0] == "main") {
      result.outputs["main"] = items;
      return result;
    }
    std::vector<Json> routed(node.outputs.size(), Json::array());
    const bool expression_mode = nodes::Member(p, "mode") == "expression";
    const Json& rules = Rules(p);
    for (size_t i = 0; i < items.size(); ++i) {
      const int idx = static_cast<int>(i);
      int target = -1;
      if (expression_mode) {
        const char* name =
            nodes::Member(p, "outputExpression").is_null() ? "expression" : "outputExpression";
        absl::StatusOr<Json> v = ctx.Param(name, idx);
        if (!v.ok()) return v.status();
        const double d = ValueToNumber(*v);
        if (!std::isnan(d) && d == std::floor(d) && d >= 0 && d < routed.size()) {
          target = static_cast<int>(d);
        }
      } else {
        for (size_t r = 0; r < rules.size() && target < 0; ++r) {
          const Json raw = RuleOf(rules[r]);
          const Json& raw_key = nodes::Member(raw, "key");
          absl::StatusOr<Json> key = ctx.Resolve(raw_key, idx);
          if (!key.ok()) return key.status();
          if (!IsExpression(raw_key) && key->is_string()) {
            const Json* found = GetPath(ItemJson(items[i]), key->get<std::string>());
            *key = found != nullptr ? *found : Json();
          }
          absl::StatusOr<Json> op = ctx.Resolve(nodes::Member(raw, "expression"), idx);
          if (!op.ok()) return op.status();
          absl::StatusOr<Json> value = ctx.Resolve(nodes::Member(raw, "value"), idx);
          if (!value.ok()) return value.status();
          absl::StatusOr<bool> match = nodes::EvaluateCondition(
              *key, op->is_string() ? op->get<std::string>() : "equals", *value);
          if (!match.ok()) {
            return absl::InvalidArgumentError(
                absl::StrCat(node.Label(), ": rule ", r, ": ", match.status().message()));
          }
          if (*match) target = static_cast<int>(r);
        }
      }
      if (target >= 0) routed[target].push_back(items[i]);
    }
    for (size_t o = 0; o < routed.size(); ++o)
      result.outputs[node.outputs[o]] = std::move(routed[o]);
    return result;
  }
};

}  // namespace

std::unique_ptr<NodeType> NewSwitchNode() { return std::make_unique<SwitchNode>(); }

}  // namespace ndx::engine
