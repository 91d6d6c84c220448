#include "libs/engine/js/js_sandbox.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/time_scale.h"

namespace ndx::engine {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// What a stopped run may take beyond its limit on this shared 2-core machine.
const absl::Duration kStopMargin = ::ndx::testing::TimeScaled(absl::Milliseconds(300));

JsLimits Limits(absl::Duration timeout, size_t max_heap_bytes = 64 << 20) {
  JsLimits limits;
  limits.timeout = timeout;
  limits.max_heap_bytes = max_heap_bytes;
  return limits;
}

class JsSandboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { InitJsEngine(); }

  void SetUp() override {
    absl::StatusOr<std::unique_ptr<JsSandbox>> sandbox = JsSandbox::Create(JsLimits{});
    ASSERT_THAT(sandbox, IsOk());
    js_ = *std::move(sandbox);
  }

  absl::StatusOr<JsResult> Run(absl::string_view code, const Json& globals = Json::object(),
                               const JsLimits& limits = JsLimits{},
                               const CancellationToken* cancel = nullptr) {
    return js_->RunFunctionBody(code, globals, limits, cancel);
  }

  absl::StatusOr<Json> Eval(absl::string_view expression, const Json& globals = Json::object(),
                            const JsLimits& limits = JsLimits{}) {
    return js_->EvaluateExpression(expression, globals, limits, nullptr);
  }

  // After a hostile run: the same sandbox (same thread, same context) still works correctly.
  void ExpectHealthy() {
    const Json globals = {{"$json", {{"a", 20}, {"b", 22}}},
                          {"items", Json::array({{{"json", {{"x", 1}}}}})}};
    absl::StatusOr<JsResult> run =
        Run("console.log('ok'); await null; return {sum: $json.a + $json.b, n: items.length, "
            "map: [1, 2].map(x => x * 2), polluted: ({}).polluted === undefined};",
            globals);
    ASSERT_THAT(run, IsOk());
    EXPECT_EQ(run->value, Json::parse(R"({"sum":42,"n":1,"map":[2,4],"polluted":true})"));
    EXPECT_THAT(run->console, ElementsAre("ok"));
    absl::StatusOr<Json> eval = Eval("$json.a + $json.b", globals);
    ASSERT_THAT(eval, IsOk());
    EXPECT_EQ(*eval, Json(42));
  }

  // Runs `code` expecting `code`'s status within `limit` plus the margin.
  void ExpectStopped(absl::string_view code, absl::StatusCode expected, absl::Duration limit,
                     const JsLimits& limits) {
    const absl::Time start = absl::Now();
    absl::StatusOr<JsResult> run = Run(code, Json::object(), limits);
    const absl::Duration elapsed = absl::Now() - start;
    EXPECT_THAT(run, StatusIs(expected)) << code;
    EXPECT_LT(elapsed, limit + kStopMargin) << code;
    ExpectHealthy();
  }

  std::unique_ptr<JsSandbox> js_;
};

// ---------------------------------------------------------------------------------------------
// Values in and out.

TEST_F(JsSandboxTest, ReturnsEveryJsonType) {
  absl::StatusOr<JsResult> run = Run(
      R"(return {s: "x", i: 42, neg: -7, d: 1.5, big: 2 ** 53, tiny: 1e-300, t: true, f: false,
                 z: null, a: [1, "b", {c: null}], o: {nested: {deep: [[]]}}, e: {}};)");
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->value, Json::parse(R"({"s":"x","i":42,"neg":-7,"d":1.5,"big":9007199254740992,
      "tiny":1e-300,"t":true,"f":false,"z":null,"a":[1,"b",{"c":null}],"o":{"nested":{"deep":[[]]}},
      "e":{}})"));
  // Key order is kept.
  EXPECT_EQ(run->value.begin().key(), "s");
  EXPECT_TRUE(run->value["i"].is_number_integer());
  EXPECT_TRUE(run->value["d"].is_number_float());

  const std::vector<std::pair<std::string, Json>> cases = {
      {"return 7;", 7},
      {"return 'héllo 😀';", "héllo 😀"},
      {"return null;", nullptr},
      {"return undefined;", nullptr},
      {"const x = 1;", nullptr},  // no return statement
      {"return () => 1;", nullptr},
      {"return Symbol('s');", nullptr},
      {"return [undefined, () => 1, Symbol('s'), NaN, Infinity, -0];",
       Json::array({nullptr, nullptr, nullptr, nullptr, nullptr, 0})},
      {"return {u: undefined, f() {}, [Symbol('k')]: 1, keep: 1};", {{"keep", 1}}},
      {"return new Date(0);", "1970-01-01T00:00:00.000Z"},
      {"return {toJSON() { return 'custom'; }};", "custom"},
      {"return [new Number(3), new String('s'), new Boolean(false)];",
       Json::array({3, "s", false})},
      {"return new Map([[1, 2]]);", Json::object()},
      {"return Object.assign([1, 2], {extra: 3});", Json::array({1, 2})},
      {"return '\\ud800';", "\xEF\xBF\xBD"},  // a lone surrogate becomes U+FFFD
  };
  for (const auto& [code, expected] : cases) {
    absl::StatusOr<JsResult> result = Run(code);
    ASSERT_THAT(result, IsOk()) << code;
    EXPECT_EQ(result->value, expected) << code;
  }
}

TEST_F(JsSandboxTest, GlobalsAreVariables) {
  const Json globals = {{"$json", {{"price", 21}}},
                        {"$node", {{"Set", {{"json", {{"y", 1}}}}}}},
                        {"$execution", {{"id", "e1"}}},
                        {"$vars", {{"region", "eu"}}},
                        {"items", Json::array({{{"json", {{"n", 1}}}}, {{"json", {{"n", 2}}}}})},
                        {"$input", {{"all", Json::array()}}}};
  absl::StatusOr<JsResult> run =
      Run("return [$json.price * 2, $node['Set'].json.y, $execution.id, $vars.region,"
          " items.map(i => i.json.n), $input.all.length, globalThis.$json.price];",
          globals);
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->value, Json::parse(R"([42, 1, "e1", "eu", [1, 2], 0, 21])"));
}

TEST_F(JsSandboxTest, MutatingInputsAffectsNeitherCallerNorNextRun) {
  const Json globals = {{"$json", {{"a", 1}}}, {"items", Json::array({1})}};
  const Json before = globals;
  absl::StatusOr<JsResult> first = Run(
      "$json.a = 99; $json.added = true; items.push(2); return [$json.a, items.length];", globals);
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->value, Json::parse("[99, 2]"));
  EXPECT_EQ(globals, before);
  absl::StatusOr<JsResult> second = Run("return [$json.a, $json.added, items.length];", globals);
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second->value, Json::parse("[1, null, 1]"));
}

TEST_F(JsSandboxTest, ResultsThatAreNotJson) {
  EXPECT_THAT(Run("const a = {}; a.self = a; return a;"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cycle")));
  EXPECT_THAT(Run("return {n: 10n};"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("BigInt")));
  EXPECT_THAT(Run("let v = []; for (let i = 0; i < 5000; i++) v = [v]; return v;"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nested deeper")));
  EXPECT_THAT(Run("return {toJSON() { throw new Error('no json'); }};"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("Error: no json")));
  // Too large, also when a small value stands for a huge text (the same string 10^4 times).
  JsLimits small;
  small.max_result_bytes = 1000;
  EXPECT_THAT(Run("return 'x'.repeat(2000);", Json::object(), small),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("1000 bytes")));
  const absl::Time start = absl::Now();
  EXPECT_THAT(Run("const s = 'x'.repeat(1e6); return new Array(1e4).fill(s);"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_LT(absl::Now() - start, ::ndx::testing::TimeScaled(absl::Seconds(2)));
  ExpectHealthy();
}

// ---------------------------------------------------------------------------------------------
// async/await, console, errors.

TEST_F(JsSandboxTest, AwaitsPromises) {
  absl::StatusOr<JsResult> run = Run(R"(
    const order = [];
    Promise.resolve().then(() => order.push('microtask'));
    order.push('sync');
    await null;
    const v = await new Promise(resolve => resolve(21));
    const all = await Promise.all([1, 2].map(async x => x * 2));
    return {v: v * 2, all, order};)");
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->value, Json::parse(R"({"v":42,"all":[2,4],"order":["sync","microtask"]})"));

  absl::StatusOr<JsResult> promise = Run("return Promise.resolve([1]);");
  ASSERT_THAT(promise, IsOk());
  EXPECT_EQ(promise->value, Json::parse("[1]"));

  EXPECT_THAT(Run("await null; throw new TypeError('boom after await');"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("TypeError: boom after await (line 1)")));
  EXPECT_THAT(Run("return Promise.reject(new RangeError('rejected'));"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("RangeError: rejected")));
  EXPECT_THAT(Run("await new Promise(() => {}); return 1;"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("never settled")));
  ExpectHealthy();
}

TEST_F(JsSandboxTest, CapturesConsole) {
  absl::StatusOr<JsResult> run = Run(R"(
    console.log('a', 1, {b: 2}, [3], null, undefined, true);
    console.info('i');
    console.warn('w');
    console.error(new Error('e'));
    console.debug(Symbol('s'), () => 1, 5n);
    const c = {}; c.c = c;
    console.log(c);
    return 1;)");
  ASSERT_THAT(run, IsOk());
  EXPECT_THAT(run->console,
              ElementsAre("a 1 {\"b\":2} [3] null undefined true", "[info] i", "[warn] w",
                          "[error] Error: e", "[debug] Symbol(s) [Function] 5", "[object Object]"));

  absl::StatusOr<JsResult> flood = Run("for (let i = 0; i < 20000; i++) console.log(i); return 1;");
  ASSERT_THAT(flood, IsOk());
  ASSERT_THAT(flood->console, SizeIs(10001));
  EXPECT_EQ(flood->console[9999], "9999");
  EXPECT_THAT(flood->console.back(), HasSubstr("truncated"));

  absl::StatusOr<JsResult> big = Run("console.log('x'.repeat(3e6)); console.log('y'); return 1;");
  ASSERT_THAT(big, IsOk());
  size_t bytes = 0;
  for (const std::string& line : big->console) bytes += line.size();
  EXPECT_LE(bytes, (1u << 20) + 200);
}

TEST_F(JsSandboxTest, SyntaxErrorIsInvalidArgumentWithLineAndColumn) {
  EXPECT_THAT(Run("const ok = 1;\nlet x = ;"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("SyntaxError"), HasSubstr("(line 2, column 9)"))));
  EXPECT_THAT(Run("return {;"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1")));
  EXPECT_THAT(Run("if (true) {\n  return 1;\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("(at the end of the code)")));
  EXPECT_THAT(Run("import fs from 'fs';"), StatusIs(absl::StatusCode::kInvalidArgument));
  ExpectHealthy();
}

TEST_F(JsSandboxTest, ThrowIsFailedPreconditionWithMessageAndLine) {
  EXPECT_THAT(
      Run("const a = 1;\n\nthrow new Error('user error');"),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("Error: user error (line 3)")));
  EXPECT_THAT(Run("return undefinedThing;"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("ReferenceError: undefinedThing is not defined")));
  EXPECT_THAT(Run("throw 'plain string';"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("plain string")));
  EXPECT_THAT(
      Run("throw {code: 7, message: 'obj'};"),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(R"({"code":7,"message":"obj"})")));
  EXPECT_THAT(Run("class MyErr extends Error { constructor(m) { super(m); this.name = 'MyErr'; } }"
                  "\nthrow new MyErr('custom');"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("MyErr: custom")));
  // A thrown object whose toJSON throws itself must not loop.
  EXPECT_THAT(Run("const o = {toJSON() { throw o; }}; throw o;"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // A SyntaxError thrown at run time is the code's error, not a syntax error in the code.
  EXPECT_THAT(Run("return JSON.parse('{');"), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                       HasSubstr("SyntaxError: JSON.parse")));
  ExpectHealthy();
}

// ---------------------------------------------------------------------------------------------
// Hostile code: each is stopped within its limit, and the next run on this thread is correct.

TEST_F(JsSandboxTest, InfiniteLoopsAreStoppedAtTheTimeout) {
  const absl::Duration timeout = absl::Milliseconds(200);
  const char* const kLoops[] = {
      "while (true) {}",
      "for (;;) { try { while (true) {} } catch (e) {} }",  // the stop cannot be caught
      "while (true) { try { for (;;) {} } finally { continue; } }",
      "Promise.resolve().then(() => { while (true) {} }); return 1;",  // in a microtask
      "const f = () => Promise.resolve().then(f); f(); return 1;",     // endless .then chain
      "await (async function loop() { for (;;) await null; })();",
      "function f() { try { return f(); } catch (e) { return f(); } } f();",
      "return {get x() { for (;;) {} }};",         // while the result is converted
      "throw {toString() { for (;;) {} }};",       // while the error is described
      "console.log({toJSON() { for (;;) {} }});",  // while console output is formatted
  };
  for (const char* code : kLoops) {
    const absl::Time start = absl::Now();
    absl::StatusOr<JsResult> run = Run(code, Json::object(), Limits(timeout));
    const absl::Duration elapsed = absl::Now() - start;
    EXPECT_THAT(run, StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("200ms"))) << code;
    EXPECT_GE(elapsed, timeout) << code;
    EXPECT_LT(elapsed, timeout + kStopMargin) << code;
    ExpectHealthy();
  }
}

TEST_F(JsSandboxTest, CatastrophicRegexIsStoppedAtTheTimeout) {
  ExpectStopped("return /(a+)+$/.test('a'.repeat(40) + 'b');", absl::StatusCode::kDeadlineExceeded,
                absl::Milliseconds(300), Limits(absl::Milliseconds(300)));
  ExpectStopped("return /(x+x+)+y/.test('x'.repeat(60));", absl::StatusCode::kDeadlineExceeded,
                absl::Milliseconds(300), Limits(absl::Milliseconds(300)));
}

TEST_F(JsSandboxTest, AllocationBombsAreStoppedWithoutKillingTheProcess) {
  const JsLimits limits = Limits(absl::Seconds(20), 64 << 20);
  const char* const kBombs[] = {
      "const a = []; while (true) a.push(new Array(1e5).fill(1));",       // array elements (malloc)
      "const a = []; while (true) a.push('x'.repeat(1e6) + a.length);",   // string characters
      "const a = []; while (true) a.push({x: a.length, y: [1, 2, 3]});",  // GC heap objects
      "const a = []; while (true) a.push(new Float64Array(1e6));",        // array buffers
      "const m = new Map(); for (let i = 0;; i++) m.set(i, 'v' + i);",    // hash tables
      "let s = 'x'; while (true) s += s;",                                // string length overflow
      "const a = []; for (;;) { try { a.push(new Array(1e5).fill(1)); } catch (e) {} }",
  };
  for (const char* code : kBombs) {
    // Far below the 20 s timeout: the memory cap stops them, not the clock.
    ExpectStopped(code, absl::StatusCode::kResourceExhausted, absl::Seconds(6), limits);
  }
}

TEST_F(JsSandboxTest, DeepRecursionIsACleanError) {
  EXPECT_THAT(Run("function f(n) { return f(n + 1) + 1; } return f(0);"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("too much recursion")));
  EXPECT_THAT(Run("const o = {}; o.toString = () => `${o}`; return `${o}`;"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("too much recursion")));
  EXPECT_THAT(Run("return JSON.parse('['.repeat(1e6));"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ExpectHealthy();
}

// The engine's stack quota follows the thread's stack: recursion on a 512 KiB thread is a clean
// error too, not a SIGSEGV (reference/js-engine.md pitfall 6).
TEST(JsSandboxSmallStack, DeepRecursionOnASmallThreadStack) {
  InitJsEngine();
  struct Outcome {
    absl::Status status;
    absl::Status nested;
    Json healthy;
  } outcome;
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, 512 << 10), 0);
  pthread_t thread;
  auto body = [](void* arg) -> void* {
    auto* out = static_cast<Outcome*>(arg);
    absl::StatusOr<std::unique_ptr<JsSandbox>> js = JsSandbox::Create(JsLimits{});
    if (!js.ok()) {
      out->status = js.status();
      return nullptr;
    }
    out->status = (*js)
                      ->RunFunctionBody("function f(n) { return f(n + 1) + 1; } return f(0);",
                                        Json::object(), JsLimits{}, nullptr)
                      .status();
    // Converting a deeply nested result recurses in C++ on the same small stack.
    out->nested =
        (*js)
            ->RunFunctionBody("let v = []; for (let i = 0; i < 990; i++) v = [v]; return v;",
                              Json::object(), JsLimits{}, nullptr)
            .status();
    absl::StatusOr<JsResult> ok =
        (*js)->RunFunctionBody("return 1 + 1;", Json::object(), JsLimits{}, nullptr);
    if (ok.ok()) out->healthy = ok->value;
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attr, body, &outcome), 0);
  ASSERT_EQ(pthread_join(thread, nullptr), 0);
  pthread_attr_destroy(&attr);
  EXPECT_THAT(outcome.status,
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("too much recursion")));
  if (!outcome.nested.ok()) {
    EXPECT_THAT(outcome.nested,
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("too much recursion")));
  }
  EXPECT_EQ(outcome.healthy, Json(2));
}

TEST_F(JsSandboxTest, PrototypePollutionDoesNotReachTheNextRun) {
  ASSERT_THAT(Run(R"(
    Object.prototype.polluted = 1;
    Array.prototype.map = () => 'hacked';
    JSON.parse = () => 'hacked';
    Object.defineProperty(Object.prototype, 'constructor', {get() { throw new Error('x'); }});
    globalThis.leak = 1;
    var leakedVar = 1;
    return 1;)"),
              IsOk());
  absl::StatusOr<JsResult> next =
      Run("return [({}).polluted, [1].map(x => x + 1), JSON.parse('2'), typeof leak,"
          " typeof leakedVar, ({}).constructor === Object];");
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(next->value, Json::parse(R"([null, [2], 2, "undefined", "undefined", true])"));
  ExpectHealthy();
}

TEST_F(JsSandboxTest, ConstructorEscapesReachOnlyThePlainGlobal) {
  absl::StatusOr<JsResult> run = Run(R"(
    const g = this.constructor.constructor('return this')();
    const h = (() => {}).constructor('return globalThis')();
    const probes = ['process', 'require', 'module', 'exports', 'fetch', 'XMLHttpRequest',
      'WebSocket', 'setTimeout', 'setInterval', 'queueMicrotask', 'print', 'read', 'readline',
      'load', 'os', 'quit', 'evaluate', 'Worker', 'importScripts', 'Deno', 'Bun', 'Buffer',
      'SharedArrayBuffer', 'Atomics', 'WebAssembly', 'WeakRef', 'FinalizationRegistry', 'uneval',
      'ReadableStream', 'Debugger', 'ctypes', 'performance'];
    return {
      same: g === globalThis && h === globalThis,
      names: Object.getOwnPropertyNames(g).sort(),
      present: probes.filter(p => p in g || typeof g[p] !== 'undefined'),
    };)",
                                     Json{{"$json", Json::object()}});
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->value["same"], true);
  EXPECT_EQ(run->value["present"], Json::array());
  // Exactly the ECMAScript built-ins, `console` and the caller's globals.
  const std::set<std::string> allowed = {"AggregateError",
                                         "Array",
                                         "ArrayBuffer",
                                         "BigInt",
                                         "BigInt64Array",
                                         "BigUint64Array",
                                         "Boolean",
                                         "DataView",
                                         "Date",
                                         "Error",
                                         "EvalError",
                                         "Float32Array",
                                         "Float64Array",
                                         "Function",
                                         "Infinity",
                                         "Int16Array",
                                         "Int32Array",
                                         "Int8Array",
                                         "InternalError",
                                         "Intl",
                                         "JSON",
                                         "Map",
                                         "Math",
                                         "NaN",
                                         "Number",
                                         "Object",
                                         "Promise",
                                         "Proxy",
                                         "RangeError",
                                         "ReferenceError",
                                         "Reflect",
                                         "RegExp",
                                         "Set",
                                         "String",
                                         "Symbol",
                                         "SyntaxError",
                                         "TypeError",
                                         "URIError",
                                         "Uint16Array",
                                         "Uint32Array",
                                         "Uint8Array",
                                         "Uint8ClampedArray",
                                         "WeakMap",
                                         "WeakSet",
                                         "decodeURI",
                                         "decodeURIComponent",
                                         "encodeURI",
                                         "encodeURIComponent",
                                         "escape",
                                         "eval",
                                         "globalThis",
                                         "isFinite",
                                         "isNaN",
                                         "parseFloat",
                                         "parseInt",
                                         "undefined",
                                         "unescape",
                                         "console",
                                         "$json"};
  for (const Json& name : run->value["names"]) {
    EXPECT_TRUE(allowed.count(name.get<std::string>())) << "unexpected global " << name;
  }
  // No module loading of any kind.
  EXPECT_THAT(Run("return require('fs');"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("require")));
  EXPECT_THAT(Run("return await import('fs');"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Run("return Function('return process')();"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("process")));
  ExpectHealthy();
}

TEST_F(JsSandboxTest, CancellationFromAnotherThreadStopsTheLoopWithin100ms) {
  CancellationToken token;
  std::atomic<int64_t> cancelled_at_ns{0};
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(100));  // let the loop start
    cancelled_at_ns.store(absl::GetCurrentTimeNanos());
    token.Cancel(absl::CancelledError("execution cancelled by user"));
  });
  absl::StatusOr<JsResult> run =
      Run("let i = 0; while (true) { i++; }", Json::object(), Limits(absl::Seconds(30)), &token);
  const int64_t returned_at_ns = absl::GetCurrentTimeNanos();
  canceller.join();
  EXPECT_THAT(run, StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled by user")));
  EXPECT_LT(absl::Nanoseconds(returned_at_ns - cancelled_at_ns.load()), absl::Milliseconds(100));

  // Already cancelled: nothing runs.
  EXPECT_THAT(Run("return 1;", Json::object(), JsLimits{}, &token),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(js_->EvaluateExpression("1", Json::object(), JsLimits{}, &token),
              StatusIs(absl::StatusCode::kCancelled));
  ExpectHealthy();
}

TEST_F(JsSandboxTest, CancellationStopsAnExpression) {
  CancellationToken token;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(100));
    token.Cancel(absl::CancelledError("lease lost"));
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<Json> eval = js_->EvaluateExpression("(() => { for (;;) {} })()", Json::object(),
                                                      Limits(absl::Seconds(30)), &token);
  canceller.join();
  EXPECT_THAT(eval, StatusIs(absl::StatusCode::kCancelled, HasSubstr("lease lost")));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(100) + kStopMargin);
  ExpectHealthy();
}

TEST(JsSandboxThreads, TwoThreadsRunTheirOwnSandboxesConcurrently) {
  InitJsEngine();
  constexpr int kThreads = 2;
  std::vector<std::string> failures[kThreads];
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &failures] {
      std::vector<std::string>& fail = failures[t];
      absl::StatusOr<std::unique_ptr<JsSandbox>> js = JsSandbox::Create(JsLimits{});
      if (!js.ok()) {
        fail.push_back(js.status().ToString());
        return;
      }
      for (int i = 0; i < 200; ++i) {
        const Json globals = {{"$json", {{"t", t}, {"i", i}}}};
        absl::StatusOr<JsResult> run = (*js)->RunFunctionBody(
            "await null; return $json.t * 1000 + $json.i;", globals, JsLimits{}, nullptr);
        if (!run.ok() || run->value != Json(t * 1000 + i)) {
          fail.push_back(absl::StrCat("run ", i, ": ", run.status().ToString()));
        }
        absl::StatusOr<Json> eval =
            (*js)->EvaluateExpression("$json.t * 1000 + $json.i", globals, JsLimits{}, nullptr);
        if (!eval.ok() || *eval != Json(t * 1000 + i)) {
          fail.push_back(absl::StrCat("eval ", i, ": ", eval.status().ToString()));
        }
        if (i == 100) {  // each thread's own timeout, through its own watchdog
          absl::StatusOr<JsResult> loop = (*js)->RunFunctionBody(
              "for (;;) {}", Json::object(), Limits(absl::Milliseconds(100)), nullptr);
          if (!absl::IsDeadlineExceeded(loop.status())) {
            fail.push_back(absl::StrCat("loop: ", loop.status().ToString()));
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_THAT(failures[t], ::testing::IsEmpty()) << t;
}

// ---------------------------------------------------------------------------------------------
// Expressions.

TEST_F(JsSandboxTest, EvaluatesExpressions) {
  const Json globals = {
      {"$json", {{"a", 1}, {"b", 2}, {"items", Json::array({{{"x", 1}}, {{"x", 2}}})}}},
      {"$node", {{"Set", {{"json", {{"y", "set"}}}}}}},
      {"$vars", {{"v", "var"}}}};
  const std::vector<std::pair<std::string, Json>> cases = {
      {"$json.a + $json.b", 3},
      {"$json.items.map(i => i.x).join(',')", "1,2"},
      {"new Date(0).toISOString()", "1970-01-01T00:00:00.000Z"},
      {"Math.max(1, 2)", 2},
      {"JSON.stringify($json)", R"({"a":1,"b":2,"items":[{"x":1},{"x":2}]})"},
      {"$node['Set'].json.y + '/' + $vars.v", "set/var"},
      {"`${$json.a}-${$json.b}`", "1-2"},
      {"$json.missing?.deep ?? 'default'", "default"},
      {"[...$json.items].length", 2},
      {"{a: 1}", Json{{"a", 1}}},
      {"(() => { const o = {}; o.toString = () => 'mine'; return String(o); })()", "mine"},
      {"Object.assign({}, {constructor: 1, hasOwnProperty: 2}).constructor", 1},
      {"(() => { class E extends Error { constructor() { super('m'); this.name = 'E'; } }"
       " return String(new E()); })()",
       "E: m"},
      {"'abc'.replace(/b/, 'x') + RegExp.$1", "axc"},
      {"Promise.resolve(5)", 5},
      {"undefined", nullptr},
  };
  for (const auto& [expression, expected] : cases) {
    absl::StatusOr<Json> value = Eval(expression, globals);
    ASSERT_THAT(value, IsOk()) << expression;
    EXPECT_EQ(*value, expected) << expression;
  }
  EXPECT_THAT(Eval("$json.a +", globals), StatusIs(absl::StatusCode::kInvalidArgument,
                                                   HasSubstr("(at the end of the expression)")));
  EXPECT_THAT(Eval("$json.a + * 2", globals),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("SyntaxError"), HasSubstr("(line 1, column 11)"))));
  EXPECT_THAT(Eval("[1,\n 2 3]", globals),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("(line 2, column 4)")));
  EXPECT_THAT(Eval("$json.a.b.c", globals),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("(line 1)")));
  EXPECT_THAT(Eval("$json.a.b.c", globals),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("TypeError")));
  EXPECT_THAT(Eval("$nope", globals),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("$nope is not defined")));
  // The text is a function body: it cannot escape into the script's global scope.
  EXPECT_THAT(Eval("1)); let escaped = 1; ((1", globals),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Eval("eval('1')", globals),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("eval is not available")));
}

TEST_F(JsSandboxTest, ExpressionsCannotLeaveStateForTheNextOne) {
  const char* const kAttempts[] = {
      "Object.prototype.polluted = 1",
      "Array.prototype.map = () => 'hacked'",
      "(Array.prototype.push = null, 1)",
      "JSON.stringify = () => 'hacked'",
      "globalThis.leak = 1",
      "(() => { leak2 = 1; })()",
      "Object.defineProperty(Object.prototype, 'x', {value: 1})",
      "Object.getPrototypeOf(function* () {}).leak = 1",
      "Object.getPrototypeOf([][Symbol.iterator]()).leak = 1",
      "(function () { arguments.callee.leak = 1; })()",
      "(function f() { return f.caller; })().leak = 1",
      "Function('leak3 = 1')()",
      "'xyz'.match(/(y)/) && RegExp.$1",
      "Object.setPrototypeOf(Object.prototype, {leak: 1})",
  };
  for (const char* attempt : kAttempts) {
    (void)Eval(attempt);  // may throw (frozen in strict code) or silently do nothing
  }
  absl::StatusOr<Json> after = Eval(
      "[({}).polluted, [1].map(x => x + 1), JSON.stringify(1), typeof leak, typeof leak2,"
      " typeof leak3, ({}).x, Object.getPrototypeOf(function* () {}).leak,"
      " Object.getPrototypeOf([][Symbol.iterator]()).leak, RegExp.$1, ({}).leak]");
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(*after, Json::parse(R"([null, [2], "1", "undefined", "undefined", "undefined", null,
                                    null, null, "", null])"));
  ExpectHealthy();
}

TEST_F(JsSandboxTest, HostileExpressionsAreStopped) {
  const absl::Time start = absl::Now();
  EXPECT_THAT(
      Eval("(() => { while (true) {} })()", Json::object(), Limits(absl::Milliseconds(150))),
      StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(150) + kStopMargin);
  EXPECT_THAT(
      Eval("/(a+)+$/.test('a'.repeat(40) + 'b')", Json::object(), Limits(absl::Milliseconds(150))),
      StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(Eval("(() => { const a = []; for (;;) a.push(new Array(1e5).fill(1)); })()",
                   Json::object(), Limits(absl::Seconds(20))),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(Eval("(function f() { return f() + 1; })()"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("too much recursion")));
  absl::StatusOr<Json> global = Eval(
      "(() => { const g = this.constructor.constructor('return this')();"
      " return ['process', 'require', 'fetch', 'setTimeout'].filter(n => n in g); })()");
  ASSERT_THAT(global, IsOk());
  EXPECT_EQ(*global, Json::array());
  ExpectHealthy();
}

TEST_F(JsSandboxTest, GlobalsMustBeAnObject) {
  EXPECT_THAT(Run("return 1;", Json::array()), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Eval("1", Json(3)), StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<JsResult> null_globals = Run("return 1;", Json(nullptr));
  ASSERT_THAT(null_globals, IsOk());
  EXPECT_EQ(null_globals->value, Json(1));
}

// ---------------------------------------------------------------------------------------------
// Throughput (printed, and only loosely bounded: the machine is shared).

TEST_F(JsSandboxTest, Throughput) {
  const Json globals = {{"$json", {{"price", 21}, {"name", "item"}}}};
  auto measure = [](int iterations, const std::function<bool()>& once) {
    const absl::Time start = absl::Now();
    for (int i = 0; i < iterations; ++i) {
      if (!once()) return -1.0;
    }
    return iterations / absl::ToDoubleSeconds(absl::Now() - start);
  };
  const double evals = measure(20000, [&] {
    absl::StatusOr<Json> v = Eval("$json.price * 2", globals);
    return v.ok() && *v == Json(42);
  });
  const double template_evals = measure(20000, [&] {
    absl::StatusOr<Json> v = Eval("$json.name.toUpperCase() + ' costs ' + $json.price", globals);
    return v.ok();
  });
  const double runs = measure(2000, [&] {
    absl::StatusOr<JsResult> r = Run("return [{json: {double: $json.price * 2}}];", globals);
    return r.ok();
  });
  Json items = Json::array();
  for (int i = 0; i < 1000; ++i) {
    items.push_back(
        {{"json", {{"id", i}, {"name", absl::StrCat("item ", i)}, {"price", i * 1.5}}}});
  }
  const Json big_globals = {{"items", items}};
  const double item_runs = measure(50, [&] {
    absl::StatusOr<JsResult> r =
        Run("return items.map(i => ({json: {...i.json, total: i.json.price * 2}}));", big_globals);
    return r.ok() && r->value.size() == 1000;
  });
  std::printf(
      "[ throughput ] expression `$json.price * 2`: %.0f evals/s; string expression: %.0f "
      "evals/s; Code node (fresh global): %.0f runs/s; Code node items.map over 1000 items: "
      "%.0f runs/s\n",
      evals, template_evals, runs, item_runs);
  RecordProperty("expression_evals_per_second", static_cast<int>(evals));
  RecordProperty("code_runs_per_second", static_cast<int>(runs));
  EXPECT_GT(evals, 1000);
  EXPECT_GT(runs, 100);
  EXPECT_GT(item_runs, 5);
}

}  // namespace
}  // namespace ndx::engine
