#include "libs/engine/nodes/builtin_nodes.h"

namespace ndx::engine {

void RegisterBuiltinNodes(NodeRegistry& registry) {
  registry.Register("manual-trigger", NewManualTriggerNode());
  registry.Register("webhook-trigger", NewWebhookTriggerNode());
  registry.Register("schedule-trigger", NewScheduleTriggerNode());
  registry.Register("workflow-called", NewWorkflowCalledNode());
  registry.Register("http-request", NewHttpRequestNode());
  registry.Register("ifElse", NewIfElseNode());
  registry.Register("switch", NewSwitchNode());
  registry.Register("merge", NewMergeNode());
  registry.Register("set", NewSetNode());
  registry.Register("json", NewJsonNode());
  registry.Register("split", NewSplitNode());
  registry.Register("loop", NewLoopNode());
  registry.Register("code", NewCodeNode());
  registry.Register("wait", NewWaitNode());
  registry.Register("delay", NewWaitNode());  // loop-example.json's `delay` (not in NodeDrop)
  registry.Register("noop", NewNoopNode());
  registry.Register("data-preview", NewDataPreviewNode());
  registry.Register("image-preview", NewImagePreviewNode());
}

}  // namespace ndx::engine
