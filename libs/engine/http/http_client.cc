#include "libs/engine/http/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/check.h"
#include "libs/common/status_macros.h"

namespace ndx::engine {
namespace {

// How often the transfer loop wakes up, at the latest, to look at the cancellation token. libcurl
// calls the xferinfo callback (which checks the token too) only when it services the transfer, and
// curl_easy_perform() may wait up to a second on a silent socket; so the transfer runs on a multi
// handle and this loop polls it with this bound.
constexpr int kCancelPollMs = 20;
constexpr char kDefaultUserAgent[] = "ndx";
constexpr char kAllowedProtocols[] = "http,https";
// Response headers are bounded too (a server could send them forever). libcurl 7.88 stops at
// 300 KB with a generic receive error; this lower bound makes it RESOURCE_EXHAUSTED.
constexpr size_t kMaxHeaderBytes = 256 << 10;

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;

struct MultiDeleter {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};
using MultiPtr = std::unique_ptr<CURLM, MultiDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using UrlPtr = std::unique_ptr<CURLU, UrlDeleter>;

struct CurlFree {
  void operator()(char* s) const { curl_free(s); }
};
using CurlStringPtr = std::unique_ptr<char, CurlFree>;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The per-thread multi handle: it owns the connection cache (keep-alive) and the DNS cache, so
// consecutive Perform() calls on one thread reuse connections, while every call still gets a fresh
// easy handle (no option or state can leak from one request into the next). Threads never share
// it, so no locking is needed; it is closed when the thread exits.
CURLM* ThreadMulti() {
  thread_local MultiPtr multi = [] {
    MultiPtr m(curl_multi_init());
    if (m != nullptr) curl_multi_setopt(m.get(), CURLMOPT_MAXCONNECTS, 8L);
    return m;
  }();
  return multi.get();
}

// RFC 9110 token characters (method and header names).
bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

bool IsToken(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

bool HasHeader(const HeaderList& headers, absl::string_view name) {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& h) { return absl::EqualsIgnoreCase(h.first, name); });
}

void RemoveHeaders(HeaderList& headers, std::initializer_list<absl::string_view> names) {
  headers.erase(std::remove_if(headers.begin(), headers.end(),
                               [&](const auto& h) {
                                 return std::any_of(names.begin(), names.end(), [&](auto n) {
                                   return absl::EqualsIgnoreCase(h.first, n);
                                 });
                               }),
                headers.end());
}

std::string GetUrlPart(CURLU* url, CURLUPart part, unsigned int flags = 0) {
  char* value = nullptr;
  if (curl_url_get(url, part, &value, flags) != CURLUE_OK || value == nullptr) return "";
  CurlStringPtr owned(value);
  return std::string(value);
}

// `url` for a message when it could not be parsed: a password in the userinfo is cut out.
std::string RedactPassword(absl::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) return std::string(url);
  const size_t authority = scheme_end + 3;
  const size_t authority_end = std::min(url.find_first_of("/?#", authority), url.size());
  const size_t at = url.substr(0, authority_end).rfind('@');
  if (at == absl::string_view::npos || at < authority) return std::string(url);
  const size_t colon = url.substr(0, at).find(':', authority);
  if (colon == absl::string_view::npos) return std::string(url);
  return absl::StrCat(url.substr(0, colon), url.substr(at));
}

// A URL that passed validation: what Perform() needs to know about it.
struct CheckedUrl {
  std::string origin;   // scheme://host:port, lower-cased, for the cross-origin redirect rule
  std::string display;  // for messages: the URL without a password
};

// Parses `url` with libcurl's own parser (the one the transfer will use) and accepts only absolute
// http and https URLs with a host.
absl::StatusOr<CheckedUrl> CheckUrl(const std::string& url) {
  UrlPtr parsed(curl_url());
  if (parsed == nullptr) return absl::ResourceExhaustedError("out of memory");
  const CURLUcode rc =
      curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME);
  if (rc != CURLUE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid URL \"", RedactPassword(url), "\": ", curl_url_strerror(rc)));
  }
  const std::string scheme = absl::AsciiStrToLower(GetUrlPart(parsed.get(), CURLUPART_SCHEME));
  if (scheme != "http" && scheme != "https") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported URL scheme \"", scheme, "\" (only http and https): ", RedactPassword(url)));
  }
  const std::string host = GetUrlPart(parsed.get(), CURLUPART_HOST);
  if (host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("URL without a host: ", RedactPassword(url)));
  }
  CheckedUrl checked;
  checked.origin = absl::StrCat(scheme, "://", absl::AsciiStrToLower(host), ":",
                                GetUrlPart(parsed.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT));
  checked.display = url;
  if (!GetUrlPart(parsed.get(), CURLUPART_PASSWORD).empty()) {
    curl_url_set(parsed.get(), CURLUPART_PASSWORD, nullptr, 0);
    checked.display = GetUrlPart(parsed.get(), CURLUPART_URL);
  }
  return checked;
}

struct ReasonPhrase {
  int status;
  const char* phrase;
};

// RFC 9110 section 15, for responses whose status line has no reason phrase (all of HTTP/2).
constexpr ReasonPhrase kReasonPhrases[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {511, "Network Authentication Required"},
};

absl::string_view StandardReasonPhrase(int status) {
  for (const ReasonPhrase& r : kReasonPhrases) {
    if (r.status == status) return r.phrase;
  }
  return "";
}

// One request/response exchange: no redirect is followed here.
struct Hop {
  std::string method;
  std::string url;
  HeaderList headers;
  absl::string_view body;  // the caller's request.body, or empty once a redirect dropped it
  std::string display_url;
};

// State shared with the libcurl callbacks of one transfer.
struct TransferState {
  const CancellationToken* cancel = nullptr;
  size_t max_bytes = 0;
  bool over_limit = false;
  bool headers_over_limit = false;
  size_t header_bytes = 0;
  bool out_of_memory = false;
  std::string body;
  HeaderList headers;
  std::string status_text;
};

size_t OnBody(char* data, size_t size, size_t nmemb, void* userdata) {
  auto* state = static_cast<TransferState*>(userdata);
  const size_t n = size * nmemb;
  // Abort as soon as the limit is crossed; returning less than `n` fails with CURLE_WRITE_ERROR.
  if (n > state->max_bytes - state->body.size()) {
    state->over_limit = true;
    return 0;
  }
  try {
    state->body.append(data, n);
  } catch (const std::bad_alloc&) {
    state->out_of_memory = true;
    return 0;
  }
  return n;
}

size_t OnHeader(char* data, size_t size, size_t nitems, void* userdata) {
  auto* state = static_cast<TransferState*>(userdata);
  const size_t n = size * nitems;
  state->header_bytes += n;
  if (state->header_bytes > kMaxHeaderBytes) {
    state->headers_over_limit = true;
    return 0;
  }
  absl::string_view line(data, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  try {
    if (absl::StartsWith(line, "HTTP/")) {
      // A new response starts (after a 1xx interim one): keep only the headers of the last one.
      state->headers.clear();
      state->status_text.clear();
      const size_t code_start = line.find(' ');
      if (code_start != absl::string_view::npos) {
        const size_t reason_start = line.find(' ', code_start + 1);
        if (reason_start != absl::string_view::npos) {
          state->status_text =
              std::string(absl::StripAsciiWhitespace(line.substr(reason_start + 1)));
        }
      }
    } else if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      // Obsolete line folding: the line continues the previous header's value.
      if (!state->headers.empty()) {
        absl::StrAppend(&state->headers.back().second, " ", absl::StripAsciiWhitespace(line));
      }
    } else if (const size_t colon = line.find(':'); colon != absl::string_view::npos && colon > 0) {
      state->headers.emplace_back(absl::AsciiStrToLower(line.substr(0, colon)),
                                  std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
    }
  } catch (const std::bad_alloc&) {
    state->out_of_memory = true;
    return 0;
  }
  return n;
}

int OnProgress(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* state = static_cast<const TransferState*>(userdata);
  return state->cancel != nullptr && state->cancel->cancelled() ? 1 : 0;
}

std::string FormatTimeout(absl::Duration timeout) { return absl::FormatDuration(timeout); }

absl::Status CancelledStatus(const Hop& hop, const CancellationToken& cancel) {
  const absl::Status reason = cancel.reason();
  std::string message = absl::StrCat(hop.method, " ", hop.display_url, ": cancelled");
  if (!reason.message().empty()) absl::StrAppend(&message, " (", reason.message(), ")");
  return absl::CancelledError(message);
}

absl::Status TimeoutStatus(const Hop& hop, absl::Duration timeout) {
  return absl::DeadlineExceededError(
      absl::StrCat(hop.method, " ", hop.display_url, ": timed out after ", FormatTimeout(timeout)));
}

// The one place that turns a failed transfer into a Status (codes as in http_client.h).
absl::Status TransferError(CURLcode code, CURL* easy, const TransferState& state,
                           const char* errbuf, const Hop& hop, const HttpClientRequest& request,
                           const CancellationToken* cancel) {
  const std::string prefix = absl::StrCat(hop.method, " ", hop.display_url, ": ");
  const std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code);
  if (cancel != nullptr && cancel->cancelled()) return CancelledStatus(hop, *cancel);
  if (state.out_of_memory || code == CURLE_OUT_OF_MEMORY) {
    return absl::ResourceExhaustedError(absl::StrCat(prefix, "out of memory"));
  }
  if (state.headers_over_limit) {
    return absl::ResourceExhaustedError(
        absl::StrCat(prefix, "response headers are larger than ", kMaxHeaderBytes, " bytes"));
  }
  if (state.over_limit || code == CURLE_FILESIZE_EXCEEDED) {
    return absl::ResourceExhaustedError(absl::StrCat(prefix, "response body is larger than ",
                                                     request.max_response_bytes, " bytes"));
  }
  switch (code) {
    case CURLE_ABORTED_BY_CALLBACK:
      return absl::CancelledError(absl::StrCat(prefix, "cancelled"));
    case CURLE_OPERATION_TIMEDOUT:
      return TimeoutStatus(hop, request.timeout);
    case CURLE_URL_MALFORMAT:
      return absl::InvalidArgumentError(absl::StrCat(prefix, "invalid URL (", detail, ")"));
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return absl::UnavailableError(absl::StrCat(prefix, "DNS lookup failed (", detail, ")"));
    case CURLE_COULDNT_CONNECT: {
      long os_errno = 0;  // NOLINT(runtime/int): libcurl's type
      curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
      if (os_errno == ECONNREFUSED) {
        return absl::UnavailableError(absl::StrCat(prefix, "connection refused"));
      }
      return absl::UnavailableError(absl::StrCat(prefix, "could not connect (", detail, ")"));
    }
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
      return absl::UnavailableError(absl::StrCat(prefix, "connection error (", detail, ")"));
    case CURLE_GOT_NOTHING:
      return absl::UnavailableError(
          absl::StrCat(prefix, "the server closed the connection without sending a response"));
    case CURLE_PARTIAL_FILE:
      return absl::UnavailableError(absl::StrCat(
          prefix, "the connection closed before the whole response arrived (", detail, ")"));
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:  // the URL was checked: here, an HTTP/0.9 or garbage reply
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_BAD_CONTENT_ENCODING:
      return absl::UnavailableError(absl::StrCat(prefix, "malformed response (", detail, ")"));
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return absl::UnavailableError(absl::StrCat(prefix, "TLS error (", detail, ")"));
    default:
      return absl::InternalError(absl::StrCat(prefix, "transfer failed (curl error ",
                                              static_cast<int>(code), ": ", detail, ")"));
  }
}

struct HopResult {
  HttpClientResponse response;
  std::string redirect_url;  // the Location, resolved; empty when none
};

// Runs `easy` on the thread's multi handle until it completes, the token is cancelled or the
// deadline passes. Returns the transfer's CURLcode, or CANCELLED / DEADLINE_EXCEEDED.
absl::StatusOr<CURLcode> RunTransfer(CURLM* multi, CURL* easy, const Hop& hop,
                                     const HttpClientRequest& request, absl::Time deadline,
                                     const CancellationToken* cancel) {
  if (CURLMcode mc = curl_multi_add_handle(multi, easy); mc != CURLM_OK) {
    return absl::InternalError(absl::StrCat(hop.method, " ", hop.display_url,
                                            ": curl_multi_add_handle: ", curl_multi_strerror(mc)));
  }
  // Removing the handle mid-transfer aborts it and closes its connection.
  struct Remover {
    CURLM* multi;
    CURL* easy;
    ~Remover() { curl_multi_remove_handle(multi, easy); }
  } remover{multi, easy};

  while (true) {
    int running = 0;
    CURLMcode mc = curl_multi_perform(multi, &running);
    if (mc != CURLM_OK) {
      return absl::InternalError(absl::StrCat(hop.method, " ", hop.display_url,
                                              ": curl_multi_perform: ", curl_multi_strerror(mc)));
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) return msg->data.result;
    }
    if (running == 0) {
      return absl::InternalError(
          absl::StrCat(hop.method, " ", hop.display_url, ": transfer stopped without a result"));
    }
    if (cancel != nullptr && cancel->cancelled()) return CancelledStatus(hop, *cancel);
    // libcurl enforces CURLOPT_TIMEOUT_MS itself; this is the backstop.
    if (absl::Now() >= deadline) return TimeoutStatus(hop, request.timeout);
    mc = curl_multi_poll(multi, nullptr, 0, kCancelPollMs, nullptr);
    if (mc != CURLM_OK) {
      return absl::InternalError(absl::StrCat(hop.method, " ", hop.display_url,
                                              ": curl_multi_poll: ", curl_multi_strerror(mc)));
    }
  }
}

absl::StatusOr<HopResult> PerformHop(CURLM* multi, const Hop& hop, const HttpClientRequest& request,
                                     absl::Time deadline, const CancellationToken* cancel) {
  const absl::Duration remaining = deadline - absl::Now();
  if (remaining <= absl::ZeroDuration()) return TimeoutStatus(hop, request.timeout);
  // 0 would mean "no timeout" to libcurl; an infinite request timeout maps to that on purpose.
  long timeout_ms = 0;  // NOLINT(runtime/int): libcurl's type
  if (remaining != absl::InfiniteDuration()) {
    timeout_ms = static_cast<long>(  // NOLINT(runtime/int)
        std::clamp<int64_t>(absl::ToInt64Milliseconds(absl::Ceil(remaining, absl::Milliseconds(1))),
                            1, LONG_MAX));
  }

  TransferState state;
  state.cancel = cancel;
  state.max_bytes = request.max_response_bytes;
  char errbuf[CURL_ERROR_SIZE];
  errbuf[0] = '\0';

  const bool is_head = hop.method == "HEAD";
  const bool send_body = !is_head && (!hop.body.empty() || hop.method == "POST" ||
                                      hop.method == "PUT" || hop.method == "PATCH");

  // Request headers. "Name;" is libcurl's way of sending a header with an empty value ("Name:"
  // would remove it); the empty "Expect:" and "Content-Type:" remove libcurl's defaults.
  SlistPtr header_list;
  const auto add_header = [&](const std::string& line) -> bool {
    // Appending to a non-empty list returns its (unchanged) head.
    curl_slist* head = curl_slist_append(header_list.get(), line.c_str());
    if (head == nullptr) return false;
    if (header_list == nullptr) header_list.reset(head);
    return true;
  };
  bool headers_ok = true;
  for (const auto& [name, value] : hop.headers) {
    headers_ok &=
        add_header(value.empty() ? absl::StrCat(name, ";") : absl::StrCat(name, ": ", value));
  }
  if (!HasHeader(hop.headers, "Expect")) headers_ok &= add_header("Expect:");
  if (send_body && !HasHeader(hop.headers, "Content-Type")) {
    headers_ok &= add_header("Content-Type:");
  }
  if (!headers_ok) return absl::ResourceExhaustedError("out of memory");

  // Declared after everything it points to (state, errbuf, header list), so destroyed first.
  EasyPtr easy(curl_easy_init());
  if (easy == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
  CURL* h = easy.get();

  curl_easy_setopt(h, CURLOPT_URL, hop.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, kAllowedProtocols);
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, kAllowedProtocols);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);  // followed by Perform(), see there
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  // Do not wait for a slow DNS resolver thread when the transfer is aborted (cancel).
  curl_easy_setopt(h, CURLOPT_QUICK_EXIT, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &state);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &state);
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");  // all encodings this libcurl can decode
  curl_easy_setopt(h, CURLOPT_USERAGENT, kDefaultUserAgent);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, header_list.get());
  // A Content-Length above the cap fails before any of the body is read. Not for HEAD, whose
  // Content-Length describes a body that never comes.
  if (!is_head && request.max_response_bytes > 0) {
    curl_easy_setopt(
        h, CURLOPT_MAXFILESIZE_LARGE,
        static_cast<curl_off_t>(std::min<uint64_t>(request.max_response_bytes, INT64_MAX)));
  }
  if (is_head) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (hop.method == "GET" && !send_body) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    if (send_body) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(hop.body.size()));
      // Never NULL: that would make libcurl read the body from stdin.
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, hop.body.empty() ? "" : hop.body.data());
    }
    // POST goes through CURLOPT_POSTFIELDS alone; every other method is named explicitly. Since
    // libcurl does not follow redirects here, it never re-sends this method on its own.
    if (hop.method != "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, hop.method.c_str());
  }

  NDX_ASSIGN_OR_RETURN(const CURLcode code, RunTransfer(multi, h, hop, request, deadline, cancel));
  if (code != CURLE_OK) return TransferError(code, h, state, errbuf, hop, request, cancel);

  HopResult result;
  long status = 0;  // NOLINT(runtime/int): libcurl's type
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  result.response.status = static_cast<int>(status);
  char* effective_url = nullptr;
  curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective_url);
  result.response.final_url = effective_url != nullptr ? effective_url : hop.url;
  char* redirect_url = nullptr;
  curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &redirect_url);
  if (redirect_url != nullptr) result.redirect_url = redirect_url;
  result.response.headers = std::move(state.headers);
  result.response.body = std::move(state.body);
  result.response.status_text = state.status_text.empty()
                                    ? std::string(StandardReasonPhrase(result.response.status))
                                    : std::move(state.status_text);
  return result;
}

bool IsFollowedRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

void InitHttpClient() {
  static std::once_flag once;
  std::call_once(once, [] { NDX_CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK); });
}

absl::StatusOr<HttpClientResponse> HttpClient::Perform(const HttpClientRequest& request,
                                                       const CancellationToken* cancel) const {
  InitHttpClient();
  const absl::Time start = absl::Now();

  Hop hop;
  hop.method = absl::AsciiStrToUpper(request.method);
  hop.url = request.url;
  hop.headers = request.headers;
  hop.body = request.body;  // a view: `request` outlives every hop

  NDX_ASSIGN_OR_RETURN(CheckedUrl checked, CheckUrl(request.url));
  hop.display_url = checked.display;
  const std::string original = absl::StrCat(hop.method, " ", checked.display);
  const std::string where = absl::StrCat(hop.method, " ", hop.display_url, ": ");
  if (!IsToken(hop.method)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid HTTP method \"", request.method, "\" for ", hop.display_url));
  }
  if (hop.method == "HEAD" && !hop.body.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, "a HEAD request cannot have a body"));
  }
  for (const auto& [name, value] : hop.headers) {
    if (!IsToken(name)) {
      return absl::InvalidArgumentError(absl::StrCat(where, "invalid header name \"", name, "\""));
    }
    // The value itself is never quoted in a message: it may be a credential.
    if (value.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "the value of header \"", name, "\" contains a line break or NUL"));
    }
  }
  if (request.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(where, "the timeout must be positive"));
  }
  if (request.max_redirects < 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, "max_redirects must not be negative"));
  }

  CURLM* multi = ThreadMulti();
  if (multi == nullptr) return absl::ResourceExhaustedError("curl_multi_init failed");
  const absl::Time deadline = start + request.timeout;

  for (int redirects = 0;; ++redirects) {
    if (cancel != nullptr && cancel->cancelled()) return CancelledStatus(hop, *cancel);
    NDX_ASSIGN_OR_RETURN(HopResult result, PerformHop(multi, hop, request, deadline, cancel));
    if (!request.follow_redirects || !IsFollowedRedirect(result.response.status) ||
        result.redirect_url.empty()) {
      return std::move(result.response);
    }
    if (redirects >= request.max_redirects) {
      return absl::FailedPreconditionError(
          absl::StrCat(original, ": stopped after ", redirects,
                       " redirects (redirect loop?); the last one pointed to ",
                       RedactPassword(result.redirect_url)));
    }
    absl::StatusOr<CheckedUrl> next = CheckUrl(result.redirect_url);
    if (!next.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(hop.method, " ", hop.display_url,
                       ": cannot follow the redirect: ", next.status().message()));
    }
    // fetch() semantics (https://fetch.spec.whatwg.org/#http-redirect-fetch).
    const int status = result.response.status;
    if ((status == 303 && hop.method != "GET" && hop.method != "HEAD") ||
        ((status == 301 || status == 302) && hop.method == "POST")) {
      hop.method = "GET";
      hop.body = absl::string_view();
      RemoveHeaders(hop.headers, {"Content-Type", "Content-Length", "Content-Encoding",
                                  "Content-Language", "Content-Location"});
    }
    if (next->origin != checked.origin) {
      RemoveHeaders(hop.headers, {"Authorization", "Proxy-Authorization", "Cookie", "Host"});
    }
    hop.url = std::move(result.redirect_url);
    hop.display_url = next->display;
    checked = *std::move(next);
  }
}

std::string UrlEncode(absl::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(b) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xF]);
    }
  }
  return out;
}

}  // namespace ndx::engine
