// ringcap-dump: a foreground capture, like tcpdump -w, on ringcap's XDP engine.
#include "engine/BpfLog.h"
#include "engine/CaptureJob.h"
#include "engine/ClockStepWatch.h"
#include "engine/DrainLoop.h"
#include "engine/KernelSupport.h"
#include "engine/SlotCounters.h"
#include "request/CaptureRequest.h"
#include "request/OptionNames.h"

#include <charconv>
#include <csignal>
#include <cstdio>
#include <getopt.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <string>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <vector>

using namespace ringcap;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
// How often the loop refreshes the clock offset, flushes and checks limits without packets
// (the drain and its bound: DrainLoop; the time limit is a deadline of the same timer).
constexpr auto kHousekeeping = std::chrono::seconds(1);
// epoll data of the rings' fds (the other fds are their own data).
constexpr int kRingEvent = -2;

void usage(FILE *out) {
  std::fprintf(out, R"(Usage: ringcap-dump -i IFACE [-i IFACE ...] -w FILE [options]

Captures packets arriving on the interfaces with ringcap's XDP program and writes them to
FILE (pcapng, nanosecond timestamps). Stops at the first limit reached, or on Ctrl-C/SIGTERM
after draining the ring, then prints the counters.

Request fields (the capture request model; ranges are the API's):
  --type simple|full          simple: first 160 bytes of each packet; full (default): whole packets
  --time-limit S              stop after S seconds (1..300)
  --packet-limit N            stop after N packets (1..10000)
  --byte-limit N              stop before the captured bytes exceed N (1..1000000000)
  --source-address A          IPv4 or IPv6 source address
  --destination-address A     IPv4 or IPv6 destination address
  --source-port P             TCP/UDP/SCTP/DCCP/UDP-Lite source port (0..65535)
  --destination-port P        ... destination port (0..65535)
  --protocol N                IP protocol number (0..255), e.g. 6 TCP, 17 UDP
Capture options:
  --snaplen N                 bytes kept of each packet (1..65535; default by type)
  --sample-rate N             keep 1 in N matching packets (1..1000000; default 1)
  --ring-size MIB             ring memory in MiB, split into one ring per online CPU; a power
                              of two (default 32)
  --json                      print the final counters as JSON on stdout
  -v, --verbose               log what happens (twice: debug)
  -h, --help                  this text
Exit codes: 0 capture complete, 1 capture failed, 2 invalid options.
)");
}

struct Options {
  std::vector<std::string> ifaces;
  std::string file;
  nlohmann::json request = nlohmann::json::object();
  nlohmann::json filter = nlohmann::json::object();
  std::optional<uint32_t> snaplen;
  uint32_t sampleRate = 1;
  uint32_t ringMiB = 32;
  bool json = false;
  int verbose = 0;
};

[[noreturn]] void usageError(const std::string &message) {
  std::fprintf(stderr, "ringcap-dump: %s\n", message.c_str());
  std::fprintf(stderr, "Try 'ringcap-dump --help'.\n");
  std::exit(kExitUsage);
}

int64_t parseInteger(const char *option, const char *text) {
  int64_t v = 0;
  std::string_view s(text);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size())
    usageError(std::string(option) + ": must be an integer (got \"" + std::string(s) + "\")");
  return v;
}

uint32_t parseRange(const char *option, const char *text, int64_t lo, int64_t hi) {
  int64_t v = parseInteger(option, text);
  if (v < lo || v > hi)
    usageError(std::string(option) + ": must be an integer from " + std::to_string(lo) + " to " +
               std::to_string(hi) + " (got " + text + ")");
  return static_cast<uint32_t>(v);
}

Options parseOptions(int argc, char **argv) {
  enum {
    OPT_TYPE = 256,
    OPT_TIME_LIMIT,
    OPT_PACKET_LIMIT,
    OPT_BYTE_LIMIT,
    OPT_SRC_ADDR,
    OPT_DST_ADDR,
    OPT_SRC_PORT,
    OPT_DST_PORT,
    OPT_PROTOCOL,
    OPT_SNAPLEN,
    OPT_SAMPLE_RATE,
    OPT_RING_SIZE,
    OPT_JSON,
  };
  static const option longopts[] = {
      {"interface", required_argument, nullptr, 'i'},
      {"write", required_argument, nullptr, 'w'},
      {"type", required_argument, nullptr, OPT_TYPE},
      {"time-limit", required_argument, nullptr, OPT_TIME_LIMIT},
      {"packet-limit", required_argument, nullptr, OPT_PACKET_LIMIT},
      {"byte-limit", required_argument, nullptr, OPT_BYTE_LIMIT},
      {"source-address", required_argument, nullptr, OPT_SRC_ADDR},
      {"destination-address", required_argument, nullptr, OPT_DST_ADDR},
      {"source-port", required_argument, nullptr, OPT_SRC_PORT},
      {"destination-port", required_argument, nullptr, OPT_DST_PORT},
      {"protocol", required_argument, nullptr, OPT_PROTOCOL},
      {"snaplen", required_argument, nullptr, OPT_SNAPLEN},
      {"sample-rate", required_argument, nullptr, OPT_SAMPLE_RATE},
      {"ring-size", required_argument, nullptr, OPT_RING_SIZE},
      {"json", no_argument, nullptr, OPT_JSON},
      {"verbose", no_argument, nullptr, 'v'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  Options o;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":i:w:vh", longopts, nullptr)) != -1) {
    switch (c) {
    case 'i':
      o.ifaces.push_back(optarg);
      break;
    case 'w':
      o.file = optarg;
      break;
    case OPT_TYPE:
      o.request["type"] = optarg;
      break;
    case OPT_TIME_LIMIT:
      o.request["time_limit"] = parseInteger("--time-limit", optarg);
      break;
    case OPT_PACKET_LIMIT:
      o.request["packet_limit"] = parseInteger("--packet-limit", optarg);
      break;
    case OPT_BYTE_LIMIT:
      o.request["byte_limit"] = parseInteger("--byte-limit", optarg);
      break;
    case OPT_SRC_ADDR:
      o.filter["source_address"] = optarg;
      break;
    case OPT_DST_ADDR:
      o.filter["destination_address"] = optarg;
      break;
    case OPT_SRC_PORT:
      o.filter["source_port"] = parseInteger("--source-port", optarg);
      break;
    case OPT_DST_PORT:
      o.filter["destination_port"] = parseInteger("--destination-port", optarg);
      break;
    case OPT_PROTOCOL:
      o.filter["protocol"] = parseInteger("--protocol", optarg);
      break;
    case OPT_SNAPLEN:
      o.snaplen = parseRange("--snaplen", optarg, 1, RINGCAP_MAX_SNAPLEN);
      break;
    case OPT_SAMPLE_RATE:
      o.sampleRate = parseRange("--sample-rate", optarg, 1, RINGCAP_MAX_SAMPLE_RATE);
      break;
    case OPT_RING_SIZE:
      o.ringMiB = parseRange("--ring-size", optarg, 1, 2048);
      if (o.ringMiB & (o.ringMiB - 1))
        usageError(std::string("--ring-size: must be a power of two (got ") + optarg + ")");
      break;
    case OPT_JSON:
      o.json = true;
      break;
    case 'v':
      o.verbose++;
      break;
    case 'h':
      usage(stdout);
      std::exit(kExitOk);
    case ':':
      usageError(std::string(argv[optind - 1]) + ": needs a value");
    default:
      usageError(std::string("unknown option ") + argv[optind - 1]);
    }
  }
  if (optind < argc)
    usageError(std::string("unexpected argument \"") + argv[optind] +
               "\" (filters are given with options such as --destination-port)");
  if (o.ifaces.empty())
    usageError("-i: at least one interface is needed");
  if (o.file.empty())
    usageError("-w: an output file is needed");
  if (!o.filter.empty())
    o.request["filter_v1"] = o.filter;
  return o;
}

nlohmann::json summaryJson(const CaptureSummary &s, const Options &o, double seconds,
                           const GlobalCounters &g, const DrainerStats &d) {
  nlohmann::json j;
  j["file"] = o.file;
  j["stop_reason"] = toString(s.reason);
  j["duration_seconds"] = seconds;
  j["interfaces"] = o.ifaces;
  putCounters(j, s.counters);
  j["packets_written"] = s.packetsWritten;
  j["packets_unwritten"] = s.packetsUnwritten;
  j["file_bytes"] = s.fileBytes;
  j["parser"] = {{"packets", g.packets},
                 {"non_ip", g.nonIp},
                 {"malformed", g.malformed},
                 {"no_ports", g.noPorts}};
  j["ring"] = {{"records", d.records}, {"malformed", d.malformed}, {"stale", d.stale}};
  if (s.error)
    j["error_message"] = s.error->message;
  return j;
}

void printSummary(const CaptureSummary &s, const Options &o, double seconds) {
  std::fprintf(stderr, "ringcap-dump: stopped (%s) after %.3f s\n",
               std::string(toString(s.reason)).c_str(), seconds);
  std::fprintf(stderr, "  %llu packets written to %s (%llu bytes)\n",
               (unsigned long long)s.packetsWritten, o.file.c_str(),
               (unsigned long long)s.fileBytes);
  std::fprintf(stderr, "  %s\n", describeCounters(s.counters).c_str());
  if (s.error)
    std::fprintf(stderr, "ringcap-dump: error: %s\n", s.error->message.c_str());
}

int run(const Options &o) {
  auto request = validateCaptureRequest(o.request, RequestMode::Tool);
  if (!request)
    usageError(fieldMessageToOptions(request.error().message));

  if (auto k = checkKernelSupport(); !k) {
    std::fprintf(stderr, "ringcap-dump: %s\n", k.error().message.c_str());
    return kExitFailure;
  }
  routeBpfLogsToSpdlog();

  // Signals are taken through a signalfd so that the loop drains the ring before stopping.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  // A shell starts background jobs with SIGINT ignored; take it back, then block it.
  for (int sig : {SIGINT, SIGTERM, SIGHUP})
    std::signal(sig, SIG_DFL);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

  CaptureProgramOptions po;
  po.ringBytes = o.ringMiB << 20;
  po.wakeOnFirstRecord = true;
  auto program = CaptureProgram::open(po);
  if (!program) {
    std::fprintf(stderr, "ringcap-dump: %s\n", program.error().message.c_str());
    return kExitFailure;
  }
  if (auto r = (*program)->attach(o.ifaces); !r) {
    std::fprintf(stderr, "ringcap-dump: %s\n", r.error().message.c_str());
    return kExitFailure;
  }
  auto drainer = RingDrainer::create((*program)->ringFd());
  if (!drainer) {
    std::fprintf(stderr, "ringcap-dump: %s\n", drainer.error().message.c_str());
    return kExitFailure;
  }
  SlotOptions so;
  so.sampleRate = o.sampleRate;
  so.snaplen = o.snaplen;
  auto job = CaptureJob::start(**program, **drainer, *request, so, o.file,
                               (*program)->attachments(), "ringcap-dump " RINGCAP_VERSION);
  if (!job) {
    std::fprintf(stderr, "ringcap-dump: %s\n", job.error().message.c_str());
    return kExitFailure;
  }
  auto started = std::chrono::steady_clock::now();
  spdlog::info("capturing on {} into {}", fmt::join(o.ifaces, ", "), o.file);

  // One timer for the drain bound, the housekeeping and the time limit: armed at the
  // earliest of them (DrainLoop::deadline(), the job's deadline).
  int timerFd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (timerFd < 0 || ep < 0) {
    std::fprintf(stderr, "ringcap-dump: %s: %s\n", timerFd < 0 ? "timerfd_create" : "epoll_create1",
                 std::strerror(errno));
    (*job)->finish(StopReason::Fault, Error::fromErrno(errno, "the event loop"));
    return kExitFailure;
  }
  DrainLoop::Options lo;
  lo.wakeupBytes = (*program)->wakeupBytes();
  lo.period = kHousekeeping;
  DrainLoop loop(**drainer, lo);
  loop.startPeriod();
  auto watch = [&](int fd, uint32_t events = EPOLLIN, int data = -1) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = data == -1 ? fd : data;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  };
  // Edge-triggered: an event for each wake-up of the program, not while records wait.
  for (int fd : loop.ringFds())
    watch(fd, EPOLLIN | EPOLLET, kRingEvent);
  watch(sigfd);
  watch(timerFd);
  // Boot-time stamps follow the wall clock: after it was set, and every second (NTP slews).
  auto clockWatch = ClockStepWatch::create();
  if (clockWatch)
    watch((*clockWatch)->fd());
  else
    spdlog::warn("{}", clockWatch.error().message);

  StopReason reason = StopReason::None;
  std::optional<Error> fault;
  DrainLoop::Clock::time_point armedAt{};
  auto rearm = [&] {
    auto at = std::min(loop.deadline(), (*job)->deadline());
    if (at == armedAt)
      return;
    armedAt = at;
    if (at == DrainLoop::Clock::time_point::max()) {
      itimerspec off{};
      timerfd_settime(timerFd, 0, &off, nullptr);
      return;
    }
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
    ns = std::max<int64_t>(ns, 1); // 0 would disarm
    itimerspec when{{0, 0}, {time_t(ns / 1'000'000'000), long(ns % 1'000'000'000)}};
    timerfd_settime(timerFd, TFD_TIMER_ABSTIME, &when, nullptr);
  };
  auto act = [&](const Result<DrainLoop::Step> &step) {
    if (!step) {
      fault = step.error();
      reason = StopReason::Fault;
      return;
    }
    if (step->housekeeping)
      (*drainer)->refreshClockOffset();
    if (step->flush)
      (void)(*job)->flush();
    reason = (*job)->check();
  };
  rearm();
  while (reason == StopReason::None) {
    epoll_event events[8];
    int n = epoll_wait(ep, events, 8, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      fault = Error::fromErrno(errno, "epoll_wait");
      reason = StopReason::Fault;
      break;
    }
    for (int i = 0; i < n && reason == StopReason::None; i++) {
      int fd = events[i].data.fd;
      if (fd == sigfd) {
        signalfd_siginfo si;
        while (read(sigfd, &si, sizeof si) == sizeof si)
          spdlog::info("signal {}: stopping", si.ssi_signo);
        reason = StopReason::Stopped;
      } else if (clockWatch && fd == (*clockWatch)->fd()) {
        if ((*clockWatch)->stepped()) {
          int64_t change = (*drainer)->refreshClockOffset();
          spdlog::info("the wall clock was set: packet timestamps now follow it (offset changed "
                       "by {:.3f} s)",
                       double(change) / 1e9);
        }
      } else if (fd == kRingEvent) {
        act(loop.onWake());
      } else if (fd == timerFd) {
        uint64_t expirations;
        (void)!read(timerFd, &expirations, sizeof expirations);
        armedAt = {};
        act(loop.onTimer());
      }
    }
    rearm();
  }

  CaptureSummary summary = (*job)->finish(reason, fault);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  auto global = (*program)->globalCounters();
  (*program)->detachAll();
  close(ep);
  close(timerFd);
  close(sigfd);

  if (o.json)
    std::printf("%s\n", summaryJson(summary, o, seconds, global ? *global : GlobalCounters{},
                                    (*drainer)->stats())
                            .dump(2)
                            .c_str());
  printSummary(summary, o, seconds);
  return summary.error ? kExitFailure : kExitOk;
}

} // namespace

int main(int argc, char **argv) {
  auto logger = spdlog::stderr_color_st("ringcap-dump");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^%l%$: %v");
  Options o = parseOptions(argc, argv);
  spdlog::set_level(o.verbose >= 2   ? spdlog::level::debug
                    : o.verbose == 1 ? spdlog::level::info
                                     : spdlog::level::warn);
  return run(o);
}
