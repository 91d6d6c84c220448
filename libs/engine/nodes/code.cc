// code: runs JavaScript (JsSandbox::RunFunctionBody) once per node run. Parameters: language
// (javascript; python is not supported: permanent UNIMPLEMENTED), code (used as written, never
// expression-resolved), timeout (ms, default 30000, capped by the node's deadline),
// continueOnFail (the node's own parameter: a failure becomes one item
// {error: true, message: "JavaScript execution failed: ..."}).
// The code sees `items` (the input items' jsons, as in NodeDrop), `$input` ({all: items as
// {json}, first: the first {json}}), and the expression globals ($json = first item, $node,
// $execution, $vars, $workflow, $now). It returns an array (a single value is one item); each
// element becomes an item's json, elements shaped {json: {...}} are unwrapped; null/undefined
// gives no items. console.log/info/warn/error lines are captured in metadata.console.
// Errors keep the sandbox's codes: syntax error INVALID_ARGUMENT, thrown error
// FAILED_PRECONDITION, timeout DEADLINE_EXCEEDED, memory RESOURCE_EXHAUSTED. No sandbox:
// FAILED_PRECONDITION.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/engine/errors.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

class CodeNode final : public NodeType {
 public:
  absl::Status Validate(const Json& p) const override {
    absl::Status st =
        nodes::CheckEnum(nodes::Member(p, "language"), "language", {"javascript", "python"});
    if (!st.ok()) return st;
    if (nodes::Member(p, "language") == "python") {
      return absl::InvalidArgumentError("language \"python\" is not supported by ndx");
    }
    const Json& code = nodes::Member(p, "code");
    if (!code.is_null() && !code.is_string()) {
      return absl::InvalidArgumentError("parameter \"code\" must be a string");
    }
    return nodes::CheckNumber(nodes::Member(p, "timeout"), "timeout", 1, 3.6e6);
  }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    absl::StatusOr<Json> cof = ctx.Param("continueOnFail", 0);
    if (!cof.ok()) return cof.status();
    absl::StatusOr<bool> continue_on_fail = BoolParam(*cof, "continueOnFail", false);
    if (!continue_on_fail.ok()) return continue_on_fail.status();
    absl::StatusOr<NodeResult> result = Run(ctx);
    if (result.ok() || !*continue_on_fail ||
        result.status().code() == absl::StatusCode::kCancelled) {
      return result;
    }
    return NodeResult::Main(Json::array(
        {MakeItem({{"error", true}, {"message", std::string(result.status().message())}})}));
  }

 private:
  static absl::StatusOr<NodeResult> Run(NodeContext& ctx) {
    absl::StatusOr<Json> timeout_param = ctx.Param("timeout", 0);
    if (!timeout_param.ok()) return timeout_param.status();
    absl::StatusOr<double> timeout_ms = NumberParam(*timeout_param, "timeout", 30000);
    if (!timeout_ms.ok()) return timeout_ms.status();
    JsSandbox* js = ctx.js();
    if (js == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(ctx.node().Label(),
                       ": JavaScript execution failed: no JavaScript engine in this process"));
    }
    const Json& code = ctx.RawParam("code");
    Json globals = ctx.JsGlobals(0);
    Json items = Json::array();
    Json all = Json::array();
    for (const Json& item : ctx.items()) {
      items.push_back(ItemJson(item));
      all.push_back(MakeItem(ItemJson(item)));
    }
    globals["items"] = std::move(items);
    globals["$input"] = {{"all", all}, {"first", all.empty() ? Json() : all[0]}};
    JsLimits limits = ctx.js_limits();
    const absl::Duration time_left = ctx.deadline() - ctx.clock().Now();
    limits.timeout = std::min(absl::Milliseconds(*timeout_ms), time_left);
    if (limits.timeout <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat(ctx.node().Label(), ": JavaScript execution failed: no time left"));
    }
    absl::StatusOr<JsResult> r = js->RunFunctionBody(
        code.is_string() ? code.get<std::string>() : "", globals, limits, &ctx.cancel());
    if (!r.ok()) {
      if (r.status().code() == absl::StatusCode::kCancelled) return r.status();
      return absl::Status(PermanentIfOwnTimeLimit(r.status().code(), limits.timeout, time_left),
                          absl::StrCat("JavaScript execution failed: ", r.status().message()));
    }
    Json out = Json::array();
    auto add = [&out](const Json& v) {
      if (v.is_object() && v.size() == 1 && v.contains("json")) {
        out.push_back(MakeItem(v["json"]));
      } else {
        out.push_back(MakeItem(v));
      }
    };
    if (r->value.is_array()) {
      for (const Json& v : r->value) add(v);
    } else if (!r->value.is_null()) {
      add(r->value);
    }
    NodeResult result = NodeResult::Main(std::move(out));
    if (!r->console.empty()) result.metadata["console"] = r->console;
    return result;
  }
};

}  // namespace

std::unique_ptr<NodeType> NewCodeNode() { return std::make_unique<CodeNode>(); }

}  // namespace ndx::engine
