// Fuzz target: the `{{ ... }}` template parser and its JavaScript-free fast path
// (libs/engine/expression.h). The bytes are one parameter string, compiled and evaluated against a
// fixed item and environment; parts that need JavaScript get a canned value (SpiderMonkey is not
// started: the target checks the parser, not the JS engine). The same string is also resolved as
// a parameter value (leading "=", TemplateCache) and, when it is JSON, as a whole parameters
// object.
#include <cstddef>
#include <cstdint>
#include <string>

#include "libs/engine/expression.h"

namespace {

using ndx::engine::Json;

class FakeEnv final : public ndx::engine::ExpressionEnv {
 public:
  const Json* NodeItemJson(absl::string_view id_or_name) const override {
    return id_or_name == "Set" || id_or_name == "n1" ? &node_ : nullptr;
  }
  const Json& Execution() const override { return execution_; }
  const Json& Vars() const override { return vars_; }
  const Json& WorkflowInfo() const override { return workflow_; }
  absl::StatusOr<Json> EvaluateJs(const std::string& code, const Json& item_json,
                                  int item_index) const override {
    if (code.size() % 7 == 3) return absl::InvalidArgumentError("SyntaxError: fuzz");
    return Json{{"js", code}};
  }

 private:
  Json node_ = Json::parse(R"({"y": 7, "json": {"z": [1, "two", {"t": null}]}, "s": "héllo"})");
  Json execution_ = {{"id", "exec-1"}, {"mode", "manual"}};
  Json vars_ = {{"region", "eu"}, {"list", {1, 2, 3}}};
  Json workflow_ = {{"id", "wf-1"}};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const FakeEnv* env = new FakeEnv();
  static const Json* item = new Json(Json::parse(
      R"({"a": {"b": 2}, "x y": "spaced", "s": "str", "n": 1.5, "arr": [{"k": "v"}, 2],
          "nul": null, "t": true, "u": "ünï", "length": 3})"));
  const std::string text(reinterpret_cast<const char*>(data), size);

  const ndx::engine::CompiledTemplate t = ndx::engine::CompiledTemplate::Compile(text);
  (void)t.fast();
  (void)t.Evaluate(*item, static_cast<int>(size % 3) - 1, *env);

  const Json value(text);
  std::shared_ptr<const ndx::engine::TemplateCache> cache =
      ndx::engine::TemplateCache::Build(Json{{"p", value}});
  (void)ndx::engine::ResolveValue(value, cache.get(), *item, 0, *env);
  (void)ndx::engine::ResolveValue(value, nullptr, *item, 1, *env);

  const Json parameters = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parameters.is_discarded()) {
    cache = ndx::engine::TemplateCache::Build(parameters);
    (void)ndx::engine::ResolveValue(parameters, cache.get(), *item, 0, *env);
  }
  return 0;
}
