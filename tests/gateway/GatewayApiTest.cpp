// The gateway's request handling without sockets or ringcapd: Api::handle over a fake
// Backend. Routing table, envelope, error table, x-should-retry, Retry-After, JSON pointers,
// whole floats, the bad-token limiter.
#include "Api.h"
#include "Router.h"
#include "api/ServiceApi.h"

#include <gtest/gtest.h>

using namespace ringcap;
using namespace ringcap::gateway;
using nlohmann::json;

namespace {

const std::string kAccount = "0123456789abcdef0123456789abcdef";
const std::string kToken = "a-token-for-the-tests";
const std::string kBase = "/client/v4/accounts/" + kAccount + "/pcaps";

// Answers every call with `error` when set, else with canned records; records what it got.
struct FakeBackend : Backend {
  std::optional<Error> error;
  json lastRequest;
  int calls = 0;
  template <typename T> Result<T> answer(T v) {
    calls++;
    if (error)
      return *error;
    return v;
  }
  Result<json> createCapture(const json &r) override {
    lastRequest = r;
    return answer(json{{"id", "c1"}, {"status", "running"}});
  }
  Result<json> getCapture(const std::string &id) override {
    return answer(json{{"id", id}, {"file_name", "pcap_" + id + ".pcap"}});
  }
  Result<json> listCaptures() override { return answer(json::array({json{{"id", "c1"}}})); }
  Result<void> stopCapture(const std::string &) override {
    calls++;
    if (error)
      return *error;
    return {};
  }
  Result<UniqueFd> openCaptureFile(const std::string &) override {
    calls++;
    if (error)
      return *error;
    return Error{ErrorKind::NotReady, "capture c1 is running; its file is ready once it ends"};
  }
  Result<json> createOwnership(const std::string &d) override {
    return answer(json{{"destination_conf", d}});
  }
  Result<json> validateOwnership(const std::string &d, const std::string &c) override {
    return answer(json{{"destination_conf", d}, {"challenge", c}});
  }
  Result<json> listOwnerships() override { return answer(json::array()); }
  Result<void> deleteOwnership(const std::string &) override {
    calls++;
    return {};
  }
};

class GatewayApi : public ::testing::Test {
protected:
  GatewayApi() : api(kAccount, *TokenStore::parse("tests " + kToken + "\n", "t"), "") {}
  HttpResponse send(const std::string &method, const std::string &path,
                    const std::string &body = "", const std::string &token = kToken,
                    BadTokenLimiter::Clock::time_point now = BadTokenLimiter::Clock::now()) {
    HttpRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    if (!token.empty())
      r.authorization = "Bearer " + token;
    r.remote = "192.0.2.1";
    return api.handle(r, backend, now);
  }
  static std::string header(const HttpResponse &r, const std::string &name) {
    for (const auto &[k, v] : r.headers)
      if (k == name)
        return v;
    return "";
  }
  static json body(const HttpResponse &r) { return json::parse(r.body); }
  Api api;
  FakeBackend backend;
};

} // namespace

TEST(GatewayRouter, Table) {
  struct Row {
    const char *method;
    std::string path;
    Route route;
    std::string id;
  } rows[] = {
      {"GET", kBase, Route::ListCaptures, ""},
      {"POST", kBase, Route::CreateCapture, ""},
      {"GET", kBase + "/abc", Route::GetCapture, "abc"},
      {"HEAD", kBase + "/abc", Route::GetCapture, "abc"},
      {"PUT", kBase + "/abc/stop", Route::StopCapture, "abc"},
      {"GET", kBase + "/abc/download", Route::DownloadCapture, "abc"},
      {"GET", kBase + "/ownership", Route::ListOwnerships, ""},
      {"POST", kBase + "/ownership", Route::CreateOwnership, ""},
      {"POST", kBase + "/ownership/validate", Route::ValidateOwnership, ""},
      {"DELETE", kBase + "/ownership/o1", Route::DeleteOwnership, "o1"},
      {"DELETE", kBase, Route::WrongMethod, ""},
      {"GET", kBase + "/abc/stop", Route::WrongMethod, "abc"},
      {"GET", kBase + "/ownership/validate", Route::WrongMethod, ""},
      {"GET", kBase + "/ownership/o1", Route::WrongMethod, "o1"},
      {"GET", kBase + "/", Route::NoRoute, ""},
      {"GET", kBase + "/abc/other", Route::NoRoute, ""},
      {"GET", kBase + "/../x", Route::NoRoute, ""},
      {"GET", "/client/v4/accounts//pcaps", Route::NoRoute, ""},
      {"GET", "/client/v4", Route::NoRoute, ""},
      {"GET", "/client/v4/zones", Route::NoRoute, ""},
      {"GET", "/", Route::DashboardFile, ""},
      {"GET", "/app.js", Route::DashboardFile, ""},
      {"POST", "/app.js", Route::WrongMethod, ""},
      {"GET", "/../etc/passwd", Route::NoRoute, ""},
      {"GET", "/.env", Route::NoRoute, ""},
      {"GET", "/a/b.js", Route::NoRoute, ""},
      {"GET", "", Route::NoRoute, ""},
  };
  for (const auto &row : rows) {
    auto m = matchRoute(row.method, row.path);
    EXPECT_EQ(routeName(m.route), std::string(routeName(row.route)))
        << row.method << " " << row.path;
    EXPECT_EQ(m.id, row.id) << row.path;
    EXPECT_EQ(m.api, row.path.starts_with("/client/v4")) << row.path;
  }
  EXPECT_EQ(matchRoute("DELETE", kBase).allow, "GET, POST");
  EXPECT_EQ(matchRoute("GET", "/").file, "index.html");
}

TEST(GatewayBody, PointerOfAMessage) {
  EXPECT_EQ(pointerOf("time_limit: must be an integer"), "/time_limit");
  EXPECT_EQ(pointerOf("filter_v1.source_port: must be"), "/filter_v1/source_port");
  EXPECT_EQ(pointerOf("list[2].x: bad"), "/list/2/x");
  EXPECT_EQ(pointerOf("simple captures are limited to one per 60 s; x"), "");
  EXPECT_EQ(pointerOf("writing the ownership challenge: EIO"), "");
  EXPECT_EQ(pointerOf("request body: not valid JSON"), "");
  EXPECT_EQ(pointerOf("Time_limit: x"), "");
  EXPECT_EQ(pointerOf("a.: x"), "");
  EXPECT_EQ(pointerOf(": x"), "");
  EXPECT_EQ(pointerOf("x[]: y"), "");
  EXPECT_EQ(pointerOf("no colon"), "");
}

TEST(GatewayBody, WholeFloatsBecomeIntegers) {
  auto j = parseJsonBody(R"({"a":10.0,"b":10.5,"c":{"d":-3.0,"e":[2.0]},"f":1e300,"g":1.8e19})");
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_TRUE((*j)["a"].is_number_integer());
  EXPECT_EQ((*j)["a"], 10);
  EXPECT_TRUE((*j)["b"].is_number_float());
  EXPECT_EQ((*j)["c"]["d"], -3);
  EXPECT_TRUE((*j)["c"]["d"].is_number_integer());
  EXPECT_TRUE((*j)["c"]["e"][0].is_number_integer());
  EXPECT_TRUE((*j)["f"].is_number_float()) << "out of every integer type's range: left alone";
  EXPECT_TRUE((*j)["g"].is_number_unsigned());
}

TEST(GatewayBody, BadBodies) {
  EXPECT_EQ(parseJsonBody("").error().message, "request body: required, a JSON object");
  EXPECT_EQ(parseJsonBody("{").error().message,
            "request body: not valid JSON (a JSON object is expected)");
  EXPECT_EQ(parseJsonBody("[]").error().message, "request body: must be a JSON object (got array)");
  EXPECT_EQ(parseJsonBody(std::string(kMaxBodyBytes + 1, ' ')).error().kind,
            ErrorKind::InvalidRequest);
}

TEST(GatewayRetryAfter, PhraseAndParseAgree) {
  EXPECT_EQ(api::retryAfterSeconds("limited; " + api::retryAfterPhrase(42)), 42u);
  EXPECT_EQ(api::retryAfterSeconds("limited; " + api::retryAfterPhrase(1)), 1u);
  EXPECT_EQ(api::retryAfterSeconds("all slots are in use"), std::nullopt);
  EXPECT_EQ(api::retryAfterSeconds("the next is allowed in s"), std::nullopt);
  EXPECT_EQ(api::retryAfterSeconds("the next is allowed in 99999999999999 s"), std::nullopt);
}

TEST_F(GatewayApi, SuccessEnvelope) {
  auto r = send("POST", kBase, R"({"type":"simple","time_limit":10.0})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.contentType, "application/json");
  auto j = body(r);
  EXPECT_EQ(j["success"], true);
  EXPECT_EQ(j["errors"], json::array());
  EXPECT_EQ(j["messages"], json::array());
  EXPECT_EQ(j["result"]["id"], "c1");
  EXPECT_TRUE(backend.lastRequest["time_limit"].is_number_integer());
  EXPECT_EQ(r.who, "tests");

  r = send("GET", kBase);
  j = body(r);
  EXPECT_EQ(j["result_info"],
            (json{{"page", 1}, {"per_page", 1}, {"count", 1}, {"total_count", 1}}));
  r = send("PUT", kBase + "/c1/stop");
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.body.empty());
}

TEST_F(GatewayApi, ErrorTable) {
  struct Row {
    ErrorKind kind;
    int status;
  } rows[] = {{ErrorKind::InvalidRequest, 400}, {ErrorKind::NotFound, 404},
              {ErrorKind::NotReady, 409},       {ErrorKind::OwnershipRequired, 403},
              {ErrorKind::AccessDenied, 403},   {ErrorKind::RateLimited, 429},
              {ErrorKind::CaptureBusy, 429},    {ErrorKind::Unavailable, 503},
              {ErrorKind::Failed, 500}};
  for (const auto &row : rows) {
    backend.error = Error{row.kind, "time_limit: something"};
    auto r = send("GET", kBase + "/c1");
    EXPECT_EQ(r.status, row.status) << api::toString(row.kind);
    EXPECT_EQ(r.status, api::httpStatus(row.kind));
    auto j = body(r);
    EXPECT_EQ(j["success"], false);
    EXPECT_EQ(j["errors"][0]["code"], errorCode(row.kind));
    EXPECT_EQ(j["errors"][0]["message"], "time_limit: something");
    EXPECT_EQ(j["errors"][0]["source"]["pointer"], "/time_limit");
    if (row.status == 429)
      EXPECT_EQ(header(r, "Retry-After"), "10") << "the default when the message has no time";
  }
}

TEST_F(GatewayApi, RateLimitedCreateSaysWhenAndIsNotRetried) {
  backend.error = Error{ErrorKind::RateLimited, "simple captures are limited to one per 60 s; " +
                                                    api::retryAfterPhrase(37)};
  auto r = send("POST", kBase, R"({"type":"simple"})");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(header(r, "Retry-After"), "37");
  EXPECT_EQ(header(r, "x-should-retry"), "false");
  EXPECT_EQ(body(r)["errors"][0].count("source"), 0u);
}

TEST_F(GatewayApi, UnavailableMayBeRetriedEvenForACreate) {
  backend.error = Error{ErrorKind::Unavailable, "ringcapd is not running on the system bus"};
  auto r = send("POST", kBase, R"({"type":"simple"})");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(header(r, "x-should-retry"), "true");
  backend.error = Error{ErrorKind::Failed, "timed out"};
  r = send("POST", kBase, R"({"type":"simple"})");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(header(r, "x-should-retry"), "false");
}

TEST_F(GatewayApi, DownloadBeforeTheEndIs409) {
  auto r = send("GET", kBase + "/c1/download");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(body(r)["errors"][0]["code"], errorCode(ErrorKind::NotReady));
}

TEST_F(GatewayApi, AuthenticationAndAccount) {
  auto r = send("GET", kBase, "", "");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(body(r)["errors"][0]["code"], kCodeAuthentication);
  EXPECT_EQ(r.who, "-");
  r = send("GET", kBase, "", "wrong-token-0000000");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.who, TokenStore::hashLabel("wrong-token-0000000"));
  EXPECT_EQ(backend.calls, 0);

  HttpRequest k;
  k.method = "GET";
  k.path = kBase;
  k.authKey = kToken;
  k.remote = "192.0.2.2";
  EXPECT_EQ(api.handle(k, backend).status, 401) << "X-Auth-Key without X-Auth-Email";
  k.authEmail = "ops@example.com";
  EXPECT_EQ(api.handle(k, backend).status, 200);

  r = send("GET", "/client/v4/accounts/ffffffffffffffffffffffffffffffff/pcaps");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(body(r)["errors"][0]["code"], errorCode(ErrorKind::NotFound));
  r = send("POST", "/client/v4/accounts/ffffffffffffffffffffffffffffffff/pcaps", "{}", "");
  EXPECT_EQ(r.status, 401) << "authentication comes before the account";
  EXPECT_EQ(header(r, "x-should-retry"), "false");
}

TEST_F(GatewayApi, NoRouteAndWrongMethod) {
  auto r = send("GET", "/client/v4/accounts/" + kAccount + "/zones");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(body(r)["errors"][0]["code"], kCodeNoRoute);
  r = send("PATCH", kBase);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(header(r, "Allow"), "GET, POST");
  EXPECT_EQ(body(r)["errors"][0]["code"], kCodeMethodNotAllowed);
}

TEST_F(GatewayApi, OwnershipBodies) {
  auto r = send("POST", kBase + "/ownership/validate", R"({"destination_conf":"file:///x"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(body(r)["errors"][0]["source"]["pointer"], "/ownership_challenge");
  r = send("POST", kBase + "/ownership/validate",
           R"({"destination_conf":"file:///x","ownership_challenge":"abc"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body(r)["result"]["challenge"], "abc");
}

TEST_F(GatewayApi, BadTokenBurstIsSlowedDownForOneWindow) {
  auto t0 = BadTokenLimiter::Clock::now();
  for (int i = 0; i < BadTokenLimiter::kMaxBadTokens; i++)
    ASSERT_EQ(send("GET", kBase, "", "bad-token-0000000000", t0).status, 401) << i;
  auto r = send("GET", kBase, "", "bad-token-0000000000", t0 + std::chrono::seconds(1));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(header(r, "Retry-After"), "59");
  EXPECT_EQ(send("GET", kBase, "", kToken, t0 + std::chrono::seconds(2)).status, 429)
      << "the address is blocked, whatever it sends";
  EXPECT_EQ(backend.calls, 0);
  EXPECT_EQ(send("GET", kBase, "", kToken, t0 + BadTokenLimiter::kBadTokenWindow).status, 200)
      << "the window ended";
}
