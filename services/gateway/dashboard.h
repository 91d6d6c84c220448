// File: dashboard.h
//
// The dashboard page served at "/": one self-contained HTML document (inline CSS and JavaScript,
// no build step, no external assets) compiled into the binary. It shows queue depth by state and
// the oldest waiting job's age (REST, polled), live executions with per-node progress (plain
// WebSocket /ws, "subscribe-all" feed), one execution's full event timeline (/ws "subscribe" from
// seq 0), and failed executions with a retry button. The token comes from the URL fragment
// (`/#token=...`, kept in localStorage) or the page's token field; with NDX_AUTH=none none is
// needed.
#pragma once

#include <string_view>

namespace ndx::gateway {

std::string_view DashboardHtml();

}  // namespace ndx::gateway
