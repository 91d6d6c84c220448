// image-preview: passes its input items through unchanged and adds the image to show to the
// output's metadata: metadata.preview = {imageUrl, altText, itemCount}, `imageUrl` and `altText`
// resolved against the first item (e.g. "{{ $json.avatar }}").
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

class ImagePreviewNode final : public NodeType {
 public:
  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    absl::StatusOr<Json> url = ctx.Param("imageUrl", 0);
    if (!url.ok()) return url.status();
    absl::StatusOr<Json> alt = ctx.Param("altText", 0);
    if (!alt.ok()) return alt.status();
    NodeResult result = NodeResult::Main(ctx.items());
    result.metadata["preview"] = {{"imageUrl", ValueToText(*url)},
                                  {"altText", ValueToText(*alt)},
                                  {"itemCount", ctx.items().size()}};
    return result;
  }
};

}  // namespace

std::unique_ptr<NodeType> NewImagePreviewNode() { return std::make_unique<ImagePreviewNode>(); }

}  // namespace ndx::engine
