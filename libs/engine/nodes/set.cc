// set: sets fields on every item. `values` [{keyValue: {key, value}}] (or
// [{values: {keyValue}}]); key and value are resolved per item ($json = the item being changed;
// NodeDrop resolved them once, against the first item). Keys are dot/bracket paths
// ("user.address.city", "tags[0]") that create objects, or arrays for numeric steps. With no input
// items, one item is built from {}.
#include "absl/strings/str_cat.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

const Json& KeyValueOf(const Json& entry) {
  return nodes::Member(nodes::Unwrap(entry), "keyValue");
}

class SetNode final : public NodeType {
 public:
  absl::Status Validate(const Json& p) const override {
    const Json& values = nodes::Member(p, "values");
    if (values.is_null()) return absl::OkStatus();
    if (!values.is_array()) {
      return absl::InvalidArgumentError("parameter \"values\" must be an array");
    }
    for (size_t i = 0; i < values.size(); ++i) {
      const Json& kv = KeyValueOf(values[i]);
      if (!kv.is_object()) {
        return absl::InvalidArgumentError(
            absl::StrCat("parameter \"values[", i, "]\" has no keyValue {key, value}"));
      }
      const Json& key = nodes::Member(kv, "key");
      if (!key.is_null() && !key.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("parameter \"values[", i, "].key\" must be a string"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    const Json& values = nodes::Member(ctx.node().parameters, "values");
    const Json& items = ctx.items();
    const size_t count = items.empty() ? 1 : items.size();
    Json out = Json::array();
    for (size_t i = 0; i < count; ++i) {
      const int idx = items.empty() ? -1 : static_cast<int>(i);
      Json json = items.empty() ? Json::object() : ItemJson(items[i]);
      if (!json.is_object()) json = Json::object();
      if (values.is_array()) {
        for (const Json& entry : values) {
          const Json& kv = KeyValueOf(entry);
          absl::StatusOr<Json> key = ctx.Resolve(nodes::Member(kv, "key"), idx);
          if (!key.ok()) return key.status();
          const std::string path = ValueToText(*key);
          if (path.empty()) continue;
          absl::StatusOr<Json> value = ctx.Resolve(nodes::Member(kv, "value"), idx);
          if (!value.ok()) return value.status();
          absl::Status st = SetPath(json, path, *std::move(value));
          if (!st.ok()) {
            return absl::InvalidArgumentError(absl::StrCat(ctx.node().Label(), ": ", st.message()));
          }
        }
      }
      out.push_back(MakeItem(std::move(json)));
    }
    return NodeResult::Main(std::move(out));
  }
};

}  // namespace

std::unique_ptr<NodeType> NewSetNode() { return std::make_unique<SetNode>(); }

}  // namespace ndx::engine
