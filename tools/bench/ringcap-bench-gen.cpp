// ringcap-bench-gen: the load generator of ringcap-bench (tools/ringcap-bench).
//
//   ringcap-bench-gen live  -i IF --count N --size BYTES [--batch 1..256] [common options]
//   ringcap-bench-gen paced -i IF --count N --size BYTES --rate PPS [--batch N] [common options]
//   common: --dst ADDR --src ADDR [--dst-mac MAC] [--port-base P] [--port-spread N]
//           [--max-seconds S]
//
// `live` sends as fast as the machine allows with BPF_PROG_RUN in live-frames mode (an XDP
// program returning XDP_TX on IF); `paced` sends at a fixed rate with sendmmsg on an AF_PACKET
// socket. Both send Ethernet/IPv4/UDP frames whose destination port cycles through
// port-base .. port-base + port-spread - 1, so a filter on port-base matches 1 frame in
// port-spread. Run it in the namespace that holds IF. Prints one JSON line:
//   {"mode":"live","sent":N,"failed":N,"elapsed_ns":N,"pps":X,"timed_out":false,
//    "run_ns":N,"runqueue_wait_ns":N,"voluntary_switches":N,"involuntary_switches":N}
// run_ns and runqueue_wait_ns are this thread's time on the CPU and waiting for it
// (/proc/thread-self/schedstat): a generator that waited is one the machine's other load
// slowed down, not the capture.
#include "bench/BenchFrame.h"
#include "bench/LiveFramesGenerator.h"
#include "bench/PacedGenerator.h"
#include "engine/BpfLog.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sys/resource.h>
#include <net/if.h>
#include <optional>
#include <spdlog/spdlog.h>
#include <string>

using namespace ringcap;
using namespace ringcap::bench;

namespace {

[[noreturn]] void usage(const std::string &why) {
  std::fprintf(stderr,
               "ringcap-bench-gen: %s\n"
               "Usage: ringcap-bench-gen live|paced -i IF --count N --size BYTES --dst ADDR "
               "--src ADDR\n"
               "         [--rate PPS] [--batch N] [--dst-mac MAC] [--port-base P] "
               "[--port-spread N] [--max-seconds S]\n",
               why.c_str());
  std::exit(2);
}

[[noreturn]] void die(const Error &e) {
  std::fprintf(stderr, "ringcap-bench-gen: %s\n", e.message.c_str());
  std::exit(1);
}

template <typename T> T orDie(Result<T> r) {
  if (!r)
    die(r.error());
  return std::move(r).value();
}

uint64_t number(const std::string &opt, const char *text, uint64_t min, uint64_t max) {
  char *end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno || end == text || *end || v < min || v > max)
    usage(opt + ": must be an integer from " + std::to_string(min) + " to " +
          std::to_string(max) + " (got \"" + text + "\")");
  return v;
}

struct SchedStat {
  unsigned long long runNs = 0, waitNs = 0;
};

SchedStat threadSchedStat() {
  SchedStat s;
  std::ifstream in("/proc/thread-self/schedstat");
  in >> s.runNs >> s.waitNs;
  return s;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2)
    usage("missing mode");
  std::string mode = argv[1];
  if (mode != "live" && mode != "paced")
    usage("unknown mode \"" + mode + "\"");
  std::string ifname, dst, src, dstMac;
  uint64_t count = 0, rate = 0;
  std::optional<uint64_t> batch;
  double maxSeconds = 30;
  FrameSpec spec;
  for (int i = 2; i < argc; i++) {
    std::string a = argv[i];
    if (i + 1 >= argc)
      usage(a + ": missing value");
    const char *v = argv[++i];
    if (a == "-i")
      ifname = v;
    else if (a == "--count")
      count = number(a, v, 1, uint64_t{1} << 40);
    else if (a == "--size")
      spec.size = number(a, v, kMinFrameSize, kMaxFrameSize);
    else if (a == "--rate")
      rate = number(a, v, 1, 100'000'000);
    else if (a == "--batch")
      batch = number(a, v, 1, 1024);
    else if (a == "--dst")
      dst = v;
    else if (a == "--src")
      src = v;
    else if (a == "--dst-mac")
      dstMac = v;
    else if (a == "--port-base")
      spec.portBase = static_cast<uint16_t>(number(a, v, 1, 65535));
    else if (a == "--port-spread")
      spec.portSpread = static_cast<uint32_t>(number(a, v, 1, 1000));
    else if (a == "--max-seconds")
      maxSeconds = static_cast<double>(number(a, v, 1, 3600));
    else
      usage("unknown option " + a);
  }
  if (ifname.empty() || count == 0 || dst.empty() || src.empty())
    usage("-i, --count, --dst and --src are required");
  if (spec.portBase + spec.portSpread - 1 > 65535)
    usage("--port-base + --port-spread must stay within 65535");
  if (mode == "paced" && rate == 0)
    usage("paced mode needs --rate");
  int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0)
    die(Error::fromErrno(errno, "interface " + ifname));
  spec.dstAddr = orDie(parseIpv4(dst));
  spec.srcAddr = orDie(parseIpv4(src));
  spec.srcMac = orDie(interfaceMac(ifname));
  if (!dstMac.empty())
    spec.dstMac = orDie(parseMac(dstMac));

  spdlog::set_level(spdlog::level::warn);
  routeBpfLogsToSpdlog();
  GeneratorRun r;
  SchedStat before = threadSchedStat();
  rusage ru0{};
  getrusage(RUSAGE_THREAD, &ru0);
  if (mode == "live") {
    LiveFramesOptions lo;
    lo.portBase = spec.portBase;
    lo.portSpread = spec.portSpread;
    if (batch) {
      if (*batch > 256)
        usage("--batch: must be an integer from 1 to 256 in live mode");
      lo.batchSize = static_cast<uint32_t>(*batch);
    }
    auto gen = orDie(LiveFramesGenerator::open(lo));
    // The program rewrites the port of each frame; the template's is the first one.
    r = orDie(gen->run(ifindex, buildUdpFrame(spec, spec.portBase), count, maxSeconds));
  } else {
    PacedOptions po;
    po.rate = rate;
    if (batch)
      po.batch = static_cast<uint32_t>(*batch);
    auto gen = orDie(PacedGenerator::open(ifindex, po));
    r = orDie(gen->run(spec, count, maxSeconds));
  }
  SchedStat after = threadSchedStat();
  rusage ru1{};
  getrusage(RUSAGE_THREAD, &ru1);
  double pps = r.elapsedNs ? static_cast<double>(r.sent) * 1e9 / static_cast<double>(r.elapsedNs)
                           : 0.0;
  std::printf("{\"mode\":\"%s\",\"sent\":%llu,\"failed\":%llu,\"elapsed_ns\":%llu,"
              "\"pps\":%.0f,\"timed_out\":%s,\"run_ns\":%llu,\"runqueue_wait_ns\":%llu,"
              "\"voluntary_switches\":%ld,\"involuntary_switches\":%ld}\n",
              mode.c_str(), static_cast<unsigned long long>(r.sent),
              static_cast<unsigned long long>(r.failed),
              static_cast<unsigned long long>(r.elapsedNs), pps, r.timedOut ? "true" : "false",
              after.runNs - before.runNs, after.waitNs - before.waitNs,
              ru1.ru_nvcsw - ru0.ru_nvcsw, ru1.ru_nivcsw - ru0.ru_nivcsw);
  return 0;
}
