// Fuzz target: the gateway's token handling (services/gateway/auth.h). The first byte picks what
// the rest is:
//   0: a token for VerifyJwtHs256 and Authenticator::Authenticate, as a client sends it;
//   1: the claims JSON of a token signed with the right secret (reaches the claim checks, which an
//      unsigned token never does);
//   2: "<header JSON>\n<claims JSON>", signed with the right secret;
//   3: an Authorization header value and a query string ("<header>\n<query>") for BearerToken and
//      QueryParam.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "services/gateway/auth.h"

namespace {

constexpr std::string_view kSecret = "0123456789abcdef0123456789abcdef";

std::string B64(std::string_view s) {
  std::string out;
  absl::WebSafeBase64Escape(absl::string_view(s.data(), s.size()), &out);
  return out;
}

std::string HmacSha256(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

void Check(const std::string& token) {
  static const ndx::gateway::Authenticator* auth = new ndx::gateway::Authenticator(
      {.disabled = false, .jwt_secret = std::string(kSecret)}, nullptr);
  (void)ndx::gateway::VerifyJwtHs256(token, kSecret, absl::FromUnixSeconds(1800000000));
  (void)auth->Authenticate(token, "w1");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      Check(std::string(rest));
      break;
    case 1:
      Check(ndx::gateway::SignJwtHs256(rest, kSecret));
      break;
    case 2: {
      const size_t nl = rest.find('\n');
      const std::string_view header = rest.substr(0, nl);
      const std::string_view claims = nl == std::string_view::npos ? "" : rest.substr(nl + 1);
      const std::string input = absl::StrCat(B64(header), ".", B64(claims));
      Check(absl::StrCat(input, ".", B64(HmacSha256(input))));
      break;
    }
    default: {
      const size_t nl = rest.find('\n');
      const std::string header(rest.substr(0, nl));
      const std::string_view query = nl == std::string_view::npos ? "" : rest.substr(nl + 1);
      (void)ndx::gateway::BearerToken({{"authorization", header}}, query);
      (void)ndx::gateway::QueryParam(query, "token");
      break;
    }
  }
  return 0;
}
