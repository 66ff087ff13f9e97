// Captures with real traffic through ringcapd's D-Bus API: limits, signals and the file, read
// back with tshark.
#include "DaemonFixture.h"
#include "engine/SlotCounters.h"

#include <fcntl.h>

namespace ringcap::dbustest {
namespace {

constexpr int kPayload = 300;                     // UDP payload bytes: frames longer than 160
constexpr int kFrameLen = 14 + 20 + 8 + kPayload; // Ethernet + IPv4 + UDP + payload
constexpr int kSnaplen = 160;                     // simple captures keep 160 bytes

json udpFilter(uint16_t sourcePort, uint16_t destinationPort) {
  return {{"source_address", Lab::kGeneratorAddress},
          {"destination_address", Lab::kCaptureAddress},
          {"source_port", sourcePort},
          {"destination_port", destinationPort},
          {"protocol", 17}};
}

std::string dump(const std::vector<json> &changes) {
  std::string s;
  for (const auto &c : changes)
    s += c.dump() + "\n";
  return s;
}

TEST_F(DaemonTest, TrafficEndsAFilteredCaptureAtItsPacketLimit) {
  RINGCAP_LAB_UP();
  constexpr int kLimit = 5;
  root().watchFinished();
  DictResult r = root().create(simpleRequest(60, kLimit, udpFilter(40002, 7002)));
  ASSERT_TRUE(r.call.ok()) << r.call.describe();
  std::string id = r.dict.value("id", "");

  UniqueFd early;
  CallResult notReady = root().openFile(id, early);
  EXPECT_EQ(notReady.error, kNotReady) << notReady.describe();

  // First datagrams the filter leaves out (another port), then three times the limit.
  ASSERT_TRUE(lab().sendUdp(40002, 7999, 10, kPayload));
  ASSERT_TRUE(lab().sendUdp(40002, 7002, 3 * kLimit, kPayload));
  ASSERT_TRUE(root().waitFor([&] { return root().finishedSignalFor(id); }, 20s))
      << "the capture did not end by itself: " << root().get(id).dict.dump();

  DictResult got = root().get(id);
  ASSERT_TRUE(got.call.ok()) << got.call.describe();
  const json &rec = got.dict;
  EXPECT_EQ(rec.value("status", ""), "success") << rec.dump();
  EXPECT_EQ(rec.value("stop_reason", ""), "packet_limit") << rec.dump();
  EXPECT_EQ(rec.value("packets_captured", 0), kLimit) << rec.dump();
  EXPECT_EQ(rec.value("bytes_captured", 0), kLimit * kSnaplen) << rec.dump();
  EXPECT_GE(rec.value("packets_matched", 0), kLimit) << rec.dump();
  EXPECT_GE(rec.value("packets_seen", 0), rec.value("packets_matched", 0)) << rec.dump();
  EXPECT_EQ(rec.value("packets_lost", 1), 0) << rec.dump();
  ASSERT_GT(rec.value("file_size", 0), 0) << rec.dump();

  UniqueFd fd;
  CallResult opened = root().openFile(id, fd);
  ASSERT_TRUE(opened.ok()) << opened.describe();
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(fcntl(fd.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  // The download is classic PCAP with nanosecond timestamps (the default output_format).
  EXPECT_EQ(rec.value("output_format", ""), "pcap") << rec.dump();
  EXPECT_EQ(rec.value("file_name", ""), "pcap_" + id + ".pcap") << rec.dump();
  std::string file = lab().tmp() + "/downloaded.pcap";
  EXPECT_EQ(copyToFile(fd.get(), file), rec.value("file_size", int64_t(-1)));
  EXPECT_EQ(captureFileType(file), "nsecpcap");

  RunResult t = tsharkFields(
      file, {"ip.src", "ip.dst", "udp.srcport", "udp.dstport", "frame.len", "frame.cap_len"});
  ASSERT_EQ(t.status, 0) << t.err;
  std::string expected = std::string(Lab::kGeneratorAddress) + " " + Lab::kCaptureAddress +
                         " 40002 7002 " + std::to_string(kFrameLen) + " " +
                         std::to_string(kSnaplen);
  EXPECT_EQ(lines(t.out), std::vector<std::string>(kLimit, expected)) << t.out;
}

TEST_F(DaemonTest, OutputFormatPcapngKeepsTheSpoolFormat) {
  RINGCAP_LAB_UP();
  constexpr int kLimit = 4;
  root().watchFinished();
  json request = simpleRequest(60, kLimit, udpFilter(40009, 7009));
  request["output_format"] = "pcapng";
  DictResult r = root().create(request);
  ASSERT_TRUE(r.call.ok()) << r.call.describe();
  std::string id = r.dict.value("id", "");
  EXPECT_EQ(r.dict.value("output_format", ""), "pcapng") << r.dict.dump();
  ASSERT_TRUE(lab().sendUdp(40009, 7009, 3 * kLimit, kPayload));
  ASSERT_TRUE(root().waitFor([&] { return root().finishedSignalFor(id); }, 20s))
      << "the capture did not end by itself: " << root().get(id).dict.dump();

  const json rec = root().get(id).dict;
  EXPECT_EQ(rec.value("status", ""), "success") << rec.dump();
  EXPECT_EQ(rec.value("output_format", ""), "pcapng") << rec.dump();
  EXPECT_EQ(rec.value("file_name", ""), "pcap_" + id + ".pcapng") << rec.dump();
  UniqueFd fd;
  CallResult opened = root().openFile(id, fd);
  ASSERT_TRUE(opened.ok()) << opened.describe();
  std::string file = lab().tmp() + "/downloaded.pcapng";
  EXPECT_EQ(copyToFile(fd.get(), file), rec.value("file_size", int64_t(-1)));
  EXPECT_EQ(captureFileType(file), "pcapng");
  RunResult t = tsharkFields(file, {"frame.interface_name", "udp.dstport"});
  ASSERT_EQ(t.status, 0) << t.err;
  EXPECT_EQ(lines(t.out).size(), size_t(kLimit)) << t.out;
}

TEST_F(DaemonTest, PropertiesChangedFollowsTheCountersToTheEnd) {
  RINGCAP_LAB_UP();
  constexpr int kLimit = 8, kFirst = 3;
  root().watchFinished();
  DictResult r = root().create(simpleRequest(60, kLimit, udpFilter(40003, 7003)));
  ASSERT_TRUE(r.call.ok()) << r.call.describe();
  std::string id = r.dict.value("id", "");
  root().watchCapture(r.path);
  const std::vector<json> &changes = root().changes(r.path);
  auto find = [&](const std::function<bool(const json &)> &pred) -> const json * {
    for (const auto &c : changes)
      if (pred(c))
        return &c;
    return nullptr;
  };

  ASSERT_TRUE(lab().sendUdp(40003, 7003, kFirst, kPayload));
  auto counted = [&](const json &c) { return c.value("PacketsCaptured", 0) == kFirst; };
  ASSERT_TRUE(root().waitFor([&] { return find(counted) != nullptr; }, 10s))
      << "no PropertiesChanged with PacketsCaptured " << kFirst << ":\n"
      << dump(changes);
  // A counter update while the capture runs: counters and Record, not Status.
  const json progress = *find(counted);
  EXPECT_FALSE(progress.contains("Status")) << progress.dump();
  EXPECT_GE(progress.value("PacketsMatched", 0), kFirst) << progress.dump();
  EXPECT_GE(progress.value("PacketsSeen", 0), kFirst) << progress.dump();
  EXPECT_EQ(progress.value("BytesCaptured", 0), kFirst * kSnaplen) << progress.dump();
  // Every counter changes with it (read one by one, so their values may differ from Record's).
  for (const auto &f : kSlotCounterFields) {
    std::string property(f.property), name(f.name);
    EXPECT_TRUE(progress.contains(property) && progress[property].is_number_unsigned())
        << property << " in " << progress.dump();
    EXPECT_TRUE(progress.value("Record", json()).contains(name)) << name << progress.dump();
  }
  EXPECT_TRUE(progress.contains("PacketsLost")) << progress.dump();
  ASSERT_TRUE(progress.contains("Record")) << progress.dump();
  EXPECT_EQ(progress["Record"].value("status", ""), "running");
  EXPECT_EQ(progress["Record"].value("packets_captured", 0), kFirst);

  ASSERT_TRUE(lab().sendUdp(40003, 7003, 2 * kLimit, kPayload));
  auto success = [&](const json &c) { return c.value("Status", "") == "success"; };
  ASSERT_TRUE(root().waitFor([&] { return find(success) != nullptr; }, 20s))
      << "no PropertiesChanged with Status success:\n"
      << dump(changes);
  const json final = *find(success);
  EXPECT_EQ(final.value("PacketsCaptured", 0), kLimit) << final.dump();
  EXPECT_EQ(final.value("ErrorMessage", "x"), "") << final.dump();
  ASSERT_TRUE(final.contains("Record")) << final.dump();
  EXPECT_EQ(final["Record"].value("stop_reason", ""), "packet_limit") << final.dump();
  EXPECT_EQ(final["Record"].value("packets_captured", 0), kLimit) << final.dump();

  uint64_t last = 0;
  for (const auto &c : changes) {
    EXPECT_FALSE(c.contains("unreadable")) << c.dump();
    uint64_t n = c.value("PacketsCaptured", uint64_t(0));
    EXPECT_GE(n, last) << "PacketsCaptured went back:\n" << dump(changes);
    last = n;
  }

  ASSERT_TRUE(root().waitFor([&] { return root().finishedSignalFor(id); }, 10s));
  for (const auto &f : root().finished())
    if (f.id == id) {
      EXPECT_EQ(f.path, r.path);
      EXPECT_EQ(f.status, "success");
    }
}

// A full capture without byte_limit is bounded by the spool budget (capture.spool_max_bytes):
// it stops with stop_reason spool_limit, its file readable and delivered.
TEST_F(DaemonTest, FullCaptureStopsAtTheSpoolBudget) {
  constexpr uint64_t kBudget = 65536;
  LabOptions options;
  options.captureConfig = "spool_max_bytes = " + std::to_string(kBudget);
  RINGCAP_LAB_UP(options);
  const std::string destination = "file://" + lab().destinationRoot();
  CallResult created = root().manager("CreateOwnership", stringArg(destination));
  ASSERT_TRUE(created.ok()) << created.describe();
  const json ownership = readReply(created.reply.get());
  const std::string token =
      readFile(lab().destinationRoot() + "/" + ownership.value("filename", "?"));
  ASSERT_FALSE(token.empty()) << ownership.dump();
  CallResult validated = root().manager("ValidateOwnership", [&](sd_bus_message *m) {
    return sd_bus_message_append(m, "ss", destination.c_str(), token.c_str());
  });
  ASSERT_TRUE(validated.ok()) << validated.describe();

  root().watchFinished();
  DictResult r = root().create(json{{"system", "magic-transit"},
                                    {"type", "full"},
                                    {"time_limit", 120},
                                    {"colo_name", "lab01"},
                                    {"destination_conf", destination},
                                    {"filter_v1", {{"destination_port", 7005}}}});
  ASSERT_TRUE(r.call.ok()) << r.call.describe();
  const std::string id = r.dict.value("id", "");
  // About 600 KB of packets: far over the budget.
  ASSERT_TRUE(lab().sendUdp(40005, 7005, 1000, 500));
  ASSERT_TRUE(root().waitFor([&] { return root().finishedSignalFor(id); }, 60s))
      << "the capture did not end; " << root().get(id).dict.dump();
  const json rec = root().get(id).dict;
  EXPECT_EQ(rec.value("status", ""), "success") << rec.dump();
  EXPECT_EQ(rec.value("stop_reason", ""), "spool_limit") << rec.dump();
  const uint64_t size = rec.value("file_size", uint64_t(0));
  EXPECT_GE(size, kBudget) << rec.dump();
  // The kernel stops at the budget in captured bytes; the file adds block headers.
  EXPECT_LT(size, 2 * kBudget) << "the capture went on far past the budget: " << rec.dump();

  UniqueFd fd;
  CallResult opened = root().openFile(id, fd);
  ASSERT_TRUE(opened.ok()) << opened.describe();
  const std::string file = lab().tmp() + "/spool.pcapng";
  EXPECT_EQ(copyToFile(fd.get(), file), int64_t(size));
  RunResult t = tsharkFields(file, {"udp.dstport"});
  ASSERT_EQ(t.status, 0) << "tshark could not read the file: " << t.err;
  EXPECT_EQ(lines(t.out).size(), rec.value("packets_captured", size_t(0))) << rec.dump();
  EXPECT_GT(lines(t.out).size(), 0u);
}

// No capture starts when the state directory's filesystem has no more than
// capture.min_free_bytes free (here: more than any disk has).
TEST_F(DaemonTest, NoCaptureStartsBelowTheFreeSpaceFloor) {
  LabOptions options;
  options.captureConfig = "min_free_bytes = 4611686018427387904";
  RINGCAP_LAB_UP(options);
  DictResult r = root().create(simpleRequest(10, 10));
  EXPECT_EQ(r.call.error, "org.ringcap.Ringcap1.Error.Failed") << r.call.describe();
  EXPECT_NE(r.call.message.find("capture.min_free_bytes"), std::string::npos) << r.call.message;
  EXPECT_EQ(root().list().size(), 0u);
}

} // namespace
} // namespace ringcap::dbustest
