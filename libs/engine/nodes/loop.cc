// loop: iterates over batches; the engine runs it once per batch (engine.h "Loops").
// Outputs `loop` and `done`. Parameters (resolved against the first input item):
//   loopOver: items (default; the input items) | field (`fieldName`: path to an array in the
//             first item) | repeat (`repeatTimes`, 1..100000, default 10: items
//             {iteration: i+1, index: i, total: N})
//   batchSize: items per batch (default 1; items and field modes).
// Run k (NodeContext::loop_iteration) outputs batch k on `loop`, each item's json merged with
// {$index, $iteration, $total, $isFirst, $isLast, $batchIndex, $batchSize} (a non-object
// element becomes {value: element, ...}); after the last batch it outputs
// {completed: true, totalIterations: <number of elements>} on `done`. The run's checkpoint state
// is {iteration, batches, totalItems}. The batches are recomputed from the (checkpointed) input
// on every run, so a resumed Loop needs no hidden memory.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

class LoopNode final : public NodeType {
 public:
  bool is_loop() const override { return true; }
  std::vector<std::string> Outputs(const Json&) const override { return {"loop", "done"}; }
  std::string FallbackOutput(const std::vector<std::string>&) const override { return "done"; }

  absl::Status Validate(const Json& p) const override {
    absl::Status st =
        nodes::CheckEnum(nodes::Member(p, "loopOver"), "loopOver", {"items", "field", "repeat"});
    if (!st.ok()) return st;
    st = nodes::CheckNumber(nodes::Member(p, "batchSize"), "batchSize", 1, 1e9);
    if (!st.ok()) return st;
    return nodes::CheckNumber(nodes::Member(p, "repeatTimes"), "repeatTimes", 1, 100000);
  }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    auto fail = [&](absl::string_view msg) {
      return absl::InvalidArgumentError(absl::StrCat(ctx.node().Label(), ": ", msg));
    };
    absl::StatusOr<Json> over_param = ctx.Param("loopOver", 0);
    if (!over_param.ok()) return over_param.status();
    const std::string over = over_param->is_string() ? over_param->get<std::string>() : "items";
    absl::StatusOr<Json> bs_param = ctx.Param("batchSize", 0);
    if (!bs_param.ok()) return bs_param.status();
    absl::StatusOr<double> bs = NumberParam(*bs_param, "batchSize", 1);
    if (!bs.ok()) return fail(bs.status().message());
    if (*bs < 1) return fail("Batch size must be at least 1");

    Json elements = Json::array();
    const Json& items = ctx.items();
    if (over == "repeat") {
      absl::StatusOr<Json> times_param = ctx.Param("repeatTimes", 0);
      if (!times_param.ok()) return times_param.status();
      absl::StatusOr<double> times = NumberParam(*times_param, "repeatTimes", 10);
      if (!times.ok()) return fail(times.status().message());
      if (*times <= 0) return fail("Number of iterations must be greater than 0");
      if (*times > 100000) return fail("Number of iterations cannot exceed 100,000 for safety");
      const int n = static_cast<int>(*times);
      for (int i = 0; i < n; ++i) {
        elements.push_back({{"iteration", i + 1}, {"index", i}, {"total", n}});
      }
    } else if (over == "items") {
      for (const Json& item : items) elements.push_back(ItemJson(item));
    } else if (over == "field") {
      absl::StatusOr<Json> field = ctx.Param("fieldName", 0);
      if (!field.ok()) return field.status();
      const std::string path = ValueToText(*field);
      if (path.empty()) return fail("Field name is required when looping over a field");
      if (items.empty()) return fail("No input items to extract field from");
      const Json* value = GetPath(ItemJson(items[0]), path);
      if (value == nullptr || !value->is_array()) {
        return fail(absl::StrCat("Field '", path, "' is not an array"));
      }
      elements = *value;
    } else {
      return fail(absl::StrCat("unknown loopOver \"", over, "\""));
    }

    const size_t total = elements.size();
    const size_t batch_size = static_cast<size_t>(*bs);
    const size_t batches = (total + batch_size - 1) / batch_size;
    const int k = ctx.loop_iteration() < 0 ? 0 : ctx.loop_iteration();
    NodeResult result;
    result.state = {{"iteration", k}, {"batches", batches}, {"totalItems", total}};
    Json loop = Json::array();
    Json done = Json::array();
    if (static_cast<size_t>(k) < batches) {
      const size_t begin = k * batch_size;
      const size_t end = std::min(total, begin + batch_size);
      for (size_t i = begin; i < end; ++i) {
        Json json = elements[i].is_object() ? elements[i] : Json{{"value", elements[i]}};
        json["$index"] = i;
        json["$iteration"] = i + 1;
        json["$total"] = total;
        json["$isFirst"] = i == 0;
        json["$isLast"] = i + 1 == total;
        json["$batchIndex"] = i - begin;
        json["$batchSize"] = end - begin;
        loop.push_back(MakeItem(std::move(json)));
      }
    } else if (static_cast<size_t>(k) == batches) {
      done.push_back(MakeItem({{"completed", true}, {"totalIterations", total}}));
    } else {
      return absl::InternalError(absl::StrCat(ctx.node().Label(), ": iteration ", k,
                                              " is past the last batch (", batches, ")"));
    }
    result.outputs["loop"] = std::move(loop);
    result.outputs["done"] = std::move(done);
    return result;
  }
};

}  // namespace

std::unique_ptr<NodeType> NewLoopNode() { return std::make_unique<LoopNode>(); }

}  // namespace ndx::engine
