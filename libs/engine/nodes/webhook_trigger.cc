// webhook-trigger: starts a workflow from an HTTP call (the gateway serves /webhook/...; the
// engine only shapes the data). The trigger data is the request as the gateway saw it:
// {method, headers, query, body, params, path?, clientInfo?, webhookUrl?}. Output, one item:
//   {method, timestamp, params, headers, query, body, ...other trigger data fields}
// `method` defaults to the httpMethod parameter ("GET"); missing maps default to {}. With
// options.includeData (a list of headers, query, body, path, clientInfo, webhookUrl) only the
// listed parts (plus method and timestamp) are kept.
#include <algorithm>

#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

class WebhookTriggerNode final : public NodeType {
 public:
  bool is_trigger() const override { return true; }

  absl::Status Validate(const Json& p) const override {
    return nodes::CheckEnum(nodes::Member(p, "httpMethod"), "httpMethod",
                            {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"});
  }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    absl::StatusOr<Json> method_param = ctx.Param("httpMethod", -1);
    if (!method_param.ok()) return method_param.status();
    const Json& td = ctx.trigger_data();
    Json out = Json::object();
    const Json& m = nodes::Member(td, "method");
    out["method"] = m.is_string() ? m.get<std::string>()
                                  : (method_param->is_string() ? method_param->get<std::string>()
                                                               : std::string("GET"));
    const Json& ts = nodes::Member(td, "timestamp");
    out["timestamp"] = ts.is_string() ? ts.get<std::string>() : FormatIsoTime(ctx.clock().Now());
    for (const char* key : {"params", "headers", "query", "body"}) {
      const Json& v = nodes::Member(td, key);
      out[key] = v.is_null() ? Json::object() : v;
    }
    if (td.is_object()) {
      for (auto it = td.begin(); it != td.end(); ++it) {
        if (!out.contains(it.key())) out[it.key()] = it.value();
      }
    }
    absl::StatusOr<Json> options = ctx.Param("options", -1);
    if (!options.ok()) return options.status();
    const Json& include = nodes::Member(*options, "includeData");
    if (include.is_array()) {
      Json filtered = Json::object();
      for (auto it = out.begin(); it != out.end(); ++it) {
        const bool always = it.key() == "method" || it.key() == "timestamp";
        const bool listed =
            std::find(include.begin(), include.end(), Json(it.key())) != include.end() ||
            (it.key() == "params" &&
             std::find(include.begin(), include.end(), Json("path")) != include.end());
        if (always || listed) filtered[it.key()] = it.value();
      }
      out = std::move(filtered);
    }
    return NodeResult::Main(Json::array({MakeItem(std::move(out))}));
  }
};

}  // namespace

std::unique_ptr<NodeType> NewWebhookTriggerNode() { return std::make_unique<WebhookTriggerNode>(); }

}  // namespace ndx::engine
