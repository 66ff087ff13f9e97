// ringcap-bench-fleet: fleet mode past one machine, by simulation (docs/fleet.md, "Simulation").
//
//   ringcap-bench-fleet [--agents 10,100,1000] [--time-limit S] [--status-interval S]
//                       [--lease-ttl S] [--idle S] [--deadline S] [--verbose]
//
// For each N of --agents: starts a 3-member etcd cluster on loopback (tests/lib/EtcdCluster:
// kernel-chosen free ports on 127.0.0.1, data in a new /tmp/ringcap-etcd-* directory removed
// at the end, each member stopped by its PID), a fleet::Coordinator running follow() as the
// gateway does, and N agents of one site: real ringcap::agent::Agent instances (their etcd
// traffic is the agent's own: registration under a lease, keepalives, the watch, the claim
// txn, the part's puts) whose LocalCapture is SimCapture below instead of ringcapd. Their
// state directories are on tmpfs (/dev/shm: the agent's fsync of its state file is a cost of
// each host's own disk, not of a shared one), removed at the end. Once every host is
// registered and every watch is open it measures the idle cost for --idle seconds (default
// 10: three keepalive periods), then creates one simple capture at the site (time_limit
// --time-limit, default 10) with the coordinator and follows it on a watch of its own until
// the fleet status has ended. One line per N:
//   register   from starting the agents to every host registered
//   create     the Coordinator::create call
//   ->runnng   from the create call to the fleet status `running` (every host armed)
//   lastarmd   from the create call to the last host's first `running` part
//   tl->done   from the last host's first `running` part plus the time limit to the last
//              `success` part (the agent's status interval: its report of the end)
//   done->ok   from the last `success` part to the fleet status `success` (the coordinator)
//   ->succss   from the create call to the fleet status `success`
//   requests   etcd's requests from the create call to the end: grpc_server_handled_total
//              summed over the members' /metrics (the JSON gateway passes each HTTP request
//              to gRPC; an open watch stream is counted when it ends, so the agents' are
//              not), less the bench's own watch; req/ag per agent; the line below by method
//   etcdcpu    the members' CPU time over that (process_cpu_seconds_total); simcpu this
//              process's (the agents, the coordinator, the bench's watch)
//   idlesim    while idle: this process's CPU (% of one core), idleetc the members', idlereq
//              etcd's requests per second (the keepalives), thrds this process's threads,
//              rss its resident memory
// Exit code 1 when a run does not end in success with N hosts.
#include "Agent.h"
#include "EtcdCluster.h"
#include "LocalCapture.h"
#include "fleet/Coordinator.h"
#include "fleet/Keys.h"
#include "request/CaptureRequest.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <curl/curl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <spdlog/spdlog.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace ringcap;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace keys = fleet::keys;

namespace {

std::atomic<bool> interrupted{false};
void onSignal(int) { interrupted = true; }

double secondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

using fleet::keys::utcNow;

// A capture without ringcapd: armed ("running") as soon as it is created; it ends at the
// request's time_limit (from its creation, as ringcapd counts it), at its packet_limit, or on
// StopCapture, with counters of a steady 2000 packets/s seen, one in ten matching, 600-byte
// frames. One per agent; the agent calls it under its lock (one thread at a time).
class SimCapture : public agent::LocalCapture {
public:
  Result<void> connect() override { return {}; }

  Result<json> createCapture(const json &request) override {
    const std::string id = agent::stringOf(request, "id");
    if (!keys::isCaptureId(id))
      return Error{ErrorKind::InvalidRequest, "id: must be 32 lowercase hexadecimal digits"};
    if (runs_.count(id))
      return Error{ErrorKind::InvalidRequest,
                   "id: a capture with id " + id + " exists already; an id names one capture"};
    Run r;
    r.request = request;
    r.start = Clock::now();
    r.started = utcNow();
    double seconds = request.value("time_limit", uint64_t(60));
    r.reason = "time_limit";
    if (request.contains("packet_limit")) {
      const double untilLimit = request["packet_limit"].get<double>() / kMatchedPerSecond;
      if (untilLimit < seconds) {
        seconds = untilLimit;
        r.reason = "packet_limit";
      }
    }
    r.end = r.start +
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    auto &run = runs_[id] = r;
    return record(id, run);
  }

  Result<json> getCapture(const std::string &id) override {
    auto it = runs_.find(id);
    if (it == runs_.end())
      return Error{ErrorKind::NotFound, "no capture with id " + id};
    return record(id, it->second);
  }

  Result<void> stopCapture(const std::string &id) override {
    auto it = runs_.find(id);
    if (it == runs_.end())
      return Error{ErrorKind::NotFound, "no capture with id " + id};
    const auto now = Clock::now();
    if (now < it->second.end) {
      it->second.end = now;
      it->second.reason = "stopped";
    }
    return {};
  }

private:
  static constexpr double kSeenPerSecond = 2000, kMatchedPerSecond = 200;
  static constexpr uint64_t kFrameBytes = 600;
  struct Run {
    json request;
    Clock::time_point start, end;
    std::string started, finished, reason;
  };

  json record(const std::string &id, Run &r) {
    const auto now = Clock::now();
    const bool done = now >= r.end;
    const double elapsed = secondsBetween(r.start, std::min(now, r.end));
    const auto seen = uint64_t(elapsed * kSeenPerSecond);
    auto captured = uint64_t(elapsed * kMatchedPerSecond);
    if (r.request.contains("packet_limit"))
      captured = std::min(captured, r.request["packet_limit"].get<uint64_t>());
    json rec = {{"id", id},
                {"status", done ? "success" : "running"},
                {"type", r.request.value("type", "simple")},
                {"system", r.request.value("system", "")},
                {"started", r.started},
                {"packets_seen", seen},
                {"packets_matched", captured},
                {"packets_sampled_out", 0},
                {"packets_captured", captured},
                {"bytes_captured", captured * kFrameBytes},
                {"packets_lost_ring_full", 0},
                {"packets_over_limit", 0},
                {"packets_copy_failed", 0},
                {"packets_lost", 0}};
    if (done) {
      if (r.finished.empty())
        r.finished = utcNow();
      rec["finished"] = r.finished;
      rec["stop_reason"] = r.reason;
      rec["file_name"] = "pcap_" + id + ".pcap";
      rec["file_size"] = 24 + captured * (16 + kFrameBytes);
    }
    return rec;
  }

  std::map<std::string, Run> runs_;
};

size_t curlAppend(char *data, size_t size, size_t n, void *out) {
  static_cast<std::string *>(out)->append(data, size * n);
  return size * n;
}

// The sums of some of a member's metrics (Prometheus text format).
struct Metrics {
  double handled = 0, cpuSeconds = 0, watchers = 0;
  std::map<std::string, double> handledByMethod;
  Metrics &operator+=(const Metrics &o) {
    handled += o.handled;
    cpuSeconds += o.cpuSeconds;
    watchers += o.watchers;
    for (const auto &[m, v] : o.handledByMethod)
      handledByMethod[m] += v;
    return *this;
  }
};

Result<Metrics> memberMetrics(const std::string &url) {
  CURL *curl = curl_easy_init();
  if (!curl)
    return Error{EIO, "curl_easy_init failed"};
  std::string body;
  const std::string target = url + "/metrics";
  curl_easy_setopt(curl, CURLOPT_URL, target.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, curlAppend);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK || status != 200)
    return Error{EIO,
                 target + ": " +
                     (rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP " + std::to_string(status))};
  Metrics m;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    const size_t space = line.rfind(' ');
    if (space == std::string::npos)
      continue;
    const std::string series = line.substr(0, space);
    const double value = strtod(line.c_str() + space + 1, nullptr);
    const std::string name = series.substr(0, series.find('{'));
    if (name == "grpc_server_handled_total") {
      m.handled += value;
      const std::string tag = "grpc_method=\"";
      if (size_t p = series.find(tag); p != std::string::npos) {
        p += tag.size();
        m.handledByMethod[series.substr(p, series.find('"', p) - p)] += value;
      }
    } else if (name == "process_cpu_seconds_total") {
      m.cpuSeconds += value;
    } else if (name == "etcd_debugging_mvcc_watcher_total") {
      m.watchers += value;
    }
  }
  return m;
}

Result<Metrics> clusterMetrics(const testlib::EtcdCluster &cluster) {
  Metrics sum;
  for (size_t i = 0; i < cluster.size(); i++) {
    auto m = memberMetrics(cluster.clientUrl(i));
    if (!m)
      return m.error();
    sum += *m;
  }
  return sum;
}

double processCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// A number of /proc/self/status ("Threads:", "VmRSS:" in kB); -1 when absent.
long processStatus(const std::string &field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0)
      return strtol(line.c_str() + field.size(), nullptr, 10);
  return -1;
}

struct Options {
  std::vector<size_t> agents{10, 100, 1000};
  uint64_t timeLimit = 10;
  int64_t statusInterval = 5, leaseTtl = 10;
  double idleSeconds = 10, deadlineSeconds = 300;
  bool verbose = false;
};

struct Row {
  size_t agents = 0;
  double registerSeconds = 0, createCall = 0, toRunning = 0, lastArmed = 0, tlToLastDone = 0,
         doneToSuccess = 0, toSuccess = 0;
  double requests = 0, etcdCpu = 0, simCpu = 0;
  std::map<std::string, double> byMethod;
  double idleSimCpuPct = 0, idleEtcdCpuPct = 0, idleRequestsPerSecond = 0;
  long threads = 0, rssMiB = 0;
  uint64_t packetsCaptured = 0;
};

// What the bench's own watch of captures/ saw of the one capture.
struct Observed {
  std::mutex mutex;
  std::optional<Clock::time_point> running, ended, lastArmed, lastDone;
  std::string endStatus;
  json endValue;
  std::set<std::string> armed; // the parts seen running (the first put of each counts)
  size_t done = 0;
};

// Polls `ready` every 100 ms until it holds, `deadline` passes or the bench is interrupted.
template <class F> bool waitFor(F ready, Clock::time_point deadline) {
  while (!interrupted && Clock::now() < deadline) {
    if (ready())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

Result<Row> runOnce(size_t n, const Options &o, const std::string &stateRoot) {
  Row row;
  row.agents = n;
  auto started = testlib::EtcdCluster::start(3);
  if (!started)
    return Error{EIO, "starting the etcd cluster: " + started.error().message};
  std::unique_ptr<testlib::EtcdCluster> cluster = std::move(*started);
  fleet::EtcdOptions etcdOptions{cluster->clientUrls()};
  auto made = fleet::EtcdClient::create(etcdOptions);
  auto coordEtcd = fleet::EtcdClient::create(etcdOptions);
  auto watchEtcd = fleet::EtcdClient::create(etcdOptions);
  if (!made || !coordEtcd || !watchEtcd)
    return Error{EIO, "an etcd client of the cluster could not be made"};
  fleet::EtcdClient &etcd = **made;
  const std::string colo = "sim";

  // The coordinator, following as the gateway does (default options and tick).
  std::atomic<bool> coordStop{false};
  fleet::Coordinator coordinator(**coordEtcd);
  std::thread follower([&] {
    if (auto r = coordinator.follow(coordStop); !r)
      spdlog::error("follow: {}", r.error().message);
  });

  // The agents.
  std::atomic<bool> agentsStop{false};
  std::vector<std::unique_ptr<agent::Agent>> agents;
  std::vector<std::thread> threads;
  std::atomic<size_t> agentErrors{0};
  const std::string dir = stateRoot + "/n" + std::to_string(n);
  std::filesystem::create_directories(dir);
  const auto t0 = Clock::now();
  for (size_t i = 0; i < n; i++) {
    agent::AgentSettings s;
    char name[32];
    snprintf(name, sizeof name, "h%04zu", i);
    s.host = name;
    s.colo = colo;
    s.systems = {"magic-transit"};
    s.etcd = etcdOptions;
    s.stateDirectory = dir + "/" + name;
    s.leaseTtlSeconds = o.leaseTtl;
    s.statusIntervalSeconds = o.statusInterval;
    agents.push_back(std::make_unique<agent::Agent>(std::move(s), std::make_unique<SimCapture>()));
  }
  for (auto &a : agents)
    threads.emplace_back([&, ag = a.get()] {
      if (auto r = ag->run(agentsStop); !r) {
        spdlog::error("agent: {}", r.error().message);
        ++agentErrors;
      }
    });

  auto finish = [&](Result<Row> result) -> Result<Row> {
    agentsStop = true;
    coordStop = true;
    for (auto &t : threads)
      t.join();
    follower.join();
    agents.clear();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return result;
  };

  // Every host registered, every watch open (the agents' and the coordinator's).
  const auto setupDeadline = Clock::now() + std::chrono::seconds(int64_t(o.deadlineSeconds));
  std::string setupError;
  bool ready = waitFor(
      [&] {
        auto hosts = etcd.range(keys::hostsOf(colo), fleet::prefixRangeEnd(keys::hostsOf(colo)), 1);
        if (!hosts || size_t(hosts->count) < n)
          return false;
        if (!row.registerSeconds)
          row.registerSeconds = secondsBetween(t0, Clock::now());
        auto m = clusterMetrics(*cluster);
        return m && m->watchers >= double(n + 1);
      },
      setupDeadline);
  if (!ready)
    return finish(Error{ETIMEDOUT, "the " + std::to_string(n) +
                                       " agents did not all register and watch in time"});
  if (agentErrors)
    return finish(Error{EIO, std::to_string(agentErrors.load()) + " agent(s) stopped"});

  // Idle: what N agents (threads, keepalives) cost while nothing happens.
  {
    auto m0 = clusterMetrics(*cluster);
    const double c0 = processCpuSeconds();
    const auto w0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(o.idleSeconds));
    auto m1 = clusterMetrics(*cluster);
    const double w = secondsBetween(w0, Clock::now());
    if (!m0 || !m1)
      return finish(Error{EIO, "reading etcd's metrics"});
    row.idleSimCpuPct = 100 * (processCpuSeconds() - c0) / w;
    row.idleEtcdCpuPct = 100 * (m1->cpuSeconds - m0->cpuSeconds) / w;
    row.idleRequestsPerSecond = (m1->handled - m0->handled) / w;
    row.threads = processStatus("Threads:");
    row.rssMiB = processStatus("VmRSS:") / 1024;
  }

  // The bench's own watch of captures/: when the parts and the status change.
  auto current = etcd.get(keys::kRoot);
  if (!current)
    return finish(current.error());
  Observed seen;
  std::atomic<bool> watchStop{false};
  const std::string capturesPrefix = std::string(keys::kRoot) + "captures/";
  std::thread observer([&] {
    auto r = (*watchEtcd)
                 ->watch(
                     capturesPrefix, fleet::prefixRangeEnd(capturesPrefix), current->revision + 1,
                     [&](const std::vector<fleet::WatchEvent> &events) {
                       const auto now = Clock::now();
                       std::lock_guard lock(seen.mutex);
                       for (const auto &e : events) {
                         if (e.type != fleet::WatchEvent::Type::Put)
                           continue;
                         json v = json::parse(e.kv.value, nullptr, false);
                         const std::string status = agent::stringOf(v, "status");
                         const std::string &key = e.kv.key;
                         if (key.size() > 7 && key.compare(key.size() - 7, 7, "/status") == 0) {
                           if (status == "running" && !seen.running)
                             seen.running = now;
                           if (v.is_object() && v.value("ended", false) && !seen.ended) {
                             seen.ended = now;
                             seen.endStatus = status;
                             seen.endValue = v;
                           }
                         } else if (key.find("/parts/") != std::string::npos) {
                           if (status == "running" && seen.armed.insert(key).second) {
                             seen.lastArmed = now;
                           } else if (status == "success" || status == "failed") {
                             ++seen.done;
                             seen.lastDone = now;
                           }
                         }
                       }
                       return !seen.ended;
                     },
                     &watchStop);
    if (!r)
      spdlog::error("the bench's watch: {}", r.error().message);
  });

  auto before = clusterMetrics(*cluster);
  const double cpu0 = processCpuSeconds();
  const auto created = Clock::now();
  json body = {{"system", "magic-transit"},
               {"type", "simple"},
               {"time_limit", o.timeLimit},
               {"packet_limit", 10000}};
  auto request = validateCaptureRequest(body, RequestMode::Api);
  if (!request) {
    watchStop = true;
    observer.join();
    return finish(request.error());
  }
  auto status = coordinator.create(*request, colo);
  row.createCall = secondsBetween(created, Clock::now());
  if (!status) {
    watchStop = true;
    observer.join();
    return finish(Error{EIO, "create: " + status.error().message});
  }
  const bool ended = waitFor(
      [&] {
        std::lock_guard lock(seen.mutex);
        return seen.ended.has_value();
      },
      Clock::now() + std::chrono::seconds(int64_t(o.deadlineSeconds)));
  auto after = clusterMetrics(*cluster);
  row.simCpu = processCpuSeconds() - cpu0;
  watchStop = true;
  observer.join();
  if (!ended)
    return finish(Error{ETIMEDOUT, "the capture did not end within " +
                                       std::to_string(int(o.deadlineSeconds)) + " s"});
  if (!before || !after)
    return finish(Error{EIO, "reading etcd's metrics"});
  // Less the bench's own watch, which ended when it saw the end.
  row.requests = after->handled - before->handled - 1;
  after->handledByMethod["Watch"] -= 1;
  row.etcdCpu = after->cpuSeconds - before->cpuSeconds;
  for (const auto &[m, v] : after->handledByMethod)
    if (double d = v - before->handledByMethod[m]; d > 0)
      row.byMethod[m] = d;
  std::lock_guard lock(seen.mutex);
  const json &end = seen.endValue;
  const size_t hosts = end.contains("hosts") ? end["hosts"].size() : 0;
  if (seen.endStatus != "success" || hosts != n)
    return finish(Error{EIO, "the capture ended " + seen.endStatus + " with " +
                                 std::to_string(hosts) + " host(s) (expected success with " +
                                 std::to_string(n) + "): " + end.value("error_message", "")});
  row.packetsCaptured = end.value("totals", json::object()).value("packets_captured", uint64_t(0));
  row.toRunning = seen.running ? secondsBetween(created, *seen.running) : -1;
  row.lastArmed = seen.lastArmed ? secondsBetween(created, *seen.lastArmed) : -1;
  // The last host armed at lastArmed at the latest, so its time limit ended by then + T.
  row.tlToLastDone = seen.lastDone && seen.lastArmed
                         ? secondsBetween(*seen.lastArmed, *seen.lastDone) - double(o.timeLimit)
                         : -1;
  row.doneToSuccess = seen.lastDone ? secondsBetween(*seen.lastDone, *seen.ended) : -1;
  row.toSuccess = secondsBetween(created, *seen.ended);
  return finish(row);
}

std::vector<size_t> parseList(const std::string &s) {
  std::vector<size_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    char *end = nullptr;
    unsigned long v = strtoul(item.c_str(), &end, 10);
    if (item.empty() || *end || v == 0 || v > 5000) {
      fprintf(stderr, "--agents: a comma-separated list of 1 to 5000 (got \"%s\")\n", s.c_str());
      exit(2);
    }
    out.push_back(v);
  }
  return out;
}

double number(const char *flag, const char *text, double min, double max) {
  char *end = nullptr;
  double v = strtod(text, &end);
  if (!*text || *end || v < min || v > max) {
    fprintf(stderr, "%s: a number from %g to %g (got \"%s\")\n", flag, min, max, text);
    exit(2);
  }
  return v;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    const bool hasValue = i + 1 < argc;
    if (a == "--agents" && hasValue)
      o.agents = parseList(argv[++i]);
    else if (a == "--time-limit" && hasValue)
      o.timeLimit = uint64_t(number("--time-limit", argv[++i], 1, 300));
    else if (a == "--status-interval" && hasValue)
      o.statusInterval = int64_t(number("--status-interval", argv[++i], 1, 60));
    else if (a == "--lease-ttl" && hasValue)
      o.leaseTtl = int64_t(number("--lease-ttl", argv[++i], 2, 600));
    else if (a == "--idle" && hasValue)
      o.idleSeconds = number("--idle", argv[++i], 0, 600);
    else if (a == "--deadline" && hasValue)
      o.deadlineSeconds = number("--deadline", argv[++i], 10, 3600);
    else if (a == "--verbose")
      o.verbose = true;
    else {
      fprintf(stderr, "usage: ringcap-bench-fleet [--agents 10,100,1000] [--time-limit S] "
                      "[--status-interval S] [--lease-ttl S] [--idle S] [--deadline S] "
                      "[--verbose]\n");
      return 2;
    }
  }
  if (testlib::EtcdCluster::etcdBinary().empty()) {
    fprintf(stderr,
            "ringcap-bench-fleet: etcd is not installed (etcd-server), or set RINGCAP_ETCD\n");
    return 1;
  }
  spdlog::set_level(o.verbose ? spdlog::level::info : spdlog::level::warn);
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Every agent holds three connections to etcd (unary, lease, watch); the members inherit
  // the limit too.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  char tmpl[] = "/dev/shm/ringcap-bench-fleet-XXXXXX";
  const char *stateRoot = mkdtemp(tmpl);
  if (!stateRoot) {
    perror("mkdtemp /dev/shm/ringcap-bench-fleet-XXXXXX");
    return 1;
  }
  printf("time limit %llu s, status interval %lld s, lease TTL %lld s, %u CPUs\n",
         (unsigned long long)o.timeLimit, (long long)o.statusInterval, (long long)o.leaseTtl,
         std::thread::hardware_concurrency());
  printf("%6s %8s %8s %8s %8s %8s %8s %8s %8s %7s %7s %7s %7s %7s %7s %6s %5s\n", "agents",
         "register", "create", "->runnng", "lastarmd", "tl->done", "done->ok", "->succss",
         "requests", "req/ag", "etcdcpu", "simcpu", "idlesim", "idleetc", "idlereq", "thrds",
         "rss");
  fflush(stdout);
  int rc = 0;
  for (size_t n : o.agents) {
    if (interrupted)
      break;
    auto row = runOnce(n, o, stateRoot);
    if (!row) {
      fprintf(stderr, "N=%zu: %s\n", n, row.error().message.c_str());
      rc = 1;
      continue;
    }
    const Row &r = *row;
    printf(
        "%6zu %7.2fs %7.3fs %7.2fs %7.2fs %7.2fs %7.2fs %7.2fs %8.0f %7.1f %6.2fs %6.2fs %6.1f%% "
        "%6.1f%% %7.1f %6ld %4ldM\n",
        r.agents, r.registerSeconds, r.createCall, r.toRunning, r.lastArmed, r.tlToLastDone,
        r.doneToSuccess, r.toSuccess, r.requests, r.requests / double(r.agents), r.etcdCpu,
        r.simCpu, r.idleSimCpuPct, r.idleEtcdCpuPct, r.idleRequestsPerSecond, r.threads, r.rssMiB);
    std::string methods;
    for (const auto &[m, v] : r.byMethod)
      methods += " " + m + "=" + std::to_string(int64_t(v));
    printf("       requests by method:%s; packets_captured %llu\n", methods.c_str(),
           (unsigned long long)r.packetsCaptured);
    fflush(stdout);
  }
  std::error_code ec;
  std::filesystem::remove_all(stateRoot, ec);
  curl_global_cleanup();
  return interrupted ? 130 : rc;
}
