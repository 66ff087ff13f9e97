// CaptureJob: one capture on a loaded CaptureProgram: its slot, its file, its limits.
// The caller's event loop drains the shared ring and calls check() now and then.
#pragma once

#include "engine/CaptureProgram.h"
#include "engine/RingDrainer.h"
#include "engine/SlotSettingsBuilder.h"
#include "pcap/PcapFileSink.h"
#include "request/CaptureRequest.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace ringcap {

enum class StopReason {
  None,
  PacketLimit, // packet_limit packets captured
  ByteLimit,   // the next packet would exceed byte_limit
  TimeLimit,   // time_limit seconds since the start
  Stopped,     // asked to stop (signal, StopCapture)
  WriteError,  // the file could not be written (disk full, ...)
  Fault,       // anything else: interface gone, ring error
  SpoolLimit,  // the file reached the daemon's spool budget (capture.spool_max_bytes)
  DiskSpace,   // the state directory's free space fell to capture.min_free_bytes
};

std::string_view toString(StopReason reason);

struct CaptureSummary {
  StopReason reason = StopReason::None;
  SlotCounters counters;         // kernel counters of the job's slot
  uint64_t packetsWritten = 0;   // packets in the file
  uint64_t fileBytes = 0;        // size of the file
  uint64_t packetsUnwritten = 0; // captured but not written (after a write error)
  std::optional<Error> error;    // why the capture failed, if it did
};

class CaptureJob {
public:
  using Clock = std::chrono::steady_clock;

  // Arms a free slot and opens `path`. `ifaces` are the interfaces the job captures on.
  static Result<std::unique_ptr<CaptureJob>> start(CaptureProgram &program, RingDrainer &drainer,
                                                   const CaptureRequest &request,
                                                   SlotOptions options, const std::string &path,
                                                   const std::vector<Attachment> &ifaces,
                                                   const std::string &userAppl);
  ~CaptureJob();
  CaptureJob(const CaptureJob &) = delete;
  CaptureJob &operator=(const CaptureJob &) = delete;

  // Why the capture should stop now, or StopReason::None.
  StopReason check(Clock::time_point now = Clock::now());
  // Makes every packet drained so far readable in the file.
  Result<void> flush();
  // Ending a capture without blocking the caller's event loop, in three steps:
  // stop() disarms the slot (it stays held, so no other job takes it) and notes how many
  // records the kernel counted for the job; the caller's loop keeps draining the ring until
  // drained() (every counted record arrived, or kDrainTimeout passed); complete() then
  // writes the statistics blocks, closes the file and frees the slot. Each is called once.
  void stop(StopReason reason, std::optional<Error> fault = std::nullopt);
  bool stopped() const { return stopReason_ != StopReason::None; }
  bool drained(Clock::time_point now = Clock::now()) const;
  // `syncFile` false: the file is closed without an fsync (the caller syncs it off its event
  // loop: an fsync of a large file holds a loop for hundreds of milliseconds).
  CaptureSummary complete(bool syncFile = true);
  // stop(), then drains the ring here until drained(), then complete(): for a caller with
  // nothing else to serve meanwhile (ringcap-dump, a daemon that is stopping).
  CaptureSummary finish(StopReason reason, std::optional<Error> fault = std::nullopt);

  // How long stop() waits at most for records the kernel counted but the ring has not
  // handed over (a record reserved on another CPU as the slot was disarmed: microseconds).
  static constexpr auto kDrainTimeout = std::chrono::seconds(2);

  Result<SlotCounters> counters() const { return program_.slotCounters(slot_); }
  Clock::time_point deadline() const { return deadline_; }
  // After stop(): when drained() becomes true at the latest.
  Clock::time_point drainDeadline() const { return drainUntil_; }
  const CaptureRequest &request() const { return request_; }
  unsigned slot() const { return slot_; }
  const std::string &path() const { return path_; }
  uint64_t packetsWritten() const { return sink_->writer().packetsWritten(); }

private:
  CaptureJob(CaptureProgram &program, RingDrainer &drainer)
      : program_(program), drainer_(drainer) {}

  CaptureProgram &program_;
  RingDrainer &drainer_;
  CaptureRequest request_;
  unsigned slot_ = 0;
  uint32_t snaplen_ = 0; // the slot's snap length: the largest record a packet can take
  bool armed_ = false;
  bool routed_ = false; // the slot's records go to this job (and the slot is held once disarmed)
  std::string path_;
  std::unique_ptr<PcapFileSink> sink_;
  Clock::time_point deadline_ = Clock::time_point::max();
  // Set by stop().
  StopReason stopReason_ = StopReason::None;
  std::optional<Error> fault_;
  std::optional<SlotCounters> finalCounters_;
  Clock::time_point drainUntil_{};
};

} // namespace ringcap
