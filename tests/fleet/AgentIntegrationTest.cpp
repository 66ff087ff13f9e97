// ringcap-agent end to end on one host: a 3-member etcd cluster on loopback
// (tests/lib/EtcdCluster), ringcapd on its own dbus-daemon with a veth in a network namespace
// (tests/dbus/DaemonFixture), and the agent binary between them. Captures are put into etcd
// the way the gateway does (fleet::keys::createCapture); the agent runs this host's part once,
// writes its status and counters back, resumes from its stored revision after a restart, and
// does not join a capture created before it registered.
#include "../dbus/DaemonFixture.h"
#include "../lib/EtcdCluster.h"
#include "../lib/Skip.h"
#include "../s3/S3Server.h"
#include "api/ServiceApi.h"
#include "destination/AwsCredentials.h"
#include "destination/DestinationUri.h"
#include "destination/S3Client.h"
#include "fleet/Coordinator.h"
#include "fleet/Etcd.h"
#include "fleet/Keys.h"

#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace ringcap::dbustest {
namespace {
namespace keys = fleet::keys;
using testlib::EtcdCluster;
using Clock = std::chrono::steady_clock;

constexpr const char *kColo = "lab01";
constexpr const char *kHost = "labhost1";
constexpr const char *kBefore = "0000000000000000000000000000000a";
constexpr const char *kFirst = "0000000000000000000000000000000b";
constexpr const char *kWhileDown = "0000000000000000000000000000000c";
// Only the test's datagrams (the veth also carries IPv6 neighbour discovery).
const json kUdpTo5000 = {{"protocol", 17}, {"destination_port", 5000}};

class AgentTest : public DaemonTest {
protected:
  void SetUp() override {
    DaemonTest::SetUp();
    if (IsSkipped() || HasFatalFailure())
      return;
    if (EtcdCluster::etcdBinary().empty())
      RINGCAP_SKIP("ringcap-agent test: needs etcd (Debian's etcd-server, or $RINGCAP_ETCD)");
    // Simple captures are staged in S3 (fleet.staging_destination): a real S3 server.
    if (std::string why = test::S3Server::unavailableReason(); !why.empty())
      RINGCAP_SKIP("ringcap-agent test: " + why);
  }
  void TearDown() override {
    stopAgent(SIGKILL);
    if (HasFailure())
      for (int i = 1; i <= runs_; ++i)
        std::cerr << "---- ringcap-agent log, run " << i << " ----\n" << agentLog(i);
    DaemonTest::TearDown();
  }

  std::string agentLog(int run) {
    return readFile(lab().tmp() + "/agent-" + std::to_string(run) + ".log");
  }
  std::string stateDir() { return lab().tmp() + "/agent-state"; }

  testing::AssertionResult startCluster() {
    auto cluster = EtcdCluster::start(3);
    if (!cluster)
      return testing::AssertionFailure() << cluster.error().message;
    cluster_ = std::move(*cluster);
    auto etcd = fleet::EtcdClient::create({cluster_->clientUrls()});
    if (!etcd)
      return testing::AssertionFailure() << etcd.error().message;
    etcd_ = std::move(*etcd);
    s3_ = std::make_unique<test::S3Server>(lab().tmp() + "/s3");
    if (auto started = s3_->start(); !started)
      return testing::AssertionFailure() << "S3 server: " << started.error().message;
    return writeConfig();
  }

  // fleet.staging_destination of the agent's file.
  std::string staging() const {
    return std::string("s3://") + test::S3Server::kBucket +
           "/staging?region=" + test::S3Server::kRegion + "&endpoint=" + s3_->endpoint();
  }

  // An object of the test's bucket (an error when it cannot be read).
  Result<std::vector<uint8_t>> s3Object(const std::string &key) {
    S3Client client({test::S3Server::kBucket, test::S3Server::kRegion, s3_->endpoint()},
                    AwsCredentials{test::S3Server::kAccessKey, test::S3Server::kSecretKey, ""},
                    S3Options{.attempts = 1});
    return client.getObject(key);
  }

  testing::AssertionResult writeConfig() {
    config_ = lab().tmp() + "/agent.toml";
    std::string endpoints;
    for (const auto &u : cluster_->clientUrls())
      endpoints += (endpoints.empty() ? "\"" : ", \"") + u + "\"";
    std::ofstream(config_) << "colo_name = \"" << kColo << "\"\n"
                           << "[systems]\nmagic-transit = [\"" << lab().captureInterface()
                           << "\"]\n[fleet]\netcd_endpoints = [" << endpoints << "]\n"
                           << "host_name = \"" << kHost << "\"\n"
                           << "state_directory = \"" << stateDir() << "\"\n"
                           << "lease_ttl_seconds = 4\nstatus_interval_seconds = 1\n"
                           << "staging_destination = \"" << staging() << "\"\n"
                           << agentFleetExtra_ << "[s3]\nallowed_endpoints = [\"" << s3_->endpoint()
                           << "\"]\n";
    return testing::AssertionSuccess();
  }

  // Starts the agent (its log: agent-<run>.log) and waits until its host key exists.
  testing::AssertionResult startAgent() {
    ++runs_;
    const std::string log = lab().tmp() + "/agent-" + std::to_string(runs_) + ".log";
    const std::string bus = "DBUS_SYSTEM_BUS_ADDRESS=" + lab().busAddress();
    const std::string keyId = std::string("AWS_ACCESS_KEY_ID=") + test::S3Server::kAccessKey;
    const std::string secret = std::string("AWS_SECRET_ACCESS_KEY=") + test::S3Server::kSecretKey;
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      putenv(const_cast<char *>(bus.c_str()));
      putenv(const_cast<char *>(keyId.c_str()));
      putenv(const_cast<char *>(secret.c_str()));
      putenv(const_cast<char *>("RINGCAP_TEST_FAST_RETRIES=1"));
      execl(RINGCAP_AGENT_PATH, RINGCAP_AGENT_PATH, "--config", config_.c_str(), nullptr);
      _exit(127);
    }
    if (pid < 0)
      return testing::AssertionFailure() << "fork: " << strerror(errno);
    agent_ = pid;
    const auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline) {
      auto got = etcd_->get(keys::host(kColo, kHost));
      if (got && !got->kvs.empty())
        return testing::AssertionSuccess();
      int ws = 0;
      if (waitpid(agent_, &ws, WNOHANG) == agent_) {
        agent_ = -1;
        return testing::AssertionFailure()
               << "ringcap-agent exited (status " << ws << ") before it registered; its log:\n"
               << readFile(log);
      }
      std::this_thread::sleep_for(100ms);
    }
    return testing::AssertionFailure() << "ringcap-agent did not register within 30 s";
  }

  // Stops the agent by its PID and waits; with SIGTERM it must exit with code 0.
  testing::AssertionResult stopAgent(int signal) {
    if (agent_ <= 0)
      return testing::AssertionSuccess();
    kill(agent_, signal);
    int ws = 0;
    const auto deadline = Clock::now() + 20s;
    pid_t r = 0;
    while ((r = waitpid(agent_, &ws, WNOHANG)) == 0 && Clock::now() < deadline)
      std::this_thread::sleep_for(50ms);
    if (r == 0) {
      kill(agent_, SIGKILL);
      waitpid(agent_, &ws, 0);
      agent_ = -1;
      return testing::AssertionFailure() << "ringcap-agent did not exit within 20 s of a signal";
    }
    agent_ = -1;
    if (signal == SIGTERM && !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0))
      return testing::AssertionFailure() << "ringcap-agent ended with wait status " << ws;
    return testing::AssertionSuccess();
  }

  testing::AssertionResult create(const std::string &id, const json &request) {
    json spec = {{"id", id}, {"colo_name", kColo}, {"request", request}};
    auto made = keys::createCapture(*etcd_, spec, {kColo});
    if (!made)
      return testing::AssertionFailure() << "createCapture: " << made.error().message;
    return testing::AssertionSuccess();
  }

  // More lines of the agent's [fleet] table.
  std::string agentFleetExtra_;

  // The part of this host (null when there is none) and its mod revision.
  std::pair<json, int64_t> part(const std::string &id) {
    auto got = etcd_->get(keys::part(id, kHost));
    if (!got || got->kvs.empty())
      return {json(), 0};
    return {json::parse(got->kvs[0].value, nullptr, false), got->kvs[0].modRevision};
  }

  // Polls the part until its status is `status` (a failed part ends the wait early).
  testing::AssertionResult waitForPart(const std::string &id, const std::string &status,
                                       Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    json last;
    while (Clock::now() < deadline) {
      last = part(id).first;
      if (last.is_object() && last.value("status", "") == status)
        return testing::AssertionSuccess();
      if (last.is_object() && last.value("status", "") == "failed" && status != "failed")
        break;
      std::this_thread::sleep_for(100ms);
    }
    return testing::AssertionFailure() << "the part of " << kHost << " in capture " << id
                                       << " is not " << status << ": " << last.dump();
  }

  bool logHas(int run, const std::string &text, Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (agentLog(run).find(text) != std::string::npos)
        return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  std::unique_ptr<EtcdCluster> cluster_;
  std::unique_ptr<fleet::EtcdClient> etcd_;
  std::unique_ptr<test::S3Server> s3_;
  std::string config_;
  pid_t agent_ = -1;
  int runs_ = 0;
};

TEST_F(AgentTest, RunsItsPartOnceResumesAfterARestartAndSkipsCapturesFromBeforeItRegistered) {
  RINGCAP_LAB_UP();
  ASSERT_TRUE(startCluster());

  // Created while no host of the site is registered: nobody joins it.
  ASSERT_TRUE(create(kBefore, simpleRequest(30, 10)));
  ASSERT_TRUE(startAgent());
  auto host = etcd_->get(keys::host(kColo, kHost));
  ASSERT_TRUE(host && host->kvs.size() == 1);
  EXPECT_NE(host->kvs[0].lease, 0) << "the registration is not under a lease";
  json registration = json::parse(host->kvs[0].value);
  EXPECT_EQ(registration["colo"], kColo);
  EXPECT_EQ(registration["systems"], json::array({"magic-transit"}));
  EXPECT_EQ(registration["version"], RINGCAP_VERSION);
  EXPECT_TRUE(logHas(1,
                     "capture " + std::string(kBefore) +
                         ": host labhost1 is not among its "
                         "targets",
                     20s))
      << agentLog(1);

  // Created after the host registered: the agent runs it with the fleet's id.
  ASSERT_TRUE(create(kFirst, simpleRequest(60, 20, kUdpTo5000)));
  ASSERT_TRUE(waitForPart(kFirst, "running", 30s));
  // While it runs, the counters reach etcd (status_interval_seconds = 1).
  ASSERT_TRUE(lab().sendUdp(4000, 5000, 10, 100));
  const auto runningDeadline = Clock::now() + 30s;
  json running;
  while (Clock::now() < runningDeadline) {
    running = part(kFirst).first;
    if (running.value("packets_captured", 0) == 10)
      break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(running.value("status", ""), "running") << running.dump();
  EXPECT_EQ(running.value("packets_captured", 0), 10) << running.dump();
  ASSERT_TRUE(lab().sendUdp(4000, 5000, 10, 100));
  ASSERT_TRUE(waitForPart(kFirst, "success", 60s));
  auto [done, doneRevision] = part(kFirst);
  EXPECT_EQ(done["host"], kHost);
  EXPECT_EQ(done["colo"], kColo);
  EXPECT_EQ(done["packets_captured"], 20) << done.dump();
  EXPECT_GE(done["bytes_captured"].get<uint64_t>(), 20u * 100) << done.dump();
  EXPECT_GE(done["packets_seen"].get<uint64_t>(), 20u) << done.dump();
  EXPECT_EQ(done["stop_reason"], "packet_limit") << done.dump();
  EXPECT_EQ(done["file_name"], "pcap_" + std::string(kFirst) + ".pcap") << done.dump();
  DictResult record = root().get(kFirst);
  ASSERT_TRUE(record.call.ok()) << record.call.describe();
  EXPECT_EQ(record.dict["id"], kFirst);
  EXPECT_EQ(record.dict["status"], "success");
  EXPECT_EQ(record.dict["packets_captured"], 20);
  UniqueFd file;
  ASSERT_TRUE(root().openFile(kFirst, file).ok());
  const std::string copy = lab().tmp() + "/first.pcap";
  ASSERT_GT(copyToFile(file.get(), copy), 0);
  RunResult frames = tsharkFields(copy, {"frame.number"});
  ASSERT_EQ(frames.status, 0) << frames.err;
  EXPECT_EQ(lines(frames.out).size(), 20u);
  EXPECT_FALSE(part(kBefore).first.is_object()) << "a part of the early capture exists";
  // The specs as createCapture wrote them: the hosts registered at creation.
  for (auto [id, hosts] : {std::pair{kBefore, json::array()}, {kFirst, json::array({kHost})}}) {
    auto spec = etcd_->get(keys::spec(id));
    ASSERT_TRUE(spec && spec->kvs.size() == 1);
    json j = json::parse(spec->kvs[0].value);
    EXPECT_EQ(j["hosts"], hosts) << j.dump();
    EXPECT_EQ(j["colos"], json::array({kColo})) << j.dump();
    EXPECT_EQ(j.value("created", "").size(), 20u) << j.dump();
  }
  EXPECT_EQ(root().list().size(), 1u) << "ringcapd ran something else";

  // Stopped; a capture created meanwhile is run after the restart (the watch resumes from the
  // stored revision); the finished one is not run again.
  ASSERT_TRUE(stopAgent(SIGTERM));
  ASSERT_TRUE(create(kWhileDown, simpleRequest(2, 10)));
  ASSERT_TRUE(startAgent());
  EXPECT_TRUE(logHas(2, "from etcd revision", 10s)) << agentLog(2);
  ASSERT_TRUE(waitForPart(kWhileDown, "success", 60s));
  EXPECT_EQ(part(kWhileDown).first["stop_reason"], "time_limit");
  EXPECT_EQ(part(kFirst).second, doneRevision) << "the finished part was written again";

  // Restarted without its state (the worst case): it reads the site's captures again, and the
  // claims keep every one from running twice.
  ASSERT_TRUE(stopAgent(SIGTERM));
  const int64_t whileDownRevision = part(kWhileDown).second;
  std::filesystem::remove_all(stateDir());
  ASSERT_TRUE(startAgent());
  ASSERT_TRUE(logHas(3, "had 3 capture(s)", 30s)) << agentLog(3);
  EXPECT_NE(agentLog(3).find("capture " + std::string(kFirst) +
                             ": this host's part is success already; not run again"),
            std::string::npos)
      << agentLog(3);
  EXPECT_EQ(part(kFirst).second, doneRevision);
  EXPECT_EQ(part(kWhileDown).second, whileDownRevision);
  EXPECT_FALSE(part(kBefore).first.is_object());
  EXPECT_EQ(root().list().size(), 2u) << "ringcapd ran a capture again";
  ASSERT_TRUE(stopAgent(SIGTERM));
}

TEST_F(AgentTest, KeepsReportingAfterSIGKILLReRegistersAndFailsAClaimRingcapdNeverGot) {
  RINGCAP_LAB_UP();
  ASSERT_TRUE(startCluster());
  ASSERT_TRUE(startAgent());

  // The registration's lease revoked (as when it expired): the agent registers again.
  auto host = etcd_->get(keys::host(kColo, kHost));
  ASSERT_TRUE(host && host->kvs.size() == 1);
  const int64_t firstLease = host->kvs[0].lease;
  ASSERT_TRUE(etcd_->revokeLease(firstLease));
  const auto deadline = Clock::now() + 30s;
  int64_t lease = 0;
  while (Clock::now() < deadline) {
    auto again = etcd_->get(keys::host(kColo, kHost));
    if (again && !again->kvs.empty() && again->kvs[0].lease != firstLease) {
      lease = again->kvs[0].lease;
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(lease, 0) << "the host did not register again after its lease ended\n" << agentLog(1);

  // SIGKILL while its part runs; ringcapd finishes it; the restarted agent reports the end
  // (the unfinished part is in its state file) and does not run it again.
  ASSERT_TRUE(create(kFirst, simpleRequest(60, 5, kUdpTo5000)));
  ASSERT_TRUE(waitForPart(kFirst, "running", 30s));
  ASSERT_TRUE(stopAgent(SIGKILL));
  ASSERT_TRUE(lab().sendUdp(4000, 5000, 5, 100));
  const auto ringcapdDeadline = Clock::now() + 30s;
  std::string local;
  while (Clock::now() < ringcapdDeadline && local != "success") {
    DictResult r = root().get(kFirst);
    local = r.call.ok() ? r.dict.value("status", "") : r.call.describe();
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(local, "success") << "ringcapd did not finish the capture";
  EXPECT_EQ(part(kFirst).first.value("status", ""), "running")
      << "the part changed while no agent ran";
  ASSERT_TRUE(startAgent());
  ASSERT_TRUE(waitForPart(kFirst, "success", 30s));
  EXPECT_EQ(part(kFirst).first["packets_captured"], 5);
  EXPECT_NE(agentLog(2).find("reporting it again"), std::string::npos) << agentLog(2);

  // A part claimed by this host that ringcapd never got (the agent died between the two):
  // failed with a message, never started.
  ASSERT_TRUE(etcd_->put(keys::part(kWhileDown, kHost),
                         json{{"host", kHost}, {"colo", kColo}, {"status", "pending"}}.dump()));
  ASSERT_TRUE(create(kWhileDown, simpleRequest(60, 5)));
  ASSERT_TRUE(waitForPart(kWhileDown, "failed", 30s));
  EXPECT_NE(
      part(kWhileDown)
          .first.value("error_message", "")
          .find("stopped between claiming its part and starting it on ringcapd; not run again"),
      std::string::npos)
      << part(kWhileDown).first.dump();
  EXPECT_EQ(root().list().size(), 1u) << "ringcapd ran a capture again";
  ASSERT_TRUE(stopAgent(SIGTERM));
}

// The gateway's side (fleet::Coordinator) with the real agent and ringcapd: the capture is
// created by the coordinator, followed to `running`, stopped through the site key (the agent
// calls StopCapture), and its status ends `success` with this host's counters; a second
// simple capture at the site within the interval is refused.
TEST_F(AgentTest, CoordinatorCreatesFollowsAndStopsACaptureRunByTheAgent) {
  RINGCAP_LAB_UP();
  ASSERT_TRUE(startCluster());
  ASSERT_TRUE(startAgent());
  auto body = simpleRequest(60, 100, kUdpTo5000);
  auto request = validateCaptureRequest(body, RequestMode::Api);
  ASSERT_TRUE(request) << request.error().message;
  fleet::Coordinator coordinator(*etcd_);
  std::atomic<bool> stop{false};
  std::thread follower([&] { (void)coordinator.follow(stop, 200ms); });
  struct Join {
    std::atomic<bool> &stop;
    std::thread &t;
    ~Join() {
      stop = true;
      t.join();
    }
  } join{stop, follower};

  auto created = coordinator.create(*request, kColo);
  ASSERT_TRUE(created) << created.error().message;
  const std::string id = (*created)["id"];
  auto status = [&](const std::string &want, Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    json last;
    while (Clock::now() < deadline) {
      auto got = etcd_->get(keys::status(id));
      if (got && !got->kvs.empty()) {
        last = json::parse(got->kvs[0].value, nullptr, false);
        if (last.value("status", "") == want)
          return last;
      }
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "the fleet status of " << id << " is not " << want << ": " << last.dump();
    return last;
  };
  status("running", 30s);
  ASSERT_TRUE(lab().sendUdp(4000, 5000, 5, 100));
  ASSERT_TRUE(waitForPart(id, "running", 10s));
  const auto countDeadline = Clock::now() + 30s;
  while (Clock::now() < countDeadline && part(id).first.value("packets_captured", 0) != 5)
    std::this_thread::sleep_for(100ms);
  auto again = coordinator.create(*request, kColo);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::RateLimited) << again.error().message;
  EXPECT_TRUE(api::retryAfterSeconds(again.error().message)) << again.error().message;

  ASSERT_TRUE(coordinator.stop(id));
  json done = status("success", 30s);
  EXPECT_EQ(done["ended"], true) << done.dump();
  ASSERT_EQ(done["hosts"].size(), 1u) << done.dump();
  EXPECT_EQ(done["hosts"][0]["host"], kHost);
  EXPECT_EQ(done["hosts"][0]["stop_reason"], "stopped") << done.dump();
  EXPECT_EQ(done["totals"]["packets_captured"], 5) << done.dump();
  EXPECT_EQ(root().get(id).dict.value("stop_reason", ""), "stopped");
  ASSERT_TRUE(stopAgent(SIGTERM));
}

// Faults the agent must live through: a site key whose "stop" has another type (skipped, no
// crash); a capture whose spec names this host's registration that ended since (not claimed:
// the coordinator counts that host lost); a CreateCapture while ringcapd is off the bus (the
// part is kept as uncertain, not failed, and created once ringcapd says it does not have it).
TEST_F(AgentTest, SkipsMalformedValuesRefusesAStaleSpecAndCreatesWhenRingcapdComesBack) {
  RINGCAP_LAB_UP();
  ASSERT_TRUE(startCluster());
  ASSERT_TRUE(startAgent());

  // A malformed site key: logged and skipped.
  ASSERT_TRUE(
      etcd_->put(keys::coloCapture(kColo, kBefore), json{{"id", kBefore}, {"stop", "yes"}}.dump()));
  EXPECT_TRUE(logHas(1, "\"stop\" is not true or false", 20s)) << agentLog(1);

  // A spec naming this host, created before its registration is made again.
  const json request = simpleRequest(60, 5);
  json spec = {{"id", kFirst},     {"colo_name", kColo}, {"request", request},
               {"hosts", {kHost}}, {"colos", {kColo}},   {"created", "2026-01-01T00:00:00Z"}};
  ASSERT_TRUE(etcd_->put(keys::spec(kFirst), spec.dump()));
  auto host = etcd_->get(keys::host(kColo, kHost));
  ASSERT_TRUE(host && host->kvs.size() == 1);
  const int64_t firstLease = host->kvs[0].lease;
  ASSERT_TRUE(etcd_->revokeLease(firstLease));
  const auto deadline = Clock::now() + 30s;
  bool again = false;
  while (Clock::now() < deadline && !again) {
    auto got = etcd_->get(keys::host(kColo, kHost));
    again = got && !got->kvs.empty() && got->kvs[0].lease != firstLease;
    if (!again)
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(again) << "the host did not register again\n" << agentLog(1);
  ASSERT_TRUE(etcd_->put(keys::coloCapture(kColo, kFirst), json{{"id", kFirst}}.dump()));
  EXPECT_TRUE(logHas(1, "capture " + std::string(kFirst) + ": created (etcd revision", 20s))
      << agentLog(1);
  EXPECT_FALSE(part(kFirst).first.is_object()) << part(kFirst).first.dump();
  EXPECT_FALSE(root().get(kFirst).call.ok()) << "ringcapd ran a capture of a stale spec";

  // ringcapd off the bus when the part is claimed: not failed; created when it is back.
  ASSERT_TRUE(lab().stopDaemon(SIGTERM));
  ASSERT_TRUE(create(kWhileDown, simpleRequest(2, 10)));
  EXPECT_TRUE(logHas(1, "not known whether ringcapd made it", 30s)) << agentLog(1);
  EXPECT_NE(part(kWhileDown).first.value("status", ""), "failed") << part(kWhileDown).first.dump();
  ASSERT_TRUE(lab().startDaemon());
  ASSERT_TRUE(waitForPart(kWhileDown, "success", 60s));
  EXPECT_EQ(part(kWhileDown).first["stop_reason"], "time_limit");
  ASSERT_TRUE(stopAgent(SIGTERM));
}

// A stalled ringcapd (SIGSTOP) for three lease TTLs while a part runs: the agent's status
// reports wait on the bus, but the lease is kept alive on its own, so the host keeps its
// registration (same lease) and the coordinator never counts it lost; the part then ends.
TEST_F(AgentTest, AStalledRingcapdDoesNotLetTheLeaseExpire) {
  RINGCAP_LAB_UP();
  ASSERT_TRUE(startCluster());
  ASSERT_TRUE(startAgent());
  ASSERT_TRUE(create(kFirst, simpleRequest(60, 5, kUdpTo5000)));
  ASSERT_TRUE(waitForPart(kFirst, "running", 30s));
  auto host = etcd_->get(keys::host(kColo, kHost));
  ASSERT_TRUE(host && host->kvs.size() == 1);
  const int64_t lease = host->kvs[0].lease;
  const pid_t ringcapd = lab().daemonPid();
  ASSERT_GT(ringcapd, 0);
  ASSERT_EQ(kill(ringcapd, SIGSTOP), 0);
  struct Resume {
    pid_t pid;
    ~Resume() { kill(pid, SIGCONT); }
  } resume{ringcapd};
  // lease_ttl_seconds = 4: 12 s is three TTLs; the registration must stay the same all along.
  const auto end = Clock::now() + 12s;
  int64_t seen = lease;
  while (Clock::now() < end && seen == lease) {
    auto got = etcd_->get(keys::host(kColo, kHost));
    seen = got && !got->kvs.empty() ? got->kvs[0].lease : 0;
    if (seen == lease)
      std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(seen, lease) << "the registration ended or changed while ringcapd stalled\n"
                         << agentLog(1);
  ASSERT_EQ(kill(ringcapd, SIGCONT), 0);
  ASSERT_TRUE(lab().sendUdp(4000, 5000, 5, 100));
  ASSERT_TRUE(waitForPart(kFirst, "success", 60s));
  EXPECT_EQ(agentLog(1).find("registering again"), std::string::npos) << agentLog(1);
  ASSERT_TRUE(stopAgent(SIGTERM));
}

// A ringcapd that stays away (killed, not restarted): once it has not answered about the part
// for fleet.ringcapd_silence_seconds, the agent fails the part, naming the host and why, with
// the counters it last reported; before, the part stayed "running" for as long as the agent ran.
TEST_F(AgentTest, APartFailsWhenRingcapdStaysSilent) {
  RINGCAP_LAB_UP();
  agentFleetExtra_ = "ringcapd_silence_seconds = 3\n"; // in the file startCluster writes
  ASSERT_TRUE(startCluster());
  ASSERT_TRUE(startAgent());
  ASSERT_TRUE(create(kFirst, simpleRequest(60, 100, kUdpTo5000)));
  ASSERT_TRUE(waitForPart(kFirst, "running", 30s));
  ASSERT_TRUE(lab().sendUdp(4000, 5000, 5, 100));
  const auto counted = Clock::now() + 30s;
  while (Clock::now() < counted && part(kFirst).first.value("packets_captured", 0) != 5)
    std::this_thread::sleep_for(100ms);
  ASSERT_EQ(part(kFirst).first.value("packets_captured", 0), 5) << part(kFirst).first.dump();

  ASSERT_TRUE(lab().stopDaemon(SIGKILL));
  const auto killed = Clock::now();
  // 3 s of silence, then the next status round (status_interval_seconds = 1).
  ASSERT_TRUE(waitForPart(kFirst, "failed", 20s)) << agentLog(1);
  const auto after = std::chrono::duration_cast<Millis>(Clock::now() - killed);
  EXPECT_GE(after, 3s);
  const json failed = part(kFirst).first;
  const std::string message = failed.value("error_message", "");
  EXPECT_EQ(message.rfind(std::string("ringcapd on ") + kHost +
                              " has not answered about the capture for ",
                          0),
            0u)
      << message;
  EXPECT_NE(message.find("(fleet.ringcapd_silence_seconds = 3)"), std::string::npos) << message;
  EXPECT_EQ(failed.value("packets_captured", 0), 5) << "the counters last reported were lost";
  ASSERT_TRUE(stopAgent(SIGTERM));
}

// A hung ringcapd (SIGSTOP) past fleet.ringcapd_silence_seconds: the part fails; once
// ringcapd resumes, the agent stops its capture instead of letting it run to its time limit
// (60 s) unseen by the fleet.
TEST_F(AgentTest, AHungRingcapdsCaptureIsStoppedOnceItAnswersAfterItsPartFailed) {
  RINGCAP_LAB_UP();
  agentFleetExtra_ = "ringcapd_silence_seconds = 3\n"; // in the file startCluster writes
  ASSERT_TRUE(startCluster());
  ASSERT_TRUE(startAgent());
  ASSERT_TRUE(create(kFirst, simpleRequest(60, 100, kUdpTo5000)));
  ASSERT_TRUE(waitForPart(kFirst, "running", 30s));
  const pid_t ringcapd = lab().daemonPid();
  ASSERT_GT(ringcapd, 0);
  ASSERT_EQ(kill(ringcapd, SIGSTOP), 0);
  struct Resume {
    pid_t pid;
    ~Resume() { kill(pid, SIGCONT); }
  } resume{ringcapd};
  // GetCapture's 5 s timeout, 3 s of silence, the next round.
  ASSERT_TRUE(waitForPart(kFirst, "failed", 30s)) << agentLog(1);
  EXPECT_NE(part(kFirst).first.value("error_message", "").find("has not answered"),
            std::string::npos)
      << part(kFirst).first.dump();
  ASSERT_EQ(kill(ringcapd, SIGCONT), 0);
  // Stopped by the agent: ringcapd's record ends long before the time limit.
  const auto deadline = Clock::now() + 30s;
  std::string status;
  while (Clock::now() < deadline) {
    CallResult got = root().manager("GetCapture", stringArg(kFirst));
    if (got.ok()) {
      json record = readReply(got.reply.get());
      status = record.value("status", "");
      if (status == "success" || status == "failed") {
        EXPECT_EQ(record.value("stop_reason", ""), "stopped") << record.dump();
        break;
      }
    }
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_TRUE(status == "success" || status == "failed") << "still " << status << "\n"
                                                         << agentLog(1);
  // The fleet keeps the part failed.
  EXPECT_EQ(part(kFirst).first.value("status", ""), "failed");
  ASSERT_TRUE(stopAgent(SIGTERM));
}

// Simple captures staged for the gateway (fleet.staging_destination): the part is "success"
// only once the file is in S3, with staged_object and staged_bytes; an upload that keeps
// failing fails the part, naming the object and the cause.
TEST_F(AgentTest, StagesASimpleCapturesFileBeforeItsPartSucceeds) {
  RINGCAP_LAB_UP();
  ASSERT_TRUE(startCluster());
  ASSERT_TRUE(startAgent());

  ASSERT_TRUE(create(kFirst, simpleRequest(60, 5, kUdpTo5000)));
  ASSERT_TRUE(waitForPart(kFirst, "running", 30s));
  ASSERT_TRUE(lab().sendUdp(4000, 5000, 5, 100));
  // Every value of the part seen until the end: never "success" without the staged object.
  const auto deadline = Clock::now() + 60s;
  json done;
  while (Clock::now() < deadline) {
    done = part(kFirst).first;
    if (done.value("status", "") == "success") {
      ASSERT_TRUE(done.contains("staged_object")) << "success before staging: " << done.dump();
      break;
    }
    ASSERT_NE(done.value("status", ""), "failed") << done.dump();
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(done.value("status", ""), "success") << done.dump();
  const std::string object = keys::stagedObject(staging(), kFirst, kHost);
  EXPECT_EQ(done.value("staged_object", ""), object);
  EXPECT_EQ(object.substr(0, object.find('?')), std::string("s3://") + test::S3Server::kBucket +
                                                    "/staging/" + kFirst + "/" + kHost + ".pcap");
  // The object holds exactly ringcapd's file.
  UniqueFd file;
  ASSERT_TRUE(root().openFile(kFirst, file).ok());
  const std::string local = lab().tmp() + "/local.pcap";
  const int64_t size = copyToFile(file.get(), local);
  ASSERT_GT(size, 0);
  EXPECT_EQ(done.value("staged_bytes", int64_t(-1)), size) << done.dump();
  auto stored = s3Object(std::string("staging/") + kFirst + "/" + kHost + ".pcap");
  ASSERT_TRUE(stored) << stored.error().message;
  const std::string want = readFile(local);
  EXPECT_EQ(std::string(stored->begin(), stored->end()), want);
  RunResult frames = tsharkFields(local, {"frame.number"});
  ASSERT_EQ(frames.status, 0) << frames.err;
  EXPECT_EQ(lines(frames.out).size(), 5u);

  // The S3 server gone: the upload is retried a bounded number of times, then the part fails.
  s3_->stop();
  ASSERT_TRUE(create(kWhileDown, simpleRequest(1, 10)));
  ASSERT_TRUE(waitForPart(kWhileDown, "failed", 90s));
  json failed = part(kWhileDown).first;
  const std::string message = failed.value("error_message", "");
  EXPECT_EQ(message.rfind("staging the capture's file as " +
                              keys::stagedObject(staging(), kWhileDown, kHost) + " failed: ",
                          0),
            0u)
      << failed.dump();
  EXPECT_FALSE(failed.contains("staged_object")) << failed.dump();
  EXPECT_EQ(failed.value("stop_reason", ""), "time_limit") << "the counters and the record's "
                                                              "fields are kept: "
                                                           << failed.dump();
  EXPECT_TRUE(logHas(1, "(attempt 3 of 3)", 5s)) << agentLog(1);
  ASSERT_TRUE(stopAgent(SIGTERM));
}

// Without fleet.staging_destination a simple capture's part fails at its claim.
TEST_F(AgentTest, ASimpleCaptureFailsAtItsClaimWithoutAStagingDestination) {
  RINGCAP_LAB_UP();
  ASSERT_TRUE(startCluster());
  {
    std::string text = readFile(config_);
    const size_t at = text.find("staging_destination");
    ASSERT_NE(at, std::string::npos);
    text.erase(at, text.find('\n', at) - at + 1);
    std::ofstream(config_) << text;
  }
  ASSERT_TRUE(startAgent());
  ASSERT_TRUE(create(kFirst, simpleRequest(60, 5)));
  ASSERT_TRUE(waitForPart(kFirst, "failed", 30s));
  EXPECT_EQ(part(kFirst).first.value("error_message", ""),
            std::string("fleet.staging_destination is not set on host ") + kHost +
                ": a simple capture's file could not reach the gateway's merged download; not "
                "run");
  EXPECT_TRUE(root().list().empty()) << "ringcapd ran the capture";
  ASSERT_TRUE(stopAgent(SIGTERM));
}

// A full capture runs only with the fleet's validated ownership of its destination in etcd;
// then the host's ringcapd gets it imported and delivers into <dest>/<host>/pcap_<id>.pcap,
// <host> being [fleet] host_name (ringcapd reads the same key as the agent).
TEST_F(AgentTest, FullCaptureRunsOnlyWithTheFleetsValidatedOwnership) {
  RINGCAP_LAB_UP(
      LabOptions{.extraConfig = "[fleet]\nhost_name = \"" + std::string(kHost) + "\"\n"});
  ASSERT_TRUE(startCluster());
  ASSERT_TRUE(startAgent());
  const std::string dest = "file://" + lab().destinationRoot() + "/fleet";
  const json request = {{"system", "magic-transit"}, {"type", "full"},
                        {"time_limit", 1},           {"colo_name", kColo},
                        {"destination_conf", dest},  {"filter_v1", kUdpTo5000}};
  const std::string rule =
      "destination_conf " + dest +
      " has no validated ownership in the fleet: a full capture runs only into a destination "
      "whose ownership the gateway validated (a record under /ringcap/ownerships/ with status "
      "\"success\" and this destination_conf); not run on " +
      kHost;

  // A pending record, and a success of another destination, do not count.
  const std::string pendingId = "000000000000000000000000000000d1";
  const std::string otherId = "000000000000000000000000000000d2";
  ASSERT_TRUE(etcd_->put(
      keys::ownership(pendingId),
      json{{"id", pendingId}, {"destination_conf", dest}, {"status", "pending"}}.dump()));
  ASSERT_TRUE(etcd_->put(
      keys::ownership(otherId),
      json{{"id", otherId}, {"destination_conf", dest + "/other"}, {"status", "success"}}.dump()));
  ASSERT_TRUE(create(kBefore, request));
  ASSERT_TRUE(waitForPart(kBefore, "failed", 30s));
  EXPECT_EQ(part(kBefore).first.value("error_message", ""), rule);
  EXPECT_TRUE(root().list().empty()) << "ringcapd ran the capture";

  // The gateway validated it, written another way (a trailing '/'): the gateway's record
  // carries the canonical form, which the agent compares. The part runs, into
  // <dest>/<host>/pcap_<id>.pcap.
  auto uri = parseDestinationUri(dest);
  ASSERT_TRUE(uri) << uri.error().message;
  ASSERT_TRUE(etcd_->put(keys::ownership(pendingId), json{{"id", pendingId},
                                                          {"destination_conf", dest + "/"},
                                                          {"canonical", uri->canonical()},
                                                          {"status", "success"}}
                                                         .dump()));
  ASSERT_TRUE(create(kFirst, request));
  ASSERT_TRUE(waitForPart(kFirst, "success", 60s));
  const json succeeded = part(kFirst).first;
  const std::string location = succeeded.value("location", "");
  EXPECT_EQ(location, lab().destinationRoot() + "/fleet/" + kHost + "/pcap_" + kFirst + ".pcap")
      << succeeded.dump();
  EXPECT_TRUE(std::filesystem::exists(location)) << location;
  EXPECT_FALSE(part(kFirst).first.contains("staged_object")) << "a full capture was staged";
  CallResult owned = root().manager("ListOwnerships");
  ASSERT_TRUE(owned.ok()) << owned.describe();
  json records = readReply(owned.reply.get());
  ASSERT_EQ(records.size(), 1u) << records.dump();
  EXPECT_EQ(records[0].value("destination_conf", ""), dest);
  EXPECT_EQ(records[0].value("imported", false), true);
  EXPECT_EQ(records[0].value("status", ""), "success");
  ASSERT_TRUE(stopAgent(SIGTERM));
}

} // namespace
} // namespace ringcap::dbustest
