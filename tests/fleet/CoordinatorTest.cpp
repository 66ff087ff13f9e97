// fleet::Coordinator (userspace/fleet/Coordinator.h), the gateway's side of fleet mode, against
// a real 3-member etcd cluster on loopback and simulated agents: SimAgent speaks etcd as
// ringcap-agent does (registration under a lease, the claim txn, part updates; Keys.h), and
// fakes the local capture.
#include "fleet/Coordinator.h"
#include "../lib/EtcdCluster.h"
#include "../lib/EtcdClusterTest.h"
#include "../lib/Skip.h"
#include "api/ServiceApi.h"
#include "fleet/Keys.h"

#include <gtest/gtest.h>
#include <thread>

namespace ringcap::fleet {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using testlib::EtcdCluster;

std::unique_ptr<EtcdClient> client(std::vector<std::string> endpoints) {
  return testlib::etcdClient(std::move(endpoints));
}

// One host's agent, as etcd sees it.
class SimAgent {
public:
  SimAgent(EtcdClient &etcd, std::string colo, std::string host,
           std::vector<std::string> groups = {})
      : etcd_(etcd), colo_(std::move(colo)), host_(std::move(host)), groups_(std::move(groups)) {}
  // Grants a lease and puts the registration under it (Agent::registerHost).
  void registerHost() {
    auto lease = etcd_.grantLease(60);
    ASSERT_TRUE(lease) << lease.error().message;
    lease_ = lease->id;
    json value = {{"host", host_},          {"colo", colo_},
                  {"colo_groups", groups_}, {"systems", {"magic-transit"}},
                  {"version", "test"},      {"lease", lease_}};
    auto put = etcd_.put(keys::host(colo_, host_), value.dump(), lease_);
    ASSERT_TRUE(put) << put.error().message;
  }
  void revokeLease() {
    auto r = etcd_.revokeLease(lease_);
    ASSERT_TRUE(r) << r.error().message;
  }
  // The claim (Agent: only a host the spec targets; parts/<host> absent -> put pending).
  // Whether this host claimed it.
  bool claim(const std::string &id) {
    auto spec = etcd_.get(keys::spec(id));
    EXPECT_TRUE(spec && !spec->kvs.empty());
    if (!spec || spec->kvs.empty() || !keys::targets(json::parse(spec->kvs[0].value), host_))
      return false;
    const std::string key = keys::part(id, host_);
    json claim = {{"host", host_}, {"colo", colo_}, {"status", "pending"}};
    auto txn = etcd_.txn({Compare::absent(key)}, {TxnOp::put(key, claim.dump())});
    EXPECT_TRUE(txn) << txn.error().message;
    return txn && txn->succeeded;
  }
  // A part update from the local record (keys::partFromRecord).
  void report(const std::string &id, const std::string &status, uint64_t packets,
              const std::string &error = {}) {
    json record = {{"status", status},
                   {"packets_seen", packets * 2},
                   {"packets_captured", packets},
                   {"bytes_captured", packets * 100}};
    if (!error.empty())
      record["error_message"] = error;
    json part = keys::partFromRecord(host_, record);
    part["colo"] = colo_;
    auto put = etcd_.put(keys::part(id, host_), part.dump());
    ASSERT_TRUE(put) << put.error().message;
  }
  const std::string &host() const { return host_; }

private:
  EtcdClient &etcd_;
  std::string colo_, host_;
  std::vector<std::string> groups_;
  int64_t lease_ = 0;
};

CaptureRequest request(const std::string &type, const std::string &colo) {
  json body = {
      {"system", "magic-transit"}, {"type", type}, {"time_limit", 60}, {"packet_limit", 100}};
  if (type == "full") {
    body["colo_name"] = colo;
    body["destination_conf"] = "s3://bucket/fleet";
  }
  auto r = validateCaptureRequest(body, RequestMode::Api);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : CaptureRequest{};
}

json stored(EtcdClient &etcd, const std::string &key) {
  auto got = etcd.get(key);
  EXPECT_TRUE(got) << got.error().message;
  if (!got || got->kvs.empty())
    return nullptr;
  return json::parse(got->kvs[0].value);
}

// The host entry of a status.
json hostOf(const json &status, const std::string &host) {
  for (const auto &h : status["hosts"])
    if (h["host"] == host)
      return h;
  return nullptr;
}

class CoordinatorTest : public testlib::EtcdClusterTest<CoordinatorTest> {
protected:
  void SetUp() override {
    EtcdClusterTest::SetUp();
    if (IsSkipped() || HasFatalFailure())
      return;
    // Every test starts from an empty /ringcap/.
    auto r = etcd_->remove(keys::kRoot, prefixRangeEnd(keys::kRoot));
    ASSERT_TRUE(r) << r.error().message;
  }

  // Polls the stored status of `id` until `pred` holds; the last one read.
  json waitStatus(const std::string &id, const std::function<bool(const json &)> &pred,
                  std::chrono::seconds timeout = 20s) {
    json s;
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      s = stored(*etcd_, keys::status(id));
      if (s.is_object() && pred(s))
        return s;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "status of " << id << " did not reach the state; last: " << s.dump();
    return s;
  }
};

// A follow() loop in a thread, stopped by the destructor.
class Follower {
public:
  Follower(Coordinator &c) {
    thread_ = std::thread([this, &c] { result_ = c.follow(stop_, 200ms).ok(); });
  }
  ~Follower() {
    stop_ = true;
    thread_.join();
  }

private:
  std::atomic<bool> stop_{false};
  bool result_ = false;
  std::thread thread_;
};

// deriveFleetStatus alone: what a host's registration means for its part.
TEST(FleetStatus, OnlyAnUnfinishedPartOfAVanishedHostFailsAndTheClaimBoundCounts) {
  FleetView view;
  view.spec = {{"id", std::string(32, 'a')},
               {"colos", {"s1"}},
               {"hosts", {"done", "gone", "late", "never"}},
               {"created", "2026-01-01T00:00:00Z"}};
  view.specRevision = 10;
  view.parts["done"] = {{"host", "done"}, {"status", "success"}, {"packets_captured", 4}};
  view.parts["gone"] = {{"host", "gone"}, {"status", "running"}, {"packets_captured", 3}};
  view.registered["late"] = 5; // registered before the capture, not claimed yet
  // "done" and "gone" have no registration now; "done" had finished.
  const int64_t created = 1767225600; // 2026-01-01T00:00:00Z
  CoordinatorOptions options;
  options.claimTimeout = 30s;
  json s = deriveFleetStatus(view, options, created + 10);
  EXPECT_EQ(s["status"], "failed");
  EXPECT_EQ(s["error_message"],
            "host gone vanished (its registration expired) while its part was running; host never "
            "vanished (its registration expired) before it claimed its part");
  EXPECT_EQ(hostOf(s, "done")["status"], "success");
  EXPECT_EQ(hostOf(s, "late")["status"], "pending");
  EXPECT_EQ(s["totals"]["packets_captured"], 7);
  EXPECT_EQ(s["ended"], false);
  view.previous = s;
  view.registered["gone"] = 11; // registered again after the capture: still lost
  s = deriveFleetStatus(view, options, created + 31);
  EXPECT_EQ(hostOf(s, "late")["status"], "failed");
  EXPECT_EQ(s["error_message"],
            "host gone vanished (its registration expired) while its part was running; host "
            "late did not claim its part within 30 s of the capture's creation; host never "
            "vanished (its registration expired) before it claimed its part");
  EXPECT_EQ(s["ended"], true);
}

TEST_F(CoordinatorTest, TwoCoordinatorsRacingOnTheRateLimitsExactlyOneWins) {
  SimAgent a1(*etcd_, "orda", "a1", {"GRP"}), b1(*etcd_, "ordb", "b1", {"GRP"});
  a1.registerHost();
  b1.registerHost();
  auto e1 = client(cluster_->clientUrls()), e2 = client(cluster_->clientUrls());
  Coordinator c1(*e1), c2(*e2);

  // No host at the site: a clear error, nothing written.
  auto none = c1.create(request("simple", ""), "nowhere");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind, ErrorKind::InvalidRequest);
  EXPECT_NE(none.error().message.find("colo_name: no host is registered at site or group "
                                      "\"nowhere\""),
            std::string::npos)
      << none.error().message;

  for (std::string type : {"simple", "full"}) {
    std::vector<Result<json>> results;
    std::mutex m;
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; i++)
      threads.emplace_back([&, i] {
        Coordinator &c = i % 2 ? c1 : c2;
        ready++;
        while (ready < 6)
          std::this_thread::yield();
        auto r = c.create(request(type, "orda"), "orda");
        std::lock_guard lock(m);
        results.push_back(std::move(r));
      });
    for (auto &t : threads)
      t.join();
    int won = 0;
    for (const auto &r : results) {
      if (r) {
        won++;
        continue;
      }
      if (type == "simple") {
        EXPECT_EQ(r.error().kind, ErrorKind::RateLimited) << r.error().message;
        auto retry = api::retryAfterSeconds(r.error().message);
        ASSERT_TRUE(retry) << r.error().message;
        EXPECT_GE(*retry, 1u);
        EXPECT_LE(*retry, 60u);
        EXPECT_NE(
            r.error().message.find("simple captures are limited to one per 60 s at site orda"),
            std::string::npos)
            << r.error().message;
      } else {
        EXPECT_EQ(r.error().kind, ErrorKind::CaptureBusy) << r.error().message;
        EXPECT_NE(r.error().message.find("full capture(s) pending or running at site orda"),
                  std::string::npos)
            << r.error().message;
      }
    }
    EXPECT_EQ(won, 1) << type;
  }
  auto specs = etcd_->getPrefix(std::string(keys::kRoot) + "colos/orda/captures/");
  ASSERT_TRUE(specs);
  EXPECT_EQ(specs->count, 2); // one simple, one full

  // The group covers orda (its full capture pending): refused; ordb alone is free.
  auto group = c1.create(request("full", "GRP"), "GRP");
  ASSERT_FALSE(group);
  EXPECT_EQ(group.error().kind, ErrorKind::CaptureBusy);
  auto b = c2.create(request("full", "ordb"), "ordb");
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ((*b)["colos"], json({"ordb"}));

  // The full capture at orda ends: its limit is released and the next full capture wins.
  auto held = stored(*etcd_, keys::fullLimit("orda"));
  ASSERT_TRUE(held.is_object());
  const std::string id = held["id"];
  ASSERT_TRUE(a1.claim(id));
  a1.report(id, "success", 5);
  auto done = c1.refresh(id);
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ((*done)["status"], "success");
  EXPECT_TRUE(stored(*etcd_, keys::fullLimit("orda")).is_null());
  auto next = c2.create(request("full", "orda"), "orda");
  EXPECT_TRUE(next) << next.error().message;
}

TEST_F(CoordinatorTest, StatusGoesPendingRunningConversionSuccessWithTotals) {
  SimAgent h1(*etcd_, "ord02", "h1"), h2(*etcd_, "ord02", "h2"), h3(*etcd_, "ord02", "h3");
  for (auto *h : {&h1, &h2, &h3})
    h->registerHost();
  Coordinator c(*etcd_);
  auto created = c.create(request("full", "ord02"), "ord02");
  ASSERT_TRUE(created) << created.error().message;
  const std::string id = (*created)["id"];
  EXPECT_TRUE(keys::isCaptureId(id));
  EXPECT_EQ((*created)["status"], "pending");
  EXPECT_EQ(stored(*etcd_, keys::status(id)), *created);
  auto spec = stored(*etcd_, keys::spec(id));
  EXPECT_EQ(spec["hosts"], json({"h1", "h2", "h3"}));
  EXPECT_EQ(spec["request"]["type"], "full");
  EXPECT_EQ(stored(*etcd_, keys::coloCapture("ord02", id)), json({{"id", id}}));

  auto status = [&] {
    auto r = c.refresh(id);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : json();
  };
  ASSERT_TRUE(h1.claim(id));
  ASSERT_TRUE(h2.claim(id));
  EXPECT_FALSE(h2.claim(id)); // a claim is made once
  h1.report(id, "running", 3);
  h2.report(id, "running", 4);
  EXPECT_EQ(status()["status"], "pending"); // h3 has not armed
  ASSERT_TRUE(h3.claim(id));
  h3.report(id, "running", 5);
  json s = status();
  EXPECT_EQ(s["status"], "running");
  EXPECT_EQ(s["totals"]["packets_captured"], 12);
  EXPECT_EQ(s["totals"]["bytes_captured"], 1200);
  EXPECT_EQ(s["totals"]["packets_seen"], 24);
  EXPECT_EQ(hostOf(s, "h2")["packets_captured"], 4);
  EXPECT_EQ(hostOf(s, "h2")["colo"], "ord02");
  h1.report(id, "success", 10);
  h2.report(id, "conversion_running", 10);
  h3.report(id, "conversion_pending", 10);
  EXPECT_EQ(status()["status"], "conversion_pending");
  h3.report(id, "success", 10);
  EXPECT_EQ(status()["status"], "conversion_running");
  EXPECT_FALSE(stored(*etcd_, keys::fullLimit("ord02")).is_null()); // still held
  h2.report(id, "success", 10);
  s = status();
  EXPECT_EQ(s["status"], "success");
  EXPECT_EQ(s["ended"], true);
  EXPECT_FALSE(s.contains("error_message"));
  EXPECT_EQ(s["totals"]["packets_captured"], 30);
  EXPECT_EQ(s["hosts"].size(), 3u);
  EXPECT_EQ(stored(*etcd_, keys::status(id)), s);
  EXPECT_TRUE(stored(*etcd_, keys::fullLimit("ord02")).is_null());
}

TEST_F(CoordinatorTest, OneHostFailingFailsTheCaptureNamingItAndTheOthersGoOn) {
  SimAgent h1(*etcd_, "ord03", "h1"), h2(*etcd_, "ord03", "h2"), h3(*etcd_, "ord03", "h3");
  for (auto *h : {&h1, &h2, &h3})
    h->registerHost();
  Coordinator c(*etcd_);
  auto created = c.create(request("full", "ord03"), "ord03");
  ASSERT_TRUE(created) << created.error().message;
  const std::string id = (*created)["id"];
  Follower follower(c);
  for (auto *h : {&h1, &h2, &h3}) {
    ASSERT_TRUE(h->claim(id));
    h->report(id, "running", 2);
  }
  waitStatus(id, [](const json &s) { return s["status"] == "running"; });
  h2.report(id, "failed", 1, "ringcapd on h2 refused the capture: all 8 capture slots are in use");
  json s = waitStatus(id, [](const json &s) { return s["status"] == "failed"; });
  EXPECT_EQ(s["error_message"],
            "host h2 failed: ringcapd on h2 refused the capture: all 8 capture slots are in use");
  EXPECT_EQ(s["ended"], false);
  EXPECT_EQ(hostOf(s, "h1")["status"], "running");
  EXPECT_EQ(hostOf(s, "h3")["status"], "running");
  h1.report(id, "success", 7);
  h3.report(id, "success", 9);
  s = waitStatus(id, [](const json &s) { return s["ended"] == true; });
  EXPECT_EQ(s["status"], "failed");
  EXPECT_EQ(hostOf(s, "h1")["status"], "success");
  EXPECT_EQ(hostOf(s, "h3")["packets_captured"], 9);
  EXPECT_EQ(s["totals"]["packets_captured"], 17);
  EXPECT_TRUE(stored(*etcd_, keys::fullLimit("ord03")).is_null());
}

TEST_F(CoordinatorTest, HostWhoseLeaseIsRevokedMidCaptureFailsItsPart) {
  SimAgent h1(*etcd_, "ord04", "h1"), h2(*etcd_, "ord04", "h2");
  h1.registerHost();
  h2.registerHost();
  Coordinator c(*etcd_);
  auto created = c.create(request("full", "ord04"), "ord04");
  ASSERT_TRUE(created) << created.error().message;
  const std::string id = (*created)["id"];
  Follower follower(c);
  ASSERT_TRUE(h1.claim(id));
  ASSERT_TRUE(h2.claim(id));
  h1.report(id, "running", 1);
  h2.report(id, "running", 1);
  waitStatus(id, [](const json &s) { return s["status"] == "running"; });
  h2.revokeLease();
  json s = waitStatus(id, [](const json &s) { return s["status"] == "failed"; });
  EXPECT_EQ(s["error_message"],
            "host h2 vanished (its registration expired) while its part was running");
  EXPECT_EQ(hostOf(s, "h2")["status"], "failed");
  EXPECT_EQ(hostOf(s, "h1")["status"], "running");
  // The host comes back and reports success: the part stays failed.
  h2.registerHost();
  h2.report(id, "success", 3);
  h1.report(id, "success", 3);
  s = waitStatus(id, [](const json &s) { return s["ended"] == true; });
  EXPECT_EQ(s["status"], "failed");
  EXPECT_EQ(hostOf(s, "h2")["status"], "failed");
  EXPECT_EQ(hostOf(s, "h2")["reported_status"], "success");
  EXPECT_EQ(hostOf(s, "h1")["status"], "success");
}

TEST_F(CoordinatorTest, RestartedCoordinatorContinuesAndFailsAHostThatNeverClaimed) {
  SimAgent h1(*etcd_, "ord05", "h1"), h2(*etcd_, "ord05", "h2"), h3(*etcd_, "ord06", "h3");
  h1.registerHost();
  h2.registerHost();
  h3.registerHost();
  std::string id, other;
  {
    auto e = client(cluster_->clientUrls());
    Coordinator c(*e);
    auto created = c.create(request("full", "ord05"), "ord05");
    ASSERT_TRUE(created) << created.error().message;
    id = (*created)["id"];
    Follower follower(c);
    ASSERT_TRUE(h1.claim(id));
    ASSERT_TRUE(h2.claim(id));
    h1.report(id, "running", 1);
    h2.report(id, "running", 1);
    waitStatus(id, [](const json &s) { return s["status"] == "running"; });
  } // the coordinator is gone
  h1.report(id, "success", 4);
  h2.report(id, "success", 6);
  // A capture at ord06 whose host never claims its part (2 s bound).
  CoordinatorOptions quick;
  quick.claimTimeout = 2s;
  auto e = client(cluster_->clientUrls());
  Coordinator restarted(*e, quick);
  auto created = restarted.create(request("full", "ord06"), "ord06");
  ASSERT_TRUE(created) << created.error().message;
  other = (*created)["id"];
  EXPECT_EQ(stored(*etcd_, keys::status(id))["status"], "running"); // nobody followed
  auto unfinished = restarted.unfinished();
  ASSERT_TRUE(unfinished) << unfinished.error().message;
  EXPECT_EQ(unfinished->size(), 2u);
  Follower follower(restarted);
  json s = waitStatus(id, [](const json &s) { return s["ended"] == true; });
  EXPECT_EQ(s["status"], "success");
  EXPECT_EQ(s["totals"]["packets_captured"], 10);
  s = waitStatus(
      other, [](const json &s) { return s["ended"] == true; }, 30s);
  EXPECT_EQ(s["status"], "failed");
  EXPECT_EQ(s["error_message"],
            "host h3 did not claim its part within 2 s of the capture's creation");
  EXPECT_TRUE(stored(*etcd_, keys::fullLimit("ord06")).is_null());
}

TEST_F(CoordinatorTest, HostRegisteredAfterCreateDoesNotJoin) {
  SimAgent h1(*etcd_, "ord07", "h1"), late(*etcd_, "ord07", "late");
  h1.registerHost();
  Coordinator c(*etcd_);
  auto created = c.create(request("simple", "ord07"), "ord07");
  ASSERT_TRUE(created) << created.error().message;
  const std::string id = (*created)["id"];
  late.registerHost();
  EXPECT_FALSE(late.claim(id)); // not among the targets, as the agent decides
  // Even a part written by it is not the capture's.
  late.report(id, "running", 50);
  ASSERT_TRUE(h1.claim(id));
  h1.report(id, "success", 2);
  auto s = c.refresh(id);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ((*s)["status"], "success");
  ASSERT_EQ((*s)["hosts"].size(), 1u);
  EXPECT_EQ((*s)["hosts"][0]["host"], "h1");
  EXPECT_EQ((*s)["totals"]["packets_captured"], 2);
}

TEST_F(CoordinatorTest, StopReachesEverySiteKeyOfTheCapture) {
  SimAgent a(*etcd_, "ord08", "a", {"ORDX"}), b(*etcd_, "ord09", "b", {"ORDX"});
  a.registerHost();
  b.registerHost();
  Coordinator c(*etcd_);
  auto created = c.create(request("full", "ORDX"), "ORDX");
  ASSERT_TRUE(created) << created.error().message;
  const std::string id = (*created)["id"];
  EXPECT_EQ((*created)["colos"], json({"ord08", "ord09"}));
  EXPECT_EQ((*created)["colo_name"], "ORDX");
  ASSERT_TRUE(c.stop(id));
  for (std::string site : {"ord08", "ord09"})
    EXPECT_EQ(stored(*etcd_, keys::coloCapture(site, id)), json({{"id", id}, {"stop", true}}))
        << site;
  auto unknown = c.stop(newFleetCaptureId());
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind, ErrorKind::NotFound);
}

// A host declared lost before it claimed cannot claim later (its part is failed in etcd), and
// a host lost while its part runs keeps the site's full-capture limit held until that part is
// terminal: never two full captures at a site at once.
TEST_F(CoordinatorTest, ALostHostCannotClaimLateAndItsRunningPartKeepsTheFullLimit) {
  SimAgent h1(*etcd_, "ord10", "h1"), h2(*etcd_, "ord10", "h2"), h3(*etcd_, "ord10", "h3");
  for (auto *h : {&h1, &h2, &h3})
    h->registerHost();
  CoordinatorOptions quick;
  quick.claimTimeout = 2s;
  Coordinator c(*etcd_, quick);
  auto created = c.create(request("full", "ord10"), "ord10");
  ASSERT_TRUE(created) << created.error().message;
  const std::string id = (*created)["id"];
  ASSERT_TRUE(h1.claim(id));
  ASSERT_TRUE(h2.claim(id));
  h1.report(id, "running", 1);
  h2.report(id, "running", 1);
  Follower follower(c);
  json s = waitStatus(id, [](const json &s) { return s["lost_hosts"].contains("h3"); });
  EXPECT_EQ(hostOf(s, "h3")["status"], "failed");
  // h3's agent comes late: its claim fails.
  EXPECT_FALSE(h3.claim(id));
  json part = stored(*etcd_, keys::part(id, "h3"));
  EXPECT_EQ(part["status"], "failed");
  EXPECT_EQ(part["error_message"],
            "host h3 did not claim its part within 2 s of the capture's creation");

  // h2 vanishes while running; h1 ends: the capture has ended, but h2's ringcapd may still
  // capture, so the site's full limit stays held.
  h2.revokeLease();
  h1.report(id, "success", 2);
  s = waitStatus(id, [](const json &s) { return s["ended"] == true; });
  EXPECT_EQ(s["status"], "failed");
  EXPECT_EQ(s["lost_running"], json({"h2"}));
  EXPECT_FALSE(stored(*etcd_, keys::fullLimit("ord10")).is_null());
  auto busy = c.create(request("full", "ord10"), "ord10");
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().kind, ErrorKind::CaptureBusy);
  // h2 comes back and reports its part's end: the limit is released.
  h2.registerHost();
  h2.report(id, "success", 3);
  s = waitStatus(id, [](const json &s) { return s["lost_running"].empty(); });
  EXPECT_EQ(s["status"], "failed");
  const auto deadline = Clock::now() + 20s;
  while (Clock::now() < deadline && !stored(*etcd_, keys::fullLimit("ord10")).is_null())
    std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(stored(*etcd_, keys::fullLimit("ord10")).is_null());
}

// The lost-running bound: past the request's time_limit plus the claim timeout, ringcapd has
// stopped capturing, and the limit is no longer held for the part.
TEST(FleetStatus, ALostRunningPartHoldsTheLimitOnlyUntilTheTimeLimitHasPassed) {
  FleetView view;
  view.spec = {{"id", std::string(32, 'b')},
               {"colos", {"s1"}},
               {"hosts", {"gone"}},
               {"request", {{"type", "full"}, {"time_limit", 60}}},
               {"created", "2026-01-01T00:00:00Z"}};
  view.specRevision = 10;
  view.parts["gone"] = {{"host", "gone"}, {"status", "running"}};
  const int64_t created = 1767225600;
  CoordinatorOptions options;
  options.claimTimeout = 30s;
  json s = deriveFleetStatus(view, options, created + 90);
  EXPECT_EQ(s["ended"], true);
  EXPECT_EQ(s["lost_running"], json({"gone"}));
  s = deriveFleetStatus(view, options, created + 91);
  EXPECT_EQ(s["lost_running"], json::array());
}

// A coordinator with an older snapshot never overwrites a newer status.
TEST_F(CoordinatorTest, AnOlderSnapshotDoesNotOverwriteANewerStatus) {
  SimAgent h1(*etcd_, "ord11", "h1");
  h1.registerHost();
  Coordinator c(*etcd_);
  auto created = c.create(request("simple", "ord11"), "ord11");
  ASSERT_TRUE(created) << created.error().message;
  const std::string id = (*created)["id"];
  ASSERT_TRUE(h1.claim(id));
  h1.report(id, "running", 1);
  auto old = c.snapshot(id);
  ASSERT_TRUE(old) << old.error().message;
  h1.report(id, "success", 2);
  auto done = c.refresh(id);
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ((*done)["ended"], true);
  auto late = c.refreshFrom(id, *old);
  EXPECT_FALSE(late);
  json s = stored(*etcd_, keys::status(id));
  EXPECT_EQ(s["status"], "success");
  EXPECT_EQ(s["ended"], true);
}

// Parts are keyed by host name: a capture over two sites that both have a host "h" is
// refused, naming the host and the sites, and nothing is written.
TEST_F(CoordinatorTest, TwoRegistrationsOfOneHostNameAtTheTargetSitesAreRefused) {
  SimAgent a(*etcd_, "ord12", "h", {"DUP"}), b(*etcd_, "ord13", "h", {"DUP"});
  a.registerHost();
  b.registerHost();
  Coordinator c(*etcd_);
  auto created = c.create(request("full", "DUP"), "DUP");
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().kind, ErrorKind::Failed);
  EXPECT_EQ(created.error().message,
            "fleet.host_name: host \"h\" is registered at sites ord12 and ord13; host names must "
            "be unique in the fleet (nothing created)");
  auto specs = etcd_->getPrefix(std::string(keys::kRoot) + "captures/");
  ASSERT_TRUE(specs);
  EXPECT_EQ(specs->count, 0);
  EXPECT_TRUE(stored(*etcd_, keys::fullLimit("ord12")).is_null());
  // One site alone is fine.
  auto one = c.create(request("full", "ord12"), "ord12");
  EXPECT_TRUE(one) << one.error().message;
}

} // namespace
} // namespace ringcap::fleet
