#include "CaptureRecord.h"

#include <ctime>
#include <sys/random.h>

namespace ringcap {

std::string_view toString(CaptureStatus status) {
  switch (status) {
  case CaptureStatus::Pending:
    return "pending";
  case CaptureStatus::Running:
    return "running";
  case CaptureStatus::ConversionPending:
    return "conversion_pending";
  case CaptureStatus::ConversionRunning:
    return "conversion_running";
  case CaptureStatus::Success:
    return "success";
  case CaptureStatus::Failed:
    return "failed";
  }
  return "failed";
}

std::optional<CaptureStatus> parseCaptureStatus(std::string_view text) {
  for (auto s : {CaptureStatus::Pending, CaptureStatus::Running, CaptureStatus::ConversionPending,
                 CaptureStatus::ConversionRunning, CaptureStatus::Success, CaptureStatus::Failed})
    if (toString(s) == text)
      return s;
  return std::nullopt;
}

std::string formatRfc3339(int64_t unixNs) {
  time_t secs = static_cast<time_t>(unixNs / 1000000000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%06dZ", int((unixNs % 1000000000) / 1000));
  return buf;
}

int64_t wallClockNowNs() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}

std::string newCaptureId() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0)
      got += size_t(n);
  }
  static const char hex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id += hex[b >> 4];
    id += hex[b & 15];
  }
  return id;
}

bool isCaptureId(std::string_view text) { return isCaptureIdForm(text); }

std::string CaptureRecord::publicFileName() const {
  if (fileName.empty())
    return "";
  return "pcap_" + id + fileName.substr(fileName.find('.'));
}

nlohmann::json CaptureRecord::toJson() const {
  nlohmann::json j = request.toJson();
  j["id"] = id;
  j["status"] = toString(status);
  j["submitted"] = formatRfc3339(submittedNs);
  j["filter_v1"] = request.filter_v1.toJson();
  if (status == CaptureStatus::Failed)
    j["error_message"] = errorMessage;
  putCounters(j, counters);
  if (startedNs)
    j["started"] = formatRfc3339(startedNs);
  if (finishedNs)
    j["finished"] = formatRfc3339(finishedNs);
  if (stopRequestedNs)
    j["stop_requested"] = formatRfc3339(stopRequestedNs);
  if (!stopReason.empty())
    j["stop_reason"] = stopReason;
  j["output_format"] = toString(outputFormat);
  if (!fileName.empty()) {
    j["file_size"] = fileSize;
    if (finished())
      j["file_name"] = publicFileName();
  }
  if (!location.empty())
    j["location"] = location;
  if (!checksum.empty())
    j["checksum"] = checksum;
  if (historyStartNs)
    j["history_start"] = formatRfc3339(*historyStartNs);
  return j;
}

nlohmann::json CaptureRecord::toStateJson() const {
  nlohmann::json j;
  j["version"] = 1;
  j["id"] = id;
  j["request"] = request.toJson();
  j["status"] = toString(status);
  j["submitted_ns"] = submittedNs;
  j["started_ns"] = startedNs;
  j["finished_ns"] = finishedNs;
  j["stop_requested_ns"] = stopRequestedNs;
  j["error_message"] = errorMessage;
  j["stop_reason"] = stopReason;
  j["counters"] = countersStateJson(counters);
  j["output_format"] = toString(outputFormat);
  j["file_name"] = fileName;
  j["file_size"] = fileSize;
  j["location"] = location;
  j["checksum"] = checksum;
  if (lookedBack)
    j["looked_back"] = true;
  if (historyStartNs)
    j["history_start_ns"] = *historyStartNs;
  return j;
}

Result<CaptureRecord> CaptureRecord::fromStateJson(const nlohmann::json &j) {
  try {
    CaptureRecord r;
    if (j.at("version").get<int>() != 1)
      return Error{EINVAL, "unknown record version"};
    r.id = j.at("id").get<std::string>();
    if (!isCaptureId(r.id))
      return Error{EINVAL, "bad id"};
    // Records written before offset_time was refused may hold one that did nothing: only a
    // look-back's record keeps it.
    nlohmann::json body = j.at("request");
    r.lookedBack = j.value("looked_back", false);
    if (body.is_object() && !r.lookedBack)
      body.erase("offset_time");
    auto request = validateCaptureRequest(body, RequestMode::Api);
    if (!request)
      return Error{EINVAL, "request: " + request.error().message};
    r.request = std::move(*request);
    auto status = parseCaptureStatus(j.at("status").get<std::string>());
    if (!status)
      return Error{EINVAL, "bad status"};
    r.status = *status;
    r.submittedNs = j.at("submitted_ns").get<int64_t>();
    r.startedNs = j.at("started_ns").get<int64_t>();
    r.finishedNs = j.at("finished_ns").get<int64_t>();
    r.stopRequestedNs = j.value("stop_requested_ns", int64_t(0)); // absent in older records
    r.errorMessage = j.at("error_message").get<std::string>();
    r.stopReason = j.at("stop_reason").get<std::string>();
    r.counters = countersFromStateJson(j.at("counters"));
    // Records written before output_format existed: a delivery they resume converts.
    auto format = parseOutputFormat(j.value("output_format", "pcap"));
    if (!format)
      return Error{EINVAL, "bad output_format"};
    r.outputFormat = *format;
    r.fileName = j.at("file_name").get<std::string>();
    r.fileSize = j.at("file_size").get<uint64_t>();
    r.location = j.value("location", "");
    r.checksum = j.value("checksum", "");
    if (j.contains("history_start_ns"))
      r.historyStartNs = j.at("history_start_ns").get<int64_t>();
    if (!r.fileName.empty() && r.fileName != r.spoolName() && r.fileName != r.outputName())
      return Error{EINVAL, "bad file name"};
    return r;
  } catch (const nlohmann::json::exception &e) {
    return Error{EINVAL, e.what()};
  }
}

} // namespace ringcap
