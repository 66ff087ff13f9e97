// ringcap-gateway's request handling (Api::handle: routing, authentication, JSON bodies,
// envelope, error table) over a Backend that answers as ringcapd would (it validates a
// create with the same validator). Input: "METHOD PATH\nAUTH\nBODY", where AUTH is "token",
// "key", "bad" or anything else (no credentials).
// Properties: no crash; the status is one of the documented ones; every reply but 204 and a
// download is the envelope (success iff 2xx, one error with an integer code and a message
// iff not, a pointer that is a JSON pointer); POST errors carry x-should-retry; the log's
// `who` never holds the token.
#include "Api.h"
#include "FuzzCheck.h"
#include "request/CaptureRequest.h"

#include <cstddef>
#include <cstdint>
#include <set>

using namespace ringcap;
using namespace ringcap::gateway;
using nlohmann::json;

namespace {

const std::string kAccount = "0123456789abcdef0123456789abcdef";
const std::string kToken = "fuzz-token-0123456789";

struct FakeRingcapd : Backend {
  Result<json> createCapture(const json &r) override {
    auto v = validateCaptureRequest(r, RequestMode::Api);
    if (!v)
      return Error{ErrorKind::InvalidRequest, v.error().message};
    return json{{"id", "c1"}, {"status", "running"}};
  }
  Result<json> getCapture(const std::string &id) override {
    if (id.size() != 32)
      return Error{ErrorKind::NotFound, "no capture with id \"x\""};
    return json{{"id", id}, {"file_name", "pcap_" + id + ".pcap"}};
  }
  Result<json> listCaptures() override { return json::array(); }
  Result<void> stopCapture(const std::string &id) override {
    if (id.size() != 32)
      return Error{ErrorKind::NotFound, "no capture"};
    return {};
  }
  Result<UniqueFd> openCaptureFile(const std::string &) override {
    return Error{ErrorKind::NotReady, "capture c1 is running"};
  }
  Result<json> createOwnership(const std::string &d) override {
    if (!d.starts_with("file://"))
      return Error{ErrorKind::InvalidRequest, "destination_conf: unsupported scheme"};
    return json{{"id", "o1"}};
  }
  Result<json> validateOwnership(const std::string &, const std::string &c) override {
    if (c.empty())
      return Error{ErrorKind::RateLimited, "slow down; the next is allowed in 3 s"};
    return json{{"id", "o1"}, {"status", "success"}};
  }
  Result<json> listOwnerships() override { return json::array(); }
  Result<void> deleteOwnership(const std::string &) override {
    return Error{ErrorKind::Unavailable, "ringcapd is not running"};
  }
};

std::string header(const HttpResponse &r, const std::string &name) {
  for (const auto &[k, v] : r.headers)
    if (k == name)
      return v;
  return "";
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static Api api(kAccount, *TokenStore::parse("fuzz " + kToken + "\n", "fuzz"), "");
  static FakeRingcapd backend;
  std::string_view in(reinterpret_cast<const char *>(data), size);
  auto nl = in.find('\n');
  std::string_view line = in.substr(0, nl);
  std::string_view rest = nl == std::string_view::npos ? "" : in.substr(nl + 1);
  auto nl2 = rest.find('\n');
  std::string_view auth = rest.substr(0, nl2);
  std::string_view body = nl2 == std::string_view::npos ? "" : rest.substr(nl2 + 1);
  auto sp = line.find(' ');
  HttpRequest req;
  req.method = std::string(line.substr(0, sp));
  req.path = sp == std::string_view::npos ? "" : std::string(line.substr(sp + 1));
  req.body = std::string(body);
  // One address per input: the bad-token limiter must not make every later input a 429.
  req.remote = std::to_string(reinterpret_cast<uintptr_t>(data)) + std::to_string(size);
  if (auth == "token")
    req.authorization = "Bearer " + kToken;
  else if (auth == "key")
    req.authKey = kToken, req.authEmail = "a@b.c";
  else if (auth == "bad")
    req.authorization = "Bearer " + kToken + "x";
  else if (!auth.empty())
    req.authorization = std::string(auth);

  HttpResponse r = api.handle(req, backend);

  static const std::set<int> statuses{200, 204, 400, 401, 403, 404, 405, 409, 429, 500, 503};
  FUZZ_CHECK(statuses.count(r.status), "undocumented status " + std::to_string(r.status));
  FUZZ_CHECK(r.who.find(kToken) == std::string::npos, "the token in the log: " + r.who);
  if (req.method == "POST" && r.status >= 400)
    FUZZ_CHECK(!header(r, "x-should-retry").empty(), "a POST error without x-should-retry");
  if (r.status == 429)
    FUZZ_CHECK(!header(r, "Retry-After").empty(), "a 429 without Retry-After");
  if (r.status == 204 || r.file || r.contentType != "application/json") {
    FUZZ_CHECK(r.status < 400, "an error reply that is not the envelope");
    return 0;
  }
  json env = json::parse(r.body, nullptr, false);
  FUZZ_CHECK(!env.is_discarded() && env.is_object(), "a reply that is not JSON: " + r.body);
  FUZZ_CHECK(env["success"].is_boolean() && env["success"] == (r.status < 300),
             "success disagrees with status " + std::to_string(r.status));
  FUZZ_CHECK(env["errors"].is_array() && env["messages"].is_array(), "no errors/messages arrays");
  if (r.status >= 400) {
    FUZZ_CHECK(env["errors"].size() == 1, "an error reply without one error");
    const json &e = env["errors"][0];
    FUZZ_CHECK(e["code"].is_number_integer() && e["message"].is_string() &&
                   !e["message"].get<std::string>().empty(),
               "an error without code or message: " + e.dump());
    if (e.contains("source")) {
      auto p = e["source"]["pointer"].get<std::string>();
      FUZZ_CHECK(p.size() > 1 && p[0] == '/' && p.back() != '/', "a bad JSON pointer: " + p);
    }
  } else {
    FUZZ_CHECK(env["errors"].empty(), "a success with errors");
    FUZZ_CHECK(env.contains("result"), "a success without result");
  }
  return 0;
}
