// Templates: fast paths, interpolation, typing, and the JavaScript fallback routing.
#include "libs/engine/expression.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/engine/value_util.h"
#include "tests/testing/status_matchers.h"

namespace ndx::engine {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;

class FakeEnv final : public ExpressionEnv {
 public:
  const Json* NodeItemJson(absl::string_view id_or_name) const override {
    return id_or_name == "Set" || id_or_name == "node-2" ? &node_json_ : nullptr;
  }
  const Json& Execution() const override { return execution_; }
  const Json& Vars() const override { return vars_; }
  const Json& WorkflowInfo() const override { return workflow_; }
  absl::StatusOr<Json> EvaluateJs(const std::string& code, const Json&, int) const override {
    js_calls.push_back(code);
    if (code == "boom(") return absl::InvalidArgumentError("SyntaxError: boom");
    return Json("js:" + code);
  }
  mutable std::vector<std::string> js_calls;

 private:
  Json node_json_ = {{"y", 7}, {"list", {1, 2, 3}}};
  Json execution_ = {{"id", "exec-9"}, {"mode", "manual"}};
  Json vars_ = {{"region", "eu"}};
  Json workflow_ = {{"id", "wf-3"}};
};

Json Eval(const std::string& text, const FakeEnv& env, int index = 0) {
  const Json item = {{"a", {{"b", 2}}}, {"x y", "spaced"},       {"s", "str"},
                     {"n", 1.5},        {"arr", {{{"k", "v"}}}}, {"nul", nullptr}};
  absl::StatusOr<Json> v = CompiledTemplate::Compile(text).Evaluate(item, index, env);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : Json("<error>");
}

TEST(Expression, FastPathsKeepTypesWithoutJavaScript) {
  FakeEnv env;
  EXPECT_EQ(Eval("{{ $json.a.b }}", env), 2);
  EXPECT_EQ(Eval("{{$json.a}}", env), Json({{"b", 2}}));
  EXPECT_EQ(Eval("{{ json.s }}", env), "str");
  EXPECT_EQ(Eval("{{ $json[\"x y\"] }}", env), "spaced");
  EXPECT_EQ(Eval("{{ $json['a']['b'] }}", env), 2);
  EXPECT_EQ(Eval("{{ $json.arr[0].k }}", env), "v");
  EXPECT_EQ(Eval("{{ $json.arr.length }}", env), 1);
  EXPECT_EQ(Eval("{{ $json.s.length }}", env), 3);
  EXPECT_EQ(Eval("{{ $json.nul }}", env), nullptr);
  EXPECT_EQ(Eval("{{ $json.missing.deep }}", env), nullptr);
  EXPECT_EQ(Eval("{{ $node[\"Set\"].json.y }}", env), 7);
  EXPECT_EQ(Eval("{{ $node[\"Set\"].y }}", env), 7);
  EXPECT_EQ(Eval("{{ $node['node-2'].list[2] }}", env), 3);
  EXPECT_EQ(Eval("{{ $node[\"Nope\"].y }}", env), nullptr);
  EXPECT_EQ(Eval("{{ $execution.id }}", env), "exec-9");
  EXPECT_EQ(Eval("{{ $vars.region }}", env), "eu");
  EXPECT_EQ(Eval("{{ $workflow.id }}", env), "wf-3");
  EXPECT_EQ(Eval("{{ $index }}", env, 4), 4);
  EXPECT_EQ(Eval("{{ 42 }}", env), 42);
  EXPECT_EQ(Eval("{{ true }}", env), true);
  EXPECT_EQ(Eval("{{ \"q\" }}", env), "q");
  EXPECT_TRUE(env.js_calls.empty());
  EXPECT_TRUE(CompiledTemplate::Compile("a {{ $json.a.b }} b").fast());
  EXPECT_FALSE(CompiledTemplate::Compile("{{ $json.a.b + 1 }}").fast());
}

TEST(Expression, InterpolationAndPlainText) {
  FakeEnv env;
  EXPECT_EQ(Eval("n={{ $json.n }} a={{ $json.a }} m=[{{ $json.nope }}] z={{$json.nul}}", env),
            "n=1.5 a={\"b\":2} m=[] z=");
  EXPECT_EQ(Eval("{{ hello world }}", env), "hello world");
  EXPECT_EQ(Eval("say {{hi}}!", env), "say hi!");
  EXPECT_EQ(Eval("no expression", env), "no expression");
  EXPECT_EQ(Eval("unterminated {{ $json.s", env), "unterminated {{ $json.s");
  EXPECT_EQ(Eval("{{ $json.s }}{{ $json.s }}", env), "strstr");
  EXPECT_TRUE(env.js_calls.empty());
}

TEST(Expression, EverythingElseGoesToJavaScript) {
  FakeEnv env;
  EXPECT_EQ(Eval("{{ $json.a.b * 2 }}", env), "js:$json.a.b * 2");
  EXPECT_EQ(Eval("{{ {a: {b: 1}}.a }}", env), "js:{a: {b: 1}}.a");
  EXPECT_EQ(Eval("x={{ $json.s.toUpperCase() }}", env), "x=js:$json.s.toUpperCase()");
  EXPECT_EQ(env.js_calls.size(), 3u);
  absl::StatusOr<Json> bad =
      CompiledTemplate::Compile("{{ boom( }}").Evaluate(Json::object(), 0, env);
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument,
                            ::testing::HasSubstr("expression '{{ boom( }}' failed: SyntaxError")));
}

TEST(Expression, ResolveValueStripsEqualsRecursivelyAndUsesCache) {
  FakeEnv env;
  const Json params = {
      {"a", "=plain"}, {"b", {{"c", "={{ $json.k }}"}, {"d", {"=x", "{{ $json.k }}!"}}}}, {"n", 3}};
  auto cache = TemplateCache::Build(params);
  EXPECT_NE(cache->Find("={{ $json.k }}"), nullptr);
  absl::StatusOr<Json> v = ResolveValue(params, cache.get(), {{"k", 5}}, 0, env);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, Json({{"a", "plain"}, {"b", {{"c", 5}, {"d", {"x", "5!"}}}}, {"n", 3}}));
}

// Found by tests/fuzz/expression_fuzzer: interpolating an object whose strings hold invalid UTF-8
// (an HTTP response body kept as text) threw nlohmann's type_error 316 out of Evaluate.
TEST(Expression, InterpolatedValuesWithInvalidUtf8DoNotThrow) {
  FakeEnv env;
  const Json item = {{"body", "caf\xE9"}};
  absl::StatusOr<Json> v = CompiledTemplate::Compile("got {{ $json }}").Evaluate(item, 0, env);
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(*v, "got {\"body\":\"caf\xEF\xBF\xBD\"}");  // U+FFFD
  EXPECT_EQ(ValueToText(Json::array({"\xFF"})), "[\"\xEF\xBF\xBD\"]");
}

}  // namespace
}  // namespace ndx::engine
