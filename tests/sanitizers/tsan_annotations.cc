// File: tsan_annotations.cc
//
// Linked into every executable of the TSan build (NDX_SANITIZE=thread, cmake/ndx_helpers.cmake).
// Debian's abseil is an uninstrumented shared library, and absl::Mutex synchronizes with its own
// atomics and futexes, which ThreadSanitizer cannot see: every access guarded by an absl::Mutex
// (ndx's, and gRPC's, which uses absl::Mutex too) was reported as a data race. These definitions
// interpose the library's exported Mutex / CondVar / Notification functions, call the real ones
// (dlsym RTLD_NEXT) and tell TSan about the happens-before edges they create
// (__tsan_release before an unlock, __tsan_acquire after a lock). Signatures are those of abseil
// 20220623 (inline namespace debian3; a member function takes `this` as its first argument).
// absl::Duration and absl::Time are passed by value as their layout: {int64_t, uint32_t}.
//
// absl::Condition: a Mutex evaluates the conditions of LockWhen / Await inside its own (real)
// functions, so in the middle of a lock or unlock as the annotations above see it: a waiter
// evaluates its condition after it holds the lock but before the __tsan_acquire that follows the
// real call, and an unlocking thread evaluates the conditions of the waiters (to choose whom to
// wake) after the __tsan_release that precedes the real Unlock. The condition functions are ndx
// code reading state guarded by the mutex, so each such read was reported as racing with the
// writes of the next or the previous holder. Condition::Eval is called through the PLT (abseil
// is built with semantic interposition), so it is interposed too: every Mutex / CondVar function
// below records its mutex for the calling thread (MutexScope), and Eval acquires that mutex
// before the condition runs and releases it after: the thread really holds the lock (or, in an
// unlock, its spin bit) while it evaluates, so the edges are the ones the lock creates.
//
// gRPC (uninstrumented too) hands a batch of operations from the thread that starts it
// (grpc_call_start_batch, grpc_server_request_*call, each with a tag) to the thread that gets
// its completion (grpc_completion_queue_next / _pluck return the tag; the C++ callback API runs
// its reactors' callbacks on threads that call grpc_completion_queue_next) through lock-free
// queues TSan cannot see. The C++ API's inline code (grpcpp's CallOpSet, compiled into ndx)
// fills a batch before it starts and reads it after it completes, and the message buffers of
// reads and writes change hands the same way, so each was reported as a race between the two
// threads. Starting a batch releases its tag, and receiving its completion acquires it: the
// edge gRPC guarantees.
//
// absl::Status: its reference count (the last owner deletes the rep) is annotated the same way,
// at Status::UnrefNonInlined. What is still invisible (memory gRPC and abseil hand between their
// own threads) is in tsan.supp, each entry with its reason.
#include <dlfcn.h>
#include <grpc/grpc.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" {
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}

namespace {

struct Duration {
  int64_t hi;
  uint32_t lo;
};
struct Time {
  Duration rep;
};

// The absl::Mutex whose function the calling thread is in (nullptr outside of them).
thread_local void* t_mutex = nullptr;

class MutexScope {
 public:
  explicit MutexScope(void* mu) : saved_(t_mutex) { t_mutex = mu; }
  MutexScope(const MutexScope&) = delete;
  MutexScope& operator=(const MutexScope&) = delete;
  ~MutexScope() { t_mutex = saved_; }

 private:
  void* const saved_;
};

void* Real(const char* name) {
  void* f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_annotations: %s not found\n", name);
    std::abort();
  }
  return f;
}

}  // namespace

// NOLINTBEGIN: the names are abseil's mangled symbols.
#define NDX_REAL(sym, type) static const auto real = reinterpret_cast<type>(Real(#sym))

extern "C" {

// absl::Mutex
void _ZN4absl7debian35Mutex4LockEv(void* mu) {
  NDX_REAL(_ZN4absl7debian35Mutex4LockEv, void (*)(void*));
  MutexScope scope(mu);
  real(mu);
  __tsan_acquire(mu);
}
void _ZN4absl7debian35Mutex10ReaderLockEv(void* mu) {
  NDX_REAL(_ZN4absl7debian35Mutex10ReaderLockEv, void (*)(void*));
  MutexScope scope(mu);
  real(mu);
  __tsan_acquire(mu);
}
bool _ZN4absl7debian35Mutex7TryLockEv(void* mu) {
  NDX_REAL(_ZN4absl7debian35Mutex7TryLockEv, bool (*)(void*));
  MutexScope scope(mu);
  const bool locked = real(mu);
  if (locked) __tsan_acquire(mu);
  return locked;
}
bool _ZN4absl7debian35Mutex13ReaderTryLockEv(void* mu) {
  NDX_REAL(_ZN4absl7debian35Mutex13ReaderTryLockEv, bool (*)(void*));
  MutexScope scope(mu);
  const bool locked = real(mu);
  if (locked) __tsan_acquire(mu);
  return locked;
}
void _ZN4absl7debian35Mutex6UnlockEv(void* mu) {
  NDX_REAL(_ZN4absl7debian35Mutex6UnlockEv, void (*)(void*));
  MutexScope scope(mu);
  __tsan_release(mu);
  real(mu);
}
void _ZN4absl7debian35Mutex12ReaderUnlockEv(void* mu) {
  NDX_REAL(_ZN4absl7debian35Mutex12ReaderUnlockEv, void (*)(void*));
  MutexScope scope(mu);
  __tsan_release(mu);
  real(mu);
}
void _ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE(void* mu, const void* cond) {
  NDX_REAL(_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE, void (*)(void*, const void*));
  MutexScope scope(mu);
  real(mu, cond);
  __tsan_acquire(mu);
}
void _ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE(void* mu, const void* cond) {
  NDX_REAL(_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE, void (*)(void*, const void*));
  MutexScope scope(mu);
  real(mu, cond);
  __tsan_acquire(mu);
}
// The *LockWhenWith{Timeout,Deadline} functions hold the lock on return either way.
bool _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE(void* mu,
                                                                                 const void* cond,
                                                                                 Duration d) {
  NDX_REAL(_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE,
           bool (*)(void*, const void*, Duration));
  MutexScope scope(mu);
  const bool r = real(mu, cond, d);
  __tsan_acquire(mu);
  return r;
}
bool _ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    void* mu, const void* cond, Duration d) {
  NDX_REAL(_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE,
           bool (*)(void*, const void*, Duration));
  MutexScope scope(mu);
  const bool r = real(mu, cond, d);
  __tsan_acquire(mu);
  return r;
}
bool _ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE(void* mu,
                                                                              const void* cond,
                                                                              Time t) {
  NDX_REAL(_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE,
           bool (*)(void*, const void*, Time));
  MutexScope scope(mu);
  const bool r = real(mu, cond, t);
  __tsan_acquire(mu);
  return r;
}
bool _ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE(
    void* mu, const void* cond, Time t) {
  NDX_REAL(_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE,
           bool (*)(void*, const void*, Time));
  MutexScope scope(mu);
  const bool r = real(mu, cond, t);
  __tsan_acquire(mu);
  return r;
}
// Await* releases the (held) lock while it waits and holds it again on return.
void _ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(void* mu, const void* cond) {
  NDX_REAL(_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE, void (*)(void*, const void*));
  MutexScope scope(mu);
  __tsan_release(mu);
  real(mu, cond);
  __tsan_acquire(mu);
}
bool _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(void* mu,
                                                                              const void* cond,
                                                                              Duration d) {
  NDX_REAL(_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE,
           bool (*)(void*, const void*, Duration));
  MutexScope scope(mu);
  __tsan_release(mu);
  const bool r = real(mu, cond, d);
  __tsan_acquire(mu);
  return r;
}
bool _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(void* mu,
                                                                           const void* cond,
                                                                           Time t) {
  NDX_REAL(_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE,
           bool (*)(void*, const void*, Time));
  MutexScope scope(mu);
  __tsan_release(mu);
  const bool r = real(mu, cond, t);
  __tsan_acquire(mu);
  return r;
}

// absl::CondVar: Wait* releases `mu` while it waits and holds it again on return.
void _ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(void* cv, void* mu) {
  NDX_REAL(_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE, void (*)(void*, void*));
  MutexScope scope(mu);
  __tsan_release(mu);
  real(cv, mu);
  __tsan_acquire(mu);
}
bool _ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE(void* cv, void* mu,
                                                                          Duration d) {
  NDX_REAL(_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE,
           bool (*)(void*, void*, Duration));
  MutexScope scope(mu);
  __tsan_release(mu);
  const bool r = real(cv, mu, d);
  __tsan_acquire(mu);
  return r;
}
bool _ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(void* cv, void* mu, Time t) {
  NDX_REAL(_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE,
           bool (*)(void*, void*, Time));
  MutexScope scope(mu);
  __tsan_release(mu);
  const bool r = real(cv, mu, t);
  __tsan_acquire(mu);
  return r;
}

// absl::Status shares a reference-counted rep between copies. The last owner deletes it in
// UnrefNonInlined, whose decrement is acq_rel (abseil's status.cc): every owner's use of the rep
// happens before the delete. That atomic is inside the uninstrumented library, so say it here.
// `rep` is the StatusRep's address + 1 (Status::PointerToRep); it is only called for those.
void _ZN4absl7debian36Status15UnrefNonInlinedEm(uintptr_t rep) {
  NDX_REAL(_ZN4absl7debian36Status15UnrefNonInlinedEm, void (*)(uintptr_t));
  void* const status_rep = reinterpret_cast<void*>(rep - 1);
  __tsan_release(status_rep);
  __tsan_acquire(status_rep);
  real(rep);
}

// absl::Condition::Eval, called by the Mutex functions above (see the top of the file).
bool _ZNK4absl7debian39Condition4EvalEv(const void* cond) {
  NDX_REAL(_ZNK4absl7debian39Condition4EvalEv, bool (*)(const void*));
  void* const mu = t_mutex;
  if (mu != nullptr) __tsan_acquire(mu);
  const bool r = real(cond);
  if (mu != nullptr) __tsan_release(mu);
  return r;
}

// absl::Notification: Notify() happens before a wait that sees it.
void _ZN4absl7debian312Notification6NotifyEv(void* n) {
  NDX_REAL(_ZN4absl7debian312Notification6NotifyEv, void (*)(void*));
  __tsan_release(n);
  real(n);
}
void _ZNK4absl7debian312Notification19WaitForNotificationEv(const void* n) {
  NDX_REAL(_ZNK4absl7debian312Notification19WaitForNotificationEv, void (*)(const void*));
  real(n);
  __tsan_acquire(const_cast<void*>(n));
}
bool _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(const void* n,
                                                                                    Duration d) {
  NDX_REAL(_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE,
           bool (*)(const void*, Duration));
  const bool r = real(n, d);
  if (r) __tsan_acquire(const_cast<void*>(n));
  return r;
}
bool _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(const void* n,
                                                                                 Time t) {
  NDX_REAL(_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE,
           bool (*)(const void*, Time));
  const bool r = real(n, t);
  if (r) __tsan_acquire(const_cast<void*>(n));
  return r;
}

// gRPC: a batch's start happens before its completion is delivered (see the top of the file).
grpc_call_error grpc_call_start_batch(grpc_call* call, const grpc_op* ops, size_t nops, void* tag,
                                      void* reserved) {
  NDX_REAL(grpc_call_start_batch,
           grpc_call_error(*)(grpc_call*, const grpc_op*, size_t, void*, void*));
  __tsan_release(tag);
  return real(call, ops, nops, tag, reserved);
}
grpc_call_error grpc_server_request_call(grpc_server* server, grpc_call** call,
                                         grpc_call_details* details,
                                         grpc_metadata_array* request_metadata,
                                         grpc_completion_queue* cq_bound_to_call,
                                         grpc_completion_queue* cq_for_notification,
                                         void* tag_new) {
  NDX_REAL(grpc_server_request_call,
           grpc_call_error(*)(grpc_server*, grpc_call**, grpc_call_details*, grpc_metadata_array*,
                              grpc_completion_queue*, grpc_completion_queue*, void*));
  __tsan_release(tag_new);
  return real(server, call, details, request_metadata, cq_bound_to_call, cq_for_notification,
              tag_new);
}
grpc_call_error grpc_server_request_registered_call(grpc_server* server, void* registered_method,
                                                    grpc_call** call, gpr_timespec* deadline,
                                                    grpc_metadata_array* request_metadata,
                                                    grpc_byte_buffer** optional_payload,
                                                    grpc_completion_queue* cq_bound_to_call,
                                                    grpc_completion_queue* cq_for_notification,
                                                    void* tag_new) {
  NDX_REAL(grpc_server_request_registered_call,
           grpc_call_error(*)(grpc_server*, void*, grpc_call**, gpr_timespec*, grpc_metadata_array*,
                              grpc_byte_buffer**, grpc_completion_queue*, grpc_completion_queue*,
                              void*));
  __tsan_release(tag_new);
  return real(server, registered_method, call, deadline, request_metadata, optional_payload,
              cq_bound_to_call, cq_for_notification, tag_new);
}
grpc_event grpc_completion_queue_next(grpc_completion_queue* cq, gpr_timespec deadline,
                                      void* reserved) {
  NDX_REAL(grpc_completion_queue_next, grpc_event(*)(grpc_completion_queue*, gpr_timespec, void*));
  const grpc_event ev = real(cq, deadline, reserved);
  if (ev.type == GRPC_OP_COMPLETE) __tsan_acquire(ev.tag);
  return ev;
}
grpc_event grpc_completion_queue_pluck(grpc_completion_queue* cq, void* tag, gpr_timespec deadline,
                                       void* reserved) {
  NDX_REAL(grpc_completion_queue_pluck,
           grpc_event(*)(grpc_completion_queue*, void*, gpr_timespec, void*));
  const grpc_event ev = real(cq, tag, deadline, reserved);
  if (ev.type == GRPC_OP_COMPLETE) __tsan_acquire(ev.tag);
  return ev;
}

}  // extern "C"
// NOLINTEND
