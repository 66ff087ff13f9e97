// offset_time through ringcapd: a simple capture that looks back reads the sampled history
// ([history], docs/history.md). The history here is written by the test with HistoryStore
// (the segments a previous ringcapd would have left, one of them torn as by a kill -9), so
// the answers are exact: ringcapd indexes it again at its start and answers from it.
#include "../bpf/PacketBuilder.h"
#include "DaemonFixture.h"
#include "history/HistoryStore.h"

#include <ctime>
#include <filesystem>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ringcap::dbustest {
namespace {

constexpr uint64_t kSec = 1'000'000'000;
constexpr int kPackets = 100;

std::string rfc3339(uint64_t ns, bool micros) {
  time_t s = time_t(ns / kSec);
  struct tm tm {};
  gmtime_r(&s, &tm);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  if (micros)
    snprintf(buf + n, sizeof buf - n, ".%06dZ", int((ns % kSec) / 1000));
  else
    snprintf(buf + n, sizeof buf - n, "Z");
  return buf;
}

uint64_t nowNs() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return uint64_t(t.tv_sec) * kSec + uint64_t(t.tv_nsec);
}

const char *kHistoryConfig = "[history]\nenabled = true\nsample_rate = 1\nmin_free_bytes = 0\n";

// A lab whose ringcapd keeps every packet in its history.
LabOptions historyLab(uint32_t simpleIntervalSeconds = 0) {
  LabOptions o;
  o.simpleIntervalSeconds = simpleIntervalSeconds;
  o.extraConfig = kHistoryConfig;
  return o;
}

class DaemonHistoryTest : public DaemonTest {
protected:
  // Writes the history a ringcapd killed mid-segment leaves: packet i at base + i s + 0.5 s,
  // UDP to port 53 (even i) or 54 (odd i), then the process ends without closing the active
  // segment, whose last block is then cut short.
  void writeHistory(uint64_t base) {
    const std::string dir = lab().stateDirectory() + "/history";
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      HistoryConfig c;
      c.directory = dir;
      c.minFreeBytes = 0;
      c.interfaces = {{1000, lab().captureInterface()}};
      auto store = HistoryStore::open(c);
      if (!store)
        _exit(2);
      for (int i = 0; i < kPackets; i++) {
        auto f = test::PacketBuilder()
                     .eth()
                     .ipv4(Lab::kGeneratorAddress, Lab::kCaptureAddress)
                     .udp(40000, i % 2 ? 54 : 53)
                     .payload(300)
                     .build();
        (*store)->onPacket(
            CapturedPacket{base + uint64_t(i) * kSec + kSec / 2, 1000, 0, uint32_t(f.size()), f});
        (*store)->endBatch();
      }
      _exit(0); // as a kill: the active segment is neither closed nor indexed
    }
    int ws = 0;
    ASSERT_EQ(waitpid(pid, &ws, 0), pid);
    ASSERT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0) << "writing the history: " << ws;
    // The newest segment: the active one. Its last packet block is cut short.
    std::string newest;
    for (const auto &e : std::filesystem::directory_iterator(dir))
      if (e.path().filename().string().rfind("seg-", 0) == 0 &&
          e.path().filename().string() > newest)
        newest = e.path().filename().string();
    ASSERT_FALSE(newest.empty());
    const std::string path = dir + "/" + newest;
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    ASSERT_EQ(truncate(path.c_str(), st.st_size - 10), 0);
  }

  // Creates a look-back capture; expects success and returns its record and the file's
  // packets (tshark: udp.dstport of each).
  json lookBack(const std::string &offset, uint32_t timeLimit, const json &filter,
                std::vector<std::string> &ports, uint32_t packetLimit = 1000) {
    json request = simpleRequest(timeLimit, packetLimit, filter);
    request["offset_time"] = offset;
    DictResult r = root().create(request);
    EXPECT_TRUE(r.call.ok()) << r.call.describe();
    if (!r.call.ok())
      return json();
    // No waiting: the record is final when CreateCapture returns.
    EXPECT_EQ(r.dict.value("status", ""), "success") << r.dict.dump();
    EXPECT_EQ(r.dict.value("offset_time", ""), offset);
    UniqueFd fd;
    CallResult o = root().openFile(r.dict.value("id", ""), fd);
    EXPECT_TRUE(o.ok()) << o.describe();
    const std::string copy = lab().tmp() + "/lookback.pcap";
    EXPECT_GT(copyToFile(fd.get(), copy), 0);
    EXPECT_EQ(captureFileType(copy), "nsecpcap");
    RunResult t = tsharkFields(copy, {"udp.dstport"});
    EXPECT_EQ(t.status, 0) << t.err;
    ports = lines(t.out);
    return r.dict;
  }

  std::string refusal(const std::string &offset, uint32_t timeLimit = 30) {
    json request = simpleRequest(timeLimit, 100);
    request["offset_time"] = offset;
    DictResult r = root().create(request);
    EXPECT_EQ(r.call.error, kInvalidRequest) << r.call.describe();
    return r.call.message;
  }
};

TEST_F(DaemonHistoryTest, DisabledHistoryRefusesOffsetTime) {
  RINGCAP_LAB_UP();
  EXPECT_EQ(refusal(rfc3339(nowNs() - 60 * kSec, false)),
            "offset_time: history is disabled on this host ([history] enabled = false); leave "
            "offset_time out to capture from now on");
  EXPECT_TRUE(root().list().empty()) << "a refused request left a record";
}

TEST_F(DaemonHistoryTest, LookBackAnswersFromTheHistoryKeptAcrossKillAndRestart) {
  RINGCAP_LAB_UP(historyLab());
  ASSERT_TRUE(lab().stopDaemon(SIGTERM));
  const uint64_t base = (nowNs() / kSec - 150) * kSec;
  writeHistory(base);
  ASSERT_TRUE(lab().startDaemon());

  // [base + 30 s, base + 60 s], port 53: packets 30, 32, ..., 58.
  std::vector<std::string> ports;
  json rec = lookBack(rfc3339(base + 60 * kSec, false), 30, {{"destination_port", 53}}, ports);
  EXPECT_EQ(ports, std::vector<std::string>(15, "53"));
  EXPECT_EQ(rec.value("packets_captured", 0), 15) << rec.dump();
  EXPECT_FALSE(rec.contains("history_start")) << rec.dump();

  // At most packet_limit of them.
  rec = lookBack(rfc3339(base + 60 * kSec, false), 30, json::object(), ports, 7);
  EXPECT_EQ(ports.size(), 7u);
  EXPECT_EQ(rec.value("stop_reason", ""), "packet_limit");

  // The end of the torn segment: packets 90 to 98 (99 was cut by the "kill").
  rec = lookBack(rfc3339(base + 100 * kSec, false), 10, json::object(), ports);
  EXPECT_EQ(ports.size(), 9u);

  // A window that starts before the history: what is kept, and the record says so.
  rec = lookBack(rfc3339(base + 10 * kSec, false), 30, json::object(), ports);
  EXPECT_EQ(ports.size(), 10u);
  EXPECT_EQ(rec.value("history_start", ""), rfc3339(base + kSec / 2, true)) << rec.dump();

  // ringcapctl's relative form: 45 s ago is after the last packet kept (base + 98.5 s), and
  // 300 s back is before the first: every packet, and history_start.
  const std::vector<std::string> env{"DBUS_SYSTEM_BUS_ADDRESS=" + lab().busAddress()};
  RunResult ctl = run({RINGCAPCTL_PATH, "create", "--json", "--type", "simple", "--time-limit",
                       "300", "--packet-limit", "1000", "--offset-time", "-45s"},
                      30s, env);
  ASSERT_EQ(ctl.status, 0) << ctl.err;
  json made = json::parse(ctl.out, nullptr, false);
  EXPECT_EQ(made.value("status", ""), "success") << ctl.out;
  EXPECT_EQ(made.value("packets_captured", 0), kPackets - 1) << ctl.out;
  EXPECT_EQ(made.value("history_start", ""), rfc3339(base + kSec / 2, true)) << ctl.out;
  ctl = run({RINGCAPCTL_PATH, "create", "--type", "simple", "--time-limit", "30", "--packet-limit",
             "10", "--offset-time", "10m"},
            30s, env);
  EXPECT_EQ(ctl.status, 2) << ctl.err;
  EXPECT_NE(ctl.err.find("--offset-time: must be an RFC 3339 date-time such as "
                         "2026-11-26T10:00:00Z, or a time ago such as -10m, -90s, -2h or -1h30m "
                         "(got \"10m\")"),
            std::string::npos)
      << ctl.err;

  // Refusals name the field and the rule, and leave no record.
  const size_t records = root().list().size();
  EXPECT_EQ(refusal(rfc3339(base - 5 * kSec, false)),
            "offset_time: history on this host starts at " + rfc3339(base + kSec / 2, true) +
                " (got " + rfc3339(base - 5 * kSec, false) + ")");
  EXPECT_NE(refusal(rfc3339(nowNs() + 3600 * kSec, false))
                .find("offset_time: must not be in the "
                      "future"),
            std::string::npos);
  EXPECT_NE(refusal(rfc3339(nowNs() - 25 * 3600 * kSec, false))
                .find("offset_time: must be within the last 24 h"),
            std::string::npos);
  EXPECT_EQ(root().list().size(), records);

  // A restart keeps the history (and indexes it again).
  ASSERT_TRUE(lab().stopDaemon(SIGTERM));
  ASSERT_TRUE(lab().startDaemon());
  rec = lookBack(rfc3339(base + 60 * kSec, false), 30, {{"destination_port", 53}}, ports);
  EXPECT_EQ(ports.size(), 15u);
}

// The history slot end to end: traffic through the real XDP program on the veth lab, sampled
// 1 in 1, then a look-back after it gets exactly the matching packets of its window; a
// kill -9 of ringcapd and a restart keep them.
TEST_F(DaemonHistoryTest, TrafficSentIsFoundByALookBackAfterItAndSurvivesAKill) {
  RINGCAP_LAB_UP(historyLab());
  constexpr int kSent = 20;
  const json filter = {{"destination_port", 7053}};
  // A live capture of the same packets beside the history: both get them all.
  DictResult live = root().create(simpleRequest(60, kSent, filter));
  ASSERT_TRUE(live.call.ok()) << live.call.describe();
  const std::string liveId = live.dict.value("id", "");
  ASSERT_TRUE(lab().sendUdp(40053, 7053, kSent, 100));
  ASSERT_TRUE(lab().sendUdp(40054, 7054, 5, 100)); // not matched by the filter
  // The look-back ends two seconds after the traffic: wait (bounded) until that time has come.
  const uint64_t end = nowNs() + 2 * kSec;
  while (nowNs() <= end)
    usleep(20'000);
  json liveRec;
  ASSERT_TRUE(root().waitFor(
      [&] {
        liveRec = root().get(liveId).dict;
        return liveRec.value("status", "") == "success";
      },
      10s))
      << liveRec.dump();
  EXPECT_EQ(liveRec.value("packets_captured", 0), kSent) << liveRec.dump();
  std::vector<std::string> ports;
  json rec = lookBack(rfc3339(end, true), 60, filter, ports);
  EXPECT_EQ(ports, std::vector<std::string>(kSent, "7053")) << rec.dump();
  EXPECT_EQ(rec.value("packets_captured", 0), kSent) << rec.dump();
  // A window that starts a second after the traffic holds none of it.
  rec = lookBack(rfc3339(end, true), 1, filter, ports);
  EXPECT_TRUE(ports.empty()) << rec.dump();

  int ws = 0;
  ASSERT_TRUE(lab().stopDaemon(SIGKILL, &ws));
  ASSERT_TRUE(lab().startDaemon());
  rec = lookBack(rfc3339(end, true), 60, filter, ports);
  EXPECT_EQ(ports.size(), size_t(kSent)) << "the history did not survive a kill -9";
}

// A look-back is a simple capture for the rate limit: it takes the interval, and a refused
// one does not.
TEST_F(DaemonHistoryTest, LookBackCountsAgainstTheSimpleRateLimit) {
  RINGCAP_LAB_UP(historyLab(60));
  ASSERT_TRUE(lab().sendUdp(40055, 7055, 3, 100));
  const uint64_t end = nowNs() + kSec;
  while (nowNs() <= end)
    usleep(20'000);
  EXPECT_NE(refusal(rfc3339(nowNs() + 3600 * kSec, false)).find("must not be in the future"),
            std::string::npos);
  std::vector<std::string> ports;
  json rec = lookBack(rfc3339(end, true), 60, {{"destination_port", 7055}}, ports);
  EXPECT_EQ(ports.size(), 3u) << rec.dump();
  json again = simpleRequest(60, 100);
  again["offset_time"] = rfc3339(end, true);
  DictResult second = root().create(again);
  EXPECT_EQ(second.call.error, kRateLimited) << second.call.describe();
  DictResult live = root().create(simpleRequest(60, 100));
  EXPECT_EQ(live.call.error, kRateLimited) << live.call.describe();
}

} // namespace
} // namespace ringcap::dbustest
