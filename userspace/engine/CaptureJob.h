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
  // Disarms the slot, drains what the ring still holds for this job, writes the statistics
  // blocks and closes the file. Call once.
  CaptureSummary finish(StopReason reason, std::optional<Error> fault = std::nullopt);

  Result<SlotCounters> counters() const { return program_.slotCounters(slot_); }
  Clock::time_point deadline() const { return deadline_; }
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
  bool armed_ = false;
  std::string path_;
  std::unique_ptr<PcapFileSink> sink_;
  Clock::time_point deadline_ = Clock::time_point::max();
};

} // namespace ringcap
