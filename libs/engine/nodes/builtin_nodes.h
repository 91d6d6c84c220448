// File: builtin_nodes.h
//
// RegisterBuiltinNodes(): the one place where ndx's built-in node types are added to a registry.
// Each type lives in its own file in this folder (reference/nodedrop-contracts.md §9 lists their
// NodeDrop parameters; each file documents what ndx does with them).
//
//   NodeRegistry registry;
//   RegisterBuiltinNodes(registry);
//
// Registered types: manual-trigger, webhook-trigger, schedule-trigger, workflow-called,
// http-request, ifElse, switch, merge, set, json, split, loop, code, wait (also as delay), noop,
// data-preview, image-preview.
#pragma once

#include <memory>

#include "libs/engine/node_type.h"
#include "libs/engine/workflow.h"

namespace ndx::engine {

void RegisterBuiltinNodes(NodeRegistry& registry);

// Factories, one per file (used by RegisterBuiltinNodes and tests).
std::unique_ptr<NodeType> NewManualTriggerNode();
std::unique_ptr<NodeType> NewWebhookTriggerNode();
std::unique_ptr<NodeType> NewScheduleTriggerNode();
std::unique_ptr<NodeType> NewWorkflowCalledNode();
std::unique_ptr<NodeType> NewHttpRequestNode();
std::unique_ptr<NodeType> NewIfElseNode();
std::unique_ptr<NodeType> NewSwitchNode();
std::unique_ptr<NodeType> NewMergeNode();
std::unique_ptr<NodeType> NewSetNode();
std::unique_ptr<NodeType> NewJsonNode();
std::unique_ptr<NodeType> NewSplitNode();
std::unique_ptr<NodeType> NewLoopNode();
std::unique_ptr<NodeType> NewCodeNode();
std::unique_ptr<NodeType> NewWaitNode();
std::unique_ptr<NodeType> NewNoopNode();
std::unique_ptr<NodeType> NewDataPreviewNode();
std::unique_ptr<NodeType> NewImagePreviewNode();

}  // namespace ndx::engine
