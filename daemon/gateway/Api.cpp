#include "Api.h"

#include "api/ServiceApi.h"
#include "util/Text.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <sys/stat.h>
#include <unistd.h>

namespace ringcap::gateway {
namespace {

using nlohmann::json;

// Retry-After of a 429 whose message does not say when (all capture slots busy, a full
// ownership store): a guess that keeps a polling client from hammering.
constexpr uint64_t kDefaultRetryAfterSeconds = 10;
constexpr size_t kMaxDashboardFileBytes = 8 << 20;

const char *contentTypeOf(const std::string &name) {
  static const std::pair<const char *, const char *> types[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json"},
  };
  for (const auto &[ext, type] : types)
    if (name.ends_with(ext))
      return type;
  return "application/octet-stream";
}

// A file name for Content-Disposition: the record's file_name with anything outside
// [A-Za-z0-9._-] replaced (ringcapd's names never have such characters).
std::string dispositionName(const std::string &name) {
  std::string out;
  for (char c : name)
    out +=
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ? c : '_';
  return out.empty() ? "capture.pcap" : out;
}

HttpResponse fromError(const Error &e) {
  int status = api::httpStatus(e.kind);
  auto r = errorResponse(status, errorCode(e.kind), e.message, pointerOf(e.message));
  if (status == 429)
    r.headers.emplace_back("Retry-After", std::to_string(api::retryAfterSeconds(e.message).value_or(
                                              kDefaultRetryAfterSeconds)));
  if (e.kind == ErrorKind::Unavailable)
    // Nothing reached ringcapd (the bus is unreachable, or ringcapd is not on it): a retry of
    // any request, a create included, is safe.
    r.headers.emplace_back("x-should-retry", "true");
  return r;
}

HttpResponse ok(const json &result, const json &resultInfo = nullptr) {
  HttpResponse r;
  r.body = successEnvelope(result, resultInfo);
  return r;
}

HttpResponse okList(const json &list) {
  json info = {
      {"page", 1}, {"per_page", list.size()}, {"count", list.size()}, {"total_count", list.size()}};
  return ok(list, info);
}

HttpResponse noContent() {
  HttpResponse r;
  r.status = 204;
  r.contentType.clear();
  return r;
}

// A string member of a JSON body, or InvalidRequest naming it.
Result<std::string> stringMember(const json &body, const char *key) {
  auto it = body.find(key);
  if (it == body.end())
    return Error{ErrorKind::InvalidRequest, std::string(key) + ": required, a string"};
  if (!it->is_string())
    return Error{ErrorKind::InvalidRequest,
                 std::string(key) + ": must be a string (got " + safeText(it->dump(), 80) + ")"};
  return it->get<std::string>();
}

} // namespace

int errorCode(ErrorKind kind) { return 1000 + static_cast<int>(kind); }

std::string successEnvelope(const json &result, const json &resultInfo) {
  json env = {{"success", true},
              {"errors", json::array()},
              {"messages", json::array()},
              {"result", result}};
  if (!resultInfo.is_null())
    env["result_info"] = resultInfo;
  return env.dump(-1, ' ', false, json::error_handler_t::replace);
}

HttpResponse errorResponse(int status, int code, const std::string &message,
                           const std::string &pointer) {
  json err = {{"code", code}, {"message", message}};
  if (!pointer.empty())
    err["source"] = {{"pointer", pointer}};
  json env = {{"success", false},
              {"errors", json::array({err})},
              {"messages", json::array()},
              {"result", nullptr}};
  HttpResponse r;
  r.status = status;
  r.body = env.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

void wholeFloatsToIntegers(json &j) {
  if (j.is_number_float()) {
    double d = j.get<double>();
    if (std::isfinite(d) && std::trunc(d) == d) {
      // Within int64's range (-2^63 .. 2^63) or uint64's (2^63 .. 2^64): exactly representable
      // bounds, so the casts below are defined.
      if (d >= -9223372036854775808.0 && d < 9223372036854775808.0)
        j = static_cast<int64_t>(d);
      else if (d >= 0 && d < 18446744073709551616.0)
        j = static_cast<uint64_t>(d);
    }
  } else if (j.is_object() || j.is_array()) {
    for (auto &v : j)
      wholeFloatsToIntegers(v);
  }
}

Result<json> parseJsonBody(std::string_view body) {
  if (body.size() > kMaxBodyBytes)
    return Error{ErrorKind::InvalidRequest,
                 "request body: larger than " + std::to_string(kMaxBodyBytes) + " bytes"};
  // Nesting is bounded before the parse: the parsed value is walked recursively afterwards.
  size_t depth = 0;
  bool inString = false;
  for (size_t i = 0; i < body.size(); i++) {
    char c = body[i];
    if (inString) {
      if (c == '\\')
        i++;
      else if (c == '"')
        inString = false;
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        return Error{ErrorKind::InvalidRequest, "request body: nested deeper than " +
                                                    std::to_string(kMaxJsonDepth) + " levels"};
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
  }
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded())
    return Error{ErrorKind::InvalidRequest,
                 body.empty() ? "request body: required, a JSON object"
                              : "request body: not valid JSON (a JSON object is expected)"};
  if (!j.is_object())
    return Error{ErrorKind::InvalidRequest,
                 std::string("request body: must be a JSON object (got ") + j.type_name() + ")"};
  wholeFloatsToIntegers(j);
  return j;
}

std::string pointerOf(std::string_view message) {
  auto colon = message.find(": ");
  if (colon == std::string_view::npos || colon == 0 || colon > 200)
    return "";
  auto path = message.substr(0, colon);
  std::string ptr;
  bool segmentStart = true;
  for (size_t i = 0; i < path.size(); i++) {
    char c = path[i];
    if (std::islower(static_cast<unsigned char>(c)) || c == '_' ||
        (std::isdigit(static_cast<unsigned char>(c)) && !segmentStart)) {
      if (segmentStart)
        ptr += '/';
      ptr += c;
      segmentStart = false;
    } else if (c == '.' && !segmentStart) {
      segmentStart = true;
    } else if (c == '[' && !segmentStart) {
      auto close = path.find(']', i);
      if (close == std::string_view::npos || close == i + 1)
        return "";
      auto index = path.substr(i + 1, close - i - 1);
      if (index.find_first_not_of("0123456789") != std::string_view::npos)
        return "";
      ptr += '/';
      ptr += index;
      i = close;
    } else {
      return "";
    }
  }
  if (segmentStart)
    return ""; // empty, or ends with a dot
  return ptr;
}

std::string requestLogLine(std::string_view method, std::string_view path, int status, double ms,
                           std::string_view who, std::string_view remote) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto field = [](std::string_view s, size_t max) {
    if (s.empty())
      return std::string("-");
    std::string out;
    for (unsigned char c : s) {
      if (out.size() + 4 > max) {
        out += "...";
        break;
      }
      if (c > 0x20 && c < 0x7f && c != '\\') {
        out += static_cast<char>(c);
      } else {
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 15];
      }
    }
    return out;
  };
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.1fms", ms);
  return field(method, 16) + " " + field(path, 300) + " " + std::to_string(status) + " " +
         duration + " " + field(who, 80) + " " + field(remote, 64);
}

std::string BadTokenLimiter::sourceOf(const std::string &remote) {
  in6_addr a6{};
  if (inet_pton(AF_INET6, remote.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
      char v4[INET_ADDRSTRLEN];
      if (inet_ntop(AF_INET, &a6.s6_addr[12], v4, sizeof v4))
        return v4;
    }
    std::memset(&a6.s6_addr[8], 0, 8);
    char v6[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, &a6, v6, sizeof v6))
      return std::string(v6) + "/64";
  }
  return remote;
}

size_t BadTokenLimiter::size() {
  std::lock_guard lock(mutex_);
  return windows_.size();
}

uint64_t BadTokenLimiter::blockedFor(const std::string &remote, Clock::time_point now) {
  std::string source = sourceOf(remote);
  std::lock_guard lock(mutex_);
  auto it = windows_.find(source);
  if (it == windows_.end())
    return 0;
  auto end = it->second.start + kBadTokenWindow;
  if (now >= end) {
    windows_.erase(it);
    return 0;
  }
  if (it->second.failures < kMaxBadTokens)
    return 0;
  auto left = std::chrono::duration_cast<std::chrono::seconds>(end - now).count();
  return left < 1 ? 1 : static_cast<uint64_t>(left);
}

void BadTokenLimiter::recordFailure(const std::string &remote, Clock::time_point now) {
  std::string source = sourceOf(remote);
  std::lock_guard lock(mutex_);
  if (!windows_.count(source) && windows_.size() >= kMaxSources) {
    // Room for a new source: windows that ended go first, then the oldest window of a source
    // that is not blocked, and only when every source is blocked the oldest blocked one (its
    // window ends first). A flood of new addresses thus never frees a blocked one early.
    std::erase_if(windows_,
                  [&](const auto &kv) { return now >= kv.second.start + kBadTokenWindow; });
    if (windows_.size() >= kMaxSources) {
      auto victim = windows_.end();
      bool victimBlocked = true;
      for (auto it = windows_.begin(); it != windows_.end(); ++it) {
        bool blocked = it->second.failures >= kMaxBadTokens;
        if (victim == windows_.end() || (victimBlocked && !blocked) ||
            (victimBlocked == blocked && it->second.start < victim->second.start)) {
          victim = it;
          victimBlocked = blocked;
        }
      }
      windows_.erase(victim);
    }
  }
  auto &w = windows_[source];
  if (w.failures == 0 || now >= w.start + kBadTokenWindow)
    w = Window{now, 0};
  w.failures++;
}

HttpResponse Api::serveFile(const std::string &name) const {
  auto notFound = [&] {
    return errorResponse(404, kCodeNoRoute, "no such file or route: /" + safeText(name, 128));
  };
  if (!isDashboardFileName(name) || dashboardDir_.empty())
    return notFound();
  std::string path = dashboardDir_ + "/" + name;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd)
    return notFound();
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) > kMaxDashboardFileBytes)
    return notFound();
  HttpResponse r;
  r.body.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < r.body.size()) {
    ssize_t n = ::read(fd.get(), r.body.data() + got, r.body.size() - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += static_cast<size_t>(n);
  }
  r.body.resize(got);
  r.contentType = contentTypeOf(name);
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; script-src 'self'; style-src 'self'; "
                         "img-src 'self'; connect-src 'self'; object-src 'none'; "
                         "base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  return r;
}

HttpResponse Api::call(const RouteMatch &m, const HttpRequest &request, Backend &backend) {
  auto bodyOf = [&]() { return parseJsonBody(request.body); };
  switch (m.route) {
  case Route::CreateCapture: {
    auto body = bodyOf();
    if (!body)
      return fromError(body.error());
    // ringcapd takes a caller-supplied id from root and the fleet agent only; over REST, as in
    // Cloudflare's API, the service chooses it.
    if (body->is_object() && body->contains("id"))
      return fromError(Error{ErrorKind::InvalidRequest,
                             "id: unknown field (the service chooses a capture's id)"});
    auto r = backend.createCapture(*body);
    return r ? ok(*r) : fromError(r.error());
  }
  case Route::ListCaptures: {
    auto r = backend.listCaptures();
    return r ? okList(*r) : fromError(r.error());
  }
  case Route::GetCapture: {
    auto r = backend.getCapture(m.id);
    return r ? ok(*r) : fromError(r.error());
  }
  case Route::StopCapture: {
    auto r = backend.stopCapture(m.id);
    return r ? noContent() : fromError(r.error());
  }
  case Route::DownloadCapture: {
    auto record = backend.getCapture(m.id);
    if (!record)
      return fromError(record.error());
    auto fd = backend.openCaptureFile(m.id);
    if (!fd)
      return fromError(fd.error());
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0 ||
        !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
      return fromError(Error::fromErrno(errno ? errno : EINVAL, "the capture's file"));
    HttpResponse r;
    r.streamed = !S_ISREG(st.st_mode);
    std::string name = dispositionName(record->value("file_name", "pcap_" + m.id + ".pcap"));
    r.contentType =
        name.ends_with(".pcapng") ? "application/x-pcapng" : "application/vnd.tcpdump.pcap";
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + name + "\"");
    r.fileSize = static_cast<uint64_t>(st.st_size);
    r.file = std::make_shared<UniqueFd>(std::move(*fd));
    return r;
  }
  case Route::CreateOwnership: {
    auto body = bodyOf();
    if (!body)
      return fromError(body.error());
    auto dest = stringMember(*body, "destination_conf");
    if (!dest)
      return fromError(dest.error());
    auto r = backend.createOwnership(*dest);
    return r ? ok(*r) : fromError(r.error());
  }
  case Route::ListOwnerships: {
    auto r = backend.listOwnerships();
    return r ? okList(*r) : fromError(r.error());
  }
  case Route::ValidateOwnership: {
    auto body = bodyOf();
    if (!body)
      return fromError(body.error());
    auto dest = stringMember(*body, "destination_conf");
    if (!dest)
      return fromError(dest.error());
    auto challenge = stringMember(*body, "ownership_challenge");
    if (!challenge)
      return fromError(challenge.error());
    auto r = backend.validateOwnership(*dest, *challenge);
    return r ? ok(*r) : fromError(r.error());
  }
  case Route::DeleteOwnership: {
    auto r = backend.deleteOwnership(m.id);
    return r ? noContent() : fromError(r.error());
  }
  default:
    return errorResponse(404, kCodeNoRoute, "no route for that URI");
  }
}

void Api::setTokens(TokenStore tokens) {
  auto next = std::make_shared<const TokenStore>(std::move(tokens));
  std::lock_guard lock(tokensMutex_);
  tokens_ = std::move(next);
}

std::shared_ptr<const TokenStore> Api::tokens() const {
  std::lock_guard lock(tokensMutex_);
  return tokens_;
}

HttpResponse Api::handle(const HttpRequest &request, Backend &backend,
                         BadTokenLimiter::Clock::time_point now) {
  RouteMatch m = matchRoute(request.method, request.path);
  HttpResponse r;
  std::string who = "-";
  if (m.route == Route::NoRoute) {
    r = errorResponse(404, kCodeNoRoute, "no route for that URI");
  } else if (m.route == Route::WrongMethod) {
    r = errorResponse(405, kCodeMethodNotAllowed,
                      "method " + safeText(request.method, 16) +
                          " not allowed here (allowed: " + m.allow + ")");
    r.headers.emplace_back("Allow", m.allow);
  } else if (m.route == Route::DashboardFile) {
    r = serveFile(m.file);
  } else {
    // Authentication: Authorization: Bearer <token>, or X-Auth-Key (+ X-Auth-Email).
    std::string token;
    bool sent = false;
    if (!request.authorization.empty()) {
      sent = true;
      constexpr std::string_view bearer = "Bearer ";
      if (request.authorization.size() > bearer.size() &&
          std::equal(bearer.begin(), bearer.end(), request.authorization.begin(),
                     [](char a, char b) {
                       return std::tolower(static_cast<unsigned char>(a)) ==
                              std::tolower(static_cast<unsigned char>(b));
                     }))
        token = request.authorization.substr(bearer.size());
    } else if (!request.authKey.empty()) {
      sent = true;
      if (!request.authEmail.empty())
        token = request.authKey;
    }
    std::optional<std::string> label;
    if (uint64_t wait = limiter_.blockedFor(request.remote, now); wait > 0) {
      r = errorResponse(429, errorCode(ErrorKind::RateLimited),
                        "too many requests with a missing or bad API token from this address; " +
                            api::retryAfterPhrase(wait));
      r.headers.emplace_back("Retry-After", std::to_string(wait));
    } else if (!sent) {
      limiter_.recordFailure(request.remote, now);
      r = errorResponse(401, kCodeAuthentication,
                        "authentication required: send Authorization: Bearer <API token> (or "
                        "X-Auth-Key and X-Auth-Email)");
    } else if (token.empty() || !(label = tokens()->check(token))) {
      limiter_.recordFailure(request.remote, now);
      if (!token.empty())
        who = TokenStore::hashLabel(token);
      r = errorResponse(401, kCodeAuthentication,
                        token.empty() && !request.authorization.empty()
                            ? "invalid Authorization header: Bearer <API token> expected"
                        : token.empty() ? "X-Auth-Key needs X-Auth-Email"
                                        : "invalid API token");
    } else if (who = *label; m.account != accountId_) {
      r = errorResponse(404, errorCode(ErrorKind::NotFound),
                        "account " + safeText(m.account, 64) + ": not found");
    } else {
      r = call(m, request, backend);
    }
    if (r.status == 401)
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"ringcap\"");
  }
  r.who = who;
  if (request.method == "POST" && r.status >= 400) {
    bool set = false;
    for (const auto &[k, v] : r.headers)
      set = set || k == "x-should-retry";
    // A create must not be sent twice: the SDK retries 409, 429 and 5xx unless told not to.
    if (!set)
      r.headers.emplace_back("x-should-retry", "false");
  }
  return r;
}

} // namespace ringcap::gateway
