// merge: combines the items of its input connections (one sub-array per connection, in
// connection array order; pruned connections give empty sub-arrays). mode:
//   append (default)  all items, input by input;
//   mergeByPosition   item i of every input merged into one object (Object.assign in input
//                     order: later inputs overwrite); empty merged objects are dropped;
//   mergeByKey        items with the same value at field path `mergeByKey` (default "id")
//                     merged ({...first, ...later}), in first-seen key order; items without the
//                     key are dropped;
//   keepFirst / keepLast  the items of the first / last connection.
// `waitForAll` is accepted and ignored: the engine always waits for every reachable input.
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

void Assign(Json& target, const Json& source) {
  if (!source.is_object()) return;
  for (auto it = source.begin(); it != source.end(); ++it) target[it.key()] = it.value();
}

class MergeNode final : public NodeType {
 public:
  absl::Status Validate(const Json& p) const override {
    return nodes::CheckEnum(nodes::Member(p, "mode"), "mode",
                            {"append", "mergeByPosition", "mergeByKey", "keepFirst", "keepLast"});
  }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    absl::StatusOr<Json> mode_param = ctx.Param("mode", 0);
    if (!mode_param.ok()) return mode_param.status();
    const std::string mode = mode_param->is_string() ? mode_param->get<std::string>() : "append";
    const Json& inputs = ctx.input_per_connection();
    Json out = Json::array();
    if (mode == "append") {
      for (const Json& group : inputs) {
        for (const Json& item : group) out.push_back(MakeItem(ItemJson(item)));
      }
    } else if (mode == "mergeByPosition") {
      size_t max = 0;
      for (const Json& group : inputs) max = std::max(max, group.size());
      for (size_t i = 0; i < max; ++i) {
        Json merged = Json::object();
        for (const Json& group : inputs) {
          if (i < group.size()) Assign(merged, ItemJson(group[i]));
        }
        if (!merged.empty()) out.push_back(MakeItem(std::move(merged)));
      }
    } else if (mode == "mergeByKey") {
      absl::StatusOr<Json> key_param = ctx.Param("mergeByKey", 0);
      if (!key_param.ok()) return key_param.status();
      const std::string key = key_param->is_null() ? "id" : ValueToText(*key_param);
      if (key.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(ctx.node().Label(), ": Merge key is required for 'Merge by Key' mode"));
      }
      std::vector<Json> merged;
      absl::flat_hash_map<std::string, size_t> index;
      for (const Json& group : inputs) {
        for (const Json& item : group) {
          const Json& json = ItemJson(item);
          const Json* k = GetPath(json, key);
          if (k == nullptr) continue;
          auto [it, inserted] = index.try_emplace(k->dump(), merged.size());
          if (inserted) {
            merged.push_back(json.is_object() ? json : Json::object());
          } else {
            Assign(merged[it->second], json);
          }
        }
      }
      for (Json& m : merged) out.push_back(MakeItem(std::move(m)));
    } else if (mode == "keepFirst" || mode == "keepLast") {
      if (!inputs.empty()) {
        for (const Json& item : mode == "keepFirst" ? inputs.front() : inputs.back()) {
          out.push_back(MakeItem(ItemJson(item)));
        }
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(ctx.node().Label(), ": Unknown merge mode: ", mode));
    }
    return NodeResult::Main(std::move(out));
  }
};

}  // namespace

std::unique_ptr<NodeType> NewMergeNode() { return std::make_unique<MergeNode>(); }

}  // namespace ndx::engine
