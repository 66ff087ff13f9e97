// CaptureRecord: what ringcapd knows of one capture, in Cloudflare's record shape.
#pragma once

#include "engine/CaptureProgram.h"
#include "request/CaptureRequest.h"
#include "util/Result.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace ringcap {

enum class CaptureStatus {
  Pending,
  Running,
  ConversionPending,
  ConversionRunning,
  Success,
  Failed
};

std::string_view toString(CaptureStatus status);
std::optional<CaptureStatus> parseCaptureStatus(std::string_view text);

// RFC 3339 in UTC with microseconds, e.g. "2026-11-26T10:44:03.123456Z".
std::string formatRfc3339(int64_t unixNs);
int64_t wallClockNowNs();

struct CaptureRecord {
  std::string id; // 32 lowercase hex digits
  CaptureRequest request;
  CaptureStatus status = CaptureStatus::Pending;
  int64_t submittedNs = 0;
  int64_t startedNs = 0;       // 0: not started
  int64_t finishedNs = 0;      // 0: not finished
  int64_t stopRequestedNs = 0; // 0: nobody asked this capture to stop
  std::string errorMessage;
  std::string stopReason;
  SlotCounters counters;
  // What the capture delivers: the request's output_format or the configured default.
  OutputFormat outputFormat = OutputFormat::Pcap;
  // The capture's file below the state directory's captures/, empty: no file. The spool
  // (<id>.pcapng) while capturing; <id>.pcap once converted to PCAP (the spool is then
  // removed). A failed capture or conversion keeps the spool.
  std::string fileName;
  uint64_t fileSize = 0;
  std::string location; // full captures: where the file was delivered
  std::string checksum; // full captures: the verified checksum of the delivered file
  // A simple capture with offset_time, answered from the history (docs/history.md).
  bool lookedBack = false;
  // Its window was only partly kept: the oldest packet the history held (history_start).
  std::optional<int64_t> historyStartNs;

  bool finished() const {
    return status == CaptureStatus::Success || status == CaptureStatus::Failed;
  }
  // <id>.pcapng: what the capture writes.
  std::string spoolName() const { return id + ".pcapng"; }
  // The file that holds the deliverable: <id>.pcap, or the spool itself for pcapng.
  std::string outputName() const { return id + std::string(fileExtension(outputFormat)); }
  // The spool still has to be converted (the conversion step) before delivery.
  bool needsConversion() const { return fileName == spoolName() && outputName() != spoolName(); }
  // The name the file goes by for users (delivered objects, downloads): pcap_<id>.pcap, or
  // pcap_<id>.pcapng for the pcapng option and for a spool that was never converted.
  std::string publicFileName() const;
  // The record users get (docs/dbus-api.md).
  nlohmann::json toJson() const;
  // What the job store keeps: the record plus what the daemon needs after a restart.
  nlohmann::json toStateJson() const;
  static Result<CaptureRecord> fromStateJson(const nlohmann::json &j);
};

// 32 lowercase hex digits from the kernel's random source.
std::string newCaptureId();
bool isCaptureId(std::string_view text);

} // namespace ringcap
