#include "fleet/Coordinator.h"

#include "api/ServiceApi.h"
#include "fleet/Keys.h"

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <thread>

namespace ringcap::fleet {
using namespace service_error;
using json = nlohmann::json;

namespace {

const std::string kHosts = std::string(keys::kRoot) + "hosts/";
const std::string kCaptures = std::string(keys::kRoot) + "captures/";
// etcd's default --max-txn-ops.
constexpr size_t kMaxTxnOps = 128;

int64_t unixNow() { return static_cast<int64_t>(time(nullptr)); }

std::string utc(int64_t t) { return keys::utcTime(t); }

// Seconds since the epoch of a "%Y-%m-%dT%H:%M:%SZ" time; 0 when it has another form.
int64_t parseUtc(const std::string &text) {
  struct tm tm {};
  const char *end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0')
    return 0;
  return static_cast<int64_t>(timegm(&tm));
}

TxnOp rangeOp(const std::string &prefix) {
  return TxnOp{TxnOp::Kind::Range, prefix, {}, prefixRangeEnd(prefix), 0};
}

// The registrations of a range of hosts/: site -> host -> create revision, and site -> its
// groups.
struct Registrations {
  std::map<std::string, std::map<std::string, int64_t>> hosts;
  std::map<std::string, std::set<std::string>> groups;
};

Registrations parseRegistrations(const RangeResult &range) {
  Registrations out;
  for (const auto &kv : range.kvs) {
    if (kv.key.compare(0, kHosts.size(), kHosts) != 0)
      continue;
    const std::string rest = kv.key.substr(kHosts.size());
    const size_t slash = rest.find('/');
    if (slash == std::string::npos)
      continue;
    const std::string site = rest.substr(0, slash), host = rest.substr(slash + 1);
    if (!keys::isName(site) || !keys::isName(host))
      continue;
    out.hosts[site][host] = kv.createRevision;
    json value = json::parse(kv.value, nullptr, false);
    if (value.is_object() && value.contains("colo_groups") && value["colo_groups"].is_array())
      for (const auto &g : value["colo_groups"])
        if (g.is_string())
          out.groups[site].insert(g.get<std::string>());
  }
  return out;
}

Result<std::vector<std::string>> sitesIn(const Registrations &regs, const std::string &coloName) {
  if (!keys::isName(coloName))
    return Error{kInvalidRequest, "colo_name: must be a site or group name (1 to 64 letters, "
                                  "digits, '.', '_' or '-', not starting with '.') (got \"" +
                                      coloName + "\")"};
  if (regs.hosts.count(coloName))
    return std::vector<std::string>{coloName};
  std::vector<std::string> sites;
  for (const auto &[site, groups] : regs.groups)
    if (groups.count(coloName) && regs.hosts.count(site))
      sites.push_back(site);
  if (sites.empty())
    return Error{kInvalidRequest, "colo_name: no host is registered at site or group \"" +
                                      coloName + "\" (no registration under " + kHosts +
                                      " has that site or lists it in colo_groups)"};
  return sites;
}

bool terminal(const std::string &status) { return status == "success" || status == "failed"; }

} // namespace

std::string newFleetCaptureId() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0)
      got += static_cast<size_t>(n);
  }
  static const char *hex = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id += hex[b >> 4];
    id += hex[b & 15];
  }
  return id;
}

json deriveFleetStatus(const FleetView &view, const CoordinatorOptions &options, int64_t now) {
  const json &spec = view.spec;
  const std::string id = spec.value("id", "");
  json lost = json::object();
  if (view.previous.is_object() && view.previous.contains("lost_hosts") &&
      view.previous["lost_hosts"].is_object())
    lost = view.previous["lost_hosts"];
  const json hostColos = spec.value("host_colos", json::object());
  const int64_t created = parseUtc(spec.value("created", ""));

  json hosts = json::array();
  json totals = json::object();
  for (const char *c : keys::kCounters)
    totals[c] = uint64_t(0);
  std::vector<std::string> failures;
  json lostRunning = json::array();
  int64_t timeLimit = 0;
  if (spec.contains("request") && spec["request"].is_object() &&
      spec["request"].contains("time_limit") && spec["request"]["time_limit"].is_number_integer())
    timeLimit = spec["request"]["time_limit"].get<int64_t>();
  bool allSuccess = true, anyPending = false, anyRunning = false, ended = true;
  bool anyConversionPending = false, anyConversionRunning = false;
  for (const auto &h : spec.value("hosts", json::array())) {
    if (!h.is_string())
      continue;
    const std::string host = h.get<std::string>();
    auto partIt = view.parts.find(host);
    const bool claimed = partIt != view.parts.end() && partIt->second.is_object();
    json entry = claimed ? partIt->second : json{{"host", host}, {"status", "pending"}};
    entry["host"] = host;
    if (!entry.contains("colo"))
      entry["colo"] = hostColos.value(host, "");
    // A counter is a non-negative integer (JSON does not say signed or not); anything else is 0.
    for (const char *c : keys::kCounters) {
      const bool counter = entry.contains(c) && entry[c].is_number_integer() &&
                           (entry[c].is_number_unsigned() || entry[c].get<int64_t>() >= 0);
      entry[c] = counter ? entry[c].get<uint64_t>() : uint64_t(0);
    }
    std::string status = entry.value("status", "pending");
    if (!entry["status"].is_string())
      status = "pending";
    // A part this coordinator (or another) failed when it declared the host lost.
    if (claimed && !lost.contains(host) && entry.value("lost", false) == true &&
        entry.contains("error_message") && entry["error_message"].is_string())
      lost[host] = entry["error_message"];

    if (!lost.contains(host) && !terminal(status)) {
      auto reg = view.registered.find(host);
      const bool vanished = reg == view.registered.end() || reg->second > view.specRevision;
      if (vanished)
        lost[host] = "host " + host + " vanished (its registration expired) " +
                     (claimed ? "while its part was " + status : "before it claimed its part");
      else if (!claimed && created > 0 && now - created > options.claimTimeout.count())
        lost[host] = "host " + host + " did not claim its part within " +
                     std::to_string(options.claimTimeout.count()) + " s of the capture's creation";
    }
    if (lost.contains(host) && claimed && !terminal(status) &&
        (timeLimit <= 0 || created <= 0 ||
         now <= created + timeLimit + options.claimTimeout.count()))
      lostRunning.push_back(host);
    if (lost.contains(host)) {
      entry["reported_status"] = status;
      status = "failed";
      entry["error_message"] = lost[host];
      failures.push_back(lost[host].get<std::string>());
    } else if (status == "failed") {
      failures.push_back("host " + host + " failed: " +
                         (entry.contains("error_message") && entry["error_message"].is_string()
                              ? entry["error_message"].get<std::string>()
                              : std::string("no error message")));
    }
    entry["status"] = status;
    if (status != "success")
      allSuccess = false;
    if (!terminal(status))
      ended = false;
    if (status == "pending")
      anyPending = true;
    else if (status == "conversion_pending")
      anyConversionPending = true;
    else if (status == "conversion_running")
      anyConversionRunning = true;
    else if (!terminal(status))
      anyRunning = true;
    for (const char *c : keys::kCounters)
      totals[c] = totals[c].get<uint64_t>() + entry[c].get<uint64_t>();
    hosts.push_back(entry);
  }

  json out = {{"id", id},
              {"colo_name", spec.value("colo_name", "")},
              {"colos", spec.value("colos", json::array())},
              {"created", spec.value("created", "")},
              {"hosts", hosts},
              {"totals", totals},
              {"lost_hosts", lost},
              {"lost_running", lostRunning}};
  if (spec.contains("request") && spec["request"].is_object())
    out["type"] = spec["request"].value("type", "");
  std::string status;
  if (!failures.empty()) {
    status = "failed";
    std::string message;
    for (const auto &f : failures)
      message += (message.empty() ? "" : "; ") + f;
    out["error_message"] = message;
  } else if (allSuccess && !hosts.empty())
    status = "success";
  else if (anyPending)
    status = "pending";
  else if (anyRunning)
    status = "running";
  else if (anyConversionPending)
    status = "conversion_pending";
  else if (anyConversionRunning)
    status = "conversion_running";
  else
    status = "running";
  out["status"] = status;
  out["ended"] = ended && !hosts.empty();
  return out;
}

Result<std::vector<std::string>> Coordinator::sitesOf(const std::string &coloName) {
  auto range = etcd_.getPrefix(kHosts);
  if (!range)
    return range.error();
  return sitesIn(parseRegistrations(*range), coloName);
}

Result<json> Coordinator::create(const CaptureRequest &request, const std::string &coloName) {
  if (request.id)
    return Error{kInvalidRequest, "id: unknown field (the service chooses a capture's id)"};
  auto range = etcd_.getPrefix(kHosts);
  if (!range)
    return range.error();
  const Registrations regs = parseRegistrations(*range);
  auto sites = sitesIn(regs, coloName);
  if (!sites)
    return sites.error();
  if (1 + 3 * sites->size() > kMaxTxnOps)
    return Error{kInvalidRequest, "colo_name: \"" + coloName + "\" names " +
                                      std::to_string(sites->size()) +
                                      " sites; one capture may target at most " +
                                      std::to_string((kMaxTxnOps - 1) / 3)};
  const bool simple = request.type == CaptureType::Simple;
  const int64_t now = unixNow();
  const std::string id = newFleetCaptureId();

  FleetView view;
  json hosts = json::array(), hostColos = json::object();
  // Parts are keyed by host name: two registrations of one name would share a part.
  for (const auto &site : *sites)
    for (const auto &[host, rev] : regs.hosts.at(site))
      if (hostColos.contains(host))
        return Error{kFailed, "fleet.host_name: host \"" + host + "\" is registered at sites " +
                                  hostColos[host].get<std::string>() + " and " + site +
                                  "; host names must be unique in the fleet (nothing created)"};
      else
        hostColos[host] = site;
  hostColos = json::object();
  for (const auto &site : *sites)
    for (const auto &[host, rev] : regs.hosts.at(site)) {
      hosts.push_back(host);
      hostColos[host] = site;
      view.registered[host] = rev;
    }
  view.spec = {{"id", id},           {"colo_name", coloName},   {"colos", *sites},
               {"hosts", hosts},     {"host_colos", hostColos}, {"request", request.toJson()},
               {"created", utc(now)}};
  view.specRevision = range->revision + 1;
  const json status = deriveFleetStatus(view, options_, now);

  Lease lease;
  if (simple) {
    auto granted = etcd_.grantLease(options_.simpleInterval.count());
    if (!granted)
      return granted.error();
    lease = *granted;
  }
  std::vector<Compare> compares{Compare::absent(keys::spec(id))};
  std::vector<TxnOp> success{TxnOp::put(keys::spec(id), view.spec.dump()),
                             TxnOp::put(keys::status(id), status.dump())};
  std::vector<TxnOp> failure;
  const json limitValue = simple
                              ? json{{"id", id}, {"expires", now + options_.simpleInterval.count()}}
                              : json{{"id", id}};
  for (const auto &site : *sites) {
    const std::string limit = simple ? keys::simpleLimit(site) : keys::fullLimit(site);
    compares.push_back(Compare::absent(limit));
    success.push_back(TxnOp::put(keys::coloCapture(site, id), json{{"id", id}}.dump()));
    success.push_back(TxnOp::put(limit, limitValue.dump(), simple ? lease.id : 0));
    failure.push_back(TxnOp::get(limit));
  }
  auto txn = etcd_.txn(compares, success, failure);
  // A txn whose answer was lost may have been made: its lease then stays (it ends with the
  // interval); one refused holds nothing.
  if (!txn)
    return txn.error();
  if (!txn->succeeded && simple)
    (void)etcd_.revokeLease(lease.id);
  if (!txn->succeeded) {
    for (size_t i = 0; i < sites->size() && i < txn->ranges.size(); i++) {
      if (txn->ranges[i].kvs.empty())
        continue;
      const json held = json::parse(txn->ranges[i].kvs[0].value, nullptr, false);
      const std::string other = held.is_object() ? held.value("id", "?") : "?";
      const std::string &site = (*sites)[i];
      if (simple) {
        int64_t left = held.is_object() ? held.value("expires", int64_t(0)) - now : 0;
        left = std::clamp<int64_t>(left, 1, options_.simpleInterval.count());
        return Error{kRateLimited, "simple captures are limited to one per " +
                                       std::to_string(options_.simpleInterval.count()) +
                                       " s at site " + site + " (capture " + other + "); " +
                                       api::retryAfterPhrase(static_cast<uint64_t>(left))};
      }
      return Error{kCaptureBusy, "1 full capture(s) pending or running at site " + site +
                                     " (capture " + other + "); at most 1 at a time"};
    }
    // Only the spec's compare can have failed: 128 random bits met an existing id.
    return Error{kFailed, "capture id " + id + " exists already in etcd; try again"};
  }
  spdlog::info("fleet capture {} created at {} (sites {}, {} hosts, etcd revision {})", id,
               coloName, json(*sites).dump(), hosts.size(), txn->revision);
  return status;
}

Result<FleetView> Coordinator::read(const std::string &id) {
  if (!keys::isCaptureId(id))
    return Error{kInvalidRequest,
                 "id: must be 32 lowercase hexadecimal digits (got \"" + id + "\")"};
  // The spec never changes; the rest is one snapshot (one txn): the parts, the stored status
  // and the registrations of the target sites, so that a part and its host's registration
  // are seen at the same revision.
  auto got = etcd_.get(keys::spec(id));
  if (!got)
    return got.error();
  if (got->kvs.empty())
    return Error{kNotFound, "no fleet capture with id " + id};
  FleetView view;
  view.spec = json::parse(got->kvs[0].value, nullptr, false);
  if (!view.spec.is_object())
    return Error{kFailed, "etcd: the spec of capture " + id + " is not a JSON object"};
  view.specRevision = got->kvs[0].createRevision;
  std::vector<TxnOp> ops{rangeOp(keys::partsOf(id)), TxnOp::get(keys::status(id))};
  for (const auto &site : view.spec.value("colos", json::array()))
    if (site.is_string() && keys::isName(site.get<std::string>()))
      ops.push_back(rangeOp(keys::hostsOf(site.get<std::string>())));
  auto txn = etcd_.txn({}, ops);
  if (!txn)
    return txn.error();
  if (txn->ranges.size() != ops.size())
    return Error{kFailed, "etcd: a transaction of " + std::to_string(ops.size()) +
                              " ranges answered " + std::to_string(txn->ranges.size())};
  for (const auto &kv : txn->ranges[0].kvs)
    view.parts[kv.key.substr(keys::partsOf(id).size())] = json::parse(kv.value, nullptr, false);
  if (!txn->ranges[1].kvs.empty()) {
    view.previous = json::parse(txn->ranges[1].kvs[0].value, nullptr, false);
    view.statusModRevision = txn->ranges[1].kvs[0].modRevision;
  }
  for (size_t i = 2; i < txn->ranges.size(); i++)
    for (const auto &[site, hosts] : parseRegistrations(txn->ranges[i]).hosts)
      for (const auto &[host, rev] : hosts)
        if (keys::targets(view.spec, host))
          view.registered[host] = rev;
  return view;
}

namespace {
// The capture has ended and no lost host may still be capturing: nothing more to follow.
bool settled(const json &status) {
  return status.value("ended", false) &&
         (!status.contains("lost_running") || status["lost_running"].empty());
}
const char *kChanged = "changed since the snapshot; not written";
} // namespace

Result<json> Coordinator::refresh(const std::string &id) {
  for (int attempt = 0;; attempt++) {
    auto view = read(id);
    if (!view)
      return view.error();
    auto status = refreshFrom(id, *view);
    if (status || attempt == 4 || status.error().message.find(kChanged) == std::string::npos)
      return status;
  }
}

Result<json> Coordinator::refreshFrom(const std::string &id, const FleetView &snapshot) {
  FleetView view = snapshot;
  json status = deriveFleetStatus(view, options_, unixNow());
  // A host declared lost before it claimed gets its part failed in etcd, so that its claim
  // (part absent) fails when it comes late: it never runs a capture the fleet reports failed.
  bool partsWritten = false;
  for (const auto &[host, message] : status["lost_hosts"].items()) {
    if (view.parts.count(host))
      continue;
    const std::string key = keys::part(id, host);
    json part = {{"host", host},
                 {"colo", view.spec.value("host_colos", json::object()).value(host, "")},
                 {"status", "failed"},
                 {"lost", true},
                 {"error_message", message}};
    auto txn = etcd_.txn({Compare::absent(key)}, {TxnOp::put(key, part.dump())});
    if (!txn)
      return txn.error();
    if (!txn->succeeded)
      return Error{kFailed, "capture " + id + ": the part of host " + host + " " + kChanged};
    view.parts[host] = part;
    partsWritten = true;
  }
  if (partsWritten)
    status = deriveFleetStatus(view, options_, unixNow());
  // The full-capture limits go before the ended status is written: a coordinator that stops
  // between the two finds the capture unfinished and releases them then (a settled status is
  // never read again). A lost host's part that may still be capturing keeps them held.
  if (settled(status)) {
    const std::string held = json{{"id", id}}.dump();
    for (const auto &site : view.spec.value("colos", json::array())) {
      if (!site.is_string())
        continue;
      const std::string limit = keys::fullLimit(site.get<std::string>());
      Compare mine{limit, Compare::Target::Value, Compare::Op::Equal, 0, held};
      if (auto r = etcd_.txn({mine}, {TxnOp::remove(limit)}); !r)
        return r.error();
    }
  }
  if (status != view.previous) {
    // Only over the status this snapshot read: an older snapshot never overwrites a newer
    // status (an ended one, or lost_hosts).
    const std::string key = keys::status(id);
    Compare same{key, Compare::Target::ModRevision, Compare::Op::Equal, view.statusModRevision, {}};
    auto txn = etcd_.txn({same}, {TxnOp::put(key, status.dump())});
    if (!txn)
      return txn.error();
    if (!txn->succeeded)
      return Error{kFailed, "capture " + id + ": the status " + kChanged};
    if (status.value("status", "") !=
        (view.previous.is_object() ? view.previous.value("status", "") : std::string()))
      spdlog::info("fleet capture {}: {}{}", id, status.value("status", ""),
                   status.contains("error_message")
                       ? " (" + status["error_message"].get<std::string>() + ")"
                       : std::string());
  }
  return status;
}

Result<void> Coordinator::stop(const std::string &id) {
  auto view = read(id);
  if (!view)
    return view.error();
  std::vector<TxnOp> ops;
  for (const auto &site : view->spec.value("colos", json::array()))
    if (site.is_string())
      ops.push_back(TxnOp::put(keys::coloCapture(site.get<std::string>(), id),
                               json{{"id", id}, {"stop", true}}.dump()));
  auto r = etcd_.txn({}, ops);
  if (!r)
    return r.error();
  spdlog::info("fleet capture {}: stop asked of its sites", id);
  return {};
}

namespace {
// The unfinished captures of a range of captures/, and the range's revision.
struct Unfinished {
  std::vector<std::string> ids;
  int64_t revision = 0;
};
Result<Unfinished> readUnfinished(EtcdClient &etcd) {
  auto range = etcd.getPrefix(kCaptures);
  if (!range)
    return range.error();
  std::set<std::string> specs, ended;
  for (const auto &kv : range->kvs) {
    const std::string rest = kv.key.substr(kCaptures.size());
    const size_t slash = rest.find('/');
    if (slash == std::string::npos)
      continue;
    const std::string id = rest.substr(0, slash), what = rest.substr(slash + 1);
    if (what == "spec")
      specs.insert(id);
    else if (what == "status") {
      json s = json::parse(kv.value, nullptr, false);
      if (s.is_object() && settled(s))
        ended.insert(id);
    }
  }
  Unfinished out;
  out.revision = range->revision;
  for (const auto &id : specs)
    if (!ended.count(id))
      out.ids.push_back(id);
  return out;
}
} // namespace

Result<std::vector<std::string>> Coordinator::unfinished() {
  auto u = readUnfinished(etcd_);
  if (!u)
    return u.error();
  return u->ids;
}

Result<void> Coordinator::follow(const std::atomic<bool> &stop, std::chrono::milliseconds tick) {
  using Clock = std::chrono::steady_clock;
  while (!stop) {
    auto start = readUnfinished(etcd_);
    if (!start) {
      spdlog::error("fleet: reading the unfinished captures: {}; trying again",
                    start.error().message);
      std::this_thread::sleep_for(tick);
      continue;
    }
    std::set<std::string> live(start->ids.begin(), start->ids.end());
    std::mutex mutex;
    std::condition_variable cv;
    std::set<std::string> dirty(live);
    bool hostsChanged = false, watchDone = false;
    std::atomic<bool> watchStop{false};
    std::string watchError;
    std::thread watcher([&] {
      const std::string root = keys::kRoot;
      auto r = etcd_.watch(
          root, prefixRangeEnd(root), start->revision + 1,
          [&](const std::vector<WatchEvent> &events) {
            std::lock_guard lock(mutex);
            for (const auto &e : events) {
              const std::string &key = e.kv.key;
              if (key.compare(0, kHosts.size(), kHosts) == 0) {
                hostsChanged = true;
              } else if (key.compare(0, kCaptures.size(), kCaptures) == 0) {
                const std::string rest = key.substr(kCaptures.size());
                const size_t slash = rest.find('/');
                if (slash == std::string::npos)
                  continue;
                const std::string what = rest.substr(slash + 1);
                if (what == "spec" || what.compare(0, 6, "parts/") == 0)
                  dirty.insert(rest.substr(0, slash));
              }
            }
            cv.notify_all();
            return !watchStop;
          },
          &watchStop);
      std::lock_guard lock(mutex);
      if (!r)
        watchError = r.error().message;
      watchDone = true;
      cv.notify_all();
    });
    auto nextTick = Clock::now() + tick;
    while (!stop) {
      std::set<std::string> todo;
      {
        std::unique_lock lock(mutex);
        cv.wait_until(lock, std::min(nextTick, Clock::now() + std::chrono::milliseconds(200)),
                      [&] { return !dirty.empty() || hostsChanged || watchDone; });
        if (watchDone)
          break;
        for (const auto &id : dirty)
          live.insert(id);
        todo.swap(dirty);
        if (hostsChanged || Clock::now() >= nextTick) {
          todo.insert(live.begin(), live.end());
          hostsChanged = false;
          nextTick = Clock::now() + tick;
        }
      }
      for (const auto &id : todo) {
        if (!live.count(id))
          continue;
        auto s = refresh(id);
        if (!s) {
          if (s.error().kind == kNotFound)
            live.erase(id);
          else
            spdlog::error("fleet capture {}: {}", id, s.error().message);
          continue;
        }
        if (settled(*s))
          live.erase(id);
      }
    }
    watchStop = true;
    watcher.join();
    if (!watchError.empty())
      spdlog::error("fleet: the watch of {} ended: {}; reading the captures again", keys::kRoot,
                    watchError);
  }
  return {};
}

} // namespace ringcap::fleet
