#include "engine/CaptureJob.h"
#include "engine/SlotCounters.h"

#include <ctime>
#include <spdlog/spdlog.h>
#include <sys/random.h>

namespace ringcap {
namespace {

uint64_t wallClockNs() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return uint64_t(t.tv_sec) * 1000000000u + uint64_t(t.tv_nsec);
}

uint32_t newCookie() {
  static uint32_t next = [] {
    uint32_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
      seed = static_cast<uint32_t>(time(nullptr));
    return seed;
  }();
  if (++next == 0)
    ++next;
  return next;
}

} // namespace

std::string_view toString(StopReason reason) {
  switch (reason) {
  case StopReason::None:
    return "none";
  case StopReason::PacketLimit:
    return "packet_limit";
  case StopReason::ByteLimit:
    return "byte_limit";
  case StopReason::TimeLimit:
    return "time_limit";
  case StopReason::Stopped:
    return "stopped";
  case StopReason::WriteError:
    return "write_error";
  case StopReason::Fault:
    return "fault";
  case StopReason::SpoolLimit:
    return "spool_limit";
  case StopReason::DiskSpace:
    return "disk_space";
  }
  return "unknown";
}

Result<std::unique_ptr<CaptureJob>> CaptureJob::start(CaptureProgram &program, RingDrainer &drainer,
                                                      const CaptureRequest &request,
                                                      SlotOptions options, const std::string &path,
                                                      const std::vector<Attachment> &ifaces,
                                                      const std::string &userAppl) {
  if (ifaces.empty())
    return Error{EINVAL, "a capture needs at least one interface"};
  auto slot = program.freeSlot();
  if (!slot)
    return Error{EBUSY, "all " + std::to_string(RINGCAP_MAX_SLOTS) + " capture slots are in use"};
  if (!options.cookie)
    options.cookie = newCookie();
  if (options.ifindexes.empty())
    for (const auto &a : ifaces)
      options.ifindexes.push_back(static_cast<uint32_t>(a.ifindex));
  SlotSettings settings = slotSettingsFor(request, options);

  std::vector<PcapInterface> blocks;
  std::vector<std::pair<uint32_t, PcapInterface>> pairs;
  for (const auto &a : ifaces) {
    PcapInterface pi{a.ifname, "", settings.snaplen};
    blocks.push_back(pi);
    pairs.emplace_back(static_cast<uint32_t>(a.ifindex), pi);
  }
  auto writer = PcapngWriter::create(path, blocks, userAppl);
  if (!writer)
    return writer.error();

  std::unique_ptr<CaptureJob> job(new CaptureJob(program, drainer));
  job->request_ = request;
  job->slot_ = *slot;
  job->snaplen_ = settings.snaplen;
  job->path_ = path;
  job->sink_ = std::make_unique<PcapFileSink>(std::move(*writer), std::move(pairs));
  drainer.route(*slot, options.cookie, job->sink_.get());
  if (auto r = program.armSlot(*slot, settings); !r) {
    drainer.unroute(*slot);
    return r.error();
  }
  job->armed_ = true;
  job->routed_ = true;
  if (request.time_limit)
    job->deadline_ = Clock::now() + std::chrono::seconds(*request.time_limit);
  spdlog::debug("capture armed in slot {} (cookie {:#x}), writing {}", *slot, options.cookie, path);
  return job;
}

CaptureJob::~CaptureJob() {
  if (armed_)
    (void)program_.disarmSlot(slot_);
  if (routed_) {
    drainer_.unroute(slot_);
    program_.holdSlot(slot_, false);
  }
}

StopReason CaptureJob::check(Clock::time_point now) {
  if (sink_->error())
    return StopReason::WriteError;
  if (request_.packet_limit || request_.byte_limit) {
    // From the counters, not the budget left: part of the budget sits in the CPUs' leases.
    if (auto c = program_.slotCounters(slot_)) {
      if (request_.packet_limit && c->captured >= *request_.packet_limit)
        return StopReason::PacketLimit;
      // A packet was refused although packets were left. The byte budget ran out when what
      // is left of it cannot hold another packet of the snap length; a refusal while more is
      // left is a CPU that found the rest on its way between the shared budget and another
      // CPU's lease (docs/design.md), and the capture goes on.
      if (c->limitReached > 0 && request_.byte_limit &&
          c->bytesCaptured + snaplen_ > *request_.byte_limit)
        return StopReason::ByteLimit;
    }
  }
  if (now >= deadline_)
    return StopReason::TimeLimit;
  return StopReason::None;
}

Result<void> CaptureJob::flush() { return sink_->flush(); }

void CaptureJob::stop(StopReason reason, std::optional<Error> fault) {
  if (stopped())
    return;
  stopReason_ = reason == StopReason::None ? StopReason::Stopped : reason;
  fault_ = std::move(fault);
  if (armed_) {
    if (auto r = program_.disarmSlot(slot_); !r)
      spdlog::warn("disarming slot {}: {}", slot_, r.error().message);
    armed_ = false;
    program_.holdSlot(slot_, true);
  }
  // Records of this job that are still in the ring: the kernel counted `captured` of them.
  // A record reserved on another CPU just before the slot was disarmed is committed within
  // microseconds, so the wait is bounded and short.
  if (auto c = program_.slotCounters(slot_))
    finalCounters_ = *c;
  drainUntil_ = Clock::now() + kDrainTimeout;
}

bool CaptureJob::drained(Clock::time_point now) const {
  return !finalCounters_ || sink_->packetsReceived() >= finalCounters_->captured ||
         now >= drainUntil_;
}

CaptureSummary CaptureJob::finish(StopReason reason, std::optional<Error> fault) {
  stop(reason, std::move(fault));
  while (!drained()) {
    auto n = drainer_.poll(10);
    if (!n) {
      spdlog::warn("draining the ring: {}", n.error().message);
      break;
    }
  }
  return complete();
}

CaptureSummary CaptureJob::complete(bool syncFile) {
  if (!stopped())
    stop(StopReason::Stopped);
  CaptureSummary s;
  StopReason reason = stopReason_;
  s.reason = reason;
  drainer_.unroute(slot_);
  program_.holdSlot(slot_, false);
  routed_ = false;
  const auto &counters = finalCounters_;
  if (counters)
    s.counters = *counters;
  if (counters && sink_->packetsReceived() < counters->captured)
    spdlog::warn("{} records of slot {} never arrived from the ring",
                 counters->captured - sink_->packetsReceived(), slot_);

  std::vector<PcapInterfaceStats> stats(sink_->ifindexes().size());
  uint64_t now = wallClockNs();
  for (size_t i = 0; i < stats.size(); i++) {
    stats[i].timestampNs = now;
    if (i == 0) {
      stats[i].received = s.counters.seen;
      stats[i].dropped = packetsLost(s.counters);
      stats[i].accepted = s.counters.matched;
      stats[i].comment =
          "ringcap: " + std::string(toString(reason)) +
          "; counters of all interfaces of this capture: " + describeCounters(s.counters);
    } else {
      stats[i].comment = "ringcap: counted under the first interface";
    }
  }
  if (!sink_->error()) {
    if (auto r = sink_->writer().finish(stats, syncFile); !r)
      s.error = r.error();
  } else {
    s.error = *sink_->error();
  }
  if (s.error && reason != StopReason::Fault)
    s.reason = StopReason::WriteError;
  if (fault_)
    s.error = fault_;
  s.packetsWritten = sink_->writer().packetsWritten();
  s.fileBytes = sink_->writer().bytesWritten();
  s.packetsUnwritten = sink_->packetsDropped();
  return s;
}

} // namespace ringcap
