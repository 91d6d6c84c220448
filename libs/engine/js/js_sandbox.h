// File: js_sandbox.h
//
// JsSandbox: runs user JavaScript (Code nodes and non-trivial `{{ }}` expressions) in SpiderMonkey
// 102 (reference/js-engine.md) with no I/O of any kind, a wall-clock timeout, a memory cap and
// cancellation. One sandbox per thread (a SpiderMonkey context belongs to one thread); every run
// gets a fresh global, so nothing leaks from one run into the next. Values cross the boundary as
// JSON (nlohmann::ordered_json), so the sandbox never hands out engine objects.
//
//   InitJsEngine();                                  // once, in main(), before any thread starts
//   NDX_ASSIGN_OR_RETURN(auto js, JsSandbox::Create(JsLimits{}));
//   Json globals = {{"$json", {{"a", 2}}}, {"items", Json::array()}};
//   NDX_ASSIGN_OR_RETURN(JsResult r, js->RunFunctionBody("return [{json: {b: $json.a * 2}}];",
//                                                        globals, JsLimits{}, &token));
//   // r.value == [{"json": {"b": 4}}]; r.console holds console.log lines
//
// Errors (codes per engine/errors.h):
//   INVALID_ARGUMENT    syntax error (message has line and column, e.g. "SyntaxError: expected
//                       expression, got ';' (line 2, column 9)"); the returned value is not JSON
//                       (a cycle, a BigInt, nested deeper than 1000 levels); `globals` is not an
//                       object or could not be loaded
//   FAILED_PRECONDITION the code threw or its Promise rejected (message: the thrown value, with
//                       the line if known, e.g. "Error: boom (line 3)"), including "InternalError:
//                       too much recursion"; or its Promise never settled (there are no timers)
//   DEADLINE_EXCEEDED   the wall-clock limit passed (infinite loops, catastrophic regexes); the
//                       code cannot catch it
//   RESOURCE_EXHAUSTED  the heap cap was hit (allocation bombs), a string or array outgrew the
//                       engine's limits, or the result is larger than max_result_bytes
//   CANCELLED           the token was cancelled before or while the code ran (stops within a few
//                       milliseconds, from any thread)
//   INTERNAL            the engine itself failed (the sandbox is then recreated on next use)
// A failed run leaves the sandbox usable for the next run on the same thread.
//
// What the code sees: the ECMAScript built-ins (Object ... Intl, eval, Function), `console`
// (log/info/warn/error/debug, captured into JsResult::console, at most 1 MiB or 10000 lines per
// run) and the keys of `globals`. Nothing else: no require/import, fetch, timers, process, file
// or network access, WebAssembly, SharedArrayBuffer/Atomics, WeakRef. Values cross as JSON copies.
//   RunFunctionBody: a fresh global per run, so nothing (prototype pollution, globals) survives it.
//   EvaluateExpression: one long-lived global per sandbox whose every reachable object is frozen
//     (assigning e.g. `o.toString = f` on your own objects still works), `eval` throws, and the
//     text is compiled as a function body; so no expression can leave state for the next one.
//     Only the `globals` whose name occurs in the expression's text are converted.
// The result is converted like JSON.stringify: undefined, functions and symbols give null (or are
// left out of objects), Dates become ISO strings, NaN and Infinity null, toJSON() is honoured.
//
// Not thread-safe: one JsSandbox per thread, used only by the thread that created it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/engine/cancellation.h"
#include "nlohmann/json.hpp"

namespace ndx::engine {

using Json = nlohmann::ordered_json;

// Limits of one run. A zero (or negative) field in the limits passed to a run takes the value of
// the limits given to JsSandbox::Create.
struct JsLimits {
  absl::Duration timeout = absl::Seconds(5);  // wall clock, per run
  size_t max_heap_bytes = 64 << 20;           // GC heap cap of the context
  size_t max_result_bytes = 16 << 20;         // JSON size of the returned value
};
// max_heap_bytes counts the GC heap plus the memory GC things own outside it (array elements,
// string characters, ArrayBuffers, Map/Set tables); at least 8 MiB. It is checked each time a
// garbage collection ends, so a run can overshoot it (typically up to 2-3x) before it is stopped;
// a single allocation (one huge array, string or buffer) is only seen after it succeeded.

struct JsResult {
  Json value;                        // the returned (awaited) value, as JSON; null for undefined
  std::vector<std::string> console;  // console.log/info/warn/error lines, in order ("[warn] x")
};

// Initializes SpiderMonkey for the process. Call once from main() before any thread that uses a
// JsSandbox starts. Idempotent.
void InitJsEngine();

class JsSandbox {
 public:
  // Creates the context for the calling thread. INTERNAL if SpiderMonkey cannot start.
  static absl::StatusOr<std::unique_ptr<JsSandbox>> Create(const JsLimits& defaults);
  virtual ~JsSandbox() = default;

  // Runs `code` as the body of an async function whose free variables include every top-level
  // key of `globals` (e.g. "$json", "$node", "items", "$input"), awaits it, and returns the result.
  virtual absl::StatusOr<JsResult> RunFunctionBody(absl::string_view code, const Json& globals,
                                                   const JsLimits& limits,
                                                   const CancellationToken* cancel) = 0;

  // Evaluates one expression (the inside of `{{ ... }}`) against `globals`; returns its value.
  virtual absl::StatusOr<Json> EvaluateExpression(absl::string_view expression, const Json& globals,
                                                  const JsLimits& limits,
                                                  const CancellationToken* cancel) = 0;
};

}  // namespace ndx::engine
