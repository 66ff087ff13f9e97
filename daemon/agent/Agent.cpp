#include "Agent.h"

#include "fleet/Keys.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <spdlog/spdlog.h>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace ringcap::agent {
namespace keys = fleet::keys;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

bool terminal(const std::string &status) { return status == "success" || status == "failed"; }

using fleet::keys::utcNow;

// Sleeps up to `d`, waking when `stop` becomes true.
void sleepFor(std::chrono::milliseconds d, const std::atomic<bool> &stop) {
  const auto end = Clock::now() + d;
  while (!stop && Clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

} // namespace

bool isRefusal(ErrorKind kind) {
  switch (kind) {
  case ErrorKind::InvalidRequest:
  case ErrorKind::RateLimited:
  case ErrorKind::CaptureBusy:
  case ErrorKind::NotReady:
  case ErrorKind::OwnershipRequired:
  case ErrorKind::AccessDenied:
    return true;
  case ErrorKind::Failed:      // a fault of ringcapd's, or of the call (a timeout)
  case ErrorKind::NotFound:    // asked about by the caller
  case ErrorKind::Unavailable: // ringcapd not on the bus
    return false;
  }
  return false;
}

std::string stringOf(const json &object, const char *key) {
  if (!object.is_object())
    return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<AgentSettings> settingsFromConfig(const DaemonConfig &config) {
  AgentSettings s;
  const auto &f = config.fleet;
  if (f.etcd_endpoints.empty())
    return Error{EINVAL, "fleet.etcd_endpoints: required by ringcap-agent (the client URLs of "
                         "the etcd cluster's members)"};
  s.host = f.host_name;
  if (s.host.empty()) {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0)
      return Error::fromErrno(errno, "fleet.host_name: not set, and the hostname is unknown");
    s.host = name;
    if (!keys::isName(s.host))
      return Error{EINVAL, "fleet.host_name: not set, and the hostname \"" + s.host +
                               "\" is not 1 to 64 letters, digits, '.', '_' or '-'; set it"};
  }
  s.colo = config.colo_name;
  s.coloGroups = config.colo_groups;
  for (const auto &[name, ifaces] : config.systems)
    s.systems.push_back(name);
  s.etcd.endpoints = f.etcd_endpoints;
  s.etcd.caFile = f.etcd_ca_file;
  s.etcd.certFile = f.etcd_cert_file;
  s.etcd.keyFile = f.etcd_key_file;
  s.etcd.spreadOverEndpoints = true;
  s.stateDirectory = f.state_directory;
  s.leaseTtlSeconds = f.lease_ttl_seconds;
  s.statusIntervalSeconds = f.status_interval_seconds;
  s.ringcapdSilenceSeconds = f.ringcapd_silence_seconds;
  s.stagingDestination = f.staging_destination;
  s.destinations.fileRoots = config.file_roots;
  s.destinations.s3Endpoint = config.s3_endpoint;
  s.destinations.s3AllowedEndpoints = config.s3_allowed_endpoints;
  s.destinations.credentialsFile = config.s3_credentials_file;
  // The agent's own credentials, from systemd's LoadCredential=aws-credentials:... (ringcapd's
  // s3.credentials_file is root's and need not be readable by the agent's user).
  if (const char *dir = getenv("CREDENTIALS_DIRECTORY"); dir && *dir) {
    const std::string path = std::string(dir) + "/aws-credentials";
    if (access(path.c_str(), F_OK) == 0)
      s.destinations.credentialsFile = path;
  }
  s.destinations.fastRetries = getenv("RINGCAP_TEST_FAST_RETRIES") != nullptr;
  return s;
}

Result<AgentState> loadAgentState(const std::string &path) {
  AgentState state;
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT)
      return state;
    return Error::fromErrno(errno, "cannot read " + path);
  }
  std::stringstream buf;
  buf << in.rdbuf();
  json j = json::parse(buf.str(), nullptr, false);
  if (!j.is_object() || !j.contains("revision") || !j["revision"].is_number_integer() ||
      (j.contains("parts") && !j["parts"].is_array()))
    return Error{EINVAL, path + ": not an agent state (remove it to start from the site's "
                                "current captures)"};
  state.revision = j["revision"].get<int64_t>();
  for (const auto &id : j.value("parts", json::array()))
    if (id.is_string() && keys::isCaptureId(id.get<std::string>()))
      state.parts.insert(id.get<std::string>());
  return state;
}

Result<void> saveAgentState(const std::string &path, const AgentState &state) {
  const std::string tmp = path + ".tmp";
  const std::string text = json{{"revision", state.revision}, {"parts", state.parts}}.dump() + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return Error::fromErrno(errno, "cannot write " + tmp);
  bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok)
    return Error::fromErrno(err, "cannot write " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return Error::fromErrno(errno, "cannot rename " + tmp);
  return {};
}

Agent::Agent(AgentSettings settings, std::unique_ptr<LocalCapture> local)
    : s_(std::move(settings)), local_(std::move(local)) {
  if (!local_)
    local_ = std::make_unique<RingcapdCapture>(s_.busAddress);
}

void Agent::saveState() {
  if (auto r = saveAgentState(statePath(), state_); !r)
    spdlog::error("{}", r.error().message);
}

Result<void> Agent::registerHost(fleet::EtcdClient &etcd) {
  auto lease = etcd.grantLease(s_.leaseTtlSeconds);
  if (!lease)
    return lease.error();
  json value = {{"host", s_.host},
                {"colo", s_.colo},
                {"colo_groups", s_.coloGroups},
                {"systems", s_.systems},
                {"version", RINGCAP_VERSION},
                {"registered", utcNow()},
                {"lease", lease->id}};
  auto put = etcd.put(keys::host(s_.colo, s_.host), value.dump(), lease->id);
  if (!put)
    return put.error();
  lease_ = *lease;
  // The key's create revision (the put's own when it was absent).
  auto got = etcd.get(keys::host(s_.colo, s_.host));
  if (!got)
    return got.error();
  registrationRevision_ = got->kvs.empty() ? *put : got->kvs[0].createRevision;
  spdlog::info("registered host {} of site {} at etcd revision {} (lease {:x}, {} s)", s_.host,
               s_.colo, *put, lease_.id, lease_.ttl);
  return {};
}

Result<void> Agent::putPart(const std::string &id, const json &part) {
  const std::string value = part.dump();
  auto put = etcd_->put(keys::part(id, s_.host), value);
  if (!put)
    return put.error();
  reported_[id] = value;
  return {};
}

void Agent::failPart(const std::string &id, const std::string &message, const json *last) {
  // The counters last reported, when there were any (the packets captured until then).
  json part = last ? *last : keys::partFromRecord(s_.host, json::object());
  part["colo"] = s_.colo;
  part["status"] = "failed";
  part["error_message"] = message;
  spdlog::error("capture {}: failed on this host: {}", id, message);
  if (auto r = putPart(id, part); !r) {
    // Kept as an unfinished part whose end is known: the status reports write it (a record
    // ringcapd does not have, last read as failed), so that etcd never keeps it running.
    spdlog::error("capture {}: cannot write the part's status: {}; written again with the "
                  "status reports",
                  id, r.error().message);
    lastPart_[id] = part;
    if (state_.parts.insert(id).second)
      saveState();
    return;
  }
  state_.parts.erase(id);
  reported_.erase(id);
  lastPart_.erase(id);
  saveState();
}

void Agent::adoptPart(const std::string &id, const json &part, const json *spec) {
  if (stringOf(part, "host") != s_.host) {
    spdlog::warn("capture {}: the part of {} names host \"{}\" (or is malformed); left alone", id,
                 s_.host, stringOf(part, "host"));
    return;
  }
  const std::string status = stringOf(part, "status");
  if (terminal(status)) {
    spdlog::info("capture {}: this host's part is {} already; not run again", id, status);
    if (state_.parts.erase(id))
      saveState();
    return;
  }
  auto record = local_->getCapture(id);
  if (record) {
    spdlog::info("capture {}: this host's part is {} on ringcapd; reporting it again", id,
                 stringOf(*record, "status"));
    state_.parts.insert(id);
    reported_.erase(id);
    saveState();
    return;
  }
  if (record.error().kind == ErrorKind::NotFound && spec && uncertainClaims_.count(id)) {
    // This process's own claim, whose answer was lost; it has not asked ringcapd yet.
    spdlog::info("capture {}: the claim whose answer was lost was made; starting it", id);
    uncertainClaims_.erase(id);
    startPart(id, *spec);
    return;
  }
  if (record.error().kind == ErrorKind::NotFound) {
    failPart(id, "ringcap-agent on " + s_.host +
                     " stopped between claiming its part and starting it on ringcapd; not run "
                     "again");
    return;
  }
  // ringcapd unavailable: keep the part; the status reports retry.
  spdlog::warn("capture {}: cannot ask ringcapd about this host's part: {}", id,
               record.error().message);
  state_.parts.insert(id);
  saveState();
}

bool Agent::handleCapture(const std::string &id, const json &value) {
  std::lock_guard lock(mutex_);
  try {
    return handleCaptureLocked(id, value);
  } catch (const json::exception &e) {
    // A value of another type than the layout's somewhere: skipped, never a crash loop.
    spdlog::error("capture {}: a malformed value in etcd: {}; skipped", id, e.what());
    return true;
  }
}

bool Agent::handleCaptureLocked(const std::string &id, const json &value) {
  if (value.is_object() && value.contains("stop") && !value["stop"].is_boolean()) {
    spdlog::error("capture {}: its site key's \"stop\" is not true or false ({}); ignored", id,
                  value["stop"].dump());
    return true;
  }
  if (value.is_object() && value.value("stop", false)) {
    if (state_.parts.count(id)) {
      spdlog::info("capture {}: stop requested; stopping this host's part", id);
      if (auto r = local_->stopCapture(id); !r) {
        if (!isRefusal(r.error().kind) && r.error().kind != ErrorKind::NotFound) {
          // No answer: the stop is asked again (the event is handled again).
          spdlog::error("capture {}: StopCapture: {}; trying again", id, r.error().message);
          return false;
        }
        spdlog::warn("capture {}: StopCapture: {}", id, r.error().message);
        if (r.error().kind == ErrorKind::NotFound && uncertainCreates_.erase(id))
          // Its CreateCapture got no answer and was not made: it is not made now.
          failPart(id, "stopped before ringcapd on " + s_.host + " created the capture");
      }
    }
    return true;
  }
  auto got = etcd_->get(keys::spec(id));
  if (!got) {
    spdlog::error("capture {}: cannot read its spec: {}; trying again", id, got.error().message);
    return false;
  }
  if (got->kvs.empty()) {
    spdlog::warn("capture {}: listed for site {} but has no spec; ignored", id, s_.colo);
    return true;
  }
  json spec = json::parse(got->kvs[0].value, nullptr, false);
  const int64_t specRevision = got->kvs[0].createRevision;
  if (!keys::targets(spec, s_.host)) {
    spdlog::info("capture {}: host {} is not among its targets (it was created before this "
                 "host registered); not joined",
                 id, s_.host);
    return true;
  }
  const std::string partKey = keys::part(id, s_.host);
  if (registrationRevision_ > specRevision) {
    // The spec names a registration of this host that ended (its lease expired) before this
    // one was made: the coordinator counts that host lost, so this one does not claim.
    auto existing = etcd_->get(partKey);
    if (!existing) {
      spdlog::error("capture {}: reading this host's part: {}; trying again", id,
                    existing.error().message);
      return false;
    }
    if (!existing->kvs.empty()) {
      adoptPart(id, json::parse(existing->kvs[0].value, nullptr, false), nullptr);
      return true;
    }
    spdlog::warn("capture {}: created (etcd revision {}) before this host's registration "
                 "(revision {}): the host it names was lost since; not claimed",
                 id, specRevision, registrationRevision_.load());
    return true;
  }
  // Whether this host may run it at all: asked before the claim, so that an etcd error leaves
  // the event to be handled again; a refusal is claimed and failed (the fleet sees why).
  auto refusal = refusalOf(spec);
  if (!refusal) {
    spdlog::error("capture {}: reading the fleet's ownerships: {}; trying again", id,
                  refusal.error().message);
    return false;
  }
  json claim = {{"host", s_.host}, {"colo", s_.colo}, {"status", "pending"}, {"claimed", utcNow()}};
  auto txn = etcd_->txn({fleet::Compare::absent(partKey)},
                        {fleet::TxnOp::put(partKey, claim.dump())}, {fleet::TxnOp::get(partKey)});
  if (!txn) {
    // The claim may or may not have been made: the event is handled again, and a claim of
    // this process's that ringcapd has not seen is then started.
    spdlog::error("capture {}: claiming this host's part: {}; trying again", id,
                  txn.error().message);
    uncertainClaims_.insert(id);
    return false;
  }
  if (!txn->succeeded) {
    json part;
    if (!txn->ranges.empty() && !txn->ranges[0].kvs.empty())
      part = json::parse(txn->ranges[0].kvs[0].value, nullptr, false);
    adoptPart(id, part, &spec);
    return true;
  }
  spdlog::info("capture {}: claimed this host's part (etcd revision {}); starting it on ringcapd",
               id, txn->revision);
  uncertainClaims_.erase(id);
  if (*refusal) {
    failPart(id, **refusal);
    return true;
  }
  startPart(id, spec);
  return true;
}

Result<std::optional<std::string>> Agent::refusalOf(const json &spec) {
  auto request = spec.find("request");
  if (request == spec.end() || !request->is_object())
    return std::optional<std::string>(); // malformed: startPart says so
  const std::string type = stringOf(*request, "type");
  if (type == "simple" && local_->hasFiles() && s_.stagingDestination.empty())
    return std::optional<std::string>(
        "fleet.staging_destination is not set on host " + s_.host +
        ": a simple capture's file could not reach the gateway's merged download; not run");
  if (type != "full")
    return std::optional<std::string>();
  const std::string dest = stringOf(*request, "destination_conf");
  // The gateway matches a capture to an ownership by the canonical form of the URI (the same
  // bucket written with a trailing '/' or its query in another order): so does the agent.
  auto uri = parseDestinationUri(dest);
  const std::string canonical = uri ? uri->canonical() : std::string();
  auto got = etcd_->getPrefix(keys::ownerships());
  if (!got)
    return got.error();
  for (const auto &kv : got->kvs) {
    json o = json::parse(kv.value, nullptr, false);
    if (stringOf(o, "status") == "success" && !dest.empty() &&
        (stringOf(o, "destination_conf") == dest ||
         (!canonical.empty() && stringOf(o, "canonical") == canonical)))
      return std::optional<std::string>();
  }
  return std::optional<std::string>(
      "destination_conf " + dest +
      " has no validated ownership in the fleet: a full capture runs only into a destination "
      "whose ownership the gateway validated (a record under " +
      keys::ownerships() + " with status \"success\" and this destination_conf); not run on " +
      s_.host);
}

void Agent::startPart(const std::string &id, const json &spec) {
  state_.parts.insert(id);
  saveState();
  auto local = keys::localRequest(spec, s_.host);
  if (!local.error.empty()) {
    failPart(id, "the capture's spec is malformed: " + local.error);
    return;
  }
  createOnRingcapd(id, spec);
}

void Agent::createOnRingcapd(const std::string &id, const json &spec) {
  auto local = keys::localRequest(spec, s_.host);
  if (!local.error.empty()) {
    failPart(id, "the capture's spec is malformed: " + local.error);
    return;
  }
  uncertainCreates_.erase(id);
  if (stringOf(local.request, "type") == "full") {
    // The fleet's validated destination (refusalOf checked etcd): ringcapd records it as
    // validated, for exactly that destination, and delivers below <dest>/<host>/.
    const std::string dest = stringOf(local.request, "destination_conf");
    auto imported = local_->importOwnership(dest);
    if (!imported && isRefusal(imported.error().kind)) {
      failPart(id, "ringcapd on " + s_.host + " refused the fleet's ownership of " + dest + ": " +
                       imported.error().message);
      return;
    }
    if (!imported) {
      spdlog::warn("capture {}: ImportOwnership of {}: {}; tried again with the status reports", id,
                   dest, imported.error().message);
      uncertainCreates_[id] = spec;
      return;
    }
  }
  auto created = local_->createCapture(local.request);
  json record;
  if (created) {
    record = std::move(*created);
  } else if (isRefusal(created.error().kind)) {
    failPart(id, "ringcapd on " + s_.host + " refused the capture: " + created.error().message);
    return;
  } else {
    // No answer: ringcapd may have made the capture. Ask it.
    auto got = local_->getCapture(id);
    if (got) {
      record = *got;
    } else if (got.error().kind == ErrorKind::NotFound) {
      failPart(id, "ringcapd on " + s_.host +
                       " did not create the capture: " + created.error().message);
      return;
    } else {
      spdlog::warn("capture {}: CreateCapture: {}; not known whether ringcapd made it (asked "
                   "again with the status reports)",
                   id, created.error().message);
      uncertainCreates_[id] = spec;
      return;
    }
  }
  json part = keys::partFromRecord(s_.host, record);
  part["colo"] = s_.colo;
  spdlog::info("capture {}: {} on ringcapd", id, stringOf(part, "status"));
  if (auto r = putPart(id, part); !r)
    spdlog::error("capture {}: cannot write the part's status: {}", id, r.error().message);
}

void Agent::reportParts(bool force) {
  std::lock_guard lock(mutex_);
  // Parts failed because ringcapd stayed silent: once it answers, their captures are stopped
  // (what they captured is still delivered as for any stop; the fleet has them failed).
  for (auto it = abandoned_.begin(); it != abandoned_.end();) {
    auto r = local_->stopCapture(*it);
    if (r || isRefusal(r.error().kind) || r.error().kind == ErrorKind::NotFound) {
      spdlog::info("capture {}: ringcapd answers again; its capture, failed in the fleet, is "
                   "stopped{}{}",
                   *it, r ? "" : ": ", r ? "" : r.error().message);
      it = abandoned_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = state_.parts.begin(); it != state_.parts.end();) {
    const std::string id = *it++;
    auto record = local_->getCapture(id);
    if (!record && record.error().kind == ErrorKind::NotFound) {
      if (auto u = uncertainCreates_.find(id); u != uncertainCreates_.end()) {
        // A CreateCapture that got no answer was not made: make it now.
        spdlog::info("capture {}: ringcapd did not get the capture; creating it", id);
        createOnRingcapd(id, json(u->second));
        continue;
      }
      auto last = lastPart_.find(id);
      if (last != lastPart_.end() && terminal(stringOf(last->second, "status"))) {
        // Its end was read before retention removed the record: that is what is written.
        json part = last->second;
        if (auto r = putPart(id, part); !r) {
          spdlog::warn("capture {}: cannot write the part's status: {}", id, r.error().message);
          continue;
        }
        state_.parts.erase(id);
        reported_.erase(id);
        lastPart_.erase(id);
        saveState();
        continue;
      }
      failPart(id, "ringcapd on " + s_.host + " no longer knows the capture");
      continue;
    }
    if (!record) {
      // No answer (ringcapd off the bus, stopped or hung): reported again at the next round,
      // until ringcapd has been silent about it for ringcapd_silence_seconds. A ringcapd that
      // comes back after that has failed the capture itself (docs/reliability.md).
      const auto now = std::chrono::steady_clock::now();
      const auto first = unanswered_.try_emplace(id, now).first->second;
      const auto silent = std::chrono::duration_cast<std::chrono::seconds>(now - first).count();
      if (silent < s_.ringcapdSilenceSeconds) {
        spdlog::warn("capture {}: GetCapture: {} (no answer for {} s)", id, record.error().message,
                     silent);
        continue;
      }
      auto last = lastPart_.find(id);
      failPart(id,
               "ringcapd on " + s_.host + " has not answered about the capture for " +
                   std::to_string(silent) + " s (fleet.ringcapd_silence_seconds = " +
                   std::to_string(s_.ringcapdSilenceSeconds) + "): " + record.error().message,
               last != lastPart_.end() ? &last->second : nullptr);
      if (!state_.parts.count(id)) { // written: the end is in etcd
        unanswered_.erase(id);
        // A hung ringcapd that resumes would run the capture on: it is stopped then.
        abandoned_.insert(id);
      }
      continue;
    }
    unanswered_.erase(id);
    uncertainCreates_.erase(id);
    json part = keys::partFromRecord(s_.host, *record);
    part["colo"] = s_.colo;
    if (stringOf(part, "status") == "success" && stringOf(*record, "type") == "simple" &&
        local_->hasFiles())
      stagePart(id, part); // success only once the file is staged; else failed
    lastPart_[id] = part;
    const std::string status = stringOf(part, "status");
    auto seen = reported_.find(id);
    if (!force && seen != reported_.end() && seen->second == part.dump())
      continue;
    if (auto r = putPart(id, part); !r) {
      spdlog::warn("capture {}: cannot write the part's status: {}", id, r.error().message);
      continue;
    }
    if (terminal(status)) {
      spdlog::info("capture {}: {} on this host ({} packets, {} bytes captured){}{}", id, status,
                   part.value("packets_captured", uint64_t(0)),
                   part.value("bytes_captured", uint64_t(0)),
                   part.contains("error_message") ? ": " : "", part.value("error_message", ""));
      state_.parts.erase(id);
      reported_.erase(id);
      lastPart_.erase(id);
      staged_.erase(id);
      saveState();
    }
  }
}

void Agent::stagePart(const std::string &id, json &part) {
  if (auto done = staged_.find(id); done != staged_.end()) {
    part["staged_object"] = done->second.first;
    part["staged_bytes"] = done->second.second;
    return;
  }
  const std::string object = keys::stagedObject(s_.stagingDestination, id, s_.host);
  std::string cause;
  uint64_t bytes = 0;
  auto delay = s_.stagingRetryDelay;
  for (int attempt = 1; attempt <= std::max(1, s_.stagingAttempts); ++attempt) {
    if (attempt > 1) {
      std::this_thread::sleep_for(delay);
      delay *= 2;
    }
    auto fd = local_->openCaptureFile(id);
    if (!fd) {
      cause = "OpenCaptureFile: " + fd.error().message;
      if (isRefusal(fd.error().kind) || fd.error().kind == ErrorKind::NotFound)
        break; // ringcapd answered: it has no file to give
      continue;
    }
    struct stat st {};
    if (fstat(fd->get(), &st) != 0) {
      cause = std::string("fstat: ") + strerror(errno);
      continue;
    }
    bytes = static_cast<uint64_t>(st.st_size);
    auto uri = parseDestinationUri(keys::destinationForHost(s_.stagingDestination, id));
    if (!uri) {
      cause = uri.error().message;
      break;
    }
    auto dest = openDestination(*uri, s_.destinations);
    if (!dest) {
      cause = dest.error().message;
      break; // a setting (endpoint not allowed, no credentials): the same next time
    }
    auto up = (*dest)->uploadFile(s_.host + ".pcap", "/proc/self/fd/" + std::to_string(fd->get()));
    if (up) {
      spdlog::info("capture {}: staged {} bytes as {} (attempt {})", id, bytes, object, attempt);
      staged_[id] = {object, bytes};
      part["staged_object"] = object;
      part["staged_bytes"] = bytes;
      return;
    }
    cause = up.error().message;
    spdlog::warn("capture {}: staging {} (attempt {} of {}): {}", id, object, attempt,
                 s_.stagingAttempts, cause);
  }
  part["status"] = "failed";
  part["error_message"] = "staging the capture's file as " + object + " failed: " + cause;
}

void Agent::keepAliveLoop(const std::atomic<bool> &stop) {
  const auto keepEvery = std::chrono::milliseconds(std::max<int64_t>(500, lease_.ttl * 1000 / 3));
  while (!stop) {
    sleepFor(keepEvery, stop);
    if (stop)
      break;
    auto kept = leaseEtcd_->keepAlive(lease_.id);
    if (!kept && kept.error().kind == ErrorKind::NotFound) {
      spdlog::warn("the lease of host {} expired; registering again", s_.host);
      if (auto r = registerHost(*leaseEtcd_); !r)
        spdlog::error("registering host {} in etcd: {}", s_.host, r.error().message);
    } else if (!kept) {
      spdlog::warn("keeping the lease of host {} alive: {}", s_.host, kept.error().message);
    }
  }
}

void Agent::watchLoop(const std::atomic<bool> &stop) {
  const std::string prefix = keys::coloCaptures(s_.colo);
  int64_t from;
  {
    std::lock_guard lock(mutex_);
    from = state_.revision;
  }
  if (from > 0)
    spdlog::info("watching the captures of site {} from etcd revision {} (where the last run "
                 "stopped)",
                 s_.colo, from);
  while (!stop) {
    if (from <= 0) {
      auto current = etcd_->getPrefix(prefix);
      if (!current) {
        spdlog::error("reading the captures of site {}: {}", s_.colo, current.error().message);
        sleepFor(std::chrono::seconds(1), stop);
        continue;
      }
      bool handled = true;
      for (const auto &kv : current->kvs)
        if (auto id = keys::idOfColoCapture(s_.colo, kv.key))
          handled = handleCapture(*id, json::parse(kv.value, nullptr, false)) && handled;
      if (!handled) {
        sleepFor(std::chrono::seconds(1), stop);
        continue;
      }
      spdlog::info("site {} had {} capture(s) at etcd revision {}; watching from the next", s_.colo,
                   current->kvs.size(), current->revision);
      from = current->revision + 1;
      std::lock_guard lock(mutex_);
      state_.revision = from;
      saveState();
    }
    bool retry = false;
    auto watched = etcd_->watch(
        prefix, fleet::prefixRangeEnd(prefix), from,
        [&](const std::vector<fleet::WatchEvent> &events) {
          for (const auto &e : events) {
            if (e.type == fleet::WatchEvent::Type::Put)
              if (auto id = keys::idOfColoCapture(s_.colo, e.kv.key))
                if (!handleCapture(*id, json::parse(e.kv.value, nullptr, false))) {
                  retry = true; // the watch starts again at this event
                  return false;
                }
            std::lock_guard lock(mutex_);
            state_.revision = e.kv.modRevision + 1;
            saveState();
          }
          return !stop;
        },
        &stop);
    {
      // The revision after the last event handled (the watch's own answer may be past an
      // event to handle again).
      std::lock_guard lock(mutex_);
      from = state_.revision;
    }
    if (watched && !retry)
      continue;
    if (retry) {
      sleepFor(std::chrono::seconds(1), stop);
      continue;
    }
    spdlog::error("watching the captures of site {}: {}", s_.colo, watched.error().message);
    if (watched.error().code == ERANGE) {
      spdlog::warn("reading the site's captures again instead (claims keep a capture from "
                   "running twice)");
      from = 0;
    }
    sleepFor(std::chrono::seconds(1), stop);
  }
}

Result<void> Agent::run(const std::atomic<bool> &stop) {
  if (::mkdir(s_.stateDirectory.c_str(), 0700) != 0 && errno != EEXIST)
    return Error::fromErrno(errno, "fleet.state_directory: cannot create " + s_.stateDirectory);
  auto state = loadAgentState(statePath());
  if (!state)
    return state.error();
  state_ = *state;
  auto etcd = fleet::EtcdClient::create(s_.etcd);
  if (!etcd)
    return Error{EINVAL, "fleet." + etcd.error().message};
  etcd_ = std::move(*etcd);
  auto leaseEtcd = fleet::EtcdClient::create(s_.etcd);
  if (!leaseEtcd)
    return Error{EINVAL, "fleet." + leaseEtcd.error().message};
  leaseEtcd_ = std::move(*leaseEtcd);
  if (auto r = local_->connect(); !r)
    return r.error();

  while (!stop) {
    auto r = registerHost(*leaseEtcd_);
    if (r)
      break;
    spdlog::error("registering host {} in etcd: {}; trying again in 2 s", s_.host,
                  r.error().message);
    sleepFor(std::chrono::seconds(2), stop);
  }
  if (stop)
    return {};

  // The parts a previous run left unfinished: report them again (or fail those ringcapd
  // never got).
  {
    std::lock_guard lock(mutex_);
    for (const std::string &id : std::set<std::string>(state_.parts)) {
      auto got = etcd_->get(keys::part(id, s_.host));
      if (got && !got->kvs.empty())
        adoptPart(id, json::parse(got->kvs[0].value, nullptr, false), nullptr);
      else if (got)
        state_.parts.erase(id);
      else
        spdlog::warn("capture {}: cannot read this host's part: {}", id, got.error().message);
    }
    saveState();
  }

  std::thread keeper([&] { keepAliveLoop(stop); });
  std::thread watcher([&] { watchLoop(stop); });
  const auto reportEvery = std::chrono::seconds(s_.statusIntervalSeconds);
  auto nextReport = Clock::now();
  while (!stop) {
    const auto now = Clock::now();
    if (now >= nextReport) {
      nextReport = now + reportEvery;
      reportParts(false);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  watcher.join();
  keeper.join();
  reportParts(false);
  spdlog::info("stopping; the registration of host {} ends with its lease", s_.host);
  return {};
}

} // namespace ringcap::agent
