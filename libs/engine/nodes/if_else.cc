// ifElse: routes each input item to `true` or `false` (ndx evaluates per item; NodeDrop used the
// first item for all). Parameters:
//   mode: simple (condition {key, expression, value}) | combine (combineOperation AND|OR,
//         conditions [{values: {condition}}]) | grouped (combineGroups AND|OR, conditionGroups
//         [{values: {groupOperation AND|OR, conditions: [...]}}]).
// A condition's key is resolved per item: a key with an expression is that value (typed; a
// resolved "john.doe" stays a value); a plain key is looked up as a field path in the item and,
// if absent and without a dot, used as the literal text (NodeDrop). Empty condition lists and
// empty groups are false. Operators: see node_util.h.
#include "absl/strings/str_cat.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

absl::Status CheckCondition(const Json& cond, absl::string_view where) {
  if (cond.is_null() || IsExpression(cond)) return absl::OkStatus();
  if (!cond.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, " must be an object"));
  }
  const Json& op = nodes::Member(cond, "expression");
  if (op.is_null() || IsExpression(op)) return absl::OkStatus();
  if (!op.is_string() || !nodes::IsKnownOperator(op.get<std::string>())) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": unknown operator ", op.dump()));
  }
  return absl::OkStatus();
}

absl::Status CheckConditionList(const Json& list, absl::string_view where) {
  if (list.is_null() || IsExpression(list)) return absl::OkStatus();
  if (!list.is_array()) return absl::InvalidArgumentError(absl::StrCat(where, " must be an array"));
  for (size_t i = 0; i < list.size(); ++i) {
    absl::Status st = CheckCondition(nodes::Member(nodes::Unwrap(list[i]), "condition"),
                                     absl::StrCat(where, "[", i, "].condition"));
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

class IfElseNode final : public NodeType {
 public:
  std::vector<std::string> Outputs(const Json&) const override { return {"true", "false"}; }

  absl::Status Validate(const Json& p) const override {
    absl::Status st =
        nodes::CheckEnum(nodes::Member(p, "mode"), "mode", {"simple", "combine", "grouped"});
    if (!st.ok()) return st;
    for (const char* name : {"combineOperation", "combineGroups"}) {
      st = nodes::CheckEnum(nodes::Member(p, name), name, {"AND", "OR"});
      if (!st.ok()) return st;
    }
    st = CheckCondition(nodes::Member(p, "condition"), "parameter \"condition\"");
    if (!st.ok()) return st;
    st = CheckConditionList(nodes::Member(p, "conditions"), "parameter \"conditions\"");
    if (!st.ok()) return st;
    const Json& groups = nodes::Member(p, "conditionGroups");
    if (groups.is_array()) {
      for (size_t i = 0; i < groups.size(); ++i) {
        const Json& g = nodes::Unwrap(groups[i]);
        st = nodes::CheckEnum(nodes::Member(g, "groupOperation"), "groupOperation", {"AND", "OR"});
        if (!st.ok()) return st;
        st = CheckConditionList(nodes::Member(g, "conditions"),
                                absl::StrCat("parameter \"conditionGroups[", i, "].conditions\""));
        if (!st.ok()) return st;
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    absl::StatusOr<Json> mode = ctx.Param("mode", 0);
    if (!mode.ok()) return mode.status();
    const std::string m = mode->is_string() ? mode->get<std::string>() : "simple";
    Json yes = Json::array();
    Json no = Json::array();
    const Json& items = ctx.items();
    for (size_t i = 0; i < items.size(); ++i) {
      absl::StatusOr<bool> r = Evaluate(ctx, m, static_cast<int>(i));
      if (!r.ok()) return r.status();
      (*r ? yes : no).push_back(items[i]);
    }
    NodeResult result;
    result.outputs["true"] = std::move(yes);
    result.outputs["false"] = std::move(no);
    return result;
  }

 private:
  static absl::StatusOr<bool> One(NodeContext& ctx, const Json& raw, int i) {
    if (!raw.is_object()) return false;
    const Json& raw_key = nodes::Member(raw, "key");
    absl::StatusOr<Json> key = ctx.Resolve(raw_key, i);
    if (!key.ok()) return key.status();
    if (!IsExpression(raw_key) && key->is_string()) {
      const std::string path = key->get<std::string>();
      const Json* found = path.empty() ? nullptr : GetPath(ItemJson(ctx.items()[i]), path);
      if (found != nullptr) {
        *key = *found;
      } else if (path.find('.') != std::string::npos) {
        *key = Json();
      }
    }
    absl::StatusOr<Json> op = ctx.Resolve(nodes::Member(raw, "expression"), i);
    if (!op.ok()) return op.status();
    absl::StatusOr<Json> value = ctx.Resolve(nodes::Member(raw, "value"), i);
    if (!value.ok()) return value.status();
    const std::string op_name = op->is_string() ? op->get<std::string>() : "equal";
    absl::StatusOr<bool> r = nodes::EvaluateCondition(*key, op_name, *value);
    if (!r.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(ctx.node().Label(), ": ", r.status().message()));
    }
    return r;
  }

  static absl::StatusOr<bool> Combine(NodeContext& ctx, const Json& list, const std::string& op,
                                      int i) {
    if (!list.is_array() || list.empty()) return false;
    bool any = false;
    bool all = true;
    int count = 0;
    for (const Json& entry : list) {
      const Json& cond = nodes::Member(nodes::Unwrap(entry), "condition");
      if (!cond.is_object()) continue;
      absl::StatusOr<bool> r = One(ctx, cond, i);
      if (!r.ok()) return r.status();
      ++count;
      any = any || *r;
      all = all && *r;
    }
    return op == "AND" ? (count > 0 && all) : any;
  }

  static absl::StatusOr<bool> Evaluate(NodeContext& ctx, const std::string& mode, int i) {
    const Json& p = ctx.node().parameters;
    if (mode == "combine") {
      absl::StatusOr<Json> op = ctx.Param("combineOperation", i);
      if (!op.ok()) return op.status();
      return Combine(ctx, nodes::Member(p, "conditions"),
                     op->is_string() ? op->get<std::string>() : "AND", i);
    }
    if (mode == "grouped") {
      absl::StatusOr<Json> op = ctx.Param("combineGroups", i);
      if (!op.ok()) return op.status();
      const std::string combine = op->is_string() ? op->get<std::string>() : "AND";
      const Json& groups = nodes::Member(p, "conditionGroups");
      if (!groups.is_array() || groups.empty()) return false;
      bool any = false;
      bool all = true;
      for (const Json& entry : groups) {
        const Json& g = nodes::Unwrap(entry);
        absl::StatusOr<Json> gop = ctx.Resolve(nodes::Member(g, "groupOperation"), i);
        if (!gop.ok()) return gop.status();
        absl::StatusOr<bool> r = Combine(ctx, nodes::Member(g, "conditions"),
                                         gop->is_string() ? gop->get<std::string>() : "OR", i);
        if (!r.ok()) return r.status();
        any = any || *r;
        all = all && *r;
      }
      return combine == "AND" ? all : any;
    }
    if (mode != "simple") {
      return absl::InvalidArgumentError(
          absl::StrCat(ctx.node().Label(), ": unknown mode \"", mode, "\""));
    }
    return One(ctx, nodes::Member(p, "condition"), i);
  }
};

}  // namespace

std::unique_ptr<NodeType> NewIfElseNode() { return std::make_unique<IfElseNode>(); }

}  // namespace ndx::engine
