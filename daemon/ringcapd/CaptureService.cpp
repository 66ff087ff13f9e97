#include "CaptureService.h"
#include "api/ServiceApi.h"
#include "engine/SlotSettingsBuilder.h"
#include "history/HistoryStore.h"
#include "pcap/PcapConverter.h"

#include "pcap/PcapReader.h"
#include "util/Text.h"

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace ringcap {
namespace {

using namespace service_error;

// Whole seconds, at least 1 (a retry sooner would be refused).
uint64_t seconds(std::chrono::steady_clock::duration d) {
  auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  return s < 1 ? 1 : static_cast<uint64_t>(s);
}

} // namespace

CaptureService::CaptureService(const DaemonConfig &config, JobStore &store, CaptureProgram &program,
                               RingDrainer &drainer, OwnershipService &ownership, Worker &worker,
                               DestinationSettings destinations, std::string hostname)
    : config_(config), store_(store), program_(program), drainer_(drainer), ownership_(ownership),
      worker_(worker), destinations_(std::move(destinations)), hostname_(std::move(hostname)) {}

Result<void> CaptureService::checkFull(const CaptureRequest &request) const {
  const std::string &colo = *request.colo_name;
  if (colo != config_.colo_name && std::find(config_.colo_groups.begin(), config_.colo_groups.end(),
                                             colo) == config_.colo_groups.end()) {
    std::string groups;
    for (const auto &g : config_.colo_groups)
      groups += (groups.empty() ? "" : ", ") + g;
    return Error{kInvalidRequest, "colo_name: \"" + colo + "\" is neither this host's site (" +
                                      config_.colo_name + ")" +
                                      (groups.empty() ? std::string(" nor a group of it")
                                                      : " nor one of its groups (" + groups + ")")};
  }
  auto uri = parseDestinationUri(*request.destination_conf);
  if (!uri)
    return Error{kInvalidRequest, uri.error().message};
  if (auto c = checkDestinationAllowed(*uri, destinations_); !c)
    return Error{kInvalidRequest, c.error().message};
  if (!ownership_.validated(uri->canonical()))
    return Error{kOwnershipRequired,
                 "destination_conf: " + *request.destination_conf +
                     " has not passed the ownership challenge (CreateOwnership, then "
                     "ValidateOwnership with the token from the challenge file)"};
  size_t active = 0;
  for (const auto *r : store_.newest(store_.size()))
    if (r->request.type == CaptureType::Full &&
        (r->status == CaptureStatus::Pending || r->status == CaptureStatus::Running))
      active++;
  if (active >= config_.full_concurrent)
    return Error{kCaptureBusy, std::to_string(active) +
                                   " full capture(s) pending or running; at most " +
                                   std::to_string(config_.full_concurrent) + " at a time"};
  return {};
}

Error CaptureService::lowSpaceError(uint64_t free) const {
  return Error{ENOSPC, "No space left on device: the state directory " + config_.state_directory +
                           " has " + std::to_string(free) +
                           " bytes free, not more than "
                           "capture.min_free_bytes (" +
                           std::to_string(config_.min_free_bytes) + "); free space first"};
}

Result<void> CaptureService::admitSimple(Clock::time_point now) const {
  auto interval = std::chrono::seconds(config_.simple_interval_seconds);
  if (lastSimple_ && now - *lastSimple_ < interval)
    return Error{kRateLimited, "simple captures are limited to one per " +
                                   std::to_string(config_.simple_interval_seconds) + " s; " +
                                   api::retryAfterPhrase(seconds(*lastSimple_ + interval - now))};
  if (auto free = freeSpace(); free && *free <= config_.min_free_bytes)
    return lowSpaceError(*free);
  return {};
}

Result<std::pair<uint64_t, uint64_t>>
CaptureService::checkOffsetTime(const CaptureRequest &request) {
  const std::string &given = *request.offset_time;
  if (!history_)
    return Error{kInvalidRequest,
                 "offset_time: history is disabled on this host ([history] enabled = false); "
                 "leave offset_time out to capture from now on"};
  if (auto sys = config_.systems.find(request.system);
      sys == config_.systems.end() || sys->second.empty())
    return Error{kInvalidRequest, "system: \"" + request.system +
                                      "\" has no interfaces on this host (see [systems] in the "
                                      "configuration)"};
  auto offset = parseRfc3339Ns(given); // the validator checked its form
  if (!offset)
    return Error{kInvalidRequest, "offset_time: must be an RFC 3339 date-time"};
  const int64_t now = wallClockNowNs();
  if (*offset > now)
    return Error{kInvalidRequest, "offset_time: must not be in the future (got " + given +
                                      "; the time on this host is " + formatRfc3339(now) + ")"};
  if (*offset < now - kMaxLookBackNs)
    return Error{kInvalidRequest, "offset_time: must be within the last 24 h (got " + given +
                                      "; the time on this host is " + formatRfc3339(now) + ")"};
  if (beforeQuery_)
    beforeQuery_();
  auto start = history_->historyStartNs();
  if (!start)
    return Error{kInvalidRequest,
                 "offset_time: history on this host holds no packets yet (got " + given + ")"};
  if (uint64_t(*offset) < *start)
    return Error{kInvalidRequest, "offset_time: history on this host starts at " +
                                      formatRfc3339(int64_t(*start)) + " (got " + given + ")"};
  const uint64_t span = uint64_t(request.time_limit.value_or(0)) * 1000000000ull;
  const uint64_t to = uint64_t(*offset);
  return std::make_pair(to > span ? to - span : 0, to);
}

Result<const CaptureRecord *> CaptureService::lookBack(const CaptureRequest &request,
                                                       std::pair<uint64_t, uint64_t> window) {
  CaptureRecord record;
  record.id = request.id ? *request.id : newCaptureId();
  record.request = request;
  record.status = CaptureStatus::Running;
  record.submittedNs = wallClockNowNs();
  record.startedNs = record.submittedNs;
  record.outputFormat = request.output_format.value_or(config_.output_format);
  record.fileName = record.outputName();
  record.lookedBack = true;
  if (auto r = store_.add(record); !r)
    return r.error();
  CaptureRecord *stored = store_.find(record.id);
  lastSimple_ = Clock::now();

  HistoryQuery query;
  query.fromNs = window.first;
  query.toNs = window.second;
  query.filter = request.filter_v1;
  query.packetLimit = request.packet_limit.value_or(0);
  // The history holds every attached interface: only the request's system's are wanted.
  if (auto sys = config_.systems.find(request.system); sys != config_.systems.end())
    query.interfaces = sys->second;
  query.outputPath = store_.filePath(*stored);
  query.format = stored->outputFormat == OutputFormat::Pcapng ? HistoryOutputFormat::Pcapng
                                                              : HistoryOutputFormat::Pcap;
  auto result = history_->query(query);
  stored->finishedNs = wallClockNowNs();
  if (!result) {
    stored->status = CaptureStatus::Failed;
    stored->stopReason = "fault";
    stored->errorMessage = "reading the history: " + result.error().message;
    stored->fileName.clear(); // the query removed its partial file
    spdlog::error("capture {} failed: {}", stored->id, stored->errorMessage);
  } else {
    stored->status = CaptureStatus::Success;
    stored->stopReason = std::string(
        toString(result->limitReached ? StopReason::PacketLimit : StopReason::TimeLimit));
    stored->counters.seen = result->packetsScanned;
    stored->counters.matched = result->packets;
    stored->counters.captured = result->packets;
    if (result->windowPartlyKept && result->historyStartNs)
      stored->historyStartNs = int64_t(*result->historyStartNs);
    store_.refreshFileSize(*stored);
    if (store_.group() != gid_t(-1) &&
        chown(store_.filePath(*stored).c_str(), uid_t(-1), store_.group()) != 0)
      spdlog::warn("capture {}: giving the file to its group: {}", stored->id,
                   std::strerror(errno));
    spdlog::info("capture {} read from the history: {} packets of [{}, {}]{}, {} bytes of {}",
                 stored->id, result->packets, formatRfc3339(int64_t(window.first)),
                 formatRfc3339(int64_t(window.second)),
                 stored->historyStartNs
                     ? "; kept from " + formatRfc3339(*stored->historyStartNs) + " only"
                     : std::string(),
                 stored->fileSize, toString(stored->outputFormat));
  }
  persist(*stored);
  notify(*stored, true);
  retain();
  return stored;
}

CaptureService::~CaptureService() = default;

Result<const CaptureRecord *> CaptureService::create(const nlohmann::json &body) {
  auto request = validateCaptureRequest(body, RequestMode::Api);
  if (!request)
    return Error{kInvalidRequest, request.error().message};
  // A supplied id (a fleet's capture; the caller was checked) names one capture only, ever:
  // a retry of a create that did happen must not run the capture twice.
  if (request->id)
    if (const CaptureRecord *existing = store_.find(*request->id))
      return Error{kInvalidRequest, "id: a capture with id " + *request->id + " exists already (" +
                                        std::string(toString(existing->status)) +
                                        "); an id names one capture"};
  // A look-back reads the history: no slot, no interface to attach, no waiting.
  if (request->offset_time) {
    auto window = checkOffsetTime(*request);
    if (!window)
      return window.error();
    if (auto a = admitSimple(Clock::now()); !a)
      return a.error();
    return lookBack(*request, *window);
  }
  auto ifaces = systemInterfaces(request->system);
  if (!ifaces)
    return ifaces.error();
  if (request->type == CaptureType::Full)
    if (auto c = checkFull(*request); !c)
      return c.error();

  auto now = Clock::now();
  if (request->type == CaptureType::Simple) {
    if (auto a = admitSimple(now); !a)
      return a.error();
  } else if (auto free = freeSpace(); free && *free <= config_.min_free_bytes) {
    return lowSpaceError(*free);
  }
  if (!program_.freeSlot())
    return Error{kCaptureBusy, "all " + std::to_string(RINGCAP_MAX_SLOTS) +
                                   " capture slots are in use; try again when one ends"};

  CaptureRecord record;
  record.id = request->id ? *request->id : newCaptureId();
  record.request = *request;
  record.status = CaptureStatus::Pending;
  record.submittedNs = wallClockNowNs();
  record.outputFormat = request->output_format.value_or(config_.output_format);
  record.fileName = record.spoolName();
  if (auto r = store_.add(record); !r)
    return r.error();
  CaptureRecord *stored = store_.find(record.id);
  if (request->type == CaptureType::Simple)
    lastSimple_ = now;

  SlotOptions options;
  options.sampleRate = request->type == CaptureType::Simple ? config_.simple_sample_rate : 1;
  // The spool budget bounds the capture in the kernel too, so that a burst between two ticks
  // cannot take the file far past it: the slot's byte budget is the smaller of the two.
  CaptureRequest armed = *request;
  const bool spoolBounded = !armed.byte_limit || *armed.byte_limit > config_.spool_max_bytes;
  if (spoolBounded)
    armed.byte_limit = config_.spool_max_bytes;
  auto job = CaptureJob::start(program_, drainer_, armed, options, store_.filePath(*stored),
                               *ifaces, "ringcapd " RINGCAP_VERSION);
  if (!job) {
    stored->status = CaptureStatus::Failed;
    stored->errorMessage = "the capture could not start: " + job.error().message;
    stored->finishedNs = wallClockNowNs();
    stored->stopReason = "fault";
    store_.refreshFileSize(*stored);
    persist(*stored);
    spdlog::error("capture {}: {}", stored->id, stored->errorMessage);
    notify(*stored, true);
    return stored;
  }
  if (store_.group() != gid_t(-1) &&
      chown(store_.filePath(*stored).c_str(), uid_t(-1), store_.group()) != 0)
    spdlog::warn("capture {}: giving the file to its group: {}", stored->id, std::strerror(errno));
  stored->status = CaptureStatus::Running;
  stored->startedNs = wallClockNowNs();
  persist(*stored);
  bool wasBusy = busy();
  jobs_[stored->id] = Running{std::move(*job), *ifaces, now, spoolBounded};
  noteBusy(wasBusy);
  spdlog::info("capture {} running: {} on {}", stored->id, request->toJson().dump(),
               request->system);
  notify(*stored, true);
  retain();
  return stored;
}

Result<const CaptureRecord *> CaptureService::get(const std::string &id) {
  CaptureRecord *r = store_.find(id);
  if (!r)
    return Error{kNotFound, "no capture with id \"" + id + "\""};
  if (auto it = jobs_.find(id); it != jobs_.end())
    refreshCounters(*r, it->second);
  else if (auto f = finishing_.find(id); f != finishing_.end())
    refreshCounters(*r, f->second);
  return r;
}

Result<void> CaptureService::stop(const std::string &id) {
  CaptureRecord *r = store_.find(id);
  if (!r)
    return Error{kNotFound, "no capture with id \"" + id + "\""};
  if (jobs_.count(id)) {
    r->stopRequestedNs = wallClockNowNs(); // saved by finish()
    finish(id, StopReason::Stopped);
  }
  return {};
}

Result<int> CaptureService::openFile(const std::string &id) {
  CaptureRecord *r = store_.find(id);
  if (!r)
    return Error{kNotFound, "no capture with id \"" + id + "\""};
  if (!r->finished())
    return Error{kNotReady, "capture " + id + " is " + std::string(toString(r->status)) +
                                "; its file can be downloaded once it has finished"};
  if (r->fileName.empty())
    return Error{kNotFound, "capture " + id + " has no file"};
  int fd = ::open(store_.filePath(*r).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return Error::fromErrno(errno, "opening the file of capture " + id);
  return fd;
}

void CaptureService::refreshCounters(CaptureRecord &record, Running &run) {
  if (auto c = run.job->counters())
    record.counters = *c;
}

void CaptureService::notify(const CaptureRecord &record, bool statusChanged) {
  if (listener_)
    listener_(record, statusChanged);
}

Result<std::vector<Attachment>> CaptureService::systemInterfaces(const std::string &system) const {
  auto sys = config_.systems.find(system);
  if (sys == config_.systems.end() || sys->second.empty())
    return Error{kInvalidRequest, "system: \"" + system +
                                      "\" has no interfaces on this host (see [systems] in the "
                                      "configuration)"};
  std::vector<Attachment> out;
  for (const auto &name : sys->second) {
    auto a = std::find_if(program_.attachments().begin(), program_.attachments().end(),
                          [&](const Attachment &x) { return x.ifname == name; });
    if (a == program_.attachments().end())
      return Error{kNotReady, "interface " + name + " of system \"" + system +
                                  "\" is missing (deleted, or not created yet); captures on " +
                                  system + " can start once it exists again"};
    out.push_back(*a);
  }
  return out;
}

void CaptureService::interfaceGone(int ifindex, const std::string &ifname) {
  std::vector<std::string> ids;
  for (const auto &[id, run] : jobs_)
    for (const auto &a : run.ifaces)
      if (a.ifindex == ifindex)
        ids.push_back(id);
  for (const auto &id : ids)
    finish(id, StopReason::Fault,
           Error{ENODEV, "interface " + ifname + " disappeared during the capture"});
}

std::optional<uint64_t> CaptureService::freeSpace() const {
  struct statvfs vfs {};
  if (statvfs(store_.capturesDirectory().c_str(), &vfs) != 0)
    return std::nullopt;
  return uint64_t(vfs.f_bavail) * vfs.f_frsize;
}

std::optional<Error> CaptureService::checkInterfaces(const Running &run) const {
  for (const auto &a : run.ifaces) {
    char name[IF_NAMESIZE];
    if (!if_indextoname(static_cast<unsigned>(a.ifindex), name) || a.ifname != name)
      return Error{ENODEV, "interface " + a.ifname + " disappeared during the capture"};
  }
  return std::nullopt;
}

void CaptureService::tick(Clock::time_point now) {
  completeDrained(now);
  std::vector<std::pair<std::string, StopReason>> done;
  std::vector<std::pair<std::string, Error>> faults;
  bool checkIfaces = now - lastInterfaceCheck_ >= std::chrono::seconds(1);
  if (checkIfaces)
    lastInterfaceCheck_ = now;
  // The spool: each file within capture.spool_max_bytes, the disk above min_free_bytes.
  bool lowSpace = false;
  if (!jobs_.empty() && now - lastCounters_ >= kCounterInterval)
    if (auto free = freeSpace(); free && *free <= config_.min_free_bytes)
      lowSpace = true;
  for (auto &[id, run] : jobs_) {
    if (checkIfaces)
      if (auto e = checkInterfaces(run)) {
        faults.emplace_back(id, *e);
        continue;
      }
    StopReason reason = run.job->check(now);
    if (reason == StopReason::ByteLimit && run.spoolBounded)
      reason = StopReason::SpoolLimit;
    struct stat st {};
    if (reason == StopReason::None && stat(run.job->path().c_str(), &st) == 0 &&
        uint64_t(st.st_size) >= config_.spool_max_bytes)
      reason = StopReason::SpoolLimit;
    if (reason == StopReason::None && lowSpace)
      reason = StopReason::DiskSpace;
    if (reason != StopReason::None)
      done.emplace_back(id, reason);
  }
  for (auto &[id, e] : faults)
    finish(id, StopReason::Fault, e);
  for (auto &[id, reason] : done)
    finish(id, reason);

  if (now - lastCounters_ < kCounterInterval)
    return;
  lastCounters_ = now;
  for (const std::string &id : std::set<std::string>(waitingDelivery_))
    deliver(id);
  for (const std::string &id : std::set<std::string>(waitingRecount_))
    recount(id);
  for (const std::string &id : std::set<std::string>(unsaved_))
    if (CaptureRecord *r = store_.find(id))
      persist(*r);
    else
      unsaved_.erase(id);
  publishCounters(now);
}

void CaptureService::publishCounters(Clock::time_point now) {
  lastPublished_ = now;
  for (auto &[id, run] : jobs_) {
    CaptureRecord *r = store_.find(id);
    if (!r)
      continue;
    SlotCounters before = r->counters;
    refreshCounters(*r, run);
    bool changed = before != r->counters;
    if (now - run.lastSave >= kSaveInterval) {
      run.lastSave = now;
      store_.refreshFileSize(*r);
      persist(*r);
    }
    if (changed)
      notify(*r, false);
  }
}

void CaptureService::drained(Clock::time_point now) {
  // While packets come: every kCounterInterval the free space is checked and the counters
  // are published (tick() does both too, for counters that change without records: sampled
  // out, ring full).
  const bool periodic = !jobs_.empty() && now - lastPublished_ >= kCounterInterval;
  bool lowSpace = false;
  if (periodic)
    if (auto free = freeSpace(); free && *free <= config_.min_free_bytes)
      lowSpace = true;
  std::vector<std::pair<std::string, StopReason>> done;
  for (auto &[id, run] : jobs_) {
    StopReason reason = run.job->check(now);
    if (reason == StopReason::ByteLimit && run.spoolBounded)
      reason = StopReason::SpoolLimit;
    if (reason == StopReason::None && lowSpace)
      reason = StopReason::DiskSpace;
    if (reason != StopReason::None)
      done.emplace_back(id, reason);
  }
  for (auto &[id, reason] : done)
    finish(id, reason);
  completeDrained(now);
  if (periodic)
    publishCounters(now);
}

CaptureService::Clock::time_point CaptureService::nextDeadline(Clock::time_point now) const {
  auto at = Clock::time_point::max();
  for (const auto &[id, run] : jobs_)
    at = std::min(at, run.job->deadline());
  // A stopped capture completes as soon as its records are drained (now, if they are), one
  // per call of drained(), the bus served in between; at its drain timeout otherwise.
  for (const auto &[id, run] : finishing_)
    at = std::min(at, run.job->drained(now) ? now : run.job->drainDeadline());
  return at;
}

void CaptureService::flush() {
  for (auto &[id, run] : jobs_)
    (void)run.job->flush();
}

void CaptureService::finish(const std::string &id, StopReason reason, std::optional<Error> fault) {
  auto it = jobs_.find(id);
  if (it == jobs_.end())
    return;
  Running run = std::move(it->second);
  jobs_.erase(it);
  run.job->stop(reason, std::move(fault));
  // Usually the job's last records are already in the ring: one slice of it brings them, and
  // the capture completes before the caller (StopCapture, a limit) returns.
  if (!run.job->drained())
    if (auto n = drainer_.consume(kDrainBatch, kDrainBatchBytes); !n)
      spdlog::warn("draining the ring: {}", n.error().message);
  if (run.job->drained()) {
    complete(id, *run.job);
    return;
  }
  // Records of the job are still in the ring: the event loop drains them (and serves the
  // bus meanwhile); completeDrained() ends the capture.
  spdlog::debug("capture {} stopped; draining its last records", id);
  finishing_.emplace(id, std::move(run));
}

void CaptureService::completeDrained(Clock::time_point now) {
  // One per call: completing writes and syncs the file, and the bus is served in between.
  for (auto it = finishing_.begin(); it != finishing_.end(); ++it)
    if (it->second.job->drained(now)) {
      Running run = std::move(it->second);
      std::string id = it->first;
      finishing_.erase(it);
      complete(id, *run.job);
      return;
    }
}

void CaptureService::complete(const std::string &id, CaptureJob &job) {
  // A full capture's spool (up to capture.spool_max_bytes) is synced by the delivery's worker
  // thread, not here: the fsync of an 80 MB file held the event loop 300-700 ms while
  // other files were written. A simple capture's is small and synced here.
  CaptureSummary s = job.complete(job.request().type != CaptureType::Full);
  CaptureRecord *r = store_.find(id);
  if (!r)
    return;
  r->counters = s.counters;
  r->stopReason = std::string(toString(s.reason));
  r->finishedNs = wallClockNowNs();
  store_.refreshFileSize(*r);
  if (s.error) {
    r->status = CaptureStatus::Failed;
    r->errorMessage = s.error->message;
    if (s.packetsWritten)
      r->errorMessage += "; the file holds the " + std::to_string(s.packetsWritten) +
                         " packets written before the failure";
    spdlog::error("capture {} failed: {}", id, r->errorMessage);
  } else if (r->request.type == CaptureType::Full) {
    r->status = CaptureStatus::ConversionPending;
    spdlog::info("capture {} captured ({}): {} packets, {} bytes; delivering", id, r->stopReason,
                 s.packetsWritten, r->fileSize);
  } else if (auto converted = convertSimple(*r); !converted) {
    r->status = CaptureStatus::Failed;
    r->errorMessage =
        converted.error().message + "; the capture is kept in " + store_.filePath(*r) + " (pcapng)";
    spdlog::error("capture {} failed: {}", id, r->errorMessage);
  } else {
    r->status = CaptureStatus::Success;
    spdlog::info("capture {} finished ({}): {} packets, {} bytes of {}", id, r->stopReason,
                 s.packetsWritten, r->fileSize, toString(r->outputFormat));
  }
  persist(*r);
  notify(*r, true);
  if (r->status == CaptureStatus::ConversionPending)
    deliver(id);
  retain();
}

Result<void> CaptureService::convertSimple(CaptureRecord &record) {
  if (!record.needsConversion())
    return {};
  // On the event loop: a simple capture is small (at most 10000 packets of 160 bytes).
  const std::string spool = store_.filePath(record);
  const std::string output = store_.capturesDirectory() + "/" + record.outputName();
  auto converted = convertToPcap(spool, output);
  if (!converted)
    return converted.error();
  adoptOutput(record);
  return {};
}

void CaptureService::adoptOutput(CaptureRecord &record) {
  const std::string spool = store_.filePath(record);
  record.fileName = record.outputName();
  store_.refreshFileSize(record);
  persist(record); // the record names the output before the spool goes
  if (::unlink(spool.c_str()) != 0 && errno != ENOENT)
    spdlog::warn("capture {}: removing the spool {}: {}", record.id, spool, std::strerror(errno));
}

void CaptureService::deliver(const std::string &id) {
  CaptureRecord *r = store_.find(id);
  if (!r || r->status != CaptureStatus::ConversionPending) {
    waitingDelivery_.erase(id);
    return;
  }
  auto uri = parseDestinationUri(*r->request.destination_conf);
  if (!uri) {
    r->status = CaptureStatus::Failed;
    r->errorMessage = safeText(uri.error().message, 4096);
    persist(*r);
    notify(*r, true);
    return;
  }
  std::string key = hostname_ + "/pcap_" + id + std::string(fileExtension(r->outputFormat));
  // The conversion step: the pcapng spool becomes <id>.pcap before it is delivered.
  const bool convert = r->needsConversion();
  std::string spool = store_.filePath(*r);
  std::string path = convert ? store_.capturesDirectory() + "/" + r->outputName() : spool;
  auto result = std::make_shared<Result<std::string>>(Error{EIO, "not delivered"});
  auto conversion = std::make_shared<Result<void>>();
  auto attempts = std::make_shared<int>(0);
  auto posted = worker_.post(
      // On a worker thread: only copies, no service state.
      [this, settings = destinations_, uri = *uri, key, path, result, attempts, convert, spool,
       conversion] {
        // The spool is durable before anything is made of it (complete() left it unsynced).
        if (int fd = ::open(spool.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
          (void)::fsync(fd);
          ::close(fd);
        }
        if (convert) {
          auto converted = convertToPcap(spool, path);
          if (!converted) {
            *conversion = converted.error();
            return;
          }
          spdlog::info("converted {} to {} ({} packets, {} bytes)", spool, path, converted->packets,
                       converted->bytes);
        }
        auto backoff = std::chrono::milliseconds(settings.fastRetries ? 500 : 2000);
        for (int i = 1; i <= kDeliveryAttempts; i++) {
          *attempts = i;
          auto dest = openDestination(uri, settings);
          *result = dest ? (*dest)->uploadFile(key, path) : Result<std::string>(dest.error());
          // Refused credentials, a missing bucket or a bad path will not heal by waiting.
          int code = result->ok() ? 0 : result->error().code;
          if (result->ok() || code == EACCES || code == ENOENT || code == EINVAL || code == EPERM ||
              code == ECANCELED || i == kDeliveryAttempts)
            return;
          spdlog::warn("delivery of {} (attempt {} of {}): {}", safeText(key), i, kDeliveryAttempts,
                       safeText(result->error().message, 4096));
          if (!worker_.pause(backoff))
            return; // the daemon is stopping; the next one resumes the delivery
          backoff *= 2;
        }
      },
      [this, id, key, uri = *uri, result, attempts, convert, conversion] {
        CaptureRecord *rec = store_.find(id);
        if (!rec)
          return;
        rec->finishedNs = wallClockNowNs();
        if (convert && conversion->ok())
          adoptOutput(*rec);
        if (!conversion->ok()) {
          rec->status = CaptureStatus::Failed;
          rec->errorMessage = conversion->error().message +
                              "; not delivered; the capture is kept in " + store_.filePath(*rec) +
                              " (pcapng) until retention removes it";
          spdlog::error("capture {}: {}", id, rec->errorMessage);
        } else if (result->ok()) {
          rec->status = CaptureStatus::Success;
          rec->location = uri.describe(key);
          rec->checksum = **result;
          spdlog::info("capture {} delivered to {} ({})", id, rec->location, rec->checksum);
        } else {
          rec->status = CaptureStatus::Failed;
          rec->errorMessage = "delivery to " + safeText(uri.describe(key)) + " failed after " +
                              std::to_string(*attempts) +
                              " attempt(s): " + safeText(result->error().message, 4096) +
                              "; the capture is kept in " + store_.filePath(*rec) +
                              " until retention removes it";
          spdlog::error("capture {}: {}", id, rec->errorMessage);
        }
        persist(*rec);
        notify(*rec, true);
      },
      [this, id] {
        CaptureRecord *rec = store_.find(id);
        if (!rec || rec->status != CaptureStatus::ConversionPending)
          return;
        rec->status = CaptureStatus::ConversionRunning;
        persist(*rec);
        notify(*rec, true);
      },
      // One destination's deliveries one after another; other destinations' beside them.
      uri->canonical());
  if (!posted) {
    // The queue is full: the capture stays conversion_pending and tick() posts it again.
    bool wasBusy = busy();
    if (waitingDelivery_.insert(id).second)
      spdlog::warn("capture {}: delivery waits: {}", id, posted.error().message);
    noteBusy(wasBusy);
    return;
  }
  waitingDelivery_.erase(id);
}

void CaptureService::resumeDeliveries() {
  for (const auto *r : store_.newest(store_.size()))
    if (r->status == CaptureStatus::ConversionPending ||
        r->status == CaptureStatus::ConversionRunning) {
      spdlog::info("capture {}: resuming its delivery", r->id);
      CaptureRecord *rec = store_.find(r->id);
      rec->status = CaptureStatus::ConversionPending;
      // Converted, but stopped before the spool was removed.
      if (rec->fileName != rec->spoolName())
        (void)::unlink((store_.capturesDirectory() + "/" + rec->spoolName()).c_str());
      persist(*rec);
      deliver(r->id);
    }
}

void CaptureService::recountInterrupted(const std::vector<std::string> &ids) {
  for (const std::string &id : ids)
    recount(id);
}

void CaptureService::recount(const std::string &id) {
  CaptureRecord *r = store_.find(id);
  if (!r || !r->fileSize) {
    waitingRecount_.erase(id);
    return;
  }
  struct Count {
    bool done = false;
    uint64_t packets = 0, bytes = 0;
  };
  auto count = std::make_shared<Count>();
  auto posted = worker_.post(
      // On the worker thread: only copies, no service state.
      [this, path = store_.filePath(*r), count] {
        auto reader = PcapReader::open(path);
        if (!reader)
          return;
        while (true) {
          auto p = (*reader)->next();
          if (!p || !*p)
            break; // the end, or a block cut by the kill
          count->packets++;
          count->bytes += (*p)->data.size();
          if (count->packets % 65536 == 0 && !worker_.pause(std::chrono::milliseconds(0)))
            return; // the daemon is stopping
        }
        count->done = true;
      },
      [this, id, count] {
        CaptureRecord *rec = store_.find(id);
        if (!rec || !count->done)
          return;
        rec->counters.captured = count->packets;
        rec->counters.bytesCaptured = count->bytes;
        persist(*rec);
        notify(*rec, false);
        spdlog::info("capture {}: recounted its file after the restart: {} packets, {} bytes", id,
                     count->packets, count->bytes);
      });
  if (!posted) {
    // The queue is full: tick() posts it again; until then the record keeps the counters of
    // its last periodic save.
    bool wasBusy = busy();
    if (waitingRecount_.insert(id).second)
      spdlog::warn("capture {}: counting its file waits: {}", id, posted.error().message);
    noteBusy(wasBusy);
    return;
  }
  waitingRecount_.erase(id);
}

void CaptureService::noteBusy(bool wasBusy) {
  if (!wasBusy && busy() && busyListener_)
    busyListener_();
}

void CaptureService::failAll(const std::string &message) {
  std::vector<std::string> ids;
  for (auto &[id, run] : jobs_)
    ids.push_back(id);
  for (const auto &id : ids)
    finish(id, StopReason::Fault, Error{ECANCELED, message});
  // The daemon is stopping: nothing else to serve, so wait here for the last records.
  while (!finishing_.empty()) {
    if (auto n = drainer_.poll(10); !n) {
      spdlog::warn("draining the ring: {}", n.error().message);
      break;
    }
    completeDrained();
  }
  for (auto &[id, run] : finishing_)
    complete(id, *run.job);
  finishing_.clear();
}

void CaptureService::persist(CaptureRecord &record) {
  if (auto r = store_.save(record); !r) {
    // A full disk, for example: kept in memory and saved again on the next ticks.
    bool wasBusy = busy();
    if (unsaved_.insert(record.id).second)
      spdlog::error("capture {}: saving its record: {} (will retry)", record.id, r.error().message);
    noteBusy(wasBusy);
    return;
  }
  unsaved_.erase(record.id);
}

void CaptureService::retain() {
  for (const auto &id : store_.enforceRetention(config_.max_captures, config_.max_bytes))
    spdlog::info("retention: removed capture {}", id);
}

} // namespace ringcap
