// json: composes JSON. mode json (default): `jsonData` (JSON text, or an object/array; default
// "{}") — an array gives one item per element, anything else one item. mode keyValue:
// `keyValuePairs` [{key, value}] (or [{values: {key, value}}] / [{keyValue: {key, value}}]) builds
// one object with dot/bracket paths ("list[1]" makes a sparse array [null, "second"]); a leading
// "=" on a key is stripped (as on every parameter string). Parameters are resolved against the
// first input item.
#include "absl/strings/str_cat.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

const Json& PairOf(const Json& entry) {
  const Json& inner = nodes::Unwrap(entry);
  const Json& kv = nodes::Member(inner, "keyValue");
  return kv.is_object() ? kv : inner;
}

class JsonNode final : public NodeType {
 public:
  absl::Status Validate(const Json& p) const override {
    absl::Status st = nodes::CheckEnum(nodes::Member(p, "mode"), "mode", {"json", "keyValue"});
    if (!st.ok()) return st;
    const Json& data = nodes::Member(p, "jsonData");
    if (data.is_string() && !IsExpression(data) &&
        ParseJsonText(data.get_ref<const std::string&>()).is_discarded()) {
      return absl::InvalidArgumentError("parameter \"jsonData\" is not valid JSON");
    }
    const Json& pairs = nodes::Member(p, "keyValuePairs");
    if (!pairs.is_null() && !pairs.is_array() && !IsExpression(pairs)) {
      return absl::InvalidArgumentError("parameter \"keyValuePairs\" must be an array");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    absl::StatusOr<Json> mode = ctx.Param("mode", 0);
    if (!mode.ok()) return mode.status();
    Json out = Json::array();
    if (*mode == "keyValue") {
      absl::StatusOr<Json> pairs = ctx.Param("keyValuePairs", 0);
      if (!pairs.ok()) return pairs.status();
      Json obj = Json::object();
      if (pairs->is_array()) {
        for (const Json& entry : *pairs) {
          const Json& pair = PairOf(entry);
          std::string key = ValueToText(nodes::Member(pair, "key"));
          if (key.empty()) continue;
          absl::Status st = SetPath(obj, key, nodes::Member(pair, "value"));
          if (!st.ok()) {
            return absl::InvalidArgumentError(absl::StrCat(ctx.node().Label(), ": ", st.message()));
          }
        }
      }
      out.push_back(MakeItem(std::move(obj)));
      return NodeResult::Main(std::move(out));
    }
    absl::StatusOr<Json> data = ctx.Param("jsonData", 0);
    if (!data.ok()) return data.status();
    Json parsed;
    if (data->is_null()) {
      parsed = Json::object();
    } else if (data->is_string()) {
      parsed = ParseJsonText(data->get_ref<const std::string&>());
      if (parsed.is_discarded()) {
        return absl::InvalidArgumentError(
            absl::StrCat(ctx.node().Label(), ": Invalid JSON data: ", data->dump()));
      }
    } else {
      parsed = *std::move(data);
    }
    if (parsed.is_array()) {
      for (Json& e : parsed) out.push_back(MakeItem(std::move(e)));
    } else {
      out.push_back(MakeItem(std::move(parsed)));
    }
    return NodeResult::Main(std::move(out));
  }
};

}  // namespace

std::unique_ptr<NodeType> NewJsonNode() { return std::make_unique<JsonNode>(); }

}  // namespace ndx::engine
