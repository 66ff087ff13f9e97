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

// Error codes the service returns; the bus layer maps them to D-Bus error names.
namespace service_error {
inline constexpr int kInvalidRequest = EINVAL;
inline constexpr int kRateLimited = EAGAIN;
inline constexpr int kCaptureBusy = EBUSY;
inline constexpr int kNotFound = ENOENT;
inline constexpr int kNotReady = EINPROGRESS;
inline constexpr int kOwnershipRequired = EACCES;
} // namespace service_error

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

  // Validates the request, applies the rate limits and starts the capture.
  Result<const CaptureRecord *> create(const nlohmann::json &request);
  Result<const CaptureRecord *> get(const std::string &id);
  std::vector<const CaptureRecord *> list(size_t n = 50) const { return store_.newest(n); }
  // Stops a running capture (it ends `success` with what it holds); finished ones are left.
  Result<void> stop(const std::string &id);
  // A read-only fd of a finished capture's file (the caller owns it): success, or failed with
  // its partial file (docs/dbus-api.md, OpenCaptureFile).
  Result<int> openFile(const std::string &id);

  // Checks limits, interfaces and files; finishes captures that are done. Call often
  // (every few ms); counters are refreshed every counterInterval.
  void tick(Clock::time_point now = Clock::now());
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
  // Interfaces the program is attached to, by system.
  void setSystems(std::map<std::string, std::vector<Attachment>> systems) {
    systems_ = std::move(systems);
  }

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
  void finish(const std::string &id, StopReason reason, std::optional<Error> fault = {});
  void refreshCounters(CaptureRecord &record, Running &run);
  void notify(const CaptureRecord &record, bool statusChanged);
  void retain();
  // Saves the record; on failure remembers it and tick() tries again.
  void persist(CaptureRecord &record);
  Result<void> checkFull(const CaptureRequest &request) const;
  void deliver(const std::string &id);
  std::optional<Error> checkInterfaces(const Running &run) const;
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
  std::map<std::string, std::vector<Attachment>> systems_;
  std::map<std::string, Running> jobs_;
  std::optional<Clock::time_point> lastSimple_;
  Clock::time_point lastCounters_{};
  Clock::time_point lastInterfaceCheck_{};
  ChangeListener listener_;
  std::set<std::string> unsaved_; // records whose last save failed
};

} // namespace ringcap
