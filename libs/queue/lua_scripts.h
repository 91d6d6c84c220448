// File: lua_scripts.h
//
// The queue's Lua scripts (libs/queue/lua/*.lua, each with common.lua in front), embedded by CMake.
#pragma once

namespace ndx::queue::lua {

extern const char* const k_enqueue;
extern const char* const k_claim;
extern const char* const k_renew;
extern const char* const k_complete;
extern const char* const k_fail;
extern const char* const k_cancel;
extern const char* const k_ack_cancel;
extern const char* const k_release;
extern const char* const k_housekeep;
extern const char* const k_stats;
extern const char* const k_retry;
extern const char* const k_append_event;
extern const char* const k_start;
extern const char* const k_node_event;
extern const char* const k_suspend;
extern const char* const k_delete;
extern const char* const k_recorded;

}  // namespace ndx::queue::lua
