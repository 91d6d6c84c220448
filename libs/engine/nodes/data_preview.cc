// data-preview: passes its input items through unchanged and adds a preview to the output's
// metadata: metadata.preview = {format (previewFormat: json | text, default json), itemCount,
// preview (the item jsons as indented JSON, or one line per item for text, cut at maxLines,
// default 100), truncated, lineCount}. UI-only parameters (history, expansion state) are ignored.
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

class DataPreviewNode final : public NodeType {
 public:
  absl::Status Validate(const Json& p) const override {
    absl::Status st = nodes::CheckEnum(nodes::Member(p, "previewFormat"), "previewFormat",
                                       {"json", "text", "table"});
    if (!st.ok()) return st;
    return nodes::CheckNumber(nodes::Member(p, "maxLines"), "maxLines", 1, 1e6);
  }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    absl::StatusOr<Json> format_param = ctx.Param("previewFormat", 0);
    if (!format_param.ok()) return format_param.status();
    absl::StatusOr<Json> max_param = ctx.Param("maxLines", 0);
    if (!max_param.ok()) return max_param.status();
    absl::StatusOr<double> max_lines = NumberParam(*max_param, "maxLines", 100);
    if (!max_lines.ok()) return max_lines.status();
    const std::string format =
        format_param->is_string() ? format_param->get<std::string>() : "json";
    const Json& items = ctx.items();
    std::string text;
    if (format == "text") {
      std::vector<std::string> lines;
      for (const Json& item : items) lines.push_back(ValueToText(ItemJson(item)));
      text = absl::StrJoin(lines, "\n");
    } else {
      Json jsons = Json::array();
      for (const Json& item : items) jsons.push_back(ItemJson(item));
      text = jsons.dump(2);
    }
    std::vector<std::string> lines = absl::StrSplit(text, '\n');
    const size_t limit = static_cast<size_t>(*max_lines);
    const bool truncated = lines.size() > limit;
    const size_t line_count = lines.size();
    if (truncated) lines.resize(limit);
    NodeResult result = NodeResult::Main(items);
    result.metadata["preview"] = {{"format", format},
                                  {"itemCount", items.size()},
                                  {"preview", absl::StrJoin(lines, "\n")},
                                  {"truncated", truncated},
                                  {"lineCount", line_count}};
    return result;
  }
};

}  // namespace

std::unique_ptr<NodeType> NewDataPreviewNode() { return std::make_unique<DataPreviewNode>(); }

}  // namespace ndx::engine
