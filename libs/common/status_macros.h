// File: status_macros.h
//
// NDX_RETURN_IF_ERROR and NDX_ASSIGN_OR_RETURN: Debian's abseil (20220623) has no status macros,
// so ndx ships these two. They behave like ABSL_RETURN_IF_ERROR / ABSL_ASSIGN_OR_RETURN and can be
// swapped for them once the toolchain has them.
//
//   absl::Status Save(Db& db) {
//     NDX_RETURN_IF_ERROR(db.Connect());
//     NDX_ASSIGN_OR_RETURN(auto row, db.Load("id"));
//     ...
//   }
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define NDX_STATUS_CONCAT_INNER_(x, y) x##y
#define NDX_STATUS_CONCAT_(x, y) NDX_STATUS_CONCAT_INNER_(x, y)

// Evaluates `expr` (an absl::Status); returns it from the enclosing function unless it is OK.
#define NDX_RETURN_IF_ERROR(expr)                                        \
  do {                                                                   \
    ::absl::Status ndx_status_macro_status_ = (expr);                    \
    if (!ndx_status_macro_status_.ok()) return ndx_status_macro_status_; \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); returns its status from the enclosing function unless
// it is OK, else moves the value into `lhs` (which may be a declaration: `auto x`, `const Foo& y`).
#define NDX_ASSIGN_OR_RETURN(lhs, rexpr) \
  NDX_ASSIGN_OR_RETURN_IMPL_(NDX_STATUS_CONCAT_(ndx_statusor_, __LINE__), lhs, rexpr)

#define NDX_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr)   \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = *std::move(statusor)
