// split: divides the input items. mode:
//   batch (default)  items {batch: [jsons], batchSize: n}, `batchSize` (default 10) per batch;
//   byField          groups by the value at field path `splitField` (default "type");
//   evenOdd          even positions / odd positions;
//   percentage       the first floor(n * percentage / 100) items / the rest (default 50);
//   parts            `parts` (default 2) parts of ceil(n / parts) items.
// As in NodeDrop, the non-batch modes output only their FIRST part (documented compatibility).
// Parameters are resolved against the first input item; all input connections are used.
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

class SplitNode final : public NodeType {
 public:
  absl::Status Validate(const Json& p) const override {
    absl::Status st = nodes::CheckEnum(nodes::Member(p, "mode"), "mode",
                                       {"batch", "byField", "evenOdd", "percentage", "parts"});
    if (!st.ok()) return st;
    st = nodes::CheckNumber(nodes::Member(p, "batchSize"), "batchSize", 1, 1e9);
    if (!st.ok()) return st;
    st = nodes::CheckNumber(nodes::Member(p, "percentage"), "percentage", 0, 100);
    if (!st.ok()) return st;
    return nodes::CheckNumber(nodes::Member(p, "parts"), "parts", 1, 1e9);
  }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    const Json& items = ctx.items();
    absl::StatusOr<Json> mode_param = ctx.Param("mode", 0);
    if (!mode_param.ok()) return mode_param.status();
    const std::string mode = mode_param->is_string() ? mode_param->get<std::string>() : "batch";
    auto fail = [&](absl::string_view msg) {
      return absl::InvalidArgumentError(absl::StrCat(ctx.node().Label(), ": ", msg));
    };
    auto number = [&](const char* name, double fallback) -> absl::StatusOr<double> {
      absl::StatusOr<Json> v = ctx.Param(name, 0);
      if (!v.ok()) return v.status();
      absl::StatusOr<double> n = NumberParam(*v, name, fallback);
      if (!n.ok()) return fail(n.status().message());
      return n;
    };
    Json out = Json::array();
    if (items.empty()) return NodeResult::Main(std::move(out));
    const size_t n = items.size();
    if (mode == "batch") {
      absl::StatusOr<double> size = number("batchSize", 10);
      if (!size.ok()) return size.status();
      if (*size <= 0) return fail("Batch size must be greater than 0");
      const size_t bs = static_cast<size_t>(*size);
      for (size_t i = 0; i < n; i += bs) {
        Json batch = Json::array();
        for (size_t j = i; j < std::min(n, i + bs); ++j) batch.push_back(ItemJson(items[j]));
        const size_t len = batch.size();
        out.push_back(MakeItem({{"batch", std::move(batch)}, {"batchSize", len}}));
      }
    } else if (mode == "byField") {
      absl::StatusOr<Json> field = ctx.Param("splitField", 0);
      if (!field.ok()) return field.status();
      const std::string path = field->is_null() ? "type" : ValueToText(*field);
      if (path.empty()) return fail("Field name is required for 'By Field Value' mode");
      // The first group is the one of the first item's value.
      const Json* first = GetPath(ItemJson(items[0]), path);
      const std::string first_key = first != nullptr ? first->dump() : "undefined";
      for (const Json& item : items) {
        const Json* v = GetPath(ItemJson(item), path);
        if ((v != nullptr ? v->dump() : "undefined") == first_key) {
          out.push_back(MakeItem(ItemJson(item)));
        }
      }
    } else if (mode == "evenOdd") {
      for (size_t i = 0; i < n; i += 2) out.push_back(MakeItem(ItemJson(items[i])));
    } else if (mode == "percentage") {
      absl::StatusOr<double> pct = number("percentage", 50);
      if (!pct.ok()) return pct.status();
      if (*pct < 0 || *pct > 100) return fail("Percentage must be between 0 and 100");
      const size_t k = static_cast<size_t>(std::floor(n * *pct / 100));
      for (size_t i = 0; i < k; ++i) out.push_back(MakeItem(ItemJson(items[i])));
    } else if (mode == "parts") {
      absl::StatusOr<double> parts = number("parts", 2);
      if (!parts.ok()) return parts.status();
      if (*parts <= 0) return fail("Number of parts must be greater than 0");
      const size_t per = static_cast<size_t>(std::ceil(n / std::floor(*parts)));
      for (size_t i = 0; i < std::min(n, per); ++i) out.push_back(MakeItem(ItemJson(items[i])));
    } else {
      return fail(absl::StrCat("Unknown split mode: ", mode));
    }
    return NodeResult::Main(std::move(out));
  }
};

}  // namespace

std::unique_ptr<NodeType> NewSplitNode() { return std::make_unique<SplitNode>(); }

}  // namespace ndx::engine
