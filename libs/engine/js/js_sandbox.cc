// SpiderMonkey 102 behind JsSandbox. reference/js-engine.md explains the embedding; the numbered
// pitfalls it lists are cited below as "pitfall N".
//
// Shape of one JsSandbox:
//   - one JSContext (= one runtime) created on, and used only by, the owning thread;
//   - a permanent "host" global that never runs user code; every other global is created in its
//     zone (pitfall 1), so one GC collects all of them;
//   - a fresh global per RunFunctionBody: nothing a Code node does survives its run;
//   - one long-lived, locked-down "expression" global for EvaluateExpression (fast enough to call
//     per item): every object reachable in it is frozen, `eval` is a thrower, and expressions are
//     compiled as function bodies, so an expression has no place to leave state for the next one;
//   - a JsWatchdog thread that interrupts the script on timeout or cancellation;
//   - a GC callback + interrupt callback pair that enforces the heap cap (pitfall 4).
#include "libs/engine/js/js_sandbox.h"

#include <jsapi.h>
#include <jsfriendapi.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "js/Array.h"
#include "js/CallAndConstruct.h"
#include "js/CompilationAndEvaluation.h"
#include "js/ContextOptions.h"
#include "js/Conversions.h"
#include "js/ErrorReport.h"
#include "js/Exception.h"
#include "js/GCAPI.h"
#include "js/GCVector.h"
#include "js/GlobalObject.h"
#include "js/Initialization.h"
#include "js/Interrupt.h"
#include "js/JSON.h"
#include "js/MemoryCallbacks.h"
#include "js/Object.h"
#include "js/Promise.h"
#include "js/PropertyAndElement.h"
#include "js/PropertyDescriptor.h"
#include "js/Realm.h"
#include "js/RegExp.h"
#include "js/SourceText.h"
#include "js/String.h"
#include "js/Symbol.h"
#include "js/ValueArray.h"
#include "js/Warnings.h"
#include "js/friend/ErrorMessages.h"
#include "js/friend/StackLimits.h"
#include "libs/common/check.h"
#include "libs/common/status_macros.h"
#include "libs/engine/js/js_watchdog.h"

namespace ndx::engine {
namespace {

using js_internal::JsWatchdog;
using js_internal::StopReason;

// Console capture is bounded so that `for (;;) console.log(big)` cannot exhaust memory before the
// timeout: after this many bytes or lines one "[console output truncated]" line is added.
constexpr size_t kMaxConsoleBytes = 1 << 20;
constexpr size_t kMaxConsoleLines = 10000;
// Values nested deeper than this are refused when converted to JSON (the converter recurses on
// the native stack).
constexpr int kMaxJsonDepth = 1000;
// Native stack the engine may use, at most (pitfall 6); never more than half of the thread's stack.
constexpr size_t kMaxStackQuota = 4 << 20;
// Heap caps below this cannot even hold the engine's own realms.
constexpr size_t kMinHeapBytes = 8 << 20;
// Compiled expressions kept per sandbox; the cache is emptied when full.
constexpr size_t kExpressionCacheSize = 1024;

constexpr char kCodeFile[] = "code";
constexpr char kExpressionFile[] = "expression";
constexpr char kExpressionPrefix[] = "return (";

JSClass kGlobalClass = {"global", JSCLASS_GLOBAL_FLAGS, &JS::DefaultGlobalClassOps};

// Runs once in the expression global before any expression (trusted code). It freezes everything an
// expression can reach, so that no expression can leave state behind for the next one (prototype
// pollution, replaced built-ins, properties on shared objects). Plain assignments such as
// `obj.toString = f` would otherwise fail on a frozen prototype (the "override mistake"), so the
// data properties of the common prototypes become accessors whose setter defines an own property
// on the receiver instead.
constexpr char kLockdownScript[] = R"js(
(function () {
  'use strict';
  const { freeze, getPrototypeOf, getOwnPropertyDescriptor, defineProperty } = Object;
  const ownKeys = Reflect.ownKeys;
  const allowOverride = (proto, names) => {
    for (const name of names) {
      const desc = getOwnPropertyDescriptor(proto, name);
      if (!desc || !('value' in desc) || !desc.configurable) continue;
      const value = desc.value;
      defineProperty(proto, name, {
        get() { return value; },
        set(v) {
          if (this === proto) {
            throw new TypeError('cannot assign to ' + String(name) + ' of a built-in prototype');
          }
          if (this === null || (typeof this !== 'object' && typeof this !== 'function')) return;
          defineProperty(this, name, { value: v, writable: true, enumerable: true, configurable: true });
        },
        enumerable: desc.enumerable,
        configurable: false,
      });
    }
  };
  allowOverride(Object.prototype, ownKeys(Object.prototype));
  allowOverride(Function.prototype, ['constructor', 'toString', 'apply', 'call', 'bind']);
  allowOverride(Array.prototype, ['constructor', 'toString']);
  for (const E of [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError,
                   AggregateError, InternalError]) {
    allowOverride(E.prototype, ['constructor', 'name', 'message', 'toString']);
  }
  // Intrinsics that only syntax or built-in results reach; the walk below finds the rest.
  const stack = [
    globalThis,
    getPrototypeOf(function* () {}),
    getPrototypeOf(async function () {}),
    getPrototypeOf(async function* () {}),
    getPrototypeOf((function* () {})()),
    getPrototypeOf((async function* () {})()),
    getPrototypeOf([][Symbol.iterator]()),
    getPrototypeOf(new Map()[Symbol.iterator]()),
    getPrototypeOf(new Set()[Symbol.iterator]()),
    getPrototypeOf(''[Symbol.iterator]()),
    getPrototypeOf(''.matchAll(/(?:)/g)),
  ];
  const seen = new Set();
  while (stack.length > 0) {
    const o = stack.pop();
    if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) continue;
    seen.add(o);
    freeze(o);
    stack.push(getPrototypeOf(o));
    for (const key of ownKeys(o)) {
      const desc = getOwnPropertyDescriptor(o, key);
      if (desc) stack.push(desc.value, desc.get, desc.set);
    }
  }
})();
)js";

// ---------------------------------------------------------------------------------------------
// Process-wide initialization.

struct EngineInit {
  bool ok = false;
  std::string error;
};

// Runtimes (contexts) alive in the process.
std::atomic<int> live_runtimes{0};

// At exit, SpiderMonkey's static mutexes are destroyed while its helper threads still use them,
// which crashes the exiting process unless JS_ShutDown ran first. JS_ShutDown in turn requires
// every context to be gone; if one is still alive (a thread that was never joined), skip it.
void ShutDownAtExit() {
  if (live_runtimes.load() == 0) JS_ShutDown();
}

const EngineInit& InitOnce() {
  // Leaked on purpose (trivially destructible pointer).
  static const EngineInit* const init = [] {
    auto* result = new EngineInit;
    if (const char* error = JS_InitWithFailureDiagnostic()) {
      result->error = error;
      return result;
    }
    // "SpiderMonkey [must] be initialized, and the first context be created, in a
    // single-threaded fashion" (js/Context.h): create and drop that first context here.
    JSContext* cx = JS_NewContext(JS::DefaultHeapMaxBytes);
    if (cx == nullptr) {
      result->error = "JS_NewContext failed";
      return result;
    }
    JS_DestroyContext(cx);
    // Registered after libmozjs's static objects were constructed, so it runs before they are
    // destroyed.
    std::atexit(&ShutDownAtExit);
    result->ok = true;
    return result;
  }();
  return *init;
}

// Serializes context creation and destruction across sandboxes (cheap; happens once per thread).
std::mutex& ContextLifecycleMutex() {
  static std::mutex* const mu = new std::mutex;
  return *mu;
}

// Half the calling thread's stack, at most kMaxStackQuota (pitfall 6).
size_t NativeStackQuota() {
  size_t stack_size = 0;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    if (pthread_attr_getstack(&attr, &addr, &stack_size) != 0) stack_size = 0;
    pthread_attr_destroy(&attr);
  }
  if (stack_size == 0) stack_size = 1 << 20;  // unknown: assume a small stack
  return std::min(kMaxStackQuota, stack_size / 2);
}

// ---------------------------------------------------------------------------------------------
// Strings.

void AppendCodePoint(uint32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// Appends at most `max_units` code units of `str` as UTF-8; unpaired surrogates become U+FFFD.
// Returns false (with an exception pending) only if the string could not be flattened.
bool AppendUtf8(JSContext* cx, JSString* str, size_t max_units, std::string* out) {
  JSLinearString* linear = JS_EnsureLinearString(cx, str);
  if (linear == nullptr) return false;
  JS::AutoCheckCannotGC nogc;
  const size_t length = std::min(JS::GetLinearStringLength(linear), max_units);
  if (JS::LinearStringHasLatin1Chars(linear)) {
    const JS::Latin1Char* chars = JS::GetLatin1LinearStringChars(nogc, linear);
    out->reserve(out->size() + length);
    for (size_t i = 0; i < length; ++i) AppendCodePoint(chars[i], out);
    return true;
  }
  const char16_t* chars = JS::GetTwoByteLinearStringChars(nogc, linear);
  out->reserve(out->size() + length);
  for (size_t i = 0; i < length; ++i) {
    uint32_t c = chars[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < length && chars[i + 1] >= 0xDC00 &&
        chars[i + 1] <= 0xDFFF) {
      c = 0x10000 + ((c - 0xD800) << 10) + (chars[i + 1] - 0xDC00);
      ++i;
    } else if (c >= 0xD800 && c <= 0xDFFF) {
      c = 0xFFFD;
    }
    AppendCodePoint(c, out);
  }
  return true;
}

bool IsReservedWord(const std::string& s) {
  static const char* const kReserved[] = {
      "arguments", "await",      "break",   "case",    "catch",      "class",     "const",
      "continue",  "debugger",   "default", "delete",  "do",         "else",      "enum",
      "eval",      "export",     "extends", "false",   "finally",    "for",       "function",
      "if",        "implements", "import",  "in",      "instanceof", "interface", "let",
      "new",       "null",       "package", "private", "protected",  "public",    "return",
      "static",    "super",      "switch",  "this",    "throw",      "true",      "try",
      "typeof",    "var",        "void",    "while",   "with",       "yield"};
  for (const char* word : kReserved) {
    if (s == word) return true;
  }
  return false;
}

// True for ASCII identifiers that can be a function parameter.
bool IsParameterName(const std::string& s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return !IsReservedWord(s);
}

unsigned LineCount(absl::string_view text) {
  return 1 + static_cast<unsigned>(std::count(text.begin(), text.end(), '\n'));
}

std::string MiB(size_t bytes) { return absl::StrCat(bytes / (1 << 20), " MiB"); }

// ---------------------------------------------------------------------------------------------
// Promise jobs.

// The promise job queue: a plain FIFO that the sandbox drains after the script returns and clears
// after every run, so that no job of a stopped run can run in the next one (pitfall 10; the
// engine's internal queue has no "clear").
class JobQueue final : public JS::JobQueue {
 public:
  explicit JobQueue(JSContext* cx) : jobs_(cx) {}

  JSObject* getIncumbentGlobal(JSContext* cx) override { return JS::CurrentGlobalOrNull(cx); }

  bool enqueuePromiseJob(JSContext* cx, JS::HandleObject /*promise*/, JS::HandleObject job,
                         JS::HandleObject /*allocation_site*/,
                         JS::HandleObject /*incumbent_global*/) override {
    if (!jobs_.get().append(job)) {
      JS_ReportOutOfMemory(cx);
      return false;
    }
    return true;
  }

  // Only reached through the debugger (AutoDebuggerJobQueueInterruption); there is none here.
  void runJobs(JSContext* cx) override { (void)Drain(cx); }

  bool empty() const override { return jobs_.get().empty(); }

  // Runs jobs in order, including the ones they enqueue, until none is left. Returns false if a job
  // failed (an exception is pending, or the run is being stopped); the queue is then cleared.
  bool Drain(JSContext* cx) {
    JS::RootedObject job(cx);
    JS::RootedValue ignored(cx);
    size_t next = 0;
    while (next < jobs_.get().length()) {
      job = jobs_.get()[next++];
      JSAutoRealm realm(cx, job);
      if (!JS::Call(cx, JS::UndefinedHandleValue, job, JS::HandleValueArray::empty(), &ignored)) {
        Clear();
        return false;
      }
      // An endless `.then` chain must not grow the queue without bound until the timeout.
      if (next >= 1024 && next * 2 >= jobs_.get().length()) {
        jobs_.get().erase(jobs_.get().begin(), jobs_.get().begin() + next);
        next = 0;
      }
    }
    Clear();
    return true;
  }

  void Clear() { jobs_.get().clear(); }

  // Drops the roots; required before JS_DestroyContext.
  void Reset() { jobs_.reset(); }

 private:
  class NoSavedJobs final : public SavedJobQueue {};

  js::UniquePtr<SavedJobQueue> saveJobQueue(JSContext* cx) override {
    auto saved = js::MakeUnique<NoSavedJobs>();
    if (!saved) JS_ReportOutOfMemory(cx);
    return saved;
  }

  JS::PersistentRooted<JS::GCVector<JSObject*, 0, js::SystemAllocPolicy>> jobs_;
};

// ---------------------------------------------------------------------------------------------
// JSON out.

// Converts a JS value to JSON the way JSON.stringify does (toJSON, boxed primitives, undefined,
// functions and symbols omitted), but with a size budget, a depth limit and interrupt checks:
// JS_Stringify builds the whole text in one unbounded buffer first.
class JsonConverter {
 public:
  enum class Error { kNone, kException, kCycle, kBigInt, kTooDeep, kTooLarge };

  JsonConverter(JSContext* cx, size_t max_bytes) : cx_(cx), budget_(max_bytes), stack_(cx) {}

  // On false, error() says why; kException means a pending exception or a stop.
  bool Convert(JS::HandleValue key, JS::HandleValue in, Json* out, bool* omitted) {
    *omitted = false;
    // This recursion runs on the script's native stack: stay within the engine's quota.
    js::AutoCheckRecursionLimit recursion(cx_);
    if (!recursion.check(cx_)) return Fail(Error::kException);
    if (++nodes_ % 4096 == 0 && !JS_CheckForInterrupt(cx_)) return Fail(Error::kException);
    JS::RootedValue value(cx_, in);
    if (value.isObject() || value.isBigInt()) {
      JS::RootedObject holder(cx_);
      if (!JS_ValueToObject(cx_, value, &holder)) return Fail(Error::kException);
      JS::RootedValue to_json(cx_);
      if (!JS_GetProperty(cx_, holder, "toJSON", &to_json)) return Fail(Error::kException);
      if (to_json.isObject() && JS::IsCallable(&to_json.toObject())) {
        JS::RootedValueArray<1> args(cx_);
        args[0].set(key);
        if (key.isNumber()) {  // array index: toJSON gets it as a string
          JSString* index = JS::ToString(cx_, key);
          if (index == nullptr) return Fail(Error::kException);
          args[0].setString(index);
        }
        if (!JS::Call(cx_, value, to_json, args, &value)) return Fail(Error::kException);
      }
    }
    if (value.isObject()) {  // unwrap Number, String, Boolean and BigInt objects
      JS::RootedObject obj(cx_, &value.toObject());
      js::ESClass cls = js::ESClass::Other;
      if (!JS::GetBuiltinClass(cx_, obj, &cls)) return Fail(Error::kException);
      if (cls == js::ESClass::Number) {
        double d;
        if (!JS::ToNumber(cx_, value, &d)) return Fail(Error::kException);
        value.setDouble(d);
      } else if (cls == js::ESClass::String) {
        JSString* s = JS::ToString(cx_, value);
        if (s == nullptr) return Fail(Error::kException);
        value.setString(s);
      } else if (cls == js::ESClass::Boolean || cls == js::ESClass::BigInt) {
        if (!JS::ToPrimitive(cx_, obj, JSTYPE_UNDEFINED, &value)) return Fail(Error::kException);
      }
    }
    if (value.isNull()) return Emit(Json(nullptr), 4, out);
    if (value.isBoolean()) return Emit(Json(value.toBoolean()), 5, out);
    if (value.isInt32()) return Emit(Json(int64_t{value.toInt32()}), 11, out);
    if (value.isDouble()) {
      const double d = value.toDouble();
      if (!std::isfinite(d)) return Emit(Json(nullptr), 4, out);
      // Integral values print without a fraction in JSON.stringify, so keep them integers.
      if (d == std::trunc(d) && std::fabs(d) < 9.2e18) return Emit(Json(int64_t(d)), 20, out);
      return Emit(Json(d), 24, out);
    }
    if (value.isString()) {
      std::string s;
      const size_t length = JS::GetStringLength(value.toString());
      if (length > budget_) return Fail(Error::kTooLarge);
      if (!AppendUtf8(cx_, value.toString(), length, &s)) return Fail(Error::kException);
      const size_t size = s.size() + 2;
      return Emit(Json(std::move(s)), size, out);
    }
    if (value.isBigInt()) return Fail(Error::kBigInt);
    if (value.isUndefined() || value.isSymbol()) {
      *omitted = true;
      return true;
    }
    JS::RootedObject obj(cx_, &value.toObject());
    if (JS::IsCallable(obj)) {
      *omitted = true;
      return true;
    }
    for (JSObject* open : stack_) {
      if (open == obj) return Fail(Error::kCycle);
    }
    if (stack_.length() >= kMaxJsonDepth) return Fail(Error::kTooDeep);
    if (!stack_.append(obj)) return Fail(Error::kException);
    const bool ok = ConvertObject(obj, out);
    stack_.popBack();
    return ok;
  }

  // JSON.stringify(value): undefined, functions and symbols give null.
  bool ConvertTopLevel(JS::HandleValue value, Json* out) {
    JS::RootedValue key(cx_, JS_GetEmptyStringValue(cx_));
    bool omitted = false;
    if (!Convert(key, value, out, &omitted)) return false;
    if (omitted) *out = nullptr;
    return true;
  }

  Error error() const { return error_; }

 private:
  bool ConvertObject(JS::HandleObject obj, Json* out) {
    bool is_array = false;
    if (!JS::IsArrayObject(cx_, obj, &is_array)) return Fail(Error::kException);
    JS::RootedValue key(cx_);
    JS::RootedValue element(cx_);
    bool omitted = false;
    if (is_array) {
      uint32_t length = 0;
      if (!JS::GetArrayLength(cx_, obj, &length)) return Fail(Error::kException);
      *out = Json::array();
      if (!Charge(2)) return false;
      for (uint32_t i = 0; i < length; ++i) {
        if (!JS_GetElement(cx_, obj, i, &element)) return Fail(Error::kException);
        key.setNumber(i);
        Json child;
        if (!Convert(key, element, &child, &omitted)) return false;
        if (omitted && !Charge(4)) return false;
        out->push_back(omitted ? Json(nullptr) : std::move(child));
      }
      return true;
    }
    JS::Rooted<JS::IdVector> ids(cx_, JS::IdVector(cx_));
    if (!JS_Enumerate(cx_, obj, &ids)) return Fail(Error::kException);  // own enumerable keys
    *out = Json::object();
    if (!Charge(2)) return false;
    JS::RootedId id(cx_);
    for (size_t i = 0; i < ids.length(); ++i) {
      id = ids[i];
      if (id.isSymbol()) continue;
      if (!JS_IdToValue(cx_, id, &key) || !JS_GetPropertyById(cx_, obj, id, &element)) {
        return Fail(Error::kException);
      }
      JS::RootedString key_string(cx_, JS::ToString(cx_, key));
      if (key_string == nullptr) return Fail(Error::kException);
      key.setString(key_string);
      Json child;
      if (!Convert(key, element, &child, &omitted)) return false;
      if (omitted) continue;
      std::string name;
      if (!AppendUtf8(cx_, key_string, JS::GetStringLength(key_string), &name)) {
        return Fail(Error::kException);
      }
      if (!Charge(name.size() + 4)) return false;
      (*out)[std::move(name)] = std::move(child);
    }
    return true;
  }

  bool Emit(Json value, size_t size, Json* out) {
    if (!Charge(size)) return false;
    *out = std::move(value);
    return true;
  }

  bool Charge(size_t bytes) {
    if (bytes > budget_) return Fail(Error::kTooLarge);
    budget_ -= bytes;
    return true;
  }

  bool Fail(Error error) {
    error_ = error;
    return false;
  }

  JSContext* cx_;
  size_t budget_;
  size_t nodes_ = 0;
  Error error_ = Error::kNone;
  JS::RootedObjectVector stack_;  // the objects being converted, to find cycles
};

// ---------------------------------------------------------------------------------------------
// The engine for one thread.

enum class ConsoleLevel { kLog, kInfo, kWarn, kError, kDebug };

// Where a failure happened; decides how an exception is reported.
enum class Phase {
  kSetup,    // building a global
  kInput,    // loading the caller's globals into it
  kCompile,  // parsing the user's source: a SyntaxError here is INVALID_ARGUMENT
  kRun,      // running it, awaiting it
  kResult,   // converting the result to JSON
};

class Runtime {
 public:
  static absl::StatusOr<std::unique_ptr<Runtime>> Create(const JsLimits& defaults);
  ~Runtime();

  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  absl::StatusOr<JsResult> RunFunctionBody(absl::string_view code, const Json& globals,
                                           const JsLimits& limits, const CancellationToken* cancel);
  absl::StatusOr<Json> EvaluateExpression(absl::string_view expression, const Json& globals,
                                          const JsLimits& limits, const CancellationToken* cancel);

  // True after an INTERNAL failure: the owner then replaces this runtime.
  bool broken() const { return broken_; }

 private:
  // Arms the watchdog and the memory checks for one call; disarms and cleans up on destruction.
  // Declared before any Rooted in a run, so it is destroyed after all of them.
  class RunScope {
   public:
    RunScope(Runtime* runtime, const JsLimits& limits, const CancellationToken* cancel,
             std::vector<std::string>* console);
    ~RunScope() { runtime_->EndRun(); }
    RunScope(const RunScope&) = delete;
    RunScope& operator=(const RunScope&) = delete;

   private:
    Runtime* runtime_;
  };

  explicit Runtime(JSContext* cx) : cx_(cx) {}
  absl::Status Init(const JsLimits& defaults);
  void EndRun();
  void SetHeapCap(size_t bytes);

  static bool OnInterrupt(JSContext* cx);
  static void OnGc(JSContext* cx, JSGCStatus status, JS::GCReason reason, void* data);
  static void OnOutOfMemory(JSContext* cx, void* data);
  template <ConsoleLevel kLevel>
  static bool ConsoleNative(JSContext* cx, unsigned argc, JS::Value* vp);
  static bool EvalUnavailable(JSContext* cx, unsigned argc, JS::Value* vp);

  bool OverHeapCap();
  bool WriteConsole(ConsoleLevel level, const JS::CallArgs& args);
  bool AppendConsoleValue(JS::HandleValue value, size_t budget, std::string* line);

  // A new global in the shared zone, with `console`.
  JSObject* NewGlobal();
  absl::Status EnsureExpressionGlobal();
  void ResetExpressionGlobal();
  absl::StatusOr<JSObject*> CompileExpression(absl::string_view expression,
                                              const std::vector<std::string>& names);

  bool ParseJson(const Json& value, JS::MutableHandleValue out);
  // Drains the job queue and, if `value` is a Promise, replaces it by its result. On false the
  // failure is pending as usual; *never_settled says the Promise is still pending.
  bool Settle(JS::MutableHandleValue value, bool* never_settled);
  absl::StatusOr<Json> ToJson(JS::HandleValue value, size_t max_bytes);

  // The status for the failure of the last JSAPI call (timeout, cancel, memory, or the pending
  // exception), given the phase it happened in. Clears the exception.
  absl::Status Failure(Phase phase);
  absl::Status StopStatus(StopReason reason) const;
  // What the user sees of an exception, and what kind of error it is.
  struct ExceptionInfo {
    std::string message;
    JSExnType type = JSEXN_ERR;
    unsigned error_number = 0;  // JSMSG_* for the engine's own errors
  };
  ExceptionInfo DescribeException(const JS::ExceptionStack& stack, Phase phase);
  absl::Status Internal(absl::string_view what);

  JSContext* const cx_;
  std::unique_ptr<JobQueue> job_queue_;
  std::unique_ptr<JsWatchdog> watchdog_;
  JS::PersistentRootedObject host_global_;
  JS::PersistentRootedObject malloc_bytes_getter_;  // js::gc::NewMemoryInfoObject's mallocBytes
  JS::PersistentRootedObject memory_info_;
  JS::PersistentRootedObject expression_global_;
  JS::PersistentRootedObject empty_regexp_;  // /(?:)/ in the expression global
  bool expression_global_stale_ = false;
  std::unordered_map<std::string, std::unique_ptr<JS::PersistentRootedObject>> expressions_;
  bool broken_ = false;

  // The current run (script thread only).
  bool run_active_ = false;
  unsigned source_lines_ = 0;       // lines of the user's text, to place error positions
  unsigned first_line_offset_ = 0;  // columns the wrapper adds before the user's first line
  absl::Duration run_timeout_;
  const CancellationToken* run_cancel_ = nullptr;
  size_t heap_cap_ = 0;
  uint32_t gc_max_bytes_ = 0;
  bool memory_check_pending_ = false;
  bool in_memory_check_ = false;
  bool interrupt_requested_ = false;
  std::vector<std::string>* console_ = nullptr;  // null: console output is discarded
  size_t console_bytes_ = 0;
  bool console_truncated_ = false;
};

// ---------------------------------------------------------------------------------------------
// Creation and teardown.

absl::StatusOr<std::unique_ptr<Runtime>> Runtime::Create(const JsLimits& defaults) {
  const EngineInit& init = InitOnce();
  if (!init.ok) {
    return absl::InternalError(absl::StrCat("SpiderMonkey failed to initialize: ", init.error));
  }
  JSContext* cx;
  {
    std::lock_guard<std::mutex> lock(ContextLifecycleMutex());
    cx = JS_NewContext(JS::DefaultHeapMaxBytes);
  }
  if (cx == nullptr) return absl::InternalError("JS_NewContext failed");
  live_runtimes.fetch_add(1);
  std::unique_ptr<Runtime> runtime(new Runtime(cx));
  NDX_RETURN_IF_ERROR(runtime->Init(defaults));
  return runtime;
}

absl::Status Runtime::Init(const JsLimits& defaults) {
  JS_SetContextPrivate(cx_, this);
  JS_SetNativeStackQuota(cx_, NativeStackQuota());  // right after JS_NewContext (pitfall 6)
  JS::ContextOptionsRef(cx_).setWasm(false).setAsmJS(false).setAsyncStack(false);
  job_queue_ = std::make_unique<JobQueue>(cx_);
  JS::SetJobQueue(cx_, job_queue_.get());
  if (!JS::InitSelfHostedCode(cx_)) return Internal("JS::InitSelfHostedCode failed");
  SetHeapCap(defaults.max_heap_bytes);
  JS_SetGCCallback(cx_, &Runtime::OnGc, this);
  JS::SetOutOfMemoryCallback(cx_, &Runtime::OnOutOfMemory, this);
  if (!JS_AddInterruptCallback(cx_, &Runtime::OnInterrupt)) {
    return Internal("JS_AddInterruptCallback failed");
  }
  JS::SetWarningReporter(cx_, [](JSContext*, JSErrorReport*) {});
  JSContext* cx = cx_;
  watchdog_ = std::make_unique<JsWatchdog>([cx] { JS_RequestInterruptCallback(cx); });

  host_global_.init(cx_);
  malloc_bytes_getter_.init(cx_);
  memory_info_.init(cx_);
  expression_global_.init(cx_);
  empty_regexp_.init(cx_);
  JS::RealmOptions options;
  host_global_ = JS_NewGlobalObject(cx_, &kGlobalClass, nullptr, JS::FireOnNewGlobalHook, options);
  if (!host_global_) {
    JS_ClearPendingException(cx_);  // no realm is entered: never read it (pitfall 2)
    return Internal("could not create the host global");
  }
  JSAutoRealm realm(cx_, host_global_);
  // The GC-heap size is a GC parameter; the malloc'd memory owned by GC things (array elements,
  // string characters, buffers, hash tables) is only exposed by this object's getter.
  memory_info_ = js::gc::NewMemoryInfoObject(cx_);
  if (!memory_info_) return Internal("could not create the memory info object");
  JS::Rooted<mozilla::Maybe<JS::PropertyDescriptor>> desc(cx_);
  if (!JS_GetOwnPropertyDescriptor(cx_, memory_info_, "mallocBytes", &desc) || desc.isNothing() ||
      !desc->hasGetter() || desc->getter() == nullptr) {
    return Internal("the memory info object has no mallocBytes getter");
  }
  malloc_bytes_getter_ = desc->getter();
  return absl::OkStatus();
}

Runtime::~Runtime() {
  watchdog_.reset();  // no JS_RequestInterruptCallback after this
  expressions_.clear();
  if (job_queue_) job_queue_->Reset();
  expression_global_.reset();
  empty_regexp_.reset();
  memory_info_.reset();
  malloc_bytes_getter_.reset();
  host_global_.reset();
  {
    std::lock_guard<std::mutex> lock(ContextLifecycleMutex());
    JS_DestroyContext(cx_);  // every PersistentRooted is gone (pitfall 7)
  }
  live_runtimes.fetch_sub(1);
  job_queue_.reset();  // "clean it up after the runtime is destroyed" (js/Promise.h)
}

absl::Status Runtime::Internal(absl::string_view what) {
  broken_ = true;
  return absl::InternalError(absl::StrCat("JavaScript engine failure: ", what));
}

void Runtime::SetHeapCap(size_t bytes) {
  heap_cap_ = std::max(bytes, kMinHeapBytes);
  const uint32_t gc_max = static_cast<uint32_t>(std::min<size_t>(heap_cap_, UINT32_MAX));
  if (gc_max == gc_max_bytes_) return;
  gc_max_bytes_ = gc_max;
  JS_SetGCParameter(cx_, JSGC_MAX_BYTES, gc_max);
  // Malloc'd memory is checked when a GC ends; start collecting after a quarter of the cap (default
  // 38 MB) so that a bomb is seen sooner. In MB.
  const uint32_t malloc_base_mb =
      static_cast<uint32_t>(std::clamp<size_t>(heap_cap_ / 4 / (1 << 20), 4, 38));
  JS_SetGCParameter(cx_, JSGC_MALLOC_THRESHOLD_BASE, malloc_base_mb);
}

// ---------------------------------------------------------------------------------------------
// Runs, stops and memory.

Runtime::RunScope::RunScope(Runtime* runtime, const JsLimits& limits,
                            const CancellationToken* cancel, std::vector<std::string>* console)
    : runtime_(runtime) {
  runtime->SetHeapCap(limits.max_heap_bytes);
  runtime->run_timeout_ = limits.timeout;
  runtime->run_cancel_ = cancel;
  runtime->console_ = console;
  runtime->console_bytes_ = 0;
  runtime->console_truncated_ = false;
  runtime->memory_check_pending_ = false;
  runtime->interrupt_requested_ = false;
  runtime->run_active_ = true;
  runtime->watchdog_->Arm(JsWatchdog::Deadline(limits.timeout), cancel);
}

void Runtime::EndRun() {
  const bool tripped = watchdog_->Disarm();
  const bool over_memory = watchdog_->reason() == StopReason::kMemory;
  run_active_ = false;
  run_cancel_ = nullptr;
  console_ = nullptr;
  job_queue_->Clear();
  JSAutoRealm realm(cx_, host_global_);
  if (JS_IsExceptionPending(cx_)) JS_ClearPendingException(cx_);
  if (tripped || interrupt_requested_) {
    // Consume an interrupt that may still be pending, so that it cannot land in the next run (and
    // restart its regular expressions, pitfall 3). The callback returns true: no run is active.
    (void)JS_CheckForInterrupt(cx_);
  }
  memory_check_pending_ = false;
  interrupt_requested_ = false;
  if (over_memory) JS_GC(cx_);  // give the memory back now rather than at the next run's GC
}

bool Runtime::OnInterrupt(JSContext* cx) {
  auto* self = static_cast<Runtime*>(JS_GetContextPrivate(cx));
  if (self == nullptr || !self->run_active_ || self->in_memory_check_) return true;
  // Returning false stops the script with an uncatchable termination (no exception).
  if (self->watchdog_->reason() != StopReason::kNone) return false;
  if (self->memory_check_pending_) {
    self->memory_check_pending_ = false;
    if (self->OverHeapCap()) {
      self->watchdog_->Trip(StopReason::kMemory);
      return false;
    }
  }
  return true;
}

void Runtime::OnGc(JSContext* cx, JSGCStatus status, JS::GCReason /*reason*/, void* data) {
  auto* self = static_cast<Runtime*>(data);
  if (status != JSGC_END || !self->run_active_) return;
  // Near JSGC_MAX_BYTES the GC thrashes instead of failing (pitfall 4): stop at 90 %.
  if (JS_GetGCParameter(cx, JSGC_BYTES) > self->gc_max_bytes_ / 10 * 9) {
    self->watchdog_->Trip(StopReason::kMemory);
    return;
  }
  // The malloc'd part can only be read with a JS call, which a GC callback may not make: check it
  // from the interrupt callback. One interrupt per major GC is rare enough for pitfall 3.
  if (!self->memory_check_pending_) {
    self->memory_check_pending_ = true;
    self->interrupt_requested_ = true;
    JS_RequestInterruptCallback(cx);
  }
}

void Runtime::OnOutOfMemory(JSContext* /*cx*/, void* data) {
  auto* self = static_cast<Runtime*>(data);
  if (self->run_active_) self->watchdog_->Trip(StopReason::kMemory);
}

bool Runtime::OverHeapCap() {
  double malloc_bytes = 0;
  {
    in_memory_check_ = true;
    JS::AutoSaveExceptionState saved(cx_);
    JSAutoRealm realm(cx_, host_global_);
    JS::RootedValue getter(cx_, JS::ObjectValue(*malloc_bytes_getter_));
    JS::RootedValue self(cx_, JS::ObjectValue(*memory_info_));
    JS::RootedValue result(cx_);
    if (JS::Call(cx_, self, getter, JS::HandleValueArray::empty(), &result) && result.isNumber()) {
      malloc_bytes = result.toNumber();
    } else {
      JS_ClearPendingException(cx_);
    }
    in_memory_check_ = false;
  }
  const double total = malloc_bytes + JS_GetGCParameter(cx_, JSGC_BYTES);
  return total > static_cast<double>(heap_cap_);
}

absl::Status Runtime::StopStatus(StopReason reason) const {
  switch (reason) {
    case StopReason::kTimeout:
      return absl::DeadlineExceededError(
          absl::StrCat("JavaScript ran longer than its time limit of ",
                       absl::FormatDuration(run_timeout_), " and was stopped"));
    case StopReason::kCancelled: {
      std::string why;
      if (run_cancel_ != nullptr) why = std::string(run_cancel_->reason().message());
      return absl::CancelledError(why.empty() ? "JavaScript was cancelled"
                                              : absl::StrCat("JavaScript was cancelled: ", why));
    }
    case StopReason::kMemory:
      return absl::ResourceExhaustedError(absl::StrCat(
          "JavaScript used more than its memory limit of ", MiB(heap_cap_), " and was stopped"));
    case StopReason::kNone:
      break;
  }
  return absl::InternalError("JavaScript stopped for no recorded reason");
}

// ---------------------------------------------------------------------------------------------
// Errors.

absl::Status Runtime::Failure(Phase phase) {
  if (const StopReason reason = watchdog_->reason(); reason != StopReason::kNone) {
    JS_ClearPendingException(cx_);
    return StopStatus(reason);
  }
  if (!JS_IsExceptionPending(cx_)) {
    return absl::InternalError("JavaScript stopped without an exception");
  }
  if (JS_IsThrowingOutOfMemory(cx_)) {
    JS_ClearPendingException(cx_);
    return absl::ResourceExhaustedError(
        absl::StrCat("JavaScript ran out of memory (limit ", MiB(heap_cap_), ")"));
  }
  JS::ExceptionStack stack(cx_);
  if (!JS::StealPendingExceptionStack(cx_, &stack)) {
    JS_ClearPendingException(cx_);
    return absl::InternalError("could not read the JavaScript exception");
  }
  ExceptionInfo info = DescribeException(stack, phase);
  if (const StopReason reason = watchdog_->reason(); reason != StopReason::kNone) {
    return StopStatus(reason);  // stopped while the exception was being described
  }
  std::string& message = info.message;
  if (info.error_number == JSMSG_ALLOC_OVERFLOW) {  // e.g. a string past 2^30 characters
    return absl::ResourceExhaustedError(message);
  }
  if (phase == Phase::kCompile && info.type == JSEXN_SYNTAXERR) {
    return absl::InvalidArgumentError(message);
  }
  if (phase == Phase::kInput) {
    return absl::InvalidArgumentError(
        absl::StrCat("the JavaScript inputs could not be loaded: ", message));
  }
  if (phase == Phase::kSetup) {
    return absl::InternalError(absl::StrCat("JavaScript setup failed: ", message));
  }
  return absl::FailedPreconditionError(message);
}

// "<thrown value> (line L[, column C])". Runs user code (toString of a thrown object) under the
// run's watchdog.
Runtime::ExceptionInfo Runtime::DescribeException(const JS::ExceptionStack& stack, Phase phase) {
  ExceptionInfo info;
  std::string& message = info.message;
  JS::ErrorReportBuilder builder(cx_);
  if (!builder.init(cx_, stack, JS::ErrorReportBuilder::WithSideEffects)) {
    JS_ClearPendingException(cx_);
    message = "uncaught exception (it could not be converted to a string)";
    return info;
  }
  if (builder.toStringResult()) message = builder.toStringResult().c_str();
  // A thrown plain object prints as "[object Object]": show its JSON instead.
  JS::RootedValue thrown(cx_, stack.exception());
  if (thrown.isObject()) {
    JS::RootedObject obj(cx_, &thrown.toObject());
    js::ESClass cls = js::ESClass::Other;
    if (JS::GetBuiltinClass(cx_, obj, &cls) && cls == js::ESClass::Object) {
      JsonConverter converter(cx_, 1000);
      Json json;
      if (converter.ConvertTopLevel(thrown, &json)) {
        message = absl::StrCat("uncaught exception: ",
                               json.dump(-1, ' ', false, Json::error_handler_t::replace));
      }
    }
    if (JS_IsExceptionPending(cx_)) JS_ClearPendingException(cx_);
  }
  if (message.empty()) message = "uncaught exception";
  const JSErrorReport* report = builder.report();
  if (report == nullptr) return info;
  info.type = static_cast<JSExnType>(report->exnType);
  info.error_number = report->errorNumber;
  const bool ours =
      report->filename != nullptr && (std::string(report->filename) == kCodeFile ||
                                      std::string(report->filename) == kExpressionFile);
  if (!ours || report->lineno == 0) return info;  // eval'd code, or the wrapper's line
  if (report->lineno > source_lines_) {  // the wrapper's closing line: the text ended too early
    absl::StrAppend(&message, " (at the end of the ", report->filename, ")");
  } else if (phase == Phase::kCompile) {
    // The parser's column is 0-based.
    const unsigned offset = report->lineno == 1 ? first_line_offset_ : 0;
    const unsigned column = report->column >= offset ? report->column - offset + 1 : 1;
    absl::StrAppend(&message, " (line ", report->lineno, ", column ", column, ")");
  } else {
    absl::StrAppend(&message, " (line ", report->lineno, ")");
  }
  return info;
}

// ---------------------------------------------------------------------------------------------
// Console.

template <ConsoleLevel kLevel>
bool Runtime::ConsoleNative(JSContext* cx, unsigned argc, JS::Value* vp) {
  JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
  args.rval().setUndefined();
  auto* self = static_cast<Runtime*>(JS_GetContextPrivate(cx));
  return self->WriteConsole(kLevel, args);
}

bool Runtime::WriteConsole(ConsoleLevel level, const JS::CallArgs& args) {
  if (console_ == nullptr || console_truncated_) return true;
  static constexpr const char* kPrefix[] = {"", "[info] ", "[warn] ", "[error] ", "[debug] "};
  std::string line = kPrefix[static_cast<int>(level)];
  for (unsigned i = 0; i < args.length(); ++i) {
    if (i > 0) line.push_back(' ');
    if (line.size() > kMaxConsoleBytes) break;
    if (!AppendConsoleValue(args[i], kMaxConsoleBytes - line.size() + 1, &line)) return false;
  }
  if (console_bytes_ + line.size() > kMaxConsoleBytes || console_->size() >= kMaxConsoleLines) {
    console_->push_back(absl::StrCat("[console output truncated: more than ", MiB(kMaxConsoleBytes),
                                     " or ", kMaxConsoleLines, " lines]"));
    console_truncated_ = true;
    return true;
  }
  console_bytes_ += line.size();
  console_->push_back(std::move(line));
  return true;
}

// Strings as they are, objects as JSON (like Node's util.format for the common cases). Returns
// false only to propagate a stop (or an out-of-memory); other failures print a placeholder.
bool Runtime::AppendConsoleValue(JS::HandleValue value, size_t budget, std::string* line) {
  const auto recover = [&](const char* placeholder) {
    if (watchdog_->reason() != StopReason::kNone || !JS_IsExceptionPending(cx_) ||
        JS_IsThrowingOutOfMemory(cx_)) {
      return false;
    }
    JS_ClearPendingException(cx_);
    line->append(placeholder);
    return true;
  };
  if (value.isString()) {
    return AppendUtf8(cx_, value.toString(), budget, line) || recover("[string]");
  }
  if (value.isSymbol()) {
    JS::RootedSymbol symbol(cx_, value.toSymbol());
    line->append("Symbol(");
    if (JSString* description = JS::GetSymbolDescription(symbol)) {
      if (!AppendUtf8(cx_, description, budget, line)) return recover("");
    }
    line->push_back(')');
    return true;
  }
  if (value.isObject()) {
    JS::RootedObject obj(cx_, &value.toObject());
    if (JS::IsCallable(obj)) {
      line->append("[Function]");
      return true;
    }
    js::ESClass cls = js::ESClass::Other;
    if (!JS::GetBuiltinClass(cx_, obj, &cls)) return recover("[object]");
    if (cls != js::ESClass::Error) {
      JsonConverter converter(cx_, budget);
      Json json;
      if (converter.ConvertTopLevel(value, &json)) {
        line->append(json.dump(-1, ' ', false, Json::error_handler_t::replace));
        return true;
      }
      if (converter.error() == JsonConverter::Error::kException) return recover("[object]");
      if (converter.error() == JsonConverter::Error::kTooLarge) {
        line->append("[object too large to print]");
        return true;
      }
      // A cycle, a BigInt, too deep: print String(value) instead.
    }
  }
  JS::RootedString str(cx_, JS::ToString(cx_, value));  // Errors print as "Error: message"
  if (str == nullptr) return recover("[object]");
  return AppendUtf8(cx_, str, budget, line) || recover("[object]");
}

bool Runtime::EvalUnavailable(JSContext* cx, unsigned /*argc*/, JS::Value* /*vp*/) {
  JS_ReportErrorASCII(cx, "eval is not available in expressions; use a Code node");
  return false;
}

// ---------------------------------------------------------------------------------------------
// Globals.

JSObject* Runtime::NewGlobal() {
  JS::RealmOptions options;
  // Same zone as the host global: one GC for all globals (pitfall 1). The defaults keep
  // SharedArrayBuffer/Atomics, WeakRefs, streams and iterator helpers off.
  options.creationOptions().setNewCompartmentInExistingZone(host_global_);
  JS::RootedObject global(
      cx_, JS_NewGlobalObject(cx_, &kGlobalClass, nullptr, JS::FireOnNewGlobalHook, options));
  if (global == nullptr) return nullptr;
  JSAutoRealm realm(cx_, global);
  JS::RootedObject console(cx_, JS_NewPlainObject(cx_));
  if (console == nullptr ||
      !JS_DefineFunction(cx_, console, "log", &ConsoleNative<ConsoleLevel::kLog>, 0,
                         JSPROP_ENUMERATE) ||
      !JS_DefineFunction(cx_, console, "info", &ConsoleNative<ConsoleLevel::kInfo>, 0,
                         JSPROP_ENUMERATE) ||
      !JS_DefineFunction(cx_, console, "warn", &ConsoleNative<ConsoleLevel::kWarn>, 0,
                         JSPROP_ENUMERATE) ||
      !JS_DefineFunction(cx_, console, "error", &ConsoleNative<ConsoleLevel::kError>, 0,
                         JSPROP_ENUMERATE) ||
      !JS_DefineFunction(cx_, console, "debug", &ConsoleNative<ConsoleLevel::kDebug>, 0,
                         JSPROP_ENUMERATE) ||
      !JS_DefineProperty(cx_, global, "console", console, 0)) {
    return nullptr;
  }
  return global;
}

absl::Status Runtime::EnsureExpressionGlobal() {
  if (expression_global_ && !expression_global_stale_) return absl::OkStatus();
  ResetExpressionGlobal();
  JS::RootedObject global(cx_, NewGlobal());
  if (global == nullptr) return Failure(Phase::kSetup);
  JSAutoRealm realm(cx_, global);
  if (!JS::InitRealmStandardClasses(cx_) ||
      !JS_DefineFunction(cx_, global, "eval", &Runtime::EvalUnavailable, 1, 0)) {
    return Failure(Phase::kSetup);
  }
  JS::CompileOptions options(cx_);
  options.setFileAndLine("lockdown", 1);
  JS::SourceText<mozilla::Utf8Unit> source;
  JS::RootedValue ignored(cx_);
  if (!source.init(cx_, kLockdownScript, sizeof(kLockdownScript) - 1,
                   JS::SourceOwnership::Borrowed) ||
      !JS::Evaluate(cx_, options, source, &ignored)) {
    return Failure(Phase::kSetup);
  }
  empty_regexp_ = JS::NewRegExpObject(cx_, "(?:)", 4, JS::RegExpFlags());
  if (!empty_regexp_) return Failure(Phase::kSetup);
  expression_global_ = global;
  return absl::OkStatus();
}

void Runtime::ResetExpressionGlobal() {
  expressions_.clear();
  expression_global_ = nullptr;
  empty_regexp_ = nullptr;
  expression_global_stale_ = false;
}

absl::StatusOr<JSObject*> Runtime::CompileExpression(absl::string_view expression,
                                                     const std::vector<std::string>& names) {
  std::string key = absl::StrCat(absl::StrJoin(names, ","), "\n", expression);
  if (auto it = expressions_.find(key); it != expressions_.end()) return it->second->get();
  // A function body, not a script: whatever the text contains stays inside the function (no
  // global `let` can be declared). The body starts on the line after options' line, so the
  // expression is on line 1, after the 8 columns of "return (".
  const std::string body = absl::StrCat(kExpressionPrefix, expression, "\n);");
  JS::CompileOptions options(cx_);
  options.setFileAndLine(kExpressionFile, 0);
  JS::SourceText<mozilla::Utf8Unit> source;
  if (!source.init(cx_, body.data(), body.size(), JS::SourceOwnership::Borrowed)) {
    return Failure(Phase::kSetup);
  }
  std::vector<const char*> args;
  args.reserve(names.size());
  for (const std::string& name : names) args.push_back(name.c_str());
  JS::RootedObjectVector env(cx_);
  JS::RootedFunction fun(
      cx_, JS::CompileFunction(cx_, env, options, "expression", args.size(), args.data(), source));
  if (fun == nullptr) return Failure(Phase::kCompile);
  JS::RootedObject fn(cx_, JS_GetFunctionObject(fun));
  // The compiled function is shared by later evaluations: freeze it and its .prototype
  // (reachable through arguments.callee).
  if (!JS_DeepFreezeObject(cx_, fn)) return Failure(Phase::kSetup);
  if (expressions_.size() >= kExpressionCacheSize) expressions_.clear();
  auto rooted = std::make_unique<JS::PersistentRootedObject>(cx_, fn);
  JSObject* result = rooted->get();
  expressions_.emplace(std::move(key), std::move(rooted));
  return result;
}

// ---------------------------------------------------------------------------------------------
// JSON in and out.

bool Runtime::ParseJson(const Json& value, JS::MutableHandleValue out) {
  if (value.is_null()) {
    out.setNull();
    return true;
  }
  const std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  JS::RootedString str(cx_, JS_NewStringCopyUTF8N(cx_, JS::UTF8Chars(text.data(), text.size())));
  return str != nullptr && JS_ParseJSON(cx_, str, out);
}

absl::StatusOr<Json> Runtime::ToJson(JS::HandleValue value, size_t max_bytes) {
  JsonConverter converter(cx_, max_bytes);
  Json out;
  if (converter.ConvertTopLevel(value, &out)) return out;
  constexpr char kPrefix[] = "the returned value cannot be converted to JSON: ";
  switch (converter.error()) {
    case JsonConverter::Error::kCycle:
      return absl::InvalidArgumentError(absl::StrCat(kPrefix, "it contains a cycle"));
    case JsonConverter::Error::kBigInt:
      return absl::InvalidArgumentError(absl::StrCat(kPrefix, "it contains a BigInt"));
    case JsonConverter::Error::kTooDeep:
      return absl::InvalidArgumentError(
          absl::StrCat(kPrefix, "it is nested deeper than ", kMaxJsonDepth, " levels"));
    case JsonConverter::Error::kTooLarge:
      return absl::ResourceExhaustedError(
          absl::StrCat("the returned value is larger than the limit of ", max_bytes, " bytes"));
    case JsonConverter::Error::kException:
    case JsonConverter::Error::kNone:
      break;
  }
  return Failure(Phase::kResult);  // toJSON or a getter threw, or the run was stopped
}

bool Runtime::Settle(JS::MutableHandleValue value, bool* never_settled) {
  *never_settled = false;
  if (!job_queue_->Drain(cx_)) return false;
  if (!value.isObject()) return true;
  JS::RootedObject obj(cx_, &value.toObject());
  if (!JS::IsPromiseObject(obj)) return true;
  switch (JS::GetPromiseState(obj)) {
    case JS::PromiseState::Fulfilled:
      value.set(JS::GetPromiseResult(obj));
      return true;
    case JS::PromiseState::Rejected: {
      JS::RootedValue reason(cx_, JS::GetPromiseResult(obj));
      JS_SetPendingException(cx_, reason, JS::ExceptionStackBehavior::DoNotCapture);
      return false;
    }
    case JS::PromiseState::Pending:
      break;
  }
  *never_settled = true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// The two entry points.

absl::StatusOr<JsResult> Runtime::RunFunctionBody(absl::string_view code, const Json& globals,
                                                  const JsLimits& limits,
                                                  const CancellationToken* cancel) {
  JsResult result;
  RunScope run(this, limits, cancel, &result.console);
  JSAutoRealm host_realm(cx_, host_global_);  // a realm is entered before anything can fail
  JS::RootedObject global(cx_, NewGlobal());
  if (global == nullptr) return Failure(Phase::kSetup);
  JSAutoRealm realm(cx_, global);

  // Each top-level key of `globals` becomes a global variable.
  if (!globals.empty()) {
    JS::RootedValue parsed(cx_);
    if (!ParseJson(globals, &parsed)) return Failure(Phase::kInput);
    JS::RootedObject values(cx_, &parsed.toObject());
    JS::Rooted<JS::IdVector> ids(cx_, JS::IdVector(cx_));
    if (!JS_Enumerate(cx_, values, &ids)) return Failure(Phase::kInput);
    JS::RootedValue value(cx_);
    JS::RootedId id(cx_);
    for (size_t i = 0; i < ids.length(); ++i) {
      id = ids[i];
      if (!JS_GetPropertyById(cx_, values, id, &value) ||
          !JS_DefinePropertyById(cx_, global, id, value, JSPROP_ENUMERATE)) {
        return Failure(Phase::kInput);
      }
    }
  }

  // The wrapper's first line is line 0, so the user's first line is reported as line 1.
  source_lines_ = LineCount(code);
  first_line_offset_ = 0;
  const std::string source_text = absl::StrCat("(async function () {\n", code, "\n})");
  JS::CompileOptions options(cx_);
  options.setFileAndLine(kCodeFile, 0).setIsRunOnce(true);
  JS::SourceText<mozilla::Utf8Unit> source;
  if (!source.init(cx_, source_text.data(), source_text.size(), JS::SourceOwnership::Borrowed)) {
    return Failure(Phase::kSetup);
  }
  JS::RootedValue fn(cx_);
  if (!JS::Evaluate(cx_, options, source, &fn)) return Failure(Phase::kCompile);
  if (!fn.isObject() || !JS::IsCallable(&fn.toObject())) {
    return absl::InvalidArgumentError("the code must be the body of a function");
  }
  JS::RootedValue value(cx_);
  if (!JS::Call(cx_, JS::UndefinedHandleValue, fn, JS::HandleValueArray::empty(), &value)) {
    return Failure(Phase::kRun);
  }
  bool never_settled = false;
  if (!Settle(&value, &never_settled)) {
    if (never_settled) {
      return absl::FailedPreconditionError(
          "the code's Promise never settled (the sandbox has no timers or I/O that could "
          "resolve it)");
    }
    return Failure(Phase::kRun);
  }
  NDX_ASSIGN_OR_RETURN(result.value, ToJson(value, limits.max_result_bytes));
  return result;
}

absl::StatusOr<Json> Runtime::EvaluateExpression(absl::string_view expression, const Json& globals,
                                                 const JsLimits& limits,
                                                 const CancellationToken* cancel) {
  RunScope run(this, limits, cancel, nullptr);
  JSAutoRealm host_realm(cx_, host_global_);
  absl::Status ready = EnsureExpressionGlobal();
  if (!ready.ok()) {
    if (absl::IsInternal(ready)) broken_ = true;  // the lockdown script must always succeed
    return ready;
  }
  JSAutoRealm realm(cx_, expression_global_);
  // Legacy RegExp.$1, RegExp.lastMatch, ... are per-realm state: overwrite what the last
  // expression matched by matching /(?:)/ against "". (JS::ClearRegExpStatics leaves them in a
  // state that crashes the next read of RegExp.$1 in SpiderMonkey 102.)
  {
    JS::RootedObject global(cx_, expression_global_);
    JS::RootedObject regexp(cx_, empty_regexp_);
    JS::RootedValue ignored(cx_);
    size_t index = 0;
    if (!JS::ExecuteRegExp(cx_, global, regexp, u"", 0, &index, /*test=*/true, &ignored)) {
      return Failure(Phase::kSetup);
    }
  }

  // The globals become parameters. Only those the text can name are converted: an expression
  // that does not mention `$node` does not pay for converting it.
  std::vector<std::string> names;
  std::vector<const Json*> values;
  for (const auto& [name, value] : globals.items()) {
    if (IsParameterName(name) && absl::StrContains(expression, name)) {
      names.push_back(name);
      values.push_back(&value);
    }
  }
  source_lines_ = LineCount(expression);
  first_line_offset_ = sizeof(kExpressionPrefix) - 1;
  absl::StatusOr<JSObject*> compiled = CompileExpression(expression, names);
  if (!compiled.ok()) return compiled.status();
  JS::RootedValue fn(cx_, JS::ObjectValue(**compiled));
  JS::RootedValueVector args(cx_);
  JS::RootedValue arg(cx_);
  for (const Json* value : values) {
    if (!ParseJson(*value, &arg) || !args.append(arg)) return Failure(Phase::kInput);
  }
  JS::RootedValue value(cx_);
  bool ok = JS::Call(cx_, JS::UndefinedHandleValue, fn, args, &value);
  bool never_settled = false;
  if (ok) ok = Settle(&value, &never_settled);
  absl::StatusOr<Json> result;
  if (ok) {
    result = ToJson(value, limits.max_result_bytes);
  } else if (never_settled) {
    result = absl::FailedPreconditionError(
        "the expression's Promise never settled (the sandbox has no timers or I/O that could "
        "resolve it)");
  } else {
    result = Failure(Phase::kRun);
  }
  // A run stopped from outside may have stopped anywhere; rebuild the realm to be safe.
  if (watchdog_->reason() != StopReason::kNone) expression_global_stale_ = true;
  return result;
}

// ---------------------------------------------------------------------------------------------

// JsSandbox on SpiderMonkey: owns the Runtime, replaces it after an INTERNAL failure, and checks
// that it is only used by the thread that created it.
class SpiderMonkeySandbox final : public JsSandbox {
 public:
  SpiderMonkeySandbox(const JsLimits& defaults, std::unique_ptr<Runtime> runtime)
      : defaults_(defaults), runtime_(std::move(runtime)), owner_(std::this_thread::get_id()) {}

  ~SpiderMonkeySandbox() override {
    NDX_CHECK(std::this_thread::get_id() == owner_);  // JS_DestroyContext's requirement
  }

  absl::StatusOr<JsResult> RunFunctionBody(absl::string_view code, const Json& globals,
                                           const JsLimits& limits,
                                           const CancellationToken* cancel) override {
    NDX_RETURN_IF_ERROR(Precheck(globals, cancel));
    NDX_ASSIGN_OR_RETURN(Runtime * runtime, GetRuntime());
    return runtime->RunFunctionBody(code, globals, Effective(limits), cancel);
  }

  absl::StatusOr<Json> EvaluateExpression(absl::string_view expression, const Json& globals,
                                          const JsLimits& limits,
                                          const CancellationToken* cancel) override {
    NDX_RETURN_IF_ERROR(Precheck(globals, cancel));
    NDX_ASSIGN_OR_RETURN(Runtime * runtime, GetRuntime());
    return runtime->EvaluateExpression(expression, globals, Effective(limits), cancel);
  }

 private:
  absl::Status Precheck(const Json& globals, const CancellationToken* cancel) const {
    NDX_CHECK(std::this_thread::get_id() == owner_);  // a context belongs to one thread
    if (!globals.is_object() && !globals.is_null()) {
      return absl::InvalidArgumentError("the JavaScript globals must be a JSON object");
    }
    if (cancel != nullptr && cancel->cancelled()) {
      const std::string why(cancel->reason().message());
      return absl::CancelledError(why.empty() ? "JavaScript was cancelled"
                                              : absl::StrCat("JavaScript was cancelled: ", why));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Runtime*> GetRuntime() {
    if (runtime_ != nullptr && runtime_->broken()) runtime_.reset();
    if (runtime_ == nullptr) {
      NDX_ASSIGN_OR_RETURN(runtime_, Runtime::Create(defaults_));
    }
    return runtime_.get();
  }

  // Zero (or negative) fields take the sandbox's defaults.
  JsLimits Effective(const JsLimits& limits) const {
    JsLimits effective = limits;
    if (effective.timeout <= absl::ZeroDuration()) effective.timeout = defaults_.timeout;
    if (effective.max_heap_bytes == 0) effective.max_heap_bytes = defaults_.max_heap_bytes;
    if (effective.max_result_bytes == 0) effective.max_result_bytes = defaults_.max_result_bytes;
    return effective;
  }

  const JsLimits defaults_;
  std::unique_ptr<Runtime> runtime_;
  const std::thread::id owner_;
};

}  // namespace

void InitJsEngine() { (void)InitOnce(); }

absl::StatusOr<std::unique_ptr<JsSandbox>> JsSandbox::Create(const JsLimits& defaults) {
  NDX_ASSIGN_OR_RETURN(std::unique_ptr<Runtime> runtime, Runtime::Create(defaults));
  return std::unique_ptr<JsSandbox>(new SpiderMonkeySandbox(defaults, std::move(runtime)));
}

}  // namespace ndx::engine
