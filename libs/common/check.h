// File: check.h
//
// NDX_CHECK(cond) aborts the process with the file, line and condition when `cond` is false. It is
// for programmer errors (broken invariants) only; never use it on data that came from Redis,
// PostgreSQL, the network or a user: such errors are absl::Status values (STYLE.md rule 7).
#pragma once

#include <cstdio>
#include <cstdlib>

#define NDX_CHECK(cond)                                                                 \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr,                                                              \
                   "{\"level\":\"fatal\",\"msg\":\"check failed: %s\",\"file\":\"%s\"," \
                   "\"line\":%d}\n",                                                    \
                   #cond, __FILE__, __LINE__);                                          \
      std::abort();                                                                     \
    }                                                                                   \
  } while (false)

// NDX_CHECK_OK(status_expr): aborts unless the absl::Status is OK, printing its message.
#define NDX_CHECK_OK(expr)                                                           \
  do {                                                                               \
    const ::absl::Status ndx_check_status_ = (expr);                                 \
    if (!ndx_check_status_.ok()) {                                                   \
      std::fprintf(stderr,                                                           \
                   "{\"level\":\"fatal\",\"msg\":\"check failed: %s is %s\","        \
                   "\"file\":\"%s\",\"line\":%d}\n",                                 \
                   #expr, ndx_check_status_.ToString().c_str(), __FILE__, __LINE__); \
      std::abort();                                                                  \
    }                                                                                \
  } while (false)
