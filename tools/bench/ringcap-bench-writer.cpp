// ringcap-bench-writer: the capture file writer's cost per packet beside the physical floor.
//
//   ringcap-bench-writer [--dir DIR] [--packets N] [--batch N] [--reps N] [--sizes 60,1514]
//
// Records laid out like the capture ring's (8-byte ring header, 40-byte ringcap record
// header, the packet, 8-byte aligned) fill a source region as large as the default ring
// (64 MiB), so that most reads miss the caches as the consumer's do. For each packet size it
// times, per packet (the best of --reps runs, wall clock and this thread's CPU):
//   memcpy      the packet bytes copied into a 256 KiB buffer (the floor of one copy)
//   write       the file's bytes written with write(2) in 256 KiB chunks (the floor of the
//               kernel's copy into the page cache), to DIR/ringcap-bench-writer.pcapng
//   copy        PcapngWriter::writePacket: every packet copied into the writer's buffer
//   gather      PcapngWriter::writePacketRef: every packet written in place with writev at
//               PcapFileSink::endBatch() every --batch packets
//   sink        PcapFileSink::onPacket as the drainer drives it: packets of >=
//               kGatherMinBytes gathered, smaller ones copied; endBatch() every --batch
// and copy/gather again to /dev/null (no page cache). It also counts the heap allocations in
// the sink's timed loops, which must stay zero. DIR defaults to /dev/shm (a tmpfs, like
// ringcap-bench's capture directory). Prints one line per measurement.
#include "engine/RingDrainer.h"
#include "pcap/PcapFileSink.h"
#include "pcap/PcapngWriter.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <string>
#include <vector>

namespace {

std::atomic<uint64_t> gAllocations{0};

} // namespace

void *operator new(size_t n) {
  gAllocations.fetch_add(1, std::memory_order_relaxed);
  if (void *p = std::malloc(n ? n : 1))
    return p;
  throw std::bad_alloc();
}
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, size_t) noexcept { std::free(p); }

namespace {

using namespace ringcap;

constexpr size_t kSourceBytes = 64u << 20;
constexpr size_t kChunk = 256 * 1024;

uint64_t nowNs(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return uint64_t(t.tv_sec) * 1000000000 + uint64_t(t.tv_nsec);
}

struct Timing {
  double wallNs = 1e18, cpuNs = 1e18;
  uint64_t allocations = 0;
};

struct Source {
  std::vector<uint8_t> mem;
  std::vector<CapturedPacket> packets; // one per record in mem
};

Source makeSource(size_t size) {
  Source s;
  s.mem.assign(kSourceBytes, 0);
  const size_t stride = (8 + 40 + size + 7) & ~size_t{7};
  for (size_t off = 0; off + stride <= s.mem.size(); off += stride) {
    uint8_t *data = s.mem.data() + off + 48;
    for (size_t i = 0; i < size; i++)
      data[i] = uint8_t(off + i);
    CapturedPacket p;
    p.tsNs = 1'700'000'000'000'000'000ull + off;
    p.ifindex = 1;
    p.pktLen = uint32_t(size);
    p.data = {data, size};
    s.packets.push_back(p);
  }
  return s;
}

template <typename Run> Timing timeRuns(int reps, uint64_t packets, Run &&run) {
  Timing best;
  for (int rep = 0; rep < reps; rep++) {
    const uint64_t a0 = gAllocations.load();
    const uint64_t w0 = nowNs(CLOCK_MONOTONIC), c0 = nowNs(CLOCK_THREAD_CPUTIME_ID);
    run();
    const uint64_t w1 = nowNs(CLOCK_MONOTONIC), c1 = nowNs(CLOCK_THREAD_CPUTIME_ID);
    best.allocations = std::max(best.allocations, gAllocations.load() - a0);
    best.wallNs = std::min(best.wallNs, double(w1 - w0) / double(packets));
    best.cpuNs = std::min(best.cpuNs, double(c1 - c0) / double(packets));
  }
  return best;
}

void report(size_t size, const char *what, const char *target, const Timing &t) {
  std::printf("size=%-5zu %-7s %-9s wall %7.1f ns/pkt  cpu %7.1f ns/pkt  allocations %llu\n", size,
              what, target, t.wallNs, t.cpuNs, static_cast<unsigned long long>(t.allocations));
  std::fflush(stdout);
}

int openTarget(const std::string &path) {
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(path.c_str());
    std::exit(1);
  }
  return fd;
}

// Drives a PcapFileSink like RingDrainer::consume: onPacket per record, endBatch per batch.
enum class Mode { Copy, Ref, Sink };

Timing timeSink(const Source &src, const std::string &path, Mode mode, uint64_t packets,
                uint64_t batch, int reps) {
  Timing best;
  for (int rep = 0; rep < reps; rep++) {
    auto writer = PcapngWriter::fromFd(openTarget(path), path, {{"bench0", "", 0}}, "bench");
    if (!writer) {
      std::fprintf(stderr, "%s\n", writer.error().message.c_str());
      std::exit(1);
    }
    PcapFileSink sink(std::move(*writer), {{1, PcapInterface{"bench0", "", 0}}});
    Timing t = timeRuns(1, packets, [&] {
      for (uint64_t i = 0; i < packets;) {
        const uint64_t end = std::min(packets, i + batch);
        for (; i < end; i++) {
          const CapturedPacket &p = src.packets[i % src.packets.size()];
          if (mode == Mode::Sink) {
            sink.onPacket(p);
            continue;
          }
          auto r = mode == Mode::Copy ? sink.writer().writePacket(0, p.tsNs, p.pktLen, p.data)
                                      : sink.writer().writePacketRef(0, p.tsNs, p.pktLen, p.data);
          if (!r) {
            std::fprintf(stderr, "%s\n", r.error().message.c_str());
            std::exit(1);
          }
        }
        sink.endBatch();
      }
      (void)sink.flush();
    });
    if (sink.error() || sink.writer().packetsWritten() != packets) {
      std::fprintf(stderr, "%s: %llu packets written of %llu: %s\n", path.c_str(),
                   static_cast<unsigned long long>(sink.writer().packetsWritten()),
                   static_cast<unsigned long long>(packets),
                   sink.error() ? sink.error()->message.c_str() : "");
      std::exit(1);
    }
    best.allocations = std::max(best.allocations, t.allocations);
    best.wallNs = std::min(best.wallNs, t.wallNs);
    best.cpuNs = std::min(best.cpuNs, t.cpuNs);
  }
  return best;
}

std::vector<size_t> parseSizes(const char *s) {
  std::vector<size_t> sizes;
  for (const char *p = s; *p;) {
    char *end = nullptr;
    sizes.push_back(std::strtoul(p, &end, 10));
    p = *end == ',' ? end + 1 : end;
    if (end == p && *p) {
      std::fprintf(stderr, "--sizes: a comma-separated list of packet sizes\n");
      std::exit(2);
    }
  }
  return sizes;
}

} // namespace

int main(int argc, char **argv) {
  std::string dir = "/dev/shm";
  uint64_t packets = 200'000, batch = 1024;
  int reps = 5;
  std::vector<size_t> sizes = {60, 1514};
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (!v || a == "-h" || a == "--help") {
      std::fprintf(stderr,
                   "usage: %s [--dir DIR] [--packets N] [--batch N] [--reps N] "
                   "[--sizes 60,1514]\n",
                   argv[0]);
      return a == "-h" || a == "--help" ? 0 : 2;
    }
    if (a == "--dir")
      dir = v;
    else if (a == "--packets")
      packets = std::strtoull(v, nullptr, 10);
    else if (a == "--batch")
      batch = std::strtoull(v, nullptr, 10);
    else if (a == "--reps")
      reps = std::atoi(v);
    else if (a == "--sizes")
      sizes = parseSizes(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
    i++;
  }
  if (packets == 0 || batch == 0 || reps <= 0) {
    std::fprintf(stderr, "--packets, --batch and --reps must be positive\n");
    return 2;
  }
  const std::string file = dir + "/ringcap-bench-writer.pcapng";
  std::printf("packets %llu, batch %llu, best of %d, file %s, gather from %zu bytes\n",
              static_cast<unsigned long long>(packets), static_cast<unsigned long long>(batch),
              reps, file.c_str(), PcapFileSink::kGatherMinBytes);
  for (size_t size : sizes) {
    const Source src = makeSource(size);
    std::vector<uint8_t> buf(kChunk);
    report(size, "memcpy", "memory", timeRuns(reps, packets, [&] {
             size_t at = 0;
             for (uint64_t i = 0; i < packets; i++) {
               const auto &d = src.packets[i % src.packets.size()].data;
               if (at + d.size() > buf.size())
                 at = 0;
               std::memcpy(buf.data() + at, d.data(), d.size());
               at += d.size();
             }
             asm volatile("" : : "r"(buf.data()) : "memory");
           }));
    const size_t block = 32 + ((size + 3) & ~size_t{3});
    report(size, "write", "tmpfs", timeRuns(reps, packets, [&] {
             const int fd = openTarget(file);
             uint64_t left = packets * block;
             while (left > 0) {
               const size_t n = std::min<uint64_t>(left, buf.size());
               if (::write(fd, buf.data(), n) != ssize_t(n)) {
                 std::perror(file.c_str());
                 std::exit(1);
               }
               left -= n;
             }
             ::close(fd);
           }));
    for (const auto &[target, path] : {std::pair{"tmpfs", file}, {"/dev/null", "/dev/null"}}) {
      report(size, "copy", target, timeSink(src, path, Mode::Copy, packets, batch, reps));
      report(size, "gather", target, timeSink(src, path, Mode::Ref, packets, batch, reps));
      report(size, "sink", target, timeSink(src, path, Mode::Sink, packets, batch, reps));
    }
  }
  ::unlink(file.c_str());
  return 0;
}
