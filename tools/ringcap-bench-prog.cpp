// ringcap-bench-prog: the per-packet cost of ringcap's XDP program, measured with
// BPF_PROG_TEST_RUN against the empty XDP program in the same run.
#include "engine/BpfLog.h"
#include "engine/CaptureProgram.h"
#include "engine/KernelSupport.h"
#include "engine/RingDrainer.h"
#include "pass.skel.h"

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <barrier>
#include <bpf/bpf.h>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <string>
#include <thread>
#include <vector>

using namespace ringcap;

namespace {

// An Ethernet/IPv4/UDP frame of `size` bytes from 10.0.0.1:1234 to 10.0.0.2:53.
std::vector<uint8_t> udpFrame(size_t size) {
  std::vector<uint8_t> f(size, 0);
  auto *eth = reinterpret_cast<ethhdr *>(f.data());
  std::memset(eth->h_dest, 0x02, ETH_ALEN);
  std::memset(eth->h_source, 0x04, ETH_ALEN);
  eth->h_proto = htons(ETH_P_IP);
  auto *ip = reinterpret_cast<iphdr *>(f.data() + sizeof(ethhdr));
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons(static_cast<uint16_t>(size - sizeof(ethhdr)));
  ip->saddr = htonl(0x0a000001);
  ip->daddr = htonl(0x0a000002);
  auto *udp = reinterpret_cast<udphdr *>(f.data() + sizeof(ethhdr) + sizeof(iphdr));
  udp->source = htons(1234);
  udp->dest = htons(53);
  udp->len = htons(static_cast<uint16_t>(size - sizeof(ethhdr) - sizeof(iphdr)));
  return f;
}

uint64_t threadCpuNs() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return uint64_t(t.tv_sec) * 1000000000u + uint64_t(t.tv_nsec);
}

// Average ns per run of `repeat` runs of the program on `frame`. The kernel's own figure
// (opts.duration) is rounded to whole ns, too coarse for a 4 ns program, so the calling
// thread's CPU time for the whole call is divided instead (the program runs in that thread's
// syscall; CPU time, not wall time, so that time spent preempted by other load on a shared
// machine is not counted); with a large repeat the syscall cost vanishes.
double runOnce(int progFd, const std::vector<uint8_t> &frame, uint32_t repeat) {
  uint64_t t0 = threadCpuNs();
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()),
              .repeat = static_cast<int>(repeat));
  if (int err = bpf_prog_test_run_opts(progFd, &opts)) {
    std::fprintf(stderr, "ringcap-bench-prog: BPF_PROG_TEST_RUN: %s\n", std::strerror(-err));
    std::exit(1);
  }
  if (opts.retval != XDP_PASS) {
    std::fprintf(stderr, "ringcap-bench-prog: verdict %u, expected XDP_PASS\n", opts.retval);
    std::exit(1);
  }
  return double(threadCpuNs() - t0) / repeat;
}

struct Stat {
  double median, min, max;
};

Stat measure(int progFd, const std::vector<uint8_t> &frame, uint32_t repeat, int rounds) {
  std::vector<double> v;
  for (int i = 0; i < rounds; i++)
    v.push_back(runOnce(progFd, frame, repeat));
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

class CountingSink : public PacketSink {
public:
  void onPacket(const CapturedPacket &) override { count++; }
  uint64_t count = 0;
};

void die(const Error &e) {
  std::fprintf(stderr, "ringcap-bench-prog: %s\n", e.message.c_str());
  std::exit(1);
}

void pinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (int err = pthread_setaffinity_np(pthread_self(), sizeof set, &set)) {
    std::fprintf(stderr, "ringcap-bench-prog: pinning to CPU %d: %s\n", cpu, std::strerror(err));
    std::exit(1);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The program run on `threads` CPUs at once (thread i pinned to CPU i), `rounds` rounds of
// `repeat` runs each; the threads start every round together and `betweenRounds` runs (not
// timed) while they wait, e.g. to drain the ring. Returns the median over rounds of the mean
// ns/packet of the threads (each thread's own cost per packet while the others run too).
double measureOn(int threads, int progFd, const std::vector<uint8_t> &frame, uint32_t repeat,
                 int rounds, const std::function<void()> &betweenRounds) {
  std::vector<std::vector<double>> perThread(threads);
  std::barrier sync(threads + 1);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; t++)
    ts.emplace_back([&, t] {
      pinTo(t);
      for (int r = 0; r < rounds; r++) {
        sync.arrive_and_wait();
        perThread[t].push_back(runOnce(progFd, frame, repeat));
        sync.arrive_and_wait();
      }
    });
  for (int r = 0; r < rounds; r++) {
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    if (betweenRounds)
      betweenRounds();
  }
  for (auto &t : ts)
    t.join();
  std::vector<double> means;
  for (int r = 0; r < rounds; r++) {
    double sum = 0;
    for (int t = 0; t < threads; t++)
      sum += perThread[t][r];
    means.push_back(sum / threads);
  }
  return median(means);
}

// One CPU against two CPUs at once, same job, same run: per-packet cost and ratio for the
// XDP_PASS floor, a filter that misses, a job whose limit is reached and a job capturing.
// The ring is drained between rounds (not timed), so it never fills and no consumer competes
// with the two pinned threads for the machine's CPUs.
int scalingRun(std::unique_ptr<CaptureProgram> &program, std::unique_ptr<RingDrainer> &drainer,
               int emptyFd, uint32_t repeat, int rounds) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 2) {
    std::fprintf(stderr, "ringcap-bench-prog: --scaling needs two online CPUs\n");
    return 1;
  }
  auto frame = udpFrame(64);
  std::printf("BPF_PROG_TEST_RUN from 1 and 2 pinned threads, 64-byte frames, %u runs per "
              "thread per round, median of %d rounds, ns/packet per CPU\n",
              repeat, rounds);
  std::printf("%-34s %10s %10s %8s\n", "case", "1 CPU", "2 CPUs", "ratio");
  auto row = [&](const char *name, int fd, const std::function<void()> &between) {
    double one = measureOn(1, fd, frame, repeat, rounds, between);
    double two = measureOn(2, fd, frame, repeat, rounds, between);
    std::printf("%-34s %10.2f %10.2f %7.2fx\n", name, one, two, two / one);
  };
  row("XDP_PASS only (floor)", emptyFd, nullptr);
  int capFd = program->programFd();

  SlotSettings miss;
  miss.cookie = 1;
  miss.filter.fields = RINGCAP_F_DST_PORT | RINGCAP_F_PROTOCOL;
  miss.filter.protocol = IPPROTO_UDP;
  miss.filter.dst_port = htons(9999);
  if (auto r = program->armSlot(0, miss); !r)
    die(r.error());
  row("filter misses", capFd, nullptr);
  (void)program->disarmSlot(0);

  SlotSettings spent = miss;
  spent.cookie = 2;
  spent.filter.dst_port = htons(53);
  spent.packetLimit = 0;
  if (auto r = program->armSlot(0, spent); !r)
    die(r.error());
  row("limit reached", capFd, nullptr);
  (void)program->disarmSlot(0);

  SlotSettings hit = spent;
  hit.cookie = 3;
  hit.packetLimit.reset();
  if (auto r = program->armSlot(0, hit); !r)
    die(r.error());
  CountingSink sink;
  drainer->route(0, hit.cookie, &sink);
  row("capturing", capFd, [&] { (void)drainer->consume(); });
  // One CPU capturing while the consumer drains on the other one at the same time (what the
  // consumer's writes to the ring's consumer position cost the producer).
  {
    std::atomic<bool> stop{false};
    std::thread consumer([&] {
      pinTo(1);
      while (!stop.load(std::memory_order_relaxed))
        (void)drainer->poll(1);
    });
    double one = measureOn(1, capFd, frame, repeat, rounds, nullptr);
    stop = true;
    consumer.join();
    (void)drainer->consume();
    std::printf("%-34s %10.2f %10s %8s\n", "capturing, consumer on CPU 1", one, "-", "-");
  }
  auto c = program->slotCounters(0);
  if (!c)
    die(c.error());
  std::printf("capturing: captured %llu, drained %llu, lost (ring full) %llu\n",
              (unsigned long long)c->captured, (unsigned long long)sink.count,
              (unsigned long long)c->ringLost);
  (void)program->disarmSlot(0);
  drainer->unroute(0);
  return c->ringLost == 0 && sink.count == c->captured ? 0 : 1;
}

// Several jobs matching the same packet (the same 5-tuple filter, whole packets), each routed
// to a sink of its own, a consumer thread draining: the cost of a packet that `jobs` jobs
// capture. Returns 1 if a record was lost or a job's packets were not all delivered.
int jobsRun(std::unique_ptr<CaptureProgram> &program, std::unique_ptr<RingDrainer> &drainer,
            int emptyFd, uint32_t repeat, int rounds) {
  std::printf("BPF_PROG_TEST_RUN, %u runs per round, median of %d rounds (min..max), ns/packet; "
              "N jobs with the same filter capture every packet, a drainer thread running\n",
              repeat, rounds);
  std::printf("%-42s %6s %22s %8s\n", "case", "bytes", "ns/packet", "ratio");
  int rc = 0;
  for (size_t size : {64u, 1514u}) {
    auto frame = udpFrame(size);
    Stat base = measure(emptyFd, frame, repeat, rounds);
    auto row = [&](const std::string &name, Stat st) {
      std::printf("%-42s %6zu %8.2f (%6.2f..%6.2f) %7.2fx\n", name.c_str(), size, st.median, st.min,
                  st.max, st.median / base.median);
    };
    row("empty XDP program (baseline)", base);
    for (unsigned jobs : {1u, 2u, 4u}) {
      std::vector<CountingSink> sinks(jobs);
      for (unsigned j = 0; j < jobs; j++) {
        SlotSettings hit;
        hit.cookie = 0x100 + j;
        hit.filter.fields = RINGCAP_F_DST_PORT | RINGCAP_F_PROTOCOL;
        hit.filter.protocol = IPPROTO_UDP;
        hit.filter.dst_port = htons(53);
        if (auto r = program->armSlot(j, hit); !r)
          die(r.error());
        drainer->route(j, hit.cookie, &sinks[j]);
      }
      std::atomic<bool> stop{false};
      std::thread consumer([&] {
        while (!stop.load(std::memory_order_relaxed))
          (void)drainer->poll(10);
        (void)drainer->consume();
      });
      Stat st = measure(program->programFd(), frame, repeat, rounds);
      stop = true;
      consumer.join();
      row("ringcap, " + std::to_string(jobs) + " job(s) capturing the packet", st);
      uint64_t captured = 0, drained = 0, lost = 0;
      for (unsigned j = 0; j < jobs; j++) {
        auto c = program->slotCounters(j);
        if (!c)
          die(c.error());
        captured += c->captured;
        lost += c->ringLost;
        drained += sinks[j].count;
        (void)program->disarmSlot(j);
        drainer->unroute(j);
      }
      std::printf("%-42s %6s captured %llu, drained %llu, lost (ring full) %llu (all jobs)\n", "",
                  "", (unsigned long long)captured, (unsigned long long)drained,
                  (unsigned long long)lost);
      if (lost || drained != captured)
        rc = 1;
    }
  }
  return rc;
}

// The history slot armed and no job: the cost of a packet it does not sample (the rate at
// RINGCAP_MAX_SAMPLE_RATE, so that hardly any is) and the average at `rate`, beside the
// program with nothing armed and the empty program, measured interleaved round by round
// (each case once per round, in turn), so that a drift of the shared machine touches them
// alike. The history ring is drained by a thread of its own. Returns 1 if the history ring
// lost anything or not every record reached the drainer.
int historyRun(std::unique_ptr<CaptureProgram> &program, int emptyFd, uint32_t repeat, int rounds,
               uint32_t rate) {
  std::printf("BPF_PROG_TEST_RUN, %u runs per round, median of %d rounds (min..max), ns/packet; "
              "the cases interleaved round by round; no job armed\n",
              repeat, rounds);
  std::printf("%-44s %6s %22s %9s %9s\n", "case", "bytes", "ns/packet", "/empty", "/no job");
  int capFd = program->programFd();
  HistorySettings h;
  h.cookie = 0x4157;
  h.ringBytes = 16u << 20;
  h.sampleRate = rate;
  int rc = 0;
  for (size_t size : {64u, 1514u}) {
    auto frame = udpFrame(size);
    enum { Empty, NoJob, NotSampled, Sampling, Cases };
    std::vector<double> v[Cases];
    HistoryCounters sampling{};
    uint64_t drained = 0;
    for (int r = 0; r < rounds; r++) {
      v[Empty].push_back(runOnce(emptyFd, frame, repeat));
      if (program->historyArmed())
        (void)program->disarmHistory();
      v[NoJob].push_back(runOnce(capFd, frame, repeat));
      // Another cookie: its few samples are not counted as the drained ones of 1 in `rate`.
      HistorySettings rare = h;
      rare.cookie = h.cookie + 1;
      rare.sampleRate = RINGCAP_MAX_SAMPLE_RATE;
      if (auto a = program->armHistory(rare); !a)
        die(a.error());
      v[NotSampled].push_back(runOnce(capFd, frame, repeat));
      if (auto a = program->armHistory(h); !a)
        die(a.error());
      auto drainer = RingDrainer::create(program->historyRingFd());
      if (!drainer)
        die(drainer.error());
      CountingSink sink;
      (*drainer)->route(CaptureProgram::kHistoryRecordSlot, h.cookie, &sink);
      std::atomic<bool> stop{false};
      std::thread consumer([&] {
        while (!stop.load(std::memory_order_relaxed))
          (void)(*drainer)->poll(10);
      });
      v[Sampling].push_back(runOnce(capFd, frame, repeat));
      stop = true;
      consumer.join();
      (void)program->disarmHistory();
      (void)(*drainer)->consume();
      auto c = program->historyCounters();
      if (!c)
        die(c.error());
      sampling.sampled += c->sampled;
      sampling.emitted += c->emitted;
      sampling.ringFull += c->ringFull;
      drained += sink.count;
    }
    auto stat = [](std::vector<double> x) {
      std::sort(x.begin(), x.end());
      return Stat{x[x.size() / 2], x.front(), x.back()};
    };
    Stat base = stat(v[Empty]), nojob = stat(v[NoJob]);
    auto row = [&](const std::string &name, Stat st) {
      std::printf("%-44s %6zu %8.2f (%6.2f..%6.2f) %8.2fx %8.2fx\n", name.c_str(), size, st.median,
                  st.min, st.max, st.median / base.median, st.median / nojob.median);
    };
    row("empty XDP program (baseline)", base);
    row("ringcap, nothing armed", nojob);
    row("ringcap, history armed, packet not sampled", stat(v[NotSampled]));
    row("ringcap, history 1 in " + std::to_string(rate) + ", drainer running", stat(v[Sampling]));
    std::printf("%-44s %6s sampled %llu (expected about %llu), emitted %llu, drained %llu, "
                "lost (ring full) %llu\n",
                "", "", (unsigned long long)sampling.sampled,
                (unsigned long long)(uint64_t(repeat) * rounds / rate),
                (unsigned long long)sampling.emitted, (unsigned long long)drained,
                (unsigned long long)sampling.ringFull);
    if (sampling.ringFull || drained != sampling.emitted)
      rc = 1;
  }
  return rc;
}

} // namespace

int main(int argc, char **argv) {
  uint32_t repeat = 1'000'000;
  int rounds = 5;
  bool scaling = false, jobs = false, history = false;
  uint32_t historyRate = 100;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--repeat" && i + 1 < argc)
      repeat = static_cast<uint32_t>(std::stoul(argv[++i]));
    else if (a == "--rounds" && i + 1 < argc)
      rounds = std::stoi(argv[++i]);
    else if (a == "--scaling")
      scaling = true;
    else if (a == "--jobs")
      jobs = true;
    else if (a == "--history")
      history = true;
    else if (a == "--history-rate" && i + 1 < argc) {
      unsigned long v = std::stoul(argv[++i]);
      if (v < 1 || v > RINGCAP_MAX_SAMPLE_RATE) {
        std::fprintf(stderr, "ringcap-bench-prog: --history-rate must be from 1 to %u\n",
                     RINGCAP_MAX_SAMPLE_RATE);
        return 2;
      }
      historyRate = static_cast<uint32_t>(v);
    } else {
      std::fprintf(stderr, "Usage: ringcap-bench-prog [--repeat N] [--rounds N] [--scaling | "
                           "--jobs | --history [--history-rate N]]\n");
      return 2;
    }
  }
  if (auto k = checkKernelSupport(); !k)
    die(k.error());
  spdlog::set_level(spdlog::level::warn);
  routeBpfLogsToSpdlog();

  pass *empty = pass__open_and_load();
  if (!empty)
    die(Error::fromErrno(errno, "loading the empty XDP program"));
  int emptyFd = bpf_program__fd(empty->progs.xdp_pass);

  CaptureProgramOptions po;
  po.ringBytes = 64u << 20;
  auto program = CaptureProgram::open(po);
  if (!program)
    die(program.error());
  if (auto r = (*program)->loadUnattached(); !r)
    die(r.error());
  int capFd = (*program)->programFd();
  auto drainer = RingDrainer::create((*program)->ringFd());
  if (!drainer)
    die(drainer.error());

  if (history) {
    int rc = historyRun(*program, emptyFd, repeat, rounds, historyRate);
    pass__destroy(empty);
    return rc;
  }
  if (scaling || jobs) {
    int rc = scaling ? scalingRun(*program, *drainer, emptyFd, repeat, rounds)
                     : jobsRun(*program, *drainer, emptyFd, repeat, rounds);
    pass__destroy(empty);
    return rc;
  }

  std::printf("BPF_PROG_TEST_RUN, %u runs per round, median of %d rounds (min..max), ns/packet\n",
              repeat, rounds);
  std::printf("%-42s %6s %22s %8s\n", "case", "bytes", "ns/packet", "ratio");
  for (size_t size : {64u, 1514u}) {
    auto frame = udpFrame(size);
    Stat base = measure(emptyFd, frame, repeat, rounds);
    auto row = [&](const char *name, Stat s) {
      std::printf("%-42s %6zu %8.2f (%6.2f..%6.2f) %7.2fx\n", name, size, s.median, s.min, s.max,
                  s.median / base.median);
    };
    row("empty XDP program (baseline)", base);
    row("ringcap, no job", measure(capFd, frame, repeat, rounds));

    SlotSettings miss;
    miss.cookie = 1;
    miss.filter.fields = RINGCAP_F_DST_PORT | RINGCAP_F_PROTOCOL;
    miss.filter.protocol = IPPROTO_UDP;
    miss.filter.dst_port = htons(9999);
    if (auto r = (*program)->armSlot(0, miss); !r)
      die(r.error());
    row("ringcap, 1 job, filter misses", measure(capFd, frame, repeat, rounds));

    // Capturing: a 5-tuple filter that matches, a consumer thread draining the ring.
    SlotSettings hit = miss;
    hit.cookie = 2;
    hit.filter.dst_port = htons(53);
    (void)(*program)->disarmSlot(0);
    if (auto r = (*program)->armSlot(0, hit); !r)
      die(r.error());
    CountingSink sink;
    (*drainer)->route(0, hit.cookie, &sink);
    std::atomic<bool> stop{false};
    std::thread consumer([&] {
      while (!stop.load(std::memory_order_relaxed))
        (void)(*drainer)->poll(10);
      (void)(*drainer)->consume();
    });
    Stat cap = measure(capFd, frame, repeat, rounds);
    stop = true;
    consumer.join();
    auto c = (*program)->slotCounters(0);
    row("ringcap, 1 job capturing, drainer running", cap);
    if (c)
      std::printf("%-42s %6s captured %llu, drained %llu, lost (ring full) %llu\n", "", "",
                  (unsigned long long)c->captured, (unsigned long long)sink.count,
                  (unsigned long long)c->ringLost);
    (void)(*program)->disarmSlot(0);
    (*drainer)->unroute(0);
  }
  pass__destroy(empty);
  return 0;
}
