// CaptureService: the capture jobs of ringcapd, independent of D-Bus: request checks, rate
// limits, the job lifecycle, limits, faults and the records in the JobStore.
#pragma once

#include "CaptureRecord.h"
#include "Config.h"
#include "JobStore.h"
#include "OwnershipService.h"
#include "Worker.h"
#include "engine/CaptureJob.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>

namespace ringcap {

class HistoryStore;

class CaptureService {
public:
  using Clock = std::chrono::steady_clock;
  // Called after a record changed: statusChanged is false for counter updates.
  using ChangeListener = std::function<void(const CaptureRecord &, bool statusChanged)>;

  CaptureService(const DaemonConfig &config, JobStore &store, CaptureProgram &program,
                 RingDrainer &drainer, OwnershipService &ownership, Worker &worker,
                 DestinationSettings destinations, std::string hostname);
  ~CaptureService();

  void setChangeListener(ChangeListener listener) { listener_ = std::move(listener); }
  // The sampled history behind offset_time (docs/history.md); nullptr (the default): the
  // host keeps none ([history] enabled = false) and offset_time is refused. `beforeQuery`,
  // if given, brings the records still waiting in the history's ring into the store before
  // a look-back reads it.
  void setHistory(HistoryStore *history, std::function<void()> beforeQuery = {}) {
    history_ = history;
    beforeQuery_ = std::move(beforeQuery);
  }

  // Validates the request, applies the rate limits and starts the capture.
  Result<const CaptureRecord *> create(const nlohmann::json &request);
  Result<const CaptureRecord *> get(const std::string &id);
  std::vector<const CaptureRecord *> list(size_t n = 50) const { return store_.newest(n); }
  // Stops a running capture (it ends `success` with what it holds); finished ones are left.
  Result<void> stop(const std::string &id);
  // A read-only fd of a finished capture's file (the caller owns it): success, or failed with
  // its partial file (docs/dbus-api.md, OpenCaptureFile).
  Result<int> openFile(const std::string &id);

  // Checks limits, interfaces and files; finishes captures that are done; publishes the
  // counters. Call every kTickInterval while busy().
  void tick(Clock::time_point now = Clock::now());
  // After the loop drained the ring, and at nextDeadline(): finishes the captures whose
  // limits were reached (packets, bytes, time; the kernel stopped them already, this ends
  // their jobs) and completes a stopped one whose records are all drained. While packets
  // come, every kCounterInterval: the free space, and the counters published.
  void drained(Clock::time_point now = Clock::now());
  // When drained() must run next: the earliest time limit of the running captures, `now`
  // while a stopped capture waits only for its completion, the drain timeout of one whose
  // records are still in the ring (Clock::time_point::max(): none).
  Clock::time_point nextDeadline(Clock::time_point now = Clock::now()) const;
  // Completes a capture that was stopped and whose records have all been drained from the
  // ring (or waited for long enough), one per call. Call after draining the ring.
  void completeDrained(Clock::time_point now = Clock::now());
  // Makes every running capture's file readable up to the last drained packet.
  void flush();
  // Ends every running capture as failed with `message` (daemon stopping).
  void failAll(const std::string &message);
  // Delivers the full captures a previous daemon finished but had not delivered.
  void resumeDeliveries();
  // Counts the packets in the files of captures a restart interrupted (JobStore::failInterrupted)
  // on the worker thread, then corrects their records' packets_captured and bytes_captured.
  void recountInterrupted(const std::vector<std::string> &ids);

  // Deliveries try this often, waiting 2 s, 4 s, 8 s, ... between attempts.
  static constexpr int kDeliveryAttempts = 5;

  size_t running() const { return jobs_.size(); }
  // Captures run or drain, or work waits to be tried again (a record to save, a delivery or a
  // recount the worker's full queue refused): tick() must be called every kTickInterval.
  // While not busy, nothing needs a timer.
  bool busy() const {
    return !jobs_.empty() || !finishing_.empty() || !unsaved_.empty() ||
           !waitingDelivery_.empty() || !waitingRecount_.empty();
  }
  // Called when the service becomes busy (a capture started, or work waits to be tried
  // again), so that the caller starts its tick timer.
  void setBusyListener(std::function<void()> listener) { busyListener_ = std::move(listener); }
  // How often tick() runs while busy (the housekeeping period, ringcap-dump's too):
  // counters, interfaces, the spool and the disk, the work waiting to be tried again.
  // Packets are drained when the program wakes the loop (DrainLoop), with the limits and
  // the counters checked after the drain, and time limits end at their deadline
  // (nextDeadline()).
  static constexpr auto kTickInterval = std::chrono::seconds(1);
  // Records drained from the ring in one go (per event-loop dispatch): a full ring is drained
  // in slices, and the bus is served between them.
  static constexpr uint64_t kDrainBatch = 1024;
  // And at most this many bytes of records per slice: 1024 jumbo records written to three
  // captures' files held the loop about 120 ms (reliability.event_loop).
  static constexpr uint64_t kDrainBatchBytes = 1 << 20;
  // An interface the program was attached to is gone: the captures on it fail.
  void interfaceGone(int ifindex, const std::string &ifname);

  // How far back offset_time may look (the service's rule), whatever the history keeps.
  static constexpr int64_t kMaxLookBackNs = 86400ll * 1000000000;

  static constexpr auto kCounterInterval = std::chrono::milliseconds(250);
  static constexpr auto kSaveInterval = std::chrono::seconds(5);

private:
  struct Running {
    std::unique_ptr<CaptureJob> job;
    std::vector<Attachment> ifaces;
    Clock::time_point lastSave;
    // The kernel's byte budget is the spool budget (no smaller byte_limit was asked for).
    bool spoolBounded = false;
  };
  // Stops the capture; it completes at once if its records are all drained, or later in
  // completeDrained().
  void finish(const std::string &id, StopReason reason, std::optional<Error> fault = {});
  void complete(const std::string &id, CaptureJob &job);
  void refreshCounters(CaptureRecord &record, Running &run);
  // Refreshes the running captures' counters, notifies those that changed, saves the records
  // every kSaveInterval.
  void publishCounters(Clock::time_point now);
  void notify(const CaptureRecord &record, bool statusChanged);
  void retain();
  // Saves the record; on failure remembers it and tick() tries again.
  void persist(CaptureRecord &record);
  Result<void> checkFull(const CaptureRequest &request) const;
  // The refusals of an offset_time (history disabled, in the future, older than 24 h or than
  // the history kept); the window's start and end, both ends included.
  Result<std::pair<uint64_t, uint64_t>> checkOffsetTime(const CaptureRequest &request);
  // A simple capture with offset_time: the window's packets from the history, written at
  // once; the record ends success (or failed) before create() returns.
  Result<const CaptureRecord *> lookBack(const CaptureRequest &request,
                                         std::pair<uint64_t, uint64_t> window);
  // The simple-capture rate limit and the free space; records the simple capture's time.
  Result<void> admitSimple(Clock::time_point now) const;
  Error lowSpaceError(uint64_t free) const;
  void deliver(const std::string &id);
  // Converts a finished simple capture's spool to PCAP when its format asks for it.
  Result<void> convertSimple(CaptureRecord &record);
  // Points the record at its converted output, saves it, then removes the spool.
  void adoptOutput(CaptureRecord &record);
  std::optional<Error> checkInterfaces(const Running &run) const;
  // The attachments of a system's interfaces, or an error naming one that is missing.
  Result<std::vector<Attachment>> systemInterfaces(const std::string &system) const;
  // Bytes free for ringcapd on the state directory's filesystem (nullopt: unknown).
  std::optional<uint64_t> freeSpace() const;

  const DaemonConfig &config_;
  JobStore &store_;
  CaptureProgram &program_;
  RingDrainer &drainer_;
  OwnershipService &ownership_;
  Worker &worker_;
  DestinationSettings destinations_;
  std::string hostname_;
  std::map<std::string, Running> jobs_;
  std::map<std::string, Running> finishing_; // stopped, draining their last records
  std::function<void()> busyListener_;
  HistoryStore *history_ = nullptr;
  std::function<void()> beforeQuery_;
  std::optional<Clock::time_point> lastSimple_;
  Clock::time_point lastCounters_{};
  Clock::time_point lastPublished_{}; // publishCounters()
  Clock::time_point lastInterfaceCheck_{};
  ChangeListener listener_;
  std::set<std::string> unsaved_;         // records whose last save failed
  std::set<std::string> waitingDelivery_; // deliveries the worker's full queue refused
  std::set<std::string> waitingRecount_;  // recounts the worker's full queue refused
  // Runs the busy listener when `wasBusy` was false and the service is busy now.
  void noteBusy(bool wasBusy);
  void recount(const std::string &id);
};

} // namespace ringcap
