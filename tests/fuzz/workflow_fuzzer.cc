// Fuzz target: a workflow document as the CLI, the gateway and ndx-queue receive it. The bytes are
// parsed as JSON, converted by libs/nodedrop (WorkflowFromNodeDropJson) and parsed + validated by
// the engine (ParseWorkflow), whose precomputed scopes and templates are then read.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "libs/engine/node_type.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/workflow.h"
#include "libs/nodedrop/workflow_json.h"

namespace {

const ndx::engine::NodeRegistry& Registry() {
  static const ndx::engine::NodeRegistry* registry = [] {
    auto* r = new ndx::engine::NodeRegistry();
    ndx::engine::RegisterBuiltinNodes(*r);
    return r;
  }();
  return *registry;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded()) {
    absl::StatusOr<ndx::v1::Workflow> wf = ndx::nodedrop::WorkflowFromNodeDropJson(doc, "fuzz");
    if (wf.ok() && wf->nodes_size() > 0) {
      (void)ndx::nodedrop::ResolveNodeId(*wf, wf->nodes(0).name());
    }
  }

  const ndx::engine::Json json =
      ndx::engine::Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  absl::StatusOr<ndx::engine::Workflow> wf = ndx::engine::ParseWorkflow(json, Registry());
  if (!wf.ok()) return 0;
  (void)wf->DefaultTrigger();
  for (const ndx::engine::Node& node : wf->nodes()) {
    (void)wf->FindNodeByIdOrName(node.name);
    (void)wf->TopScope(node.index);  // on the fly for nodes that are not triggers
    if (node.node_type->is_loop()) (void)wf->LoopBody(node.index);
    (void)wf->templates(node.index);
  }
  return 0;
}
