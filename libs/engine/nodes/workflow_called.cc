// workflow-called: starts a workflow called by another one. Parameter passthrough (default true):
// the caller's data becomes the output (an array gives one item per element, anything else one
// item; no data gives one {} item). With passthrough false: one item
// {triggeredAt, triggerType: "workflow"}.
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

class WorkflowCalledNode final : public NodeType {
 public:
  bool is_trigger() const override { return true; }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    absl::StatusOr<Json> pt = ctx.Param("passthrough", -1);
    if (!pt.ok()) return pt.status();
    absl::StatusOr<bool> passthrough = BoolParam(*pt, "passthrough", true);
    if (!passthrough.ok()) return passthrough.status();
    Json items = Json::array();
    const Json& td = ctx.trigger_data();
    if (!*passthrough) {
      items.push_back(MakeItem(
          {{"triggeredAt", FormatIsoTime(ctx.clock().Now())}, {"triggerType", "workflow"}}));
    } else if (td.is_array()) {
      for (const Json& e : td) items.push_back(MakeItem(ItemJson(e)));
    } else {
      items.push_back(MakeItem(td.is_null() ? Json::object() : td));
    }
    return NodeResult::Main(std::move(items));
  }
};

}  // namespace

std::unique_ptr<NodeType> NewWorkflowCalledNode() { return std::make_unique<WorkflowCalledNode>(); }

}  // namespace ndx::engine
