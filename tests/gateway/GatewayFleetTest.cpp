// ringcap-gateway's fleet mode (docs/fleet.md, "The gateway in fleet mode") against a real
// 3-member etcd cluster on loopback and simulated agents (SimAgent puts its registration and
// parts through fleet::keys, as docs/fleet.md says the agent does), driving the REST API
// through Api::handle with a FleetBackend: create, get, list, stop, the location's rate limits
// over REST, the status mapping, the ownership challenge and the merged download of staged
// files in the S3-compatible server of tests/s3, and a gateway restarted mid-capture.
#include "../lib/EtcdCluster.h"
#include "../lib/EtcdClusterTest.h"
#include "../lib/PcapTestSupport.h"
#include "../lib/Skip.h"
#include "../s3/S3Server.h"
#include "Api.h"
#include "FleetBackend.h"
#include "destination/S3Client.h"
#include "fleet/Keys.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <mutex>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>

namespace ringcap::gateway {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace keys = fleet::keys;
using test::S3Server;

const std::string kAccount = "0123456789abcdef0123456789abcdef";
const std::string kToken = "a-token-for-the-fleet-tests";
const std::string kBase = "/client/v4/accounts/" + kAccount + "/pcaps";

// One host's agent as etcd sees it: registration under a lease, the claim, its part.
class SimAgent {
public:
  SimAgent(fleet::EtcdClient &etcd, std::string colo, std::string host)
      : etcd_(etcd), colo_(std::move(colo)), host_(std::move(host)) {}
  void registerHost() {
    auto lease = etcd_.grantLease(60);
    ASSERT_TRUE(lease) << lease.error().message;
    json value = {{"host", host_},
                  {"colo", colo_},
                  {"colo_groups", json::array()},
                  {"systems", {"magic-transit"}},
                  {"version", "test"},
                  {"lease", lease->id}};
    auto put = etcd_.put(keys::host(colo_, host_), value.dump(), lease->id);
    ASSERT_TRUE(put) << put.error().message;
  }
  bool claim(const std::string &id) {
    auto spec = etcd_.get(keys::spec(id));
    if (!spec || spec->kvs.empty() || !keys::targets(json::parse(spec->kvs[0].value), host_))
      return false;
    const std::string key = keys::part(id, host_);
    json claim = {{"host", host_}, {"colo", colo_}, {"status", "pending"}};
    auto txn = etcd_.txn({fleet::Compare::absent(key)}, {fleet::TxnOp::put(key, claim.dump())});
    return txn && txn->succeeded;
  }
  // A part from a local record (keys::partFromRecord), with `extra` fields (staged_object).
  void report(const std::string &id, const std::string &status, uint64_t packets,
              const std::string &error = {}, const json &extra = json::object()) {
    json record = {{"status", status},
                   {"packets_seen", packets * 2},
                   {"packets_captured", packets},
                   {"bytes_captured", packets * 100}};
    if (!error.empty())
      record["error_message"] = error;
    json part = keys::partFromRecord(host_, record);
    part["colo"] = colo_;
    for (auto &[k, v] : extra.items())
      part[k] = v;
    auto put = etcd_.put(keys::part(id, host_), part.dump());
    ASSERT_TRUE(put) << put.error().message;
  }
  const std::string &host() const { return host_; }

private:
  fleet::EtcdClient &etcd_;
  std::string colo_, host_;
};

HttpRequest req(const std::string &method, const std::string &path, const std::string &body = "") {
  HttpRequest r;
  r.method = method;
  r.path = path;
  r.body = body;
  r.authorization = "Bearer " + kToken;
  r.remote = "127.0.0.1";
  return r;
}

json bodyOf(const HttpResponse &r) {
  auto j = json::parse(r.body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.body;
  return j;
}

std::string header(const HttpResponse &r, const std::string &name) {
  for (const auto &[k, v] : r.headers)
    if (k == name)
      return v;
  return "";
}

// A classic PCAP with nanosecond timestamps of `n` UDP frames at the given times.
std::string pcapOf(const std::vector<uint64_t> &tsNs, uint32_t seed) {
  std::string out;
  auto u32 = [&](uint32_t v) { out.append(reinterpret_cast<const char *>(&v), 4); };
  auto u16 = [&](uint16_t v) { out.append(reinterpret_cast<const char *>(&v), 2); };
  u32(0xa1b23c4d); // nanosecond magic
  u16(2);
  u16(4);
  u32(0);
  u32(0);
  u32(65535);
  u32(1); // Ethernet
  for (size_t i = 0; i < tsNs.size(); i++) {
    auto frame = testsupport::udpFrame(80, 80, seed + static_cast<uint32_t>(i));
    u32(static_cast<uint32_t>(tsNs[i] / 1'000'000'000));
    u32(static_cast<uint32_t>(tsNs[i] % 1'000'000'000));
    u32(static_cast<uint32_t>(frame.size()));
    u32(static_cast<uint32_t>(frame.size()));
    out.append(reinterpret_cast<const char *>(frame.data()), frame.size());
  }
  return out;
}

// Reads a streamed download to its end; false when the stream was cut (a read error).
bool readAll(int fd, std::string &out) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return false;
    if (n == 0)
      return true;
    out.append(buf, static_cast<size_t>(n));
  }
}

class GatewayFleet : public testlib::EtcdClusterTest<GatewayFleet> {
protected:
  static void SetUpTestSuite() {
    EtcdClusterTest<GatewayFleet>::SetUpTestSuite();
    std::string tmpl = "/tmp/ringcap-gwfleet-XXXXXX";
    if (::mkdtemp(tmpl.data()))
      workDir_ = tmpl;
    if (S3Server::unavailableReason().empty() && !workDir_.empty()) {
      s3_ = std::make_unique<S3Server>(workDir_ + "/s3");
      if (auto r = s3_->start(); !r) {
        s3Error_ = r.error().message;
        s3_.reset();
      }
      std::ofstream(workDir_ + "/credentials")
          << "[default]\naws_access_key_id = " << S3Server::kAccessKey
          << "\naws_secret_access_key = " << S3Server::kSecretKey << "\n";
    } else {
      s3Error_ = S3Server::unavailableReason();
    }
  }
  static void TearDownTestSuite() {
    s3_.reset();
    if (!workDir_.empty() && !std::getenv("RINGCAP_KEEP_ETCD"))
      std::filesystem::remove_all(workDir_);
    EtcdClusterTest<GatewayFleet>::TearDownTestSuite();
  }

  void requireS3() {
    if (!s3_)
      RINGCAP_SKIP("the S3-compatible server is not available: " + s3Error_);
  }
  std::string bucketUri(const std::string &dir) const {
    return std::string("s3://") + S3Server::kBucket + "/" + dir + "?region=" + S3Server::kRegion +
           "&endpoint=" + s3_->endpoint();
  }
  S3Client s3Client() const {
    return S3Client(S3Location{S3Server::kBucket, S3Server::kRegion, s3_->endpoint()},
                    AwsCredentials{S3Server::kAccessKey, S3Server::kSecretKey, ""});
  }

  FleetSettings settings(const std::string &colo = "") const {
    FleetSettings s;
    s.coloName = colo;
    s.followTick = 200ms;
    if (s3_) {
      s.staging = bucketUri("staging");
      s.destinations.s3Endpoint = s3_->endpoint();
      s.destinations.credentialsFile = workDir_ + "/credentials";
    }
    return s;
  }
  std::unique_ptr<FleetBackend> backend(FleetSettings s) {
    auto b = FleetBackend::create(fleet::EtcdOptions{cluster_->clientUrls()}, std::move(s));
    EXPECT_TRUE(b) << b.error().message;
    return b ? std::move(*b) : nullptr;
  }
  static Api api() { return Api(kAccount, *TokenStore::parse("tests " + kToken + "\n", "t"), ""); }

  // The stored status key of a capture (what the follow thread writes), null when none.
  json storedStatus(const std::string &id) {
    auto r = etcd_->get(keys::status(id));
    return r && !r->kvs.empty() ? json::parse(r->kvs[0].value) : json();
  }
  // Polls until the stored status is `want` (the follow thread wrote it), within `limit`.
  bool waitStored(const std::string &id, const std::string &want, std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (storedStatus(id).value("status", "") == want)
        return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  static inline std::unique_ptr<S3Server> s3_;
  static inline std::string s3Error_, workDir_;
};

TEST_F(GatewayFleet, CreateGetListStopAndTheStatusMappingOverRest) {
  SimAgent a1(*etcd_, "gwa", "a1"), a2(*etcd_, "gwa", "a2");
  a1.registerHost();
  a2.registerHost();
  auto b = backend(settings());
  ASSERT_TRUE(b);
  Api a = api();

  // Validated as ringcapd validates: the field and the rule, with its pointer; nothing made.
  auto bad = a.handle(req("POST", kBase, R"({"type":"simple","system":"magic-transit",
      "time_limit":301,"packet_limit":10,"colo_name":"gwa"})"),
                      *b);
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(bodyOf(bad)["errors"][0]["source"]["pointer"], "/time_limit") << bad.body;
  // No colo_name and no default location.
  auto noColo =
      a.handle(req("POST", kBase, R"({"type":"simple","system":"magic-transit","time_limit":60,
      "packet_limit":10})"),
               *b);
  EXPECT_EQ(noColo.status, 400) << noColo.body;
  EXPECT_NE(noColo.body.find("colo_name: required"), std::string::npos) << noColo.body;
  // A full capture into a bucket whose ownership the fleet has not validated: 403.
  auto unowned = a.handle(req("POST", kBase, R"({"type":"full","system":"magic-transit",
      "time_limit":60,"colo_name":"gwa","destination_conf":"s3://nobody/x?region=us-east-1"})"),
                          *b);
  EXPECT_EQ(unowned.status, 403) << unowned.body;
  EXPECT_EQ(bodyOf(unowned)["errors"][0]["code"], 1006) << unowned.body;

  auto created = a.handle(req("POST", kBase, R"({"type":"simple","system":"magic-transit",
      "time_limit":60,"packet_limit":10,"colo_name":"gwa"})"),
                          *b);
  ASSERT_EQ(created.status, 200) << created.body;
  json rec = bodyOf(created)["result"];
  const std::string id = rec["id"];
  EXPECT_TRUE(keys::isCaptureId(id));
  EXPECT_EQ(rec["status"], "pending");
  EXPECT_EQ(rec["colo_name"], "gwa");
  EXPECT_EQ(rec["type"], "simple");
  EXPECT_EQ(rec["packet_limit"], 10);
  ASSERT_EQ(rec["hosts"].size(), 2u) << rec.dump();
  EXPECT_EQ(rec["hosts"][0]["host"], "a1");
  EXPECT_EQ(rec["hosts"][0]["status"], "pending");

  // The location's simple limit over REST: 429 with Retry-After, from a second gateway too.
  auto b2 = backend(settings());
  ASSERT_TRUE(b2);
  for (Backend *g : {static_cast<Backend *>(b.get()), static_cast<Backend *>(b2.get())}) {
    auto limited = a.handle(req("POST", kBase, R"({"type":"simple","system":"magic-transit",
        "time_limit":60,"packet_limit":10,"colo_name":"gwa"})"),
                            *g);
    EXPECT_EQ(limited.status, 429) << limited.body;
    EXPECT_EQ(bodyOf(limited)["errors"][0]["code"], 1002) << limited.body;
    const std::string retry = header(limited, "Retry-After");
    ASSERT_FALSE(retry.empty());
    EXPECT_GE(std::stoi(retry), 1);
    EXPECT_LE(std::stoi(retry), 60);
    EXPECT_NE(limited.body.find("the next is allowed in " + retry + " s"), std::string::npos)
        << limited.body;
  }

  // Status mapping: both claim, run with counters; the totals are the sums.
  ASSERT_TRUE(a1.claim(id));
  ASSERT_TRUE(a2.claim(id));
  a1.report(id, "running", 3);
  a2.report(id, "running", 4);
  auto got = a.handle(req("GET", kBase + "/" + id), *b);
  ASSERT_EQ(got.status, 200) << got.body;
  rec = bodyOf(got)["result"];
  EXPECT_EQ(rec["status"], "running") << rec.dump();
  EXPECT_EQ(rec["packets_captured"], 7);
  EXPECT_EQ(rec["packets_seen"], 14);
  EXPECT_EQ(rec["hosts"][1]["packets_captured"], 4);
  EXPECT_EQ(rec["hosts"][1]["status"], "running");

  // Stop: 204, and every site key of the capture says stop.
  auto stopped = a.handle(req("PUT", kBase + "/" + id + "/stop"), *b);
  EXPECT_EQ(stopped.status, 204) << stopped.body;
  auto siteKey = etcd_->get(keys::coloCapture("gwa", id));
  ASSERT_TRUE(siteKey && !siteKey->kvs.empty());
  EXPECT_EQ(json::parse(siteKey->kvs[0].value).value("stop", false), true);
  EXPECT_EQ(a.handle(req("PUT", kBase + "/0123456789abcdef0123456789abcdef/stop"), *b).status, 404);

  // One host fails: the capture is failed naming it, the other's end is listed.
  a1.report(id, "success", 5);
  a2.report(id, "failed", 2, "the interface went down");
  got = a.handle(req("GET", kBase + "/" + id), *b);
  rec = bodyOf(got)["result"];
  EXPECT_EQ(rec["status"], "failed") << rec.dump();
  EXPECT_NE(rec.value("error_message", "").find("host a2 failed: the interface went down"),
            std::string::npos)
      << rec.dump();
  EXPECT_EQ(rec["hosts"][0]["status"], "success");
  EXPECT_EQ(rec["hosts"][1]["status"], "failed");
  EXPECT_EQ(rec["hosts"][1]["error_message"], "the interface went down");
  EXPECT_EQ(rec["packets_captured"], 7);
  EXPECT_FALSE(rec.contains("file_name")) << "no host staged a file";
  // The download of a failed capture without staged files: 409.
  auto dl = a.handle(req("GET", kBase + "/" + id + "/download"), *b);
  EXPECT_EQ(dl.status, 409) << dl.body;

  // List: the capture, as GET shows it (the follow thread stored the ended status).
  ASSERT_TRUE(waitStored(id, "failed", 10s));
  auto list = a.handle(req("GET", kBase), *b);
  ASSERT_EQ(list.status, 200) << list.body;
  bool found = false;
  const json listed = bodyOf(list);
  for (const auto &r : listed["result"])
    if (r["id"] == id) {
      found = true;
      EXPECT_EQ(r["status"], "failed");
      EXPECT_EQ(r["hosts"].size(), 2u);
    }
  EXPECT_TRUE(found) << list.body;
  EXPECT_EQ(a.handle(req("GET", kBase + "/0123456789abcdef0123456789abcdef"), *b).status, 404);
  EXPECT_EQ(a.handle(req("GET", kBase + "/not-an-id"), *b).status, 404);
}

TEST_F(GatewayFleet, TwoGatewaysRacingForALocationsSimpleLimitOneWins) {
  SimAgent h(*etcd_, "gwb", "b1");
  h.registerHost();
  // The default location: requests without colo_name go there.
  auto g1 = backend(settings("gwb")), g2 = backend(settings("gwb"));
  ASSERT_TRUE(g1 && g2);
  Api a1 = api(), a2 = api();
  const std::string body = R"({"type":"simple","system":"magic-transit","time_limit":60,
      "packet_limit":10})";
  std::vector<HttpResponse> answers(6);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < answers.size(); i++)
    threads.emplace_back([&, i] {
      answers[i] = i % 2 ? a1.handle(req("POST", kBase, body), *g1)
                         : a2.handle(req("POST", kBase, body), *g2);
    });
  for (auto &t : threads)
    t.join();
  int won = 0, limited = 0;
  for (const auto &r : answers) {
    if (r.status == 200) {
      won++;
      EXPECT_EQ(bodyOf(r)["result"]["colo_name"], "gwb");
    } else if (r.status == 429 && !header(r, "Retry-After").empty()) {
      limited++;
    } else {
      ADD_FAILURE() << r.status << " " << r.body;
    }
  }
  EXPECT_EQ(won, 1);
  EXPECT_EQ(limited, 5);
}

TEST_F(GatewayFleet, OwnershipIsChallengedAndValidatedInEtcdAndAllowsAFullCapture) {
  requireS3();
  SimAgent h(*etcd_, "gwc", "c1");
  h.registerHost();
  auto b = backend(settings());
  ASSERT_TRUE(b);
  Api a = api();
  const std::string dest = bucketUri("fleet-owned");

  auto created =
      a.handle(req("POST", kBase + "/ownership", json{{"destination_conf", dest}}.dump()), *b);
  ASSERT_EQ(created.status, 200) << created.body;
  json rec = bodyOf(created)["result"];
  EXPECT_EQ(rec["status"], "pending");
  EXPECT_FALSE(rec.contains("token_sha256"));
  const std::string id = rec["id"], filename = rec["filename"];
  // The challenge file, in the bucket.
  auto token = s3Client().getObject("fleet-owned/" + filename);
  ASSERT_TRUE(token) << token.error().message;
  const std::string challenge(token->begin(), token->end());
  // The record, in etcd (what the agents read).
  auto stored = etcd_->get(keys::ownership(id));
  ASSERT_TRUE(stored && !stored->kvs.empty());
  EXPECT_EQ(json::parse(stored->kvs[0].value)["destination_conf"], dest);

  // A full capture before validation: 403.
  const std::string full = json{
      {"type", "full"},
      {"system", "magic-transit"},
      {"time_limit", 60},
      {"colo_name", "gwc"},
      {"destination_conf",
       dest}}.dump();
  EXPECT_EQ(a.handle(req("POST", kBase, full), *b).status, 403);

  auto wrong =
      a.handle(req("POST", kBase + "/ownership/validate",
                   json{{"destination_conf", dest}, {"ownership_challenge", "nope"}}.dump()),
               *b);
  ASSERT_EQ(wrong.status, 200) << wrong.body;
  EXPECT_EQ(bodyOf(wrong)["result"]["status"], "failed");
  auto right =
      a.handle(req("POST", kBase + "/ownership/validate",
                   json{{"destination_conf", dest}, {"ownership_challenge", challenge}}.dump()),
               *b);
  ASSERT_EQ(right.status, 200) << right.body;
  EXPECT_EQ(bodyOf(right)["result"]["status"], "success");
  EXPECT_TRUE(bodyOf(right)["result"].contains("validated"));
  stored = etcd_->get(keys::ownership(id));
  ASSERT_TRUE(stored && !stored->kvs.empty());
  EXPECT_EQ(json::parse(stored->kvs[0].value)["status"], "success");
  auto none = a.handle(
      req("POST", kBase + "/ownership/validate",
          json{{"destination_conf", bucketUri("other")}, {"ownership_challenge", challenge}}
              .dump()),
      *b);
  EXPECT_EQ(none.status, 404) << none.body;

  // Validated: the full capture is created; a second one at the site is CaptureBusy.
  auto made = a.handle(req("POST", kBase, full), *b);
  ASSERT_EQ(made.status, 200) << made.body;
  auto busy = a.handle(req("POST", kBase, full), *b);
  EXPECT_EQ(busy.status, 429) << busy.body;
  EXPECT_EQ(bodyOf(busy)["errors"][0]["code"], 1003) << busy.body;
  EXPECT_FALSE(header(busy, "Retry-After").empty());
  // A full capture's download: its files are in the bucket, not here.
  auto dl = a.handle(
      req("GET", kBase + "/" + bodyOf(made)["result"]["id"].get<std::string>() + "/download"), *b);
  EXPECT_EQ(dl.status, 409) << dl.body;

  auto list = a.handle(req("GET", kBase + "/ownership"), *b);
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(bodyOf(list)["result"].size(), 1u) << list.body;
  EXPECT_EQ(a.handle(req("DELETE", kBase + "/ownership/" + id), *b).status, 204);
  EXPECT_EQ(a.handle(req("DELETE", kBase + "/ownership/" + id), *b).status, 404);
  EXPECT_EQ(bodyOf(a.handle(req("GET", kBase + "/ownership"), *b))["result"].size(), 0u);
}

// Two hosts stage their files; the gateway is replaced by a new one mid-capture; the new one's
// follow thread carries the capture to success, and the download is one capture of both
// files' packets in timestamp order.
TEST_F(GatewayFleet, RestartedGatewayCarriesTheCaptureAndMergesTheStagedFiles) {
  requireS3();
  const auto tools = testsupport::findTools();
  if (!tools.missing.empty())
    RINGCAP_SKIP("missing " + tools.missing);
  SimAgent d1(*etcd_, "gwd", "d1"), d2(*etcd_, "gwd", "d2");
  d1.registerHost();
  d2.registerHost();
  auto b = backend(settings("gwd"));
  ASSERT_TRUE(b);
  Api a = api();
  auto created = a.handle(req("POST", kBase, R"({"type":"simple","system":"magic-transit",
      "time_limit":60,"packet_limit":10})"),
                          *b);
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id = bodyOf(created)["result"]["id"];
  ASSERT_TRUE(d1.claim(id));
  ASSERT_TRUE(d2.claim(id));
  d1.report(id, "running", 1);
  d2.report(id, "running", 1);
  ASSERT_TRUE(waitStored(id, "running", 10s));
  // Before success: 409.
  EXPECT_EQ(a.handle(req("GET", kBase + "/" + id + "/download"), *b).status, 409);

  // The gateway goes away; the hosts finish and stage their files meanwhile.
  b.reset();
  const uint64_t t0 = 1'700'000'000'000'000'000ULL;
  const std::vector<uint64_t> ts1 = {t0 + 1, t0 + 30, t0 + 50}, ts2 = {t0 + 10, t0 + 40};
  auto client = s3Client();
  for (auto [agent, ts, seed] : {std::tuple{&d1, ts1, 100u}, std::tuple{&d2, ts2, 200u}}) {
    const std::string uri = keys::stagedObject(settings().staging, id, agent->host());
    const std::string bytes = pcapOf(ts, seed);
    auto put = client.putObject(
        "staging/" + id + "/" + agent->host() + ".pcap",
        std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()));
    ASSERT_TRUE(put) << put.error().message;
    agent->report(id, "success", ts.size(), "",
                  {{"staged_object", uri}, {"staged_bytes", bytes.size()}});
  }
  EXPECT_EQ(storedStatus(id).value("status", ""), "running") << "no gateway wrote it";

  // A new gateway: its follow thread derives success from etcd alone.
  b = backend(settings("gwd"));
  ASSERT_TRUE(b);
  ASSERT_TRUE(waitStored(id, "success", 10s)) << storedStatus(id).dump();
  auto got = a.handle(req("GET", kBase + "/" + id), *b);
  json rec = bodyOf(got)["result"];
  EXPECT_EQ(rec["status"], "success");
  EXPECT_EQ(rec["packets_captured"], 5);
  EXPECT_EQ(rec["file_name"], "pcap_" + id + ".pcapng");
  EXPECT_EQ(rec["hosts"][0]["staged_object"], keys::stagedObject(settings().staging, id, "d1"));

  auto dl = a.handle(req("GET", kBase + "/" + id + "/download"), *b);
  ASSERT_EQ(dl.status, 200) << dl.body;
  ASSERT_TRUE(dl.file);
  EXPECT_TRUE(dl.streamed);
  EXPECT_EQ(dl.contentType, "application/x-pcapng");
  EXPECT_EQ(header(dl, "Content-Disposition"), "attachment; filename=\"pcap_" + id + ".pcapng\"");
  std::string merged;
  ASSERT_TRUE(readAll(dl.file->get(), merged)) << "the stream was cut";
  const std::string path = workDir_ + "/merged-" + id + ".pcapng";
  std::ofstream(path, std::ios::binary) << merged;
  auto count = testsupport::runCommand(tools.capinfos + " -M -c -T -r " + path);
  ASSERT_TRUE(count.succeeded);
  ASSERT_EQ(count.lines.size(), 1u);
  EXPECT_NE(count.lines[0].find("\t5"), std::string::npos) << count.lines[0];
  auto times = testsupport::runCommand(tools.tshark + " -r " + path +
                                       " -T fields -e frame.time_epoch -e udp.srcport");
  ASSERT_TRUE(times.succeeded);
  std::vector<std::pair<uint64_t, uint32_t>> want = {
      {t0 + 1, 100}, {t0 + 10, 200}, {t0 + 30, 101}, {t0 + 40, 201}, {t0 + 50, 102}};
  ASSERT_EQ(times.lines.size(), want.size());
  for (size_t i = 0; i < want.size(); i++)
    EXPECT_EQ(times.lines[i],
              testsupport::epochText(want[i].first) + "\t" + std::to_string(40000 + want[i].second))
        << i;

  // A staged object that is not a capture: the merge fails after the reply started, and the
  // stream is cut (a read error), never ended as if complete.
  const std::string junk(4096, 'j');
  auto replaced = client.putObject(
      "staging/" + id + "/d2.pcap",
      std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(junk.data()), junk.size()));
  ASSERT_TRUE(replaced) << replaced.error().message;
  auto cut = a.handle(req("GET", kBase + "/" + id + "/download"), *b);
  ASSERT_EQ(cut.status, 200) << cut.body;
  std::string partial;
  EXPECT_FALSE(readAll(cut.file->get(), partial)) << partial.size() << " bytes, then the end";

  // A staged object that went missing: an error before the stream starts.
  auto del = client.deleteObject("staging/" + id + "/d2.pcap");
  ASSERT_TRUE(del) << del.error().message;
  auto missing = a.handle(req("GET", kBase + "/" + id + "/download"), *b);
  EXPECT_EQ(missing.status, 500) << missing.body;
  EXPECT_NE(missing.body.find("d2.pcap"), std::string::npos) << missing.body;
}

// A capture that failed on one host while another staged its file: the download is the
// staged hosts' files (what was captured is not lost), once every host has ended: while a
// third still runs, the capture is already failed but its download is 409.
TEST_F(GatewayFleet, AFailedCaptureDownloadsTheFilesOfTheHostsThatStaged) {
  requireS3();
  SimAgent f1(*etcd_, "gwf", "f1"), f2(*etcd_, "gwf", "f2"), f3(*etcd_, "gwf", "f3");
  f1.registerHost();
  f2.registerHost();
  f3.registerHost();
  auto b = backend(settings("gwf"));
  ASSERT_TRUE(b);
  Api a = api();
  auto created = a.handle(req("POST", kBase, R"({"type":"simple","system":"magic-transit",
      "time_limit":60,"packet_limit":10})"),
                          *b);
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id = bodyOf(created)["result"]["id"];
  ASSERT_TRUE(f1.claim(id));
  ASSERT_TRUE(f2.claim(id));
  ASSERT_TRUE(f3.claim(id));
  const uint64_t t0 = 1'700'000'200'000'000'000ULL;
  const std::string bytes = pcapOf({t0 + 1, t0 + 2}, 500);
  auto put = s3Client().putObject(
      "staging/" + id + "/f1.pcap",
      std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()));
  ASSERT_TRUE(put) << put.error().message;
  f1.report(id, "success", 2, "",
            {{"staged_object", keys::stagedObject(settings().staging, id, "f1")}});
  f2.report(id, "running", 0);
  f3.report(id, "running", 0);
  // Not ended yet: 409.
  auto early = a.handle(req("GET", kBase + "/" + id + "/download"), *b);
  EXPECT_EQ(early.status, 409) << early.body;
  f2.report(id, "failed", 0, "ringcapd on f2 refused the capture: busy");
  // failed already (f2), but f3 still runs: its file would be missing from the merge.
  auto midway = a.handle(req("GET", kBase + "/" + id), *b);
  EXPECT_EQ(bodyOf(midway)["result"]["status"], "failed") << midway.body;
  EXPECT_FALSE(bodyOf(midway)["result"].contains("file_name")) << midway.body;
  auto notYet = a.handle(req("GET", kBase + "/" + id + "/download"), *b);
  EXPECT_EQ(notYet.status, 409) << notYet.body;
  EXPECT_NE(notYet.body.find("other hosts have not ended yet"), std::string::npos) << notYet.body;
  f3.report(id, "failed", 0, "ringcapd on f3 refused the capture: busy");
  auto got = a.handle(req("GET", kBase + "/" + id), *b);
  json rec = bodyOf(got)["result"];
  EXPECT_EQ(rec["status"], "failed");
  EXPECT_EQ(rec["file_name"], "pcap_" + id + ".pcapng");
  auto dl = a.handle(req("GET", kBase + "/" + id + "/download"), *b);
  ASSERT_EQ(dl.status, 200) << dl.body;
  std::string merged;
  ASSERT_TRUE(readAll(dl.file->get(), merged));
  const std::string path = workDir_ + "/failed-" + id + ".pcapng";
  std::ofstream(path, std::ios::binary) << merged;
  const auto tools = testsupport::findTools();
  if (tools.tshark.empty())
    RINGCAP_SKIP("missing tshark");
  auto times = testsupport::runCommand(tools.tshark + " -r " + path +
                                       " -T fields -e frame.time_epoch -e udp.srcport");
  ASSERT_TRUE(times.succeeded);
  EXPECT_EQ(times.lines, (std::vector<std::string>{testsupport::epochText(t0 + 1) + "\t40500",
                                                   testsupport::epochText(t0 + 2) + "\t40501"}));
}

// The ringcap-gateway binary in fleet mode: started from a configuration file, killed with
// SIGKILL mid-capture, started again; the capture reaches success and the download, over
// HTTP with chunked encoding, is the merged capture.
class GatewayProcess {
public:
  GatewayProcess(std::string config, std::string log)
      : config_(std::move(config)), log_(std::move(log)) {}
  ~GatewayProcess() { kill(); }
  // Starts the binary and waits for its "listening on" line (a new log each start).
  bool start() {
    ::unlink(log_.c_str());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 2);
      ::execl(RINGCAP_GATEWAY_BINARY, RINGCAP_GATEWAY_BINARY, "--config", config_.c_str(), nullptr);
      ::_exit(127);
    }
    const auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline) {
      const std::string text = testsupport::readBytes(log_);
      auto at = text.find("listening on http://");
      if (at != std::string::npos) {
        auto end = text.find(' ', at + 13);
        url_ = text.substr(at + 13, end - at - 13);
        return true;
      }
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "ringcap-gateway exited: " << text;
        return false;
      }
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "ringcap-gateway did not listen within 20 s: " << testsupport::readBytes(log_);
    return false;
  }
  void kill() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  const std::string &url() const { return url_; }
  std::string log() const { return testsupport::readBytes(log_); }

private:
  std::string config_, log_, url_;
  pid_t pid_ = -1;
};

TEST_F(GatewayFleet, TheGatewayProcessKilledMidCaptureCarriesOnAfterARestart) {
  requireS3();
  const auto tools = testsupport::findTools();
  if (!tools.missing.empty())
    RINGCAP_SKIP("missing " + tools.missing);
  SimAgent e1(*etcd_, "gwe", "e1"), e2(*etcd_, "gwe", "e2");
  e1.registerHost();
  e2.registerHost();
  const std::string dir = workDir_ + "/process";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tokens") << "tests " << kToken << "\n";
  ::chmod((dir + "/tokens").c_str(), 0600);
  std::string endpoints;
  for (const auto &u : cluster_->clientUrls())
    endpoints += (endpoints.empty() ? "\"" : ", \"") + u + "\"";
  const std::string staging = bucketUri("pstaging");
  std::ofstream(dir + "/ringcapd.toml")
      << "colo_name = \"gwe\"\n[systems]\nmagic-transit = [\"eth0\"]\n"
      << "[gateway]\nlisten = \"127.0.0.1:0\"\naccount_id = \"" << kAccount
      << "\"\ntokens_file = \"" << dir << "/tokens\"\nfleet_colo_name = \"gwe\"\n"
      << "[fleet]\netcd_endpoints = [" << endpoints << "]\nstaging_destination = \"" << staging
      << "\"\n[s3]\nendpoint = \"" << s3_->endpoint() << "\"\ncredentials_file = \"" << workDir_
      << "/credentials\"\n";
  GatewayProcess gw(dir + "/ringcapd.toml", dir + "/gateway.log");
  ASSERT_TRUE(gw.start());
  auto curl = [&](const std::string &args) {
    return testsupport::runCommand("curl -sS -H 'Authorization: Bearer " + kToken + "' " + args);
  };
  auto created = curl("-H 'Content-Type: application/json' -d '{\"type\":\"simple\","
                      "\"system\":\"magic-transit\",\"time_limit\":60,\"packet_limit\":10}' " +
                      gw.url() + kBase);
  ASSERT_TRUE(created.succeeded);
  ASSERT_EQ(created.lines.size(), 1u);
  const json rec = json::parse(created.lines[0])["result"];
  const std::string id = rec["id"];
  EXPECT_EQ(rec["colo_name"], "gwe");
  ASSERT_TRUE(e1.claim(id));
  ASSERT_TRUE(e2.claim(id));
  e1.report(id, "running", 1);
  e2.report(id, "running", 1);
  ASSERT_TRUE(waitStored(id, "running", 10s)) << gw.log();

  gw.kill();
  const uint64_t t0 = 1'700'000'100'000'000'000ULL;
  auto client = s3Client();
  for (auto [agent, ts, seed] : {std::tuple{&e1, std::vector<uint64_t>{t0 + 5, t0 + 7}, 300u},
                                 std::tuple{&e2, std::vector<uint64_t>{t0 + 6}, 400u}}) {
    const std::string bytes = pcapOf(ts, seed);
    auto put = client.putObject(
        "pstaging/" + id + "/" + agent->host() + ".pcap",
        std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()));
    ASSERT_TRUE(put) << put.error().message;
    agent->report(id, "success", ts.size(), "",
                  {{"staged_object", keys::stagedObject(staging, id, agent->host())},
                   {"staged_bytes", bytes.size()}});
  }
  EXPECT_EQ(storedStatus(id).value("status", ""), "running");

  ASSERT_TRUE(gw.start());
  ASSERT_TRUE(waitStored(id, "success", 10s)) << gw.log();
  auto got = curl(gw.url() + kBase + "/" + id);
  ASSERT_TRUE(got.succeeded);
  EXPECT_EQ(json::parse(got.lines.at(0))["result"]["status"], "success");
  // HEAD: the headers without the body; the merge it started ends when the socket closes.
  auto head1 =
      curl("-I -o /dev/null -w '%{http_code}' " + gw.url() + kBase + "/" + id + "/download");
  ASSERT_TRUE(head1.succeeded) << gw.log();
  EXPECT_EQ(head1.lines.at(0), "200");
  const std::string out = dir + "/merged.pcapng", headers = dir + "/headers";
  auto dl = curl("-D " + headers + " -o " + out + " -w '%{http_code}' " + gw.url() + kBase + "/" +
                 id + "/download");
  ASSERT_TRUE(dl.succeeded) << gw.log();
  EXPECT_EQ(dl.lines.at(0), "200");
  const std::string head = testsupport::readBytes(headers);
  EXPECT_NE(head.find("Transfer-Encoding: chunked"), std::string::npos) << head;
  EXPECT_NE(head.find("application/x-pcapng"), std::string::npos) << head;
  auto times = testsupport::runCommand(tools.tshark + " -r " + out +
                                       " -T fields -e frame.time_epoch -e udp.srcport");
  ASSERT_TRUE(times.succeeded);
  EXPECT_EQ(times.lines, (std::vector<std::string>{testsupport::epochText(t0 + 5) + "\t40300",
                                                   testsupport::epochText(t0 + 6) + "\t40400",
                                                   testsupport::epochText(t0 + 7) + "\t40301"}));
}

} // namespace
} // namespace ringcap::gateway
