#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/cord.h"
#include "libs/common/check.h"
#include "libs/engine/node_type.h"

namespace ndx::engine {

namespace {
constexpr absl::string_view kErrorItemPayload = "type.ndx.dev/engine.ErrorItem";
}  // namespace

absl::Status WithErrorItem(absl::Status error, const Json& item_json) {
  error.SetPayload(kErrorItemPayload, absl::Cord(item_json.dump()));
  return error;
}

Json ErrorItemJson(const absl::Status& error) {
  if (absl::optional<absl::Cord> payload = error.GetPayload(kErrorItemPayload)) {
    Json item = Json::parse(std::string(*payload), nullptr, /*allow_exceptions=*/false);
    if (!item.is_discarded()) return item;
  }
  Json item = Json::object();
  item["error"] = std::string(error.message());
  item["errorDetails"] = {{"message", std::string(error.message())},
                          {"name", absl::StatusCodeToString(error.code())},
                          {"stack", ""}};
  return item;
}

NodeResult NodeResult::Main(Json items) {
  NodeResult r;
  r.outputs["main"] = std::move(items);
  return r;
}

void NodeRegistry::Register(std::string type, std::unique_ptr<NodeType> node_type) {
  NDX_CHECK(node_type != nullptr);
  const bool inserted = types_.emplace(std::move(type), std::move(node_type)).second;
  NDX_CHECK(inserted);
}

const NodeType* NodeRegistry::Find(absl::string_view type) const {
  auto it = types_.find(type);
  return it == types_.end() ? nullptr : it->second.get();
}

std::vector<std::string> NodeRegistry::Types() const {
  std::vector<std::string> out;
  out.reserve(types_.size());
  for (const auto& [name, unused] : types_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace ndx::engine
