// ringcap-bench-history-xdp: the history slot alone, for ringcap-bench's live-frames runs.
//
//   ringcap-bench-history-xdp -i IF [-i IF ...] [--sample-rate N] [--snaplen N] [--ring-mib N]
//
// Attaches the capture program to the interfaces, arms only the history slot (no job) and
// drains the history ring with a RingDrainer into a sink that counts, until SIGINT or SIGTERM.
// Prints "history armed" on stderr when ready, and at the end one JSON line on stdout:
//   {"sampled":N,"emitted":N,"bytes_emitted":N,"ring_full":N,"copy_failed":N,"drained":N}
#include "engine/BpfLog.h"
#include "engine/CaptureProgram.h"
#include "engine/KernelSupport.h"
#include "engine/RingDrainer.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <string>
#include <vector>

using namespace ringcap;

namespace {

volatile std::sig_atomic_t stopRequested = 0;
void onSignal(int) { stopRequested = 1; }

[[noreturn]] void usage(const std::string &why) {
  std::fprintf(stderr,
               "ringcap-bench-history-xdp: %s\n"
               "Usage: ringcap-bench-history-xdp -i IF [-i IF ...] [--sample-rate N] "
               "[--snaplen N] [--ring-mib N]\n",
               why.c_str());
  std::exit(2);
}

[[noreturn]] void die(const Error &e) {
  std::fprintf(stderr, "ringcap-bench-history-xdp: %s\n", e.message.c_str());
  std::exit(1);
}

uint64_t number(const std::string &opt, const char *text, uint64_t min, uint64_t max) {
  char *end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno || end == text || *end || v < min || v > max)
    usage(opt + ": must be an integer from " + std::to_string(min) + " to " + std::to_string(max) +
          " (got \"" + text + "\")");
  return v;
}

class CountingSink : public PacketSink {
public:
  void onPacket(const CapturedPacket &) override { count++; }
  uint64_t count = 0;
};

} // namespace

int main(int argc, char **argv) {
  std::vector<std::string> ifnames;
  HistorySettings h;
  h.cookie = 0x4157;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (i + 1 >= argc)
      usage(a + ": missing value");
    const char *v = argv[++i];
    if (a == "-i")
      ifnames.push_back(v);
    else if (a == "--sample-rate")
      h.sampleRate = uint32_t(number(a, v, 1, RINGCAP_MAX_SAMPLE_RATE));
    else if (a == "--snaplen")
      h.snaplen = uint32_t(number(a, v, 1, RINGCAP_MAX_SNAPLEN));
    else if (a == "--ring-mib") {
      uint64_t mib = number(a, v, 1, 1024);
      if (mib & (mib - 1))
        usage("--ring-mib: must be a power of two (got " + std::to_string(mib) + ")");
      h.ringBytes = uint32_t(mib << 20);
    } else
      usage("unknown option " + a);
  }
  if (ifnames.empty())
    usage("-i is required");
  if (auto k = checkKernelSupport(); !k)
    die(k.error());
  spdlog::set_level(spdlog::level::warn);
  routeBpfLogsToSpdlog();
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);

  // The jobs' rings are not used: the smallest that open() takes for this machine.
  CaptureProgramOptions po;
  po.ringBytes = 1u << 20;
  auto program = CaptureProgram::open(po);
  if (!program)
    die(program.error());
  if (auto r = (*program)->attach(ifnames); !r)
    die(r.error());
  if (auto r = (*program)->armHistory(h); !r)
    die(r.error());
  auto drainer = RingDrainer::create((*program)->historyRingFd());
  if (!drainer)
    die(drainer.error());
  CountingSink sink;
  (*drainer)->route(CaptureProgram::kHistoryRecordSlot, h.cookie, &sink);
  std::fprintf(stderr, "history armed: 1 in %u, snaplen %u, ring %u bytes\n", h.sampleRate,
               h.snaplen, h.ringBytes);
  while (!stopRequested)
    if (auto r = (*drainer)->poll(100); !r && r.error().code != EINTR)
      die(r.error());
  (void)(*program)->disarmHistory();
  (void)(*drainer)->consume();
  auto c = (*program)->historyCounters();
  if (!c)
    die(c.error());
  std::printf("{\"sampled\":%llu,\"emitted\":%llu,\"bytes_emitted\":%llu,\"ring_full\":%llu,"
              "\"copy_failed\":%llu,\"drained\":%llu}\n",
              (unsigned long long)c->sampled, (unsigned long long)c->emitted,
              (unsigned long long)c->bytesEmitted, (unsigned long long)c->ringFull,
              (unsigned long long)c->copyFailed, (unsigned long long)sink.count);
  (*program)->detachAll();
  return 0;
}
