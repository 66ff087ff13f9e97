// The REST API and the dashboard files as a function from a request to a response
// (docs/rest-api.md): routing, authentication, the JSON body rules, the envelope and the error
// table. It knows nothing of sockets: the server (Server.cpp) and the fuzz target
// (tests/fuzz/GatewayRouterFuzz.cpp) both call Api::handle, with a Backend that reaches
// ringcapd (ClientBackend) or stands in for it.
#pragma once

#include "Router.h"
#include "TokenStore.h"
#include "util/Result.h"
#include "util/UniqueFd.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace ringcap::gateway {

// ringcapd's methods as the gateway calls them (api::Client's, behind an interface).
class Backend {
public:
  virtual ~Backend() = default;
  virtual Result<nlohmann::json> createCapture(const nlohmann::json &request) = 0; // the record
  virtual Result<nlohmann::json> getCapture(const std::string &id) = 0;
  virtual Result<nlohmann::json> listCaptures() = 0;
  virtual Result<void> stopCapture(const std::string &id) = 0;
  virtual Result<UniqueFd> openCaptureFile(const std::string &id) = 0;
  virtual Result<nlohmann::json> createOwnership(const std::string &destination) = 0;
  virtual Result<nlohmann::json> validateOwnership(const std::string &destination,
                                                   const std::string &challenge) = 0;
  virtual Result<nlohmann::json> listOwnerships() = 0;
  virtual Result<void> deleteOwnership(const std::string &id) = 0;
};

struct HttpRequest {
  std::string method; // "GET", "HEAD", ...
  std::string path;   // decoded, without the query
  std::string body;
  std::string authorization; // the Authorization header
  std::string authKey;       // X-Auth-Key
  std::string authEmail;     // X-Auth-Email
  std::string remote;        // the client's address
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string contentType = "application/json";
  std::string body;
  // A download: the file to stream (body empty), and its size. `streamed`: a pipe or a socket
  // of unknown length (fleet mode's merged download), read to its end and sent with chunked
  // transfer encoding; a read error cuts the reply short (no last chunk).
  std::shared_ptr<UniqueFd> file;
  uint64_t fileSize = 0;
  bool streamed = false;
  // Who sent it, for the log: a token's name or hash prefix, "-" when none was sent.
  std::string who = "-";
};

// Error codes of the envelope beside the ErrorKind ones (errorCode(kind) = 1000 + the kind's
// row in api::kErrorKinds); docs/rest-api.md lists them all.
inline constexpr int kCodeAuthentication = 10000; // 401, as Cloudflare's API
inline constexpr int kCodeNoRoute = 7000;         // 404, as Cloudflare's API
inline constexpr int kCodeMethodNotAllowed = 7001;
inline constexpr int kCodeTooLarge = 7002; // 413
inline constexpr int kCodeHttp = 7003;     // any other HTTP-level error (400 of a bad request line)
int errorCode(ErrorKind kind);

inline constexpr size_t kMaxBodyBytes = 64 * 1024;
// How deep arrays and objects may nest in a request body (ringcapd's deepest field,
// filter_v1.<key>, is at depth 2).
inline constexpr size_t kMaxJsonDepth = 32;

// An error reply: the envelope with one error, Content-Type application/json.
HttpResponse errorResponse(int status, int code, const std::string &message,
                           const std::string &pointer = "");
// `{"success":true,"errors":[],"messages":[],"result":...}`.
std::string successEnvelope(const nlohmann::json &result,
                            const nlohmann::json &resultInfo = nullptr);

// The request body as JSON: an object, with whole floats (10.0) made integers.
// InvalidRequest naming the rule otherwise.
Result<nlohmann::json> parseJsonBody(std::string_view body);
void wholeFloatsToIntegers(nlohmann::json &j);

// The JSON pointer of the field an error message starts with ("filter_v1.source_port: must
// be ..." -> "/filter_v1/source_port", "list[2].x: ..." -> "/list/2/x"); empty when the
// message does not start with a field path.
std::string pointerOf(std::string_view message);

// One line of the request log: `METHOD PATH STATUS DURATIONms WHO ADDRESS`. Every field is
// one word: bytes outside printable ASCII, spaces and backslashes are written as \xNN, so that
// a client's path can neither break the line nor forge the fields after it; "-" stands for an
// empty field.
std::string requestLogLine(std::string_view method, std::string_view path, int status, double ms,
                           std::string_view who, std::string_view remote);

// Slows down guessing: after kMaxBadTokens bad or missing tokens from one source within
// kBadTokenWindow, that source gets 429 (Retry-After: the rest of the window) without its
// token being checked, until the window ends. A source is an IPv4 address, or the /64 prefix
// of an IPv6 address (one host usually holds a whole /64). At most kMaxSources are tracked:
// when the table is full, a source that is not blocked makes room first (the oldest window).
class BadTokenLimiter {
public:
  static constexpr int kMaxBadTokens = 20;
  static constexpr std::chrono::seconds kBadTokenWindow{60};
  static constexpr size_t kMaxSources = 4096;
  using Clock = std::chrono::steady_clock;
  // Seconds to wait when `remote` is blocked, 0 otherwise.
  uint64_t blockedFor(const std::string &remote, Clock::time_point now);
  void recordFailure(const std::string &remote, Clock::time_point now);
  size_t size();
  // The key of an address: the IPv4 address (also of an IPv4-mapped IPv6 one), the /64 of an
  // IPv6 address ("2001:db8:0:1::/64"), or the text itself when it is neither.
  static std::string sourceOf(const std::string &remote);

private:
  struct Window {
    Clock::time_point start;
    int failures = 0;
  };
  std::mutex mutex_;
  std::map<std::string, Window> windows_;
};

class Api {
public:
  Api(std::string accountId, TokenStore tokens, std::string dashboardDir)
      : accountId_(std::move(accountId)),
        tokens_(std::make_shared<const TokenStore>(std::move(tokens))),
        dashboardDir_(std::move(dashboardDir)) {}

  HttpResponse handle(const HttpRequest &request, Backend &backend,
                      BadTokenLimiter::Clock::time_point now = BadTokenLimiter::Clock::now());

  // Replaces the tokens (a reload of tokens_file); requests being served keep the set they
  // started with.
  void setTokens(TokenStore tokens);
  std::shared_ptr<const TokenStore> tokens() const;

private:
  HttpResponse serveFile(const std::string &name) const;
  HttpResponse call(const RouteMatch &m, const HttpRequest &request, Backend &backend);

  std::string accountId_;
  mutable std::mutex tokensMutex_;
  std::shared_ptr<const TokenStore> tokens_;
  std::string dashboardDir_;
  BadTokenLimiter limiter_;
};

} // namespace ringcap::gateway
