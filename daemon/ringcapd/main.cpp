// ringcapd: the capture service. One sd-event loop runs the bus, the ring buffer, the
// timer, the signals and the watchdog.
#include "BusService.h"
#include "CaptureService.h"
#include "Config.h"
#include "JobStore.h"
#include "LinkMonitor.h"
#include "OwnershipService.h"
#include "Worker.h"
#include "engine/BpfLog.h"
#include "engine/ClockStepWatch.h"
#include "engine/DrainLoop.h"
#include "engine/KernelSupport.h"
#include "engine/SlotSettingsBuilder.h"
#include "history/HistoryStore.h"

#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <getopt.h>
#include <grp.h>
#include <net/if.h>
#include <set>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

using namespace ringcap;

namespace {

struct Daemon {
  DaemonConfig config;
  std::unique_ptr<JobStore> store;
  std::unique_ptr<CaptureProgram> program;
  std::unique_ptr<RingDrainer> drainer;
  std::unique_ptr<ClockStepWatch> clockWatch;
  std::unique_ptr<LinkMonitor> links;
  std::set<std::string> everAttached; // interfaces attached since the start, by name
  std::unique_ptr<OwnershipStore> ownerships;
  std::unique_ptr<Worker> worker;
  std::unique_ptr<OwnershipService> ownership;
  std::unique_ptr<CaptureService> service;
  // [history] enabled: the sampled history behind offset_time (docs/history.md).
  std::unique_ptr<HistoryStore> history;
  // The history slot's ring (null while the slot is not armed), drained into `history` by
  // the same DrainLoop as the jobs' rings, after them (historyRing()).
  std::unique_ptr<RingDrainer> historyDrainer;
  sd_event_source *historyTimer = nullptr;
  std::unique_ptr<BusService> busService;
  sd_event *event = nullptr;
  sd_bus *bus = nullptr;
  // The drain (woken by the program, within DrainLoop::kDrainBound) and, while the service
  // is busy, its periodic checks: one time source armed at the earliest thing due.
  std::unique_ptr<DrainLoop> loop;
  std::vector<sd_event_source *> rings; // one per ring fd (see rearm())
  bool ringsLevelTriggered = false;
  sd_event_source *timer = nullptr;
  std::string attachmentsFile;
  std::string lastStatus;
};

void usage(FILE *out) {
  std::fprintf(out,
               "Usage: ringcapd [--config FILE] [--verbose]\n\n"
               "The ringcap capture service (D-Bus name %s).\n"
               "  --config FILE   configuration (default /etc/ringcap/ringcapd.toml)\n"
               "  -v, --verbose   debug logging\n"
               "  --version       print the version\n",
               api::kBusName);
}

void notifyStatus(Daemon &d) {
  std::string ifaces;
  for (const auto &a : d.program->attachments())
    ifaces += (ifaces.empty() ? "" : ", ") + a.ifname;
  std::string status = "Capturing on " + ifaces + "; " + std::to_string(d.service->running()) +
                       " capture(s) running, " + std::to_string(d.store->size()) + " kept";
  if (d.history) {
    const HistoryStoreCounters &h = d.history->counters();
    uint64_t ringDrops = 0;
    if (auto k = d.program->historyCounters())
      ringDrops = k->ringFull + k->copyFailed;
    auto start = d.history->historyStartNs();
    status += "; history " +
              (start ? "from " + formatRfc3339(int64_t(*start)) : std::string("empty")) + ", " +
              std::to_string(d.history->totalBytes()) + " bytes, " +
              std::to_string(ringDrops + h.droppedLowSpace + h.droppedWriteError +
                             h.droppedUnknownInterface) +
              " packets dropped";
  }
  if (status != d.lastStatus) {
    sd_notifyf(0, "STATUS=%s", status.c_str());
    d.lastStatus = status;
  }
}

// One entry of attachments.json, or why it cannot be used.
Result<std::pair<std::string, uint32_t>> parseAttachment(const nlohmann::json &a) {
  if (!a.is_object())
    return Error{EINVAL, "an entry is not an object"};
  const auto name = a.find("ifname");
  if (name == a.end() || !name->is_string() || name->get_ref<const std::string &>().empty() ||
      name->get_ref<const std::string &>().size() >= IF_NAMESIZE)
    return Error{EINVAL, "ifname is not an interface name"};
  const auto id = a.find("program_id");
  if (id == a.end() || !id->is_number_unsigned() || id->get<uint64_t>() == 0 ||
      id->get<uint64_t>() > UINT32_MAX)
    return Error{EINVAL, "program_id is not a program id"};
  return std::make_pair(name->get<std::string>(), uint32_t(id->get<uint64_t>()));
}

// Removes what a previous ringcapd (killed before it could clean up) left attached, using
// the program ids it recorded; then records this daemon's own attachments. A damaged file
// is warned about and removed: the start goes on as a clean one.
void detachPrevious(Daemon &d) {
  std::ifstream in(d.attachmentsFile);
  if (!in)
    return;
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_array()) {
    spdlog::warn("{} is damaged ({}): ignored; a program a killed ringcapd left attached stays "
                 "until it is removed by hand",
                 d.attachmentsFile, j.is_discarded() ? "not JSON" : "not an array");
    j = nlohmann::json::array();
  }
  for (const auto &entry : j) {
    auto a = parseAttachment(entry);
    if (!a) {
      spdlog::warn("{}: an entry is ignored: {}", d.attachmentsFile, a.error().message);
      continue;
    }
    const auto &[name, programId] = *a;
    unsigned ifindex = if_nametoindex(name.c_str());
    if (!ifindex)
      continue;
    auto r = CaptureProgram::detachProgramById(int(ifindex), programId);
    if (!r)
      spdlog::warn("removing the previous daemon's program from {}: {}", name, r.error().message);
    else if (*r)
      spdlog::info("removed the XDP program a previous ringcapd left on {}", name);
  }
  unlink(d.attachmentsFile.c_str());
}

void saveAttachments(Daemon &d) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto &a : d.program->attachments())
    j.push_back({{"ifname", a.ifname}, {"program_id", d.program->programId()}});
  std::string tmp = d.attachmentsFile + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0)
    return;
  std::string data = j.dump() + "\n";
  bool ok = write(fd, data.data(), data.size()) == ssize_t(data.size()) && fsync(fd) == 0;
  close(fd);
  if (ok)
    rename(tmp.c_str(), d.attachmentsFile.c_str());
}

// Ring timestamps are boot-time; the offset to the wall clock is read again after the wall
// clock was set, when a capture starts and every second while captures run (NTP slews).
void refreshClockOffset(Daemon &d, const char *why) {
  int64_t change = d.drainer->refreshClockOffset();
  if (d.historyDrainer)
    d.historyDrainer->refreshClockOffset();
  if (change > 1'000'000 || change < -1'000'000)
    spdlog::info("{}: packet timestamps now follow it (offset changed by {:.3f} s)", why,
                 double(change) / 1e9);
  else
    spdlog::debug("{}: clock offset changed by {} ns", why, change);
}

int onClockStep(sd_event_source *, int, uint32_t, void *userdata) {
  auto &d = *static_cast<Daemon *>(userdata);
  if (d.clockWatch->stepped())
    refreshClockOffset(d, "the wall clock was set");
  return 0;
}

// Arms the time source at the earliest of the drain's deadline and the captures' time
// limits; off when neither waits (an idle daemon has no timer).
void rearm(Daemon &d) {
  // A backlog (a drain cut by its batch) is drained slice by slice as the ring fds stay
  // readable, level-triggered, with the bus served between slices and no timer syscall per
  // slice; otherwise the fds are edge-triggered (one event per wake-up of the program).
  if (bool level = d.loop->backlog(); level != d.ringsLevelTriggered) {
    for (sd_event_source *ring : d.rings)
      sd_event_source_set_io_events(ring, level ? EPOLLIN : EPOLLIN | EPOLLET);
    d.ringsLevelTriggered = level;
  }
  auto at = std::min(d.loop->timerDeadline(), d.service->nextDeadline());
  if (at == DrainLoop::Clock::time_point::max()) {
    sd_event_source_set_enabled(d.timer, SD_EVENT_OFF);
    return;
  }
  auto usec = std::chrono::ceil<std::chrono::microseconds>(at.time_since_epoch()).count();
  sd_event_source_set_time(d.timer, uint64_t(std::max<int64_t>(usec, 1)));
  sd_event_source_set_enabled(d.timer, SD_EVENT_ONESHOT);
}

// The periodic checks run while the service is busy and stop when it is idle again.
void startTicking(Daemon &d) {
  refreshClockOffset(d, "a capture starts");
  if (d.loop->periodic())
    return;
  d.loop->startPeriod();
  rearm(d);
}

// journald reads a syslog priority "<N>" at the start of each line of a stream that it
// collects; spdlog's level names ("<info>") it would keep as text, with every line at the
// unit's default priority.
class SyslogPriorityFlag : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg &msg, const std::tm &,
              spdlog::memory_buf_t &dest) override {
    // trace, debug, info, warn, err, critical, off
    static constexpr char kPriority[] = {'7', '7', '6', '4', '3', '2', '6'};
    const char prefix[] = {'<', kPriority[msg.level], '>'};
    dest.append(prefix, prefix + sizeof prefix);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SyslogPriorityFlag>();
  }
};

// Whether standard error is the journal's stream: JOURNAL_STREAM names its device and inode
// (an inherited variable with another stderr does not count).
bool stderrIsJournal() {
  const char *stream = getenv("JOURNAL_STREAM");
  unsigned long long dev = 0, ino = 0;
  struct stat st {};
  return stream && std::sscanf(stream, "%llu:%llu", &dev, &ino) == 2 &&
         fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

// What a step of the drain asks for (DrainLoop::Step), then the timer for the next one.
void afterStep(Daemon &d, const Result<DrainLoop::Step> &step, bool timer) {
  if (!step)
    spdlog::error("{}", step.error().message);
  // Every drained packet readable in its file (a write only where some wait).
  if (step && step->flush)
    d.service->flush();
  if (step && step->housekeeping) {
    // Every CaptureService::kTickInterval (1 s) while busy.
    d.service->tick();
    notifyStatus(d);
    refreshClockOffset(d, "the periodic clock check");
    if (!d.service->busy())
      d.loop->stopPeriod();
  } else if (step && (step->flush || (timer && !step->drained) ||
                      CaptureService::Clock::now() >= d.service->nextDeadline())) {
    // After a drain (its last slice: the limits need not be checked for every 1024 records),
    // at a time limit (also while a backlog lasts), or when a stopped capture can complete.
    d.service->drained();
  }
  rearm(d);
}

int onTimer(sd_event_source *, uint64_t, void *userdata) {
  auto &d = *static_cast<Daemon *>(userdata);
  afterStep(d, d.loop->onTimer(), true);
  return 0;
}

int onRing(sd_event_source *, int, uint32_t, void *userdata) {
  auto &d = *static_cast<Daemon *>(userdata);
  afterStep(d, d.loop->onWake(), false);
  return 0;
}

// Compares the attachments with the interfaces that exist now: an attached interface that is
// gone (or whose index now has another name) ends its captures and is detached; a configured
// interface that exists and is not attached is attached. attachments.json follows.
void followLinks(Daemon &d) {
  bool changed = false;
  std::vector<Attachment> attached = d.program->attachments();
  for (const auto &a : attached) {
    char name[IF_NAMESIZE];
    if (if_indextoname(static_cast<unsigned>(a.ifindex), name) && a.ifname == name)
      continue;
    spdlog::warn("interface {} (ifindex {}) is gone: its captures fail, and captures on its "
                 "system are refused until it is back",
                 a.ifname, a.ifindex);
    d.service->interfaceGone(a.ifindex, a.ifname);
    if (auto r = d.program->detach(a.ifindex); !r)
      spdlog::warn("{}", r.error().message);
    changed = true;
  }
  for (const auto &name : d.config.allInterfaces()) {
    bool isAttached = false;
    for (const auto &a : d.program->attachments())
      isAttached |= a.ifname == name;
    unsigned ifindex = if_nametoindex(name.c_str());
    if (isAttached || !ifindex)
      continue;
    if (auto r = d.program->attach({name}); !r) {
      spdlog::error("interface {} appeared (ifindex {}) but could not be attached: {}", name,
                    ifindex, r.error().message);
      continue;
    }
    spdlog::info("interface {} {} (ifindex {}), attached", name,
                 d.everAttached.count(name) ? "reappeared" : "appeared", ifindex);
    d.everAttached.insert(name);
    changed = true;
  }
  if (changed) {
    saveAttachments(d);
    notifyStatus(d);
  }
}

int onLinkChange(sd_event_source *, int, uint32_t, void *userdata) {
  auto &d = *static_cast<Daemon *>(userdata);
  if (d.links->drain())
    followLinks(d);
  return 0;
}

int onSignal(sd_event_source *, const signalfd_siginfo *si, void *userdata) {
  auto &d = *static_cast<Daemon *>(userdata);
  spdlog::info("signal {}: stopping", si->ssi_signo);
  sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
  // While the bus is still connected, so that watchers see the captures end: sd-bus closes
  // the connection when the event loop exits.
  if (d.service)
    d.service->failAll("ringcapd was stopped during the capture");
  sd_event_exit(d.event, 0);
  return 0;
}

// The history's bounds by the clock (age, free space, a period that ended), every second
// while it is enabled.
int onHistoryTimer(sd_event_source *source, uint64_t usec, void *userdata) {
  auto &d = *static_cast<Daemon *>(userdata);
  if (d.historyDrainer)
    d.historyDrainer->refreshClockOffset(); // NTP slews; a step is followed by onClockStep
  d.history->maintain();
  notifyStatus(d);
  sd_event_source_set_time(source, usec + 1000000);
  return 0;
}

// The history's configuration: [history], the snaplen of a simple capture, and the
// interfaces of the configured systems that are attached.
HistoryConfig historyConfig(const Daemon &d) {
  const auto &h = d.config.history;
  HistoryConfig c;
  c.directory = h.path(d.config.state_directory);
  c.maxBytes = h.max_bytes;
  c.maxAgeSeconds = h.max_age_seconds;
  c.segmentSeconds = h.segment_seconds;
  c.segmentMaxBytes = h.segment_max_bytes;
  c.minFreeBytes = h.min_free_bytes;
  c.snaplen = kSimpleSnaplen; // what a simple capture keeps
  for (const auto &a : d.program->attachments())
    c.interfaces.emplace_back(uint32_t(a.ifindex), a.ifname);
  return c;
}

// The history slot's records carry this cookie (RingDrainer::route).
constexpr uint32_t kHistoryCookie = 0x68697374; // "hist"

// Arms the always-on history slot on every interface the program is attached to (the
// configured systems'), sampling 1 in [history] sample_rate packets and keeping a simple
// capture's 160 bytes of each, and drains its ring into the store.
Result<void> armHistory(Daemon &d) {
  HistorySettings hs;
  hs.sampleRate = d.config.history.sample_rate;
  hs.snaplen = kSimpleSnaplen;
  hs.cookie = kHistoryCookie; // ifindexes empty: every attached interface
  if (auto r = d.program->armHistory(hs); !r)
    return r.error();
  auto drainer = RingDrainer::create(d.program->historyRingFd());
  if (!drainer)
    return drainer.error();
  (*drainer)->route(CaptureProgram::kHistoryRecordSlot, kHistoryCookie, d.history.get());
  d.historyDrainer = std::move(*drainer);
  return {};
}

// What the DrainLoop drains: the jobs' rings, then the history's with what is left of the
// slice, so that the history never delays a live capture's records (a history ring left
// full drops its packets, counted by the slot).
DrainLoop::Ring drainedRings(Daemon &d) {
  return DrainLoop::Ring{
      [&d](uint64_t maxRecords, uint64_t maxBytes, bool &cut) -> Result<uint64_t> {
        bool jobsCut = false;
        auto n = d.drainer->consume(maxRecords, maxBytes, &jobsCut);
        if (!n || !d.historyDrainer)
          return n.ok() ? (cut = jobsCut, n) : n;
        if (jobsCut || *n >= maxRecords) {
          cut = true; // the history waits for the next slice
          return n;
        }
        bool historyCut = false;
        auto h = d.historyDrainer->consume(maxRecords - *n, maxBytes, &historyCut);
        if (!h)
          return h.error();
        cut = historyCut;
        return *n + *h;
      },
      [&d] {
        uint64_t pending = d.drainer->maxPendingBytes();
        if (d.historyDrainer)
          pending = std::max(pending, d.historyDrainer->maxPendingBytes());
        return pending;
      },
      [&d] {
        std::vector<int> fds = d.drainer->ringFds();
        if (d.historyDrainer)
          for (int fd : d.historyDrainer->ringFds())
            fds.push_back(fd);
        return fds;
      }};
}

int fatal(const std::string &message) {
  spdlog::critical("{}", message);
  sd_notifyf(0, "STATUS=Failed: %s", message.c_str());
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  std::string configPath = "/etc/ringcap/ringcapd.toml";
  bool verbose = false;
  static const option longopts[] = {{"config", required_argument, nullptr, 'c'},
                                    {"verbose", no_argument, nullptr, 'v'},
                                    {"version", no_argument, nullptr, 'V'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "c:vh", longopts, nullptr)) != -1) {
    switch (c) {
    case 'c':
      configPath = optarg;
      break;
    case 'v':
      verbose = true;
      break;
    case 'V':
      std::printf("ringcapd %s\n", RINGCAP_VERSION);
      return 0;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc) {
    usage(stderr);
    return 2;
  }

  auto logger = spdlog::stderr_logger_mt("ringcapd"); // the worker thread logs too
  spdlog::set_default_logger(logger);
  if (stderrIsJournal()) {
    // The journal adds the time and the unit; the prefix gives each line its priority.
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<SyslogPriorityFlag>('*').set_pattern("%*%v");
    spdlog::set_formatter(std::move(formatter));
  } else {
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$: %v");
  }
  spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  umask(0027);

  Daemon d;
  auto config = loadDaemonConfig(configPath);
  if (!config)
    return fatal(configPath + ": " + config.error().message);
  d.config = std::move(*config);
  if (auto k = checkKernelSupport(); !k)
    return fatal(k.error().message);
  routeBpfLogsToSpdlog();

  gid_t group = gid_t(-1);
  if (const struct group *g = getgrnam(d.config.access_group.c_str()))
    group = g->gr_gid;
  else
    spdlog::warn("group \"{}\" does not exist: only root may use ringcapd", d.config.access_group);

  auto store = JobStore::open(d.config.state_directory, group);
  if (!store)
    return fatal(store.error().message);
  d.store = std::move(*store);
  const std::vector<std::string> interrupted = d.store->failInterrupted(
      "ringcapd restarted during the capture; the file holds the packets captured until then");
  for (const auto &id : interrupted)
    spdlog::warn("capture {} was interrupted by a restart: marked failed", id);

  d.attachmentsFile = d.config.state_directory + "/attachments.json";
  detachPrevious(d);
  CaptureProgramOptions po;
  po.ringBytes = d.config.ring_size_mib << 20;
  // The drain is woken by the program (DrainLoop), as ringcap-dump's.
  po.wakeOnFirstRecord = true;
  auto program = CaptureProgram::open(po);
  if (!program)
    return fatal(program.error().message);
  d.program = std::move(*program);

  std::vector<std::string> ifaces;
  for (const auto &name : d.config.allInterfaces()) {
    if (!if_nametoindex(name.c_str())) {
      if (!d.config.skip_missing_interfaces)
        return fatal("interface \"" + name + "\" (configured in [systems]) does not exist");
      spdlog::warn("interface \"{}\" does not exist: skipped", name);
      continue;
    }
    ifaces.push_back(name);
  }
  if (ifaces.empty())
    return fatal("none of the configured interfaces exists");
  if (auto r = d.program->attach(ifaces); !r)
    return fatal(r.error().message);
  saveAttachments(d);
  for (const auto &a : d.program->attachments())
    d.everAttached.insert(a.ifname);

  auto drainer = RingDrainer::create(d.program->ringFd());
  if (!drainer)
    return fatal(drainer.error().message);
  d.drainer = std::move(*drainer);
  auto ownerships = OwnershipStore::open(
      d.config.state_directory, group,
      OwnershipLimits{d.config.ownership_max_records, d.config.ownership_pending_expiry_seconds});
  if (!ownerships)
    return fatal(ownerships.error().message);
  d.ownerships = std::move(*ownerships);

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  int r = sd_event_default(&d.event);
  if (r < 0)
    return fatal(Error::fromErrno(r, "sd_event_default").message);
  sd_event_add_signal(d.event, nullptr, SIGTERM, onSignal, &d);
  sd_event_add_signal(d.event, nullptr, SIGINT, onSignal, &d);
  sd_event_set_watchdog(d.event, true);
  if (d.config.history.enabled) {
    // What a previous daemon kept is indexed again (a segment torn by a kill is cut back to
    // its last whole packet), and the bounds applied.
    auto history = HistoryStore::open(historyConfig(d));
    if (!history)
      return fatal("[history]: " + history.error().message);
    d.history = std::move(*history);
    auto start = d.history->historyStartNs();
    spdlog::info("history: {} ({} segments, {} bytes, {}), 1 in {} packets sampled",
                 d.history->config().directory, d.history->segments().size(),
                 d.history->totalBytes(),
                 start ? "from " + formatRfc3339(int64_t(*start)) : std::string("empty"),
                 d.config.history.sample_rate);
    if (auto a = armHistory(d); !a)
      return fatal("[history]: arming the history slot: " + a.error().message);
    r = sd_event_add_time_relative(d.event, &d.historyTimer, CLOCK_MONOTONIC, 1000000, 100000,
                                   onHistoryTimer, &d);
    if (r >= 0)
      r = sd_event_source_set_enabled(d.historyTimer, SD_EVENT_ON);
    if (r < 0)
      return fatal(Error::fromErrno(r, "the history timer").message);
  } else {
    spdlog::info("history: disabled ([history] enabled = false): offset_time is refused");
  }
  DrainLoop::Options drainOptions;
  drainOptions.wakeupBytes = d.program->wakeupBytes();
  drainOptions.batch = CaptureService::kDrainBatch; // the bus is served between slices
  drainOptions.batchBytes = CaptureService::kDrainBatchBytes;
  drainOptions.period = CaptureService::kTickInterval;
  d.loop = std::make_unique<DrainLoop>(drainedRings(d), drainOptions);
  // Edge-triggered: an event for each wake-up of the program, not while records wait.
  for (int fd : d.loop->ringFds()) {
    sd_event_source *ring = nullptr;
    r = sd_event_add_io(d.event, &ring, fd, EPOLLIN | EPOLLET, onRing, &d);
    // Below the other sources (the bus is above them all): while a backlog keeps the fds
    // readable (rearm()), a pending bus message or timer goes before the next slice.
    if (r >= 0)
      r = sd_event_source_set_priority(ring, SD_EVENT_PRIORITY_NORMAL + 1);
    if (r < 0)
      return fatal(Error::fromErrno(r, "watching the ring").message);
    d.rings.push_back(ring);
  }
  auto clockWatch = ClockStepWatch::create();
  if (!clockWatch)
    return fatal(clockWatch.error().message);
  d.clockWatch = std::move(*clockWatch);
  sd_event_source *clockStep = nullptr;
  r = sd_event_add_io(d.event, &clockStep, d.clockWatch->fd(), EPOLLIN, onClockStep, &d);
  if (r < 0)
    return fatal(Error::fromErrno(r, "watching the wall clock").message);
  // Off until records wait or a capture starts (rearm). Accurate to 1 us: sd-event would
  // otherwise fire it anywhere in the accuracy's window (1 ms here once), and the next slice
  // of a full ring, due at once, would wait for it (a drain of 1024 records a millisecond
  // loses packets at 4 Mpps).
  r = sd_event_add_time(d.event, &d.timer, CLOCK_MONOTONIC, 0, 1, onTimer, &d);
  if (r >= 0)
    r = sd_event_source_set_enabled(d.timer, SD_EVENT_OFF);
  if (r < 0)
    return fatal(Error::fromErrno(r, "the drain timer").message);

  DestinationSettings destinations;
  destinations.fileRoots = d.config.file_roots;
  destinations.s3Endpoint = d.config.s3_endpoint;
  destinations.s3AllowedEndpoints = d.config.s3_allowed_endpoints;
  destinations.credentialsFile = d.config.s3_credentials_file;
  destinations.fastRetries = getenv("RINGCAP_TEST_FAST_RETRIES") != nullptr;
  // The directory of this host's objects in a bucket (<dir>/<host>/pcap_<id>.pcap): the fleet's
  // name of the host when [fleet] host_name is set (the agent registers with it), so that the
  // objects of a fleet's capture are named by the hosts the fleet's record lists.
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  if (!d.config.fleet.host_name.empty())
    snprintf(host, sizeof host, "%s", d.config.fleet.host_name.c_str());
  d.worker = std::make_unique<Worker>(d.event);
  destinations.cancel = d.worker->cancellation();
  d.ownership = std::make_unique<OwnershipService>(*d.ownerships, *d.worker, destinations);
  d.service = std::make_unique<CaptureService>(d.config, *d.store, *d.program, *d.drainer,
                                               *d.ownership, *d.worker, destinations, host);
  if (d.history)
    // A look-back first takes what waits in the history's ring.
    d.service->setHistory(d.history.get(), [&d] {
      if (d.historyDrainer)
        if (auto n = d.historyDrainer->consume(); !n)
          spdlog::warn("draining the history ring: {}", n.error().message);
    });
  // Interfaces deleted and created again (a driver reload, a rebuilt bond, a veth recreated by
  // a container runtime): followed through rtnetlink.
  auto links = LinkMonitor::open();
  if (!links)
    return fatal(links.error().message);
  d.links = std::move(*links);
  sd_event_source *linkSource = nullptr;
  r = sd_event_add_io(d.event, &linkSource, d.links->fd(), EPOLLIN, onLinkChange, &d);
  if (r < 0)
    return fatal(Error::fromErrno(r, "watching link changes").message);
  followLinks(d); // what changed between the attach above and the subscription
  d.service->setBusyListener([&d] { startTicking(d); });

  r = sd_bus_open_system(&d.bus);
  if (r < 0)
    return fatal(Error::fromErrno(r, "connecting to the system bus").message);
  // Above every other source: a waiting call is answered before the next slice of a drain
  // or the next completion of a stopped capture (each holds the loop for its writes and its
  // fsync), whichever became pending first.
  r = sd_bus_attach_event(d.bus, d.event, SD_EVENT_PRIORITY_IMPORTANT);
  if (r < 0)
    return fatal(Error::fromErrno(r, "attaching the bus to the event loop").message);
  d.busService =
      std::make_unique<BusService>(d.bus, *d.service, *d.ownership, d.config.access_group, group);
  d.busService->setAgentUser(d.config.fleet_agent_user);
  if (auto s = d.busService->start(); !s)
    return fatal(s.error().message);

  d.service->resumeDeliveries();
  notifyStatus(d);
  sd_notify(0, "READY=1");
  spdlog::info("ready: {} on the bus, {} interface(s)", api::kBusName,
               d.program->attachments().size());
  d.service->recountInterrupted(interrupted); // after READY: a large file takes a while
  r = sd_event_loop(d.event);

  sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
  d.service->failAll("ringcapd was stopped during the capture"); // if the loop ended otherwise
  sd_bus_flush(d.bus);
  d.busService.reset();
  sd_bus_flush_close_unref(d.bus);
  // Transfers in progress are aborted (they give up within about a second) and the
  // program is detached before anything is waited for, so that a stuck bucket server cannot
  // keep it attached until systemd's SIGKILL. Deliveries not done resume after a restart.
  d.worker->cancel();
  d.program->detachAll();
  unlink(d.attachmentsFile.c_str());
  d.worker.reset(); // joins the worker threads
  d.service.reset();
  sd_event_source_unref(d.historyTimer);
  // The samples still in the history's ring (the program is detached: nothing more comes).
  if (d.historyDrainer)
    if (auto r = d.historyDrainer->consume(); !r)
      spdlog::warn("history: draining its ring at exit: {}", r.error().message);
  d.historyDrainer.reset();
  d.history.reset(); // closes the active segment and writes the index
  d.loop.reset();
  d.drainer.reset();
  sd_event_source_unref(d.timer);
  sd_event_source_unref(clockStep);
  sd_event_source_unref(linkSource);
  for (sd_event_source *ring : d.rings)
    sd_event_source_unref(ring);
  sd_event_unref(d.event);
  spdlog::info("stopped");
  return r < 0 ? 1 : 0;
}
