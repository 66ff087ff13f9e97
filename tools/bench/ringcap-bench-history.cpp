// ringcap-bench-history: how long a query over a full hour of sampled history takes.
//
//   ringcap-bench-history [--dir DIR] [--pps N] [--seconds N] [--reps N] [--keep]
//
// Fills a HistoryStore in DIR (default /var/tmp/ringcap-bench-history, removed at the end
// unless --keep) with --seconds (default 3600) of sampled packets at --pps stored packets per
// second (default 5000: 500 kpps sampled 1 in 100), as the drainer hands them over: frames of
// 600 bytes cut to the 160-byte snaplen, one in 20 of them to UDP port 53, on two interfaces,
// endBatch() every 64 packets. The store's bounds hold the whole hour (max_bytes sized for
// it). Then it times, best of --reps (default 3) with the segments in the page cache:
//   scan-all    the whole hour, filter destination_port 53 (5% match), no packet limit:
//               every segment read, every packet matched
//   limit       the whole hour, no filter, packet_limit 10000: stops after 10000 packets
//   all         the whole hour, no filter, no limit: every packet written (scan + write)
//   minute      one minute in the middle of the hour, no filter: the index skips the rest
// Prints one line per measurement.
#include "engine/RingDrainer.h"
#include "history/HistoryStore.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

using namespace ringcap;

namespace {

double secondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Ethernet / IPv4 10.1.x.y -> 10.2.0.1 / UDP 40000+i -> dport / zeros, `len` bytes.
std::vector<uint8_t> frame(uint32_t i, uint16_t dport, size_t len) {
  std::vector<uint8_t> f(len);
  const uint8_t head[] = {2,
                          0,
                          0,
                          0,
                          0,
                          2,
                          2,
                          0,
                          0,
                          0,
                          0,
                          1,
                          8,
                          0,
                          0x45,
                          0,
                          0,
                          0,
                          0,
                          0,
                          0,
                          0,
                          64,
                          17,
                          0,
                          0,
                          10,
                          1,
                          uint8_t(i >> 8),
                          uint8_t(i),
                          10,
                          2,
                          0,
                          1};
  std::memcpy(f.data(), head, sizeof head);
  f[16] = uint8_t((len - 14) >> 8);
  f[17] = uint8_t(len - 14);
  f[34] = uint8_t((40000 + i) >> 8);
  f[35] = uint8_t(40000 + i);
  f[36] = uint8_t(dport >> 8);
  f[37] = uint8_t(dport);
  return f;
}

} // namespace

int main(int argc, char **argv) {
  std::string dir = "/var/tmp/ringcap-bench-history";
  uint64_t pps = 5000, seconds = 3600, reps = 3;
  bool keep = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--dir")
      dir = value();
    else if (a == "--pps")
      pps = std::stoull(value());
    else if (a == "--seconds")
      seconds = std::stoull(value());
    else if (a == "--reps")
      reps = std::stoull(value());
    else if (a == "--keep")
      keep = true;
    else {
      std::fprintf(stderr, "usage: %s [--dir DIR] [--pps N] [--seconds N] [--reps N] [--keep]\n",
                   argv[0]);
      return 2;
    }
  }
  if (pps == 0 || seconds == 0 || reps == 0) {
    std::fprintf(stderr, "--pps, --seconds and --reps must be at least 1\n");
    return 2;
  }
  constexpr uint64_t kSec = 1'000'000'000;
  const uint64_t t0 = 1'800'000'000ull * kSec;
  const uint64_t packets = pps * seconds;
  std::filesystem::remove_all(dir);

  HistoryConfig c;
  c.directory = dir;
  c.segmentSeconds = 60;
  c.segmentMaxBytes = 64ull << 20;
  c.maxBytes = std::max<uint64_t>(packets * 200 * 2, 2 * c.segmentMaxBytes);
  c.maxAgeSeconds = 86400;
  c.interfaces = {{1, "eth0"}, {2, "eth1"}};
  uint64_t now = t0;
  auto opened = HistoryStore::open(c, [&] { return now; });
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.error().message.c_str());
    return 1;
  }
  auto &store = *opened;

  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < 1000; i++)
    frames.push_back(frame(i, i % 20 == 0 ? 53 : uint16_t(1024 + i), 600));
  auto fillStart = std::chrono::steady_clock::now();
  for (uint64_t n = 0; n < packets; n++) {
    const auto &f = frames[n % frames.size()];
    uint64_t ts = t0 + n * kSec / pps;
    now = ts; // the clock moves with the packets, as it does live
    store->onPacket(CapturedPacket{ts, uint32_t(1 + n % 2), 0, uint32_t(f.size()), f});
    if (n % 64 == 63)
      store->endBatch();
  }
  store->endBatch();
  now = t0 + seconds * kSec;
  double fill = secondsSince(fillStart);
  const auto &k = store->counters();
  std::printf("fill: %llu packets (%llu pps for %llu s) in %.2f s; %zu segments, %.1f MB; "
              "dropped %llu\n",
              (unsigned long long)k.packetsWritten, (unsigned long long)pps,
              (unsigned long long)seconds, fill, store->segments().size(),
              store->totalBytes() / 1e6,
              (unsigned long long)(k.droppedLowSpace + k.droppedWriteError));
  if (k.packetsWritten != packets) {
    std::fprintf(stderr, "the store kept %llu of %llu packets\n",
                 (unsigned long long)k.packetsWritten, (unsigned long long)packets);
    return 1;
  }

  struct Case {
    const char *name;
    uint64_t from, to;
    bool port53;
    uint64_t limit;
  };
  const uint64_t end = t0 + seconds * kSec - 1;
  const uint64_t mid = t0 + seconds / 2 * kSec;
  const Case cases[] = {{"scan-all", t0, end, true, 0},
                        {"limit", t0, end, false, 10000},
                        {"all", t0, end, false, 0},
                        {"minute", mid, mid + 60 * kSec - 1, false, 0}};
  const std::string out = dir + "/query.pcap";
  int rc = 0;
  for (const Case &cs : cases) {
    HistoryQuery q;
    q.fromNs = cs.from;
    q.toNs = cs.to;
    if (cs.port53)
      q.filter.destination_port = 53;
    q.packetLimit = cs.limit;
    q.outputPath = out;
    double best = 1e9;
    HistoryQueryResult r;
    for (uint64_t rep = 0; rep < reps; rep++) {
      auto t = std::chrono::steady_clock::now();
      auto res = store->query(q);
      double s = secondsSince(t);
      if (!res) {
        std::fprintf(stderr, "%s: %s\n", cs.name, res.error().message.c_str());
        return 1;
      }
      r = *res;
      best = std::min(best, s);
    }
    std::printf("%-9s %.3f s  scanned %llu packets in %llu segments, wrote %llu (%.1f MB)%s\n",
                cs.name, best, (unsigned long long)r.packetsScanned,
                (unsigned long long)r.segmentsRead, (unsigned long long)r.packets,
                r.fileBytes / 1e6, r.limitReached ? ", limit reached" : "");
    std::filesystem::remove(out);
  }
  store.reset();
  if (!keep)
    std::filesystem::remove_all(dir);
  return rc;
}
