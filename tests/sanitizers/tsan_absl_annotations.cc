// File: tsan_absl_annotations.cc
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
#include <dlfcn.h>

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

void* Real(const char* name) {
  void* f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_absl_annotations: %s not found\n", name);
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
  real(mu);
  __tsan_acquire(mu);
}
void _ZN4absl7debian35Mutex10ReaderLockEv(void* mu) {
  NDX_REAL(_ZN4absl7debian35Mutex10ReaderLockEv, void (*)(void*));
  real(mu);
  __tsan_acquire(mu);
}
bool _ZN4absl7debian35Mutex7TryLockEv(void* mu) {
  NDX_REAL(_ZN4absl7debian35Mutex7TryLockEv, bool (*)(void*));
  const bool locked = real(mu);
  if (locked) __tsan_acquire(mu);
  return locked;
}
bool _ZN4absl7debian35Mutex13ReaderTryLockEv(void* mu) {
  NDX_REAL(_ZN4absl7debian35Mutex13ReaderTryLockEv, bool (*)(void*));
  const bool locked = real(mu);
  if (locked) __tsan_acquire(mu);
  return locked;
}
void _ZN4absl7debian35Mutex6UnlockEv(void* mu) {
  NDX_REAL(_ZN4absl7debian35Mutex6UnlockEv, void (*)(void*));
  __tsan_release(mu);
  real(mu);
}
void _ZN4absl7debian35Mutex12ReaderUnlockEv(void* mu) {
  NDX_REAL(_ZN4absl7debian35Mutex12ReaderUnlockEv, void (*)(void*));
  __tsan_release(mu);
  real(mu);
}
void _ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE(void* mu, const void* cond) {
  NDX_REAL(_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE, void (*)(void*, const void*));
  real(mu, cond);
  __tsan_acquire(mu);
}
void _ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE(void* mu, const void* cond) {
  NDX_REAL(_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE, void (*)(void*, const void*));
  real(mu, cond);
  __tsan_acquire(mu);
}
// The *LockWhenWith{Timeout,Deadline} functions hold the lock on return either way.
bool _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE(void* mu,
                                                                                 const void* cond,
                                                                                 Duration d) {
  NDX_REAL(_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE,
           bool (*)(void*, const void*, Duration));
  const bool r = real(mu, cond, d);
  __tsan_acquire(mu);
  return r;
}
bool _ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    void* mu, const void* cond, Duration d) {
  NDX_REAL(_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE,
           bool (*)(void*, const void*, Duration));
  const bool r = real(mu, cond, d);
  __tsan_acquire(mu);
  return r;
}
bool _ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE(void* mu,
                                                                              const void* cond,
                                                                              Time t) {
  NDX_REAL(_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE,
           bool (*)(void*, const void*, Time));
  const bool r = real(mu, cond, t);
  __tsan_acquire(mu);
  return r;
}
bool _ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE(
    void* mu, const void* cond, Time t) {
  NDX_REAL(_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE,
           bool (*)(void*, const void*, Time));
  const bool r = real(mu, cond, t);
  __tsan_acquire(mu);
  return r;
}
// Await* releases the (held) lock while it waits and holds it again on return.
void _ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(void* mu, const void* cond) {
  NDX_REAL(_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE, void (*)(void*, const void*));
  __tsan_release(mu);
  real(mu, cond);
  __tsan_acquire(mu);
}
bool _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(void* mu,
                                                                              const void* cond,
                                                                              Duration d) {
  NDX_REAL(_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE,
           bool (*)(void*, const void*, Duration));
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
  __tsan_release(mu);
  const bool r = real(mu, cond, t);
  __tsan_acquire(mu);
  return r;
}

// absl::CondVar: Wait* releases `mu` while it waits and holds it again on return.
void _ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(void* cv, void* mu) {
  NDX_REAL(_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE, void (*)(void*, void*));
  __tsan_release(mu);
  real(cv, mu);
  __tsan_acquire(mu);
}
bool _ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE(void* cv, void* mu,
                                                                          Duration d) {
  NDX_REAL(_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE,
           bool (*)(void*, void*, Duration));
  __tsan_release(mu);
  const bool r = real(cv, mu, d);
  __tsan_acquire(mu);
  return r;
}
bool _ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(void* cv, void* mu, Time t) {
  NDX_REAL(_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE,
           bool (*)(void*, void*, Time));
  __tsan_release(mu);
  const bool r = real(cv, mu, t);
  __tsan_acquire(mu);
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

}  // extern "C"
// NOLINTEND
