// The sampled history behind offset_time (userspace/history/HistoryStore): segments, the
// index, the bounds by bytes, age and free space, recovery on open, and queries.
#include "history/HistoryStore.h"

#include "../bpf/PacketBuilder.h"
#include "../lib/PcapTestSupport.h"
#include "history/FilterMatcher.h"
#include "history/SegmentReader.h"
#include "pcap/PcapReader.h"
#include "request/IpAddress.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace ringcap;
using namespace ringcap::testsupport;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kT0 = 1'800'000'000ull * kSec; // a period boundary for 60 s periods

// Ethernet / IPv4 10.0.0.1 -> 10.0.0.2 / UDP sport -> dport / 300 bytes (342 bytes).
std::vector<uint8_t> frame(uint16_t sport, uint16_t dport) {
  return ringcap::test::PacketBuilder()
      .eth()
      .ipv4("10.0.0.1", "10.0.0.2")
      .udp(sport, dport)
      .payload(300)
      .build();
}

class HistoryStoreTest : public TempDirTest {
protected:
  HistoryStoreTest() : TempDirTest("ringcap-history-") {}

  HistoryConfig config() {
    HistoryConfig c;
    c.directory = file("history");
    c.maxBytes = 1 << 20;
    c.segmentMaxBytes = 256 << 10;
    c.maxAgeSeconds = 3600;
    c.segmentSeconds = 60;
    c.minFreeBytes = 1 << 20;
    c.interfaces = {{7, "eth0"}, {9, "eth1"}};
    return c;
  }

  std::unique_ptr<HistoryStore> open(const HistoryConfig &c) {
    auto s = HistoryStore::open(
        c, [this] { return now; }, [this] { return free; });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }

  // One packet at tsNs on ifindex 7 (or `ifindex`), as the drainer hands it over.
  void put(HistoryStore &s, uint64_t tsNs, uint16_t dport = 53, uint32_t ifindex = 7,
           uint16_t sport = 1234) {
    auto f = frame(sport, dport);
    s.onPacket(CapturedPacket{tsNs, ifindex, 0, uint32_t(f.size()), f});
  }

  struct Read {
    uint64_t tsNs;
    uint32_t origLen;
    std::vector<uint8_t> data;
  };
  static std::vector<Read> readAll(const std::string &path) {
    std::vector<Read> out;
    auto r = PcapReader::open(path);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r)
      return out;
    for (;;) {
      auto p = (*r)->next();
      EXPECT_TRUE(p.ok()) << p.error().message;
      if (!p || !*p)
        break;
      out.push_back({(*p)->tsNs, (*p)->origLen, (*p)->data});
    }
    return out;
  }

  uint64_t now = kT0;
  std::optional<uint64_t> free = uint64_t(1) << 40;
};

TEST_F(HistoryStoreTest, ASegmentPerPeriodCutToTheSnaplenAndIndexed) {
  auto s = open(config());
  ASSERT_TRUE(s);
  for (int period = 0; period < 3; period++)
    for (int i = 0; i < 10; i++)
      put(*s, kT0 + period * 60 * kSec + i * kSec);
  s->endBatch();
  ASSERT_TRUE(s->closeActive().ok());
  auto segs = s->segments();
  ASSERT_EQ(segs.size(), 3u);
  for (int period = 0; period < 3; period++) {
    SCOPED_TRACE(period);
    EXPECT_EQ(segs[period].firstNs, kT0 + period * 60 * kSec);
    EXPECT_EQ(segs[period].lastNs, kT0 + period * 60 * kSec + 9 * kSec);
    EXPECT_EQ(segs[period].packets, 10u);
    EXPECT_EQ(segs[period].file, "seg-" + std::to_string(kT0 + period * 60 * kSec) + ".pcapng");
    EXPECT_EQ(segs[period].bytes, fileSize(config().directory + "/" + segs[period].file));
    auto packets = readAll(config().directory + "/" + segs[period].file);
    ASSERT_EQ(packets.size(), 10u);
    EXPECT_EQ(packets[0].data.size(), 160u);
    EXPECT_EQ(packets[0].origLen, 342u);
  }
  EXPECT_EQ(s->counters().packetsWritten, 30u);
  EXPECT_EQ(s->counters().bytesWritten, 30u * 160);
  // The index lists them.
  auto index = nlohmann::json::parse(readBytes(config().directory + "/index.json"));
  ASSERT_EQ(index["segments"].size(), 3u);
  EXPECT_EQ(index["segments"][1]["first_ns"].get<uint64_t>(), kT0 + 60 * kSec);
  EXPECT_EQ(index["segments"][1]["packets"].get<uint64_t>(), 10u);
}

TEST_F(HistoryStoreTest, UnknownInterfaceIsDroppedAndCounted) {
  auto s = open(config());
  put(*s, kT0, 53, 8);
  put(*s, kT0 + 1, 53, 9);
  EXPECT_EQ(s->counters().droppedUnknownInterface, 1u);
  EXPECT_EQ(s->counters().packetsWritten, 1u);
}

TEST_F(HistoryStoreTest, RotationBySizeAndTheByteBoundRemoveTheOldest) {
  HistoryConfig c = config();
  c.segmentMaxBytes = 8192;
  c.maxBytes = 32768;
  auto s = open(c);
  const int n = 1000; // ~190 kB of blocks: many segments, most removed
  for (int i = 0; i < n; i++) {
    put(*s, kT0 + uint64_t(i) * 1000);
    ASSERT_LE(s->totalBytes(), c.maxBytes) << i;
  }
  ASSERT_TRUE(s->closeActive().ok());
  auto segs = s->segments();
  ASSERT_GE(segs.size(), 3u);
  uint64_t total = 0, packets = 0;
  for (const auto &seg : segs) {
    uint64_t size = fileSize(c.directory + "/" + seg.file);
    EXPECT_LE(size, c.segmentMaxBytes) << seg.file;
    EXPECT_EQ(size, seg.bytes);
    total += size;
    packets += seg.packets;
  }
  EXPECT_LE(total, c.maxBytes);
  EXPECT_EQ(s->totalBytes(), total);
  // What is kept is the newest: the last packet, and everything after the oldest kept one.
  EXPECT_EQ(segs.back().lastNs, kT0 + uint64_t(n - 1) * 1000);
  EXPECT_EQ(packets, uint64_t(n) - (segs.front().firstNs - kT0) / 1000);
  EXPECT_GT(s->counters().segmentsRemovedByBytes, 0u);
  EXPECT_EQ(s->historyStartNs(), segs.front().firstNs);
  // Only the kept segments are on disk: the removed ones are gone.
  size_t onDisk = 0;
  for (const auto &e : fs::directory_iterator(c.directory))
    onDisk += e.path().extension() == ".pcapng";
  EXPECT_EQ(onDisk, segs.size());
}

TEST_F(HistoryStoreTest, TheAgeBoundRemovesTheOldestSegments) {
  HistoryConfig c = config();
  c.maxAgeSeconds = 120;
  auto s = open(c);
  for (int period = 0; period < 4; period++) {
    put(*s, kT0 + period * 60 * kSec);
    put(*s, kT0 + period * 60 * kSec + 30 * kSec);
    s->endBatch(); // the clock stays at T0
  }
  EXPECT_EQ(s->segments().size(), 4u);
  EXPECT_EQ(s->counters().segmentsRemovedByAge, 0u);
  // Segment 0 ends at T0+30 s: older than 120 s once the clock passes T0+150 s.
  now = kT0 + 150 * kSec;
  s->maintain();
  EXPECT_EQ(s->segments().size(), 4u);
  now = kT0 + 150 * kSec + 1;
  s->maintain();
  auto segs = s->segments();
  ASSERT_EQ(segs.size(), 3u);
  EXPECT_EQ(segs.front().firstNs, kT0 + 60 * kSec);
  EXPECT_EQ(s->counters().segmentsRemovedByAge, 1u);
  EXPECT_FALSE(fs::exists(c.directory + "/seg-" + std::to_string(kT0) + ".pcapng"));
  // Much later everything is gone, the active segment too.
  now = kT0 + 3600 * kSec;
  s->maintain();
  EXPECT_TRUE(s->segments().empty());
  EXPECT_EQ(s->counters().segmentsRemovedByAge, 4u);
  EXPECT_FALSE(s->historyStartNs());
}

TEST_F(HistoryStoreTest, LowFreeSpaceStopsWritingAndCountsTheDrops) {
  auto s = open(config());
  put(*s, kT0);
  s->endBatch();
  free = 1 << 20; // == min_free_bytes: too little
  now += kSec;
  s->maintain();
  EXPECT_TRUE(s->writingStopped());
  for (int i = 0; i < 5; i++)
    put(*s, kT0 + kSec + i);
  EXPECT_EQ(s->counters().droppedLowSpace, 5u);
  EXPECT_EQ(s->counters().packetsWritten, 1u);
  EXPECT_EQ(s->counters().lowSpaceEpisodes, 1u);
  // The segment written before was closed whole.
  auto segs = s->segments();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(fileSize(config().directory + "/" + segs[0].file), segs[0].bytes);
  // Space again: written again after the next check.
  free = (1 << 20) + 1;
  now += kSec;
  s->maintain();
  EXPECT_FALSE(s->writingStopped());
  put(*s, kT0 + 2 * kSec);
  EXPECT_EQ(s->counters().packetsWritten, 2u);
  EXPECT_EQ(s->counters().droppedLowSpace, 5u);
  // A full disk at the opening of a segment: dropped too.
  ASSERT_TRUE(s->closeActive().ok());
  free = 0;
  now += kSec;
  put(*s, kT0 + 3 * kSec);
  EXPECT_EQ(s->counters().droppedLowSpace, 6u);
  EXPECT_EQ(s->counters().lowSpaceEpisodes, 2u);
}

TEST_F(HistoryStoreTest, RestartReindexesWithAndWithoutTheIndex) {
  HistoryConfig c = config();
  {
    auto s = open(c);
    for (int i = 0; i < 300; i++)
      put(*s, kT0 + uint64_t(i) * kSec);
  } // closed: 5 segments in the index
  std::vector<HistorySegment> before;
  {
    auto s = open(c);
    before = s->segments();
    ASSERT_EQ(before.size(), 5u);
    EXPECT_EQ(s->counters().segmentsRepaired, 0u);
  }
  fs::remove(c.directory + "/index.json");
  auto s = open(c);
  auto after = s->segments();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); i++) {
    EXPECT_EQ(after[i].file, before[i].file);
    EXPECT_EQ(after[i].firstNs, before[i].firstNs);
    EXPECT_EQ(after[i].lastNs, before[i].lastNs);
    EXPECT_EQ(after[i].packets, before[i].packets);
    EXPECT_EQ(after[i].bytes, before[i].bytes);
    EXPECT_EQ(after[i].interfaces, (std::vector<std::string>{"eth0", "eth1"}));
  }
  EXPECT_TRUE(fs::exists(c.directory + "/index.json"));
}

TEST_F(HistoryStoreTest, ATornSegmentIsCutBackToItsLastWholeBlock) {
  HistoryConfig c = config();
  const std::string copy = file("copy");
  {
    auto s = open(c);
    for (int i = 0; i < 20; i++)
      put(*s, kT0 + uint64_t(i) * kSec);
    s->endBatch();
    // As kill -9 leaves it: the active segment written, not in the index.
    fs::copy(c.directory, copy);
  }
  std::string seg = "seg-" + std::to_string(kT0) + ".pcapng";
  auto whole = fileSize(copy + "/" + seg);
  ASSERT_GT(whole, 20u * 192);
  // A block cut short: the last packet's block loses its last 50 bytes.
  fs::resize_file(copy + "/" + seg, whole - 50);
  c.directory = copy;
  auto s = open(c);
  auto segs = s->segments();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].packets, 19u);
  EXPECT_EQ(segs[0].lastNs, kT0 + 18 * kSec);
  EXPECT_EQ(segs[0].bytes, whole - 192);
  EXPECT_EQ(fileSize(copy + "/" + seg), whole - 192);
  EXPECT_EQ(s->counters().segmentsRepaired, 1u);
  EXPECT_EQ(s->counters().bytesCut, 192u - 50);
  EXPECT_EQ(readAll(copy + "/" + seg).size(), 19u); // a reader takes it whole again

  // Garbage appended after whole blocks is cut too; a segment with nothing whole is removed.
  {
    std::ofstream out(copy + "/" + seg, std::ios::app | std::ios::binary);
    out << std::string(7, '\x55');
  }
  std::ofstream(copy + "/seg-1.pcapng", std::ios::binary) << "\x0a\x0d";
  s.reset();
  s = open(c);
  ASSERT_EQ(s->segments().size(), 1u);
  EXPECT_EQ(s->segments()[0].packets, 19u);
  EXPECT_EQ(fileSize(copy + "/" + seg), whole - 192);
  EXPECT_FALSE(fs::exists(copy + "/seg-1.pcapng"));
}

// A segment cut at every length keeps exactly its whole packet blocks (or is removed when
// none is left), and the store opens on it every time.
TEST_F(HistoryStoreTest, EveryTruncationKeepsTheWholeBlocks) {
  HistoryConfig c = config();
  {
    auto s = open(c);
    for (int i = 0; i < 4; i++)
      put(*s, kT0 + uint64_t(i) * kSec);
    s->endBatch();
    fs::copy(c.directory, file("src")); // the active segment, as a crash leaves it
  }
  const std::string seg = "seg-" + std::to_string(kT0) + ".pcapng";
  const uint64_t whole = fileSize(file("src") + "/" + seg);
  const uint64_t header = whole - 4 * 192; // section and interface blocks
  for (uint64_t size = 0; size <= whole; size++) {
    SCOPED_TRACE(size);
    fs::remove_all(file("cut"));
    fs::copy(file("src"), file("cut"));
    fs::resize_file(file("cut") + "/" + seg, size);
    c.directory = file("cut");
    auto s = open(c);
    ASSERT_TRUE(s);
    const uint64_t packets = size < header ? 0 : (size - header) / 192;
    auto segs = s->segments();
    if (packets == 0) {
      EXPECT_TRUE(segs.empty());
      EXPECT_FALSE(fs::exists(file("cut") + "/" + seg));
      continue;
    }
    ASSERT_EQ(segs.size(), 1u);
    EXPECT_EQ(segs[0].packets, packets);
    EXPECT_EQ(segs[0].lastNs, kT0 + (packets - 1) * kSec);
    EXPECT_EQ(fileSize(file("cut") + "/" + seg), header + packets * 192);
  }
}

// Segments written under a larger snaplen are cut to today's by a query: the output's
// header announces today's snaplen.
TEST_F(HistoryStoreTest, AQueryAfterTheSnaplenShrankCutsThePackets) {
  HistoryConfig c = config();
  {
    auto s = open(c);
    for (int i = 0; i < 3; i++)
      put(*s, kT0 + uint64_t(i));
  }
  c.snaplen = 64;
  auto s = open(c);
  HistoryQuery q;
  q.fromNs = kT0;
  q.toNs = kT0 + 10;
  q.outputPath = file("out.pcap");
  auto r = s->query(q);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->packets, 3u);
  auto got = readAll(q.outputPath);
  ASSERT_EQ(got.size(), 3u);
  for (const auto &p : got) {
    EXPECT_EQ(p.data.size(), 64u);
    EXPECT_EQ(p.origLen, 342u);
  }
}

TEST_F(HistoryStoreTest, BadConfigIsRefusedByField) {
  HistoryConfig c = config();
  c.maxAgeSeconds = 86401;
  auto s = HistoryStore::open(c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "history.max_age_seconds: must be an integer from 1 to 86400 "
                               "(got 86401)");
  EXPECT_FALSE(fs::exists(c.directory));
  c = config();
  c.maxBytes = c.segmentMaxBytes;
  s = HistoryStore::open(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("history.max_bytes: must be at least twice"), std::string::npos);
}

// Query fixture: 10 minutes, a packet every second, alternating ports 53 and 80, across
// ten 60-second segments.
class HistoryQueryTest : public HistoryStoreTest {
protected:
  void SetUp() override {
    HistoryStoreTest::SetUp();
    store = open(config());
    for (int i = 0; i < 600; i++)
      put(*store, kT0 + uint64_t(i) * kSec, i % 2 ? 80 : 53, i % 3 ? 7 : 9, uint16_t(1000 + i));
    store->endBatch(); // the last segment stays active
    ASSERT_EQ(store->segments().size(), 10u);
  }
  HistoryQueryResult run(HistoryQuery q) {
    q.outputPath = out;
    auto r = store->query(q);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r ? *r : HistoryQueryResult{};
  }
  static HistoryQuery window(uint64_t from, uint64_t to, FilterV1 filter = {}, uint64_t limit = 0) {
    HistoryQuery q;
    q.fromNs = from;
    q.toNs = to;
    q.filter = std::move(filter);
    q.packetLimit = limit;
    return q;
  }
  FilterV1 dport(uint16_t p) {
    FilterV1 f;
    f.destination_port = p;
    return f;
  }
  std::unique_ptr<HistoryStore> store;
  std::string out = file("out.pcap");
};

TEST_F(HistoryQueryTest, WindowAndFilterAcrossSegmentsInOrder) {
  // [T0+100 s, T0+250 s]: 151 packets in segments 1..4, 76 of them to port 53 (even i).
  HistoryQuery q = window(kT0 + 100 * kSec, kT0 + 250 * kSec, dport(53));
  auto r = run(q);
  EXPECT_EQ(r.packets, 76u);
  EXPECT_EQ(r.segmentsRead, 4u); // segments 1, 2, 3, 4: the index keeps the rest closed
  EXPECT_FALSE(r.limitReached);
  EXPECT_FALSE(r.windowPartlyKept);
  EXPECT_EQ(r.historyStartNs, kT0);
  EXPECT_EQ(r.fileBytes, fileSize(out));
  EXPECT_FALSE(fs::exists(out + ".part"));
  auto got = readAll(out);
  ASSERT_EQ(got.size(), 76u);
  for (size_t k = 0; k < got.size(); k++) {
    EXPECT_EQ(got[k].tsNs, kT0 + (100 + 2 * k) * kSec) << k;
    EXPECT_EQ(got[k].data.size(), 160u);
    EXPECT_TRUE(matches(dport(53), got[k].data));
  }
}

TEST_F(HistoryQueryTest, LimitTakesTheEarliest) {
  auto r = run(window(kT0, kT0 + 599 * kSec, {}, 25));
  EXPECT_EQ(r.packets, 25u);
  EXPECT_TRUE(r.limitReached);
  EXPECT_EQ(r.segmentsRead, 1u);
  auto got = readAll(out);
  ASSERT_EQ(got.size(), 25u);
  EXPECT_EQ(got.back().tsNs, kT0 + 24 * kSec);
  // Exactly the matching count: the limit is not reached.
  r = run(window(kT0, kT0 + 599 * kSec, {}, 600));
  EXPECT_EQ(r.packets, 600u);
  EXPECT_EQ(readAll(out).size(), 600u);
}

TEST_F(HistoryQueryTest, PartlyKeptWindowEmptyWindowAndBadWindow) {
  auto r = run(window(kT0 - 60 * kSec, kT0 + 9 * kSec, {}));
  EXPECT_EQ(r.packets, 10u);
  EXPECT_TRUE(r.windowPartlyKept);
  EXPECT_EQ(r.historyStartNs, kT0);
  r = run(window(kT0 + 1000 * kSec, kT0 + 2000 * kSec, {}));
  EXPECT_EQ(r.packets, 0u);
  EXPECT_EQ(r.segmentsRead, 0u);
  EXPECT_EQ(readAll(out).size(), 0u);
  HistoryQuery bad = window(kT0 + 2, kT0 + 1, {});
  bad.outputPath = out;
  auto e = store->query(bad);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().kind, ErrorKind::InvalidRequest);
}

TEST_F(HistoryQueryTest, PacketsArrivingOutOfOrderComeOutInOrder) {
  // Late packets (a clock step, a slow CPU's ring): each inversion starts a segment, and
  // the query merges the overlapping segments.
  put(*store, kT0 + 100 * kSec + 500, 53);
  put(*store, kT0 + 101 * kSec + 500, 53);
  put(*store, kT0 + 100 * kSec + 700, 53);
  store->endBatch();
  auto r = run(window(kT0 + 100 * kSec, kT0 + 102 * kSec, dport(53)));
  EXPECT_EQ(r.packets, 5u);
  auto got = readAll(out);
  ASSERT_EQ(got.size(), 5u);
  std::vector<uint64_t> want = {kT0 + 100 * kSec, kT0 + 100 * kSec + 500, kT0 + 100 * kSec + 700,
                                kT0 + 101 * kSec + 500, kT0 + 102 * kSec};
  for (size_t k = 0; k < got.size(); k++)
    EXPECT_EQ(got[k].tsNs, want[k]) << k;
  // Every segment on disk is in timestamp order.
  for (const auto &seg : store->segments()) {
    auto reader = SegmentReader::open(config().directory + "/" + seg.file);
    ASSERT_TRUE(reader.ok());
    uint64_t last = 0;
    for (;;) {
      auto p = (*reader)->next();
      ASSERT_TRUE(p.ok());
      if (!*p)
        break;
      EXPECT_GE((*p)->tsNs, last) << seg.file;
      last = (*p)->tsNs;
    }
  }
}

TEST_F(HistoryQueryTest, PcapngOutputKeepsTheInterfaces) {
  HistoryQuery q = window(kT0, kT0 + 59 * kSec, {});
  q.format = HistoryOutputFormat::Pcapng;
  auto r = run(q);
  EXPECT_EQ(r.packets, 60u);
  auto reader = PcapReader::open(out);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->isPcapng());
  size_t onEth1 = 0, n = 0;
  for (;;) {
    auto p = (*reader)->next();
    ASSERT_TRUE(p.ok());
    if (!*p)
      break;
    ASSERT_LT((*p)->interfaceId, (*reader)->interfaces().size());
    const std::string &name = (*reader)->interfaces()[(*p)->interfaceId].name;
    EXPECT_EQ(name, n % 3 ? "eth0" : "eth1") << n;
    onEth1 += name == "eth1";
    n++;
  }
  EXPECT_EQ(n, 60u);
  EXPECT_EQ(onEth1, 20u);
}

// A look-back of one system: only its interfaces' packets (the history holds every attached
// interface), and packetsScanned (a look-back's packets_seen) counts the window's packets
// only, not those before it in the same segment nor the one after it.
TEST_F(HistoryQueryTest, OnlyTheInterfacesAskedForAndOnlyTheWindowIsCounted) {
  HistoryQuery all = window(kT0 + 100 * kSec, kT0 + 159 * kSec); // i = 100..159
  auto r = run(all);
  EXPECT_EQ(r.packets, 60u);
  EXPECT_EQ(r.packetsScanned, 60u);

  HistoryQuery q = window(kT0 + 100 * kSec, kT0 + 159 * kSec);
  q.interfaces = {"eth1"}; // ifindex 9: i % 3 == 0, i = 102, 105, ..., 159
  q.format = HistoryOutputFormat::Pcapng;
  r = run(q);
  EXPECT_EQ(r.packets, 20u);
  EXPECT_EQ(r.packetsScanned, 20u);
  auto reader = PcapReader::open(out);
  ASSERT_TRUE(reader.ok());
  size_t n = 0;
  for (;; n++) {
    auto p = (*reader)->next();
    ASSERT_TRUE(p.ok());
    if (!*p)
      break;
    EXPECT_EQ((*p)->tsNs, kT0 + (102 + 3 * n) * kSec) << n;
  }
  EXPECT_EQ(n, 20u);
  // The output declares only the interface asked for (read with the packets).
  ASSERT_EQ((*reader)->interfaces().size(), 1u);
  EXPECT_EQ((*reader)->interfaces()[0].name, "eth1");

  q.interfaces = {"eth7"}; // no such interface in the history
  q.format = HistoryOutputFormat::Pcap;
  r = run(q);
  EXPECT_EQ(r.packets, 0u);
  EXPECT_EQ(r.packetsScanned, 0u);
}

TEST_F(HistoryQueryTest, ThirdPartyReadersReadTheOutput) {
  const ThirdPartyTools tools = findTools();
  REQUIRE_THIRD_PARTY_TOOLS(tools);
  auto r = run(window(kT0 + 100 * kSec, kT0 + 250 * kSec, dport(53)));
  ASSERT_EQ(r.packets, 76u);
  auto info = runCommand(tools.capinfos + " -c -M '" + out + "'");
  ASSERT_TRUE(info.succeeded);
  bool counted = false;
  for (const auto &line : info.lines)
    if (line.rfind("Number of packets:", 0) == 0) {
      EXPECT_EQ(std::stoull(line.substr(line.find(':') + 1)), 76u) << line;
      counted = true;
    }
  EXPECT_TRUE(counted);
  auto rows = runCommand(tools.tshark + " -r '" + out +
                         "' -Y 'udp.dstport == 53' -T fields -e frame.time_epoch 2>/dev/null");
  ASSERT_TRUE(rows.succeeded);
  ASSERT_EQ(rows.lines.size(), 76u);
  EXPECT_EQ(rows.lines.front(), epochText(kT0 + 100 * kSec));
  EXPECT_EQ(rows.lines.back(), epochText(kT0 + 250 * kSec));
}

} // namespace
