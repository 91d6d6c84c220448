// manual-trigger: starts a workflow by hand. Parameters: description (""), allowCustomData
// (false), defaultData (JSON text, "{}"), validateData (true), maxDataSize (bytes, 1 MiB).
// Output, one item (NodeDrop's shape, key order kept):
//   {triggeredAt, triggerType: "manual", description: <param or "Manual workflow trigger">,
//    customData (only with allowCustomData: the trigger data, else defaultData),
//    metadata: {timestamp, source: "manual"}}
// With validateData, custom data larger than maxDataSize or holding __proto__/constructor/
// prototype keys fails the node (FAILED_PRECONDITION).
#include "absl/strings/str_cat.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

bool HasDangerousKey(const Json& v, std::string* path, const std::string& prefix) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string here = prefix.empty() ? it.key() : absl::StrCat(prefix, ".", it.key());
      if (it.key() == "__proto__" || it.key() == "constructor" || it.key() == "prototype") {
        *path = here;
        return true;
      }
      if (HasDangerousKey(it.value(), path, here)) return true;
    }
  } else if (v.is_array()) {
    for (const Json& e : v) {
      if (HasDangerousKey(e, path, prefix)) return true;
    }
  }
  return false;
}

class ManualTriggerNode final : public NodeType {
 public:
  bool is_trigger() const override { return true; }

  absl::Status Validate(const Json& p) const override {
    const Json& dd = nodes::Member(p, "defaultData");
    if (dd.is_string() && !IsExpression(dd) &&
        ParseJsonText(dd.get_ref<const std::string&>()).is_discarded() &&
        !dd.get_ref<const std::string&>().empty()) {
      return absl::InvalidArgumentError("parameter \"defaultData\" is not valid JSON");
    }
    return nodes::CheckNumber(nodes::Member(p, "maxDataSize"), "maxDataSize", 0, 1e12);
  }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    absl::StatusOr<Json> description = ctx.Param("description", -1);
    if (!description.ok()) return description.status();
    absl::StatusOr<Json> allow = ctx.Param("allowCustomData", -1);
    if (!allow.ok()) return allow.status();
    absl::StatusOr<bool> allow_custom = BoolParam(*allow, "allowCustomData", false);
    if (!allow_custom.ok()) return allow_custom.status();
    const std::string now = FormatIsoTime(ctx.clock().Now());
    Json out = Json::object();
    out["triggeredAt"] = now;
    out["triggerType"] = "manual";
    const std::string desc = ValueToText(*description);
    out["description"] = desc.empty() ? "Manual workflow trigger" : desc;
    if (*allow_custom) {
      Json custom = ctx.trigger_data();
      if (!custom.is_object() && !custom.is_array()) {
        absl::StatusOr<Json> dd = ctx.Param("defaultData", -1);
        if (!dd.ok()) return dd.status();
        if (dd->is_string()) {
          custom = ParseJsonText(dd->get_ref<const std::string&>());
          if (custom.is_discarded()) custom = Json::object();
        } else if (dd->is_object() || dd->is_array()) {
          custom = *dd;
        } else {
          custom = Json::object();
        }
      }
      absl::StatusOr<Json> validate = ctx.Param("validateData", -1);
      if (!validate.ok()) return validate.status();
      absl::StatusOr<bool> do_validate = BoolParam(*validate, "validateData", true);
      if (!do_validate.ok()) return do_validate.status();
      if (*do_validate) {
        absl::StatusOr<Json> max = ctx.Param("maxDataSize", -1);
        if (!max.ok()) return max.status();
        absl::StatusOr<double> max_size = NumberParam(*max, "maxDataSize", 1 << 20);
        if (!max_size.ok()) return max_size.status();
        const size_t size = custom.dump().size();
        if (size > *max_size) {
          return absl::FailedPreconditionError(
              absl::StrCat("Trigger data validation failed: Data size ", size,
                           " bytes exceeds maximum ", *max_size, " bytes"));
        }
        std::string path;
        if (HasDangerousKey(custom, &path, "")) {
          return absl::FailedPreconditionError(absl::StrCat(
              "Trigger data validation failed: Dangerous key found at path '", path, "'"));
        }
      }
      out["customData"] = std::move(custom);
    }
    out["metadata"] = {{"timestamp", now}, {"source", "manual"}};
    return NodeResult::Main(Json::array({MakeItem(std::move(out))}));
  }
};

}  // namespace

std::unique_ptr<NodeType> NewManualTriggerNode() { return std::make_unique<ManualTriggerNode>(); }

}  // namespace ndx::engine
