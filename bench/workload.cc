#include "bench/workload.h"

#include "services/queue/job_payload.h"

namespace ndx::bench {
namespace {

// A typical order-processing workflow (parameters kept short: the 10 nodes and 10 connections
// alone take about 2 KB in the payload's format).
constexpr NodeSpec kNodes[] = {
    {"n1", "Webhook", "webhook-trigger", R"({"httpMethod":"POST","path":"orders"})"},
    {"n2", "Fetch order", "http-request", R"({"url":"https://shop.example/o/{{$json.body.id}}"})"},
    {"n3", "Paid?", "ifElse", R"({"condition":{"key":"{{$json.paid}}","value":true}})"},
    {"n4", "Shape", "set", R"({"values":[{"keyValue":{"key":"t","value":"{{$json.total}}"}}]})"},
    {"n5", "Score", "code", R"({"code":"return items.filter(i => i.json.t > 100);"})"},
    {"n6", "CRM", "http-request", R"({"method":"POST","url":"https://crm.example/c"})"},
    {"n7", "Reminder", "http-request", R"({"method":"POST","url":"https://mail.example/s"})"},
    {"n8", "Merge", "merge", R"({"mode":"append"})"},
    {"n9", "Route", "switch", R"({"rules":[{"condition":{"key":"{{$json.t}}","value":1}}]})"},
    {"n10", "Notify", "http-request", R"({"method":"POST","url":"https://hooks.slack.com/x"})"},
};

constexpr EdgeSpec kEdges[] = {
    {"n1", "main", "n2"}, {"n2", "main", "n3"},     {"n3", "true", "n4"}, {"n4", "main", "n5"},
    {"n5", "main", "n6"}, {"n3", "false", "n7"},    {"n6", "main", "n8"}, {"n7", "main", "n8"},
    {"n8", "main", "n9"}, {"n9", "output0", "n10"},
};

}  // namespace

void BuildWorkflow(std::span<const NodeSpec> nodes, std::span<const EdgeSpec> edges,
                   v1::Workflow& wf) {
  for (const NodeSpec& spec : nodes) {
    v1::Node* node = wf.add_nodes();
    node->set_id(spec.id);
    node->set_name(spec.name);
    node->set_type(spec.type);
    node->set_parameters_json(spec.parameters_json);
  }
  int i = 0;
  for (const EdgeSpec& edge : edges) {
    v1::Connection* c = wf.add_connections();
    c->set_id("c" + std::to_string(++i));
    c->set_source_node_id(edge.source);
    c->set_source_output(edge.output);
    c->set_target_node_id(edge.target);
  }
  wf.mutable_settings()->set_save_execution_to_database(false);
}

v1::ExecuteWorkflowRequest WorkflowRequest(const std::string& queue) {
  v1::ExecuteWorkflowRequest request;
  v1::Workflow* wf = request.mutable_workflow();
  wf->set_id("cm5order0workflow01");
  wf->set_name("Process new orders");
  BuildWorkflow(kNodes, kEdges, *wf);
  wf->mutable_settings()->set_timezone("Europe/Berlin");
  // BuildWorkflow turned the history off: the BullMQ peer does not model NodeDrop's INSERT into
  // `executions` either.
  request.set_trigger_data_json(R"({"body":{"id":"ord_2Q8f7"},"ts":"2025-12-26T10:00:00Z"})");
  request.set_use_queue(true);
  request.set_queue(queue);
  request.set_workspace_id("cm5workspace0001");
  request.set_user_id("cm5user000000001");
  return request;
}

absl::StatusOr<std::string> WorkflowPayload(const std::string& queue) {
  absl::StatusOr<queue::JobPayload> payload =
      queue::BuildJobPayload(WorkflowRequest(queue), queue, /*validator=*/{});
  if (!payload.ok()) return payload.status();
  return std::move(payload->json);
}

}  // namespace ndx::bench
