// noop: passes its input items through unchanged.
#include "libs/engine/nodes/builtin_nodes.h"

namespace ndx::engine {
namespace {

class NoopNode final : public NodeType {
 public:
  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    return NodeResult::Main(ctx.items());
  }
};

}  // namespace

std::unique_ptr<NodeType> NewNoopNode() { return std::make_unique<NoopNode>(); }

}  // namespace ndx::engine
