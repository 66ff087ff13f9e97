// CaptureRequest: a validated capture request in Cloudflare's PCAPs API model.
#pragma once

#include "request/FilterV1.h"
#include "util/Result.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ringcap {

enum class CaptureType { Simple, Full };

// "simple" / "full".
std::string_view toString(CaptureType type);

// The format of a capture's deliverable: classic PCAP (nanosecond timestamps) or pcapng
// (interface names and statistics blocks too).
enum class OutputFormat { Pcap, Pcapng };

// "pcap" / "pcapng".
std::string_view toString(OutputFormat format);
std::optional<OutputFormat> parseOutputFormat(std::string_view text);
// ".pcap" / ".pcapng".
std::string_view fileExtension(OutputFormat format);

struct CaptureRequest {
  std::string system = "magic-transit";
  CaptureType type = CaptureType::Full;
  std::optional<uint32_t> time_limit;   // seconds
  std::optional<uint32_t> packet_limit; // packets
  std::optional<uint64_t> byte_limit;   // bytes
  FilterV1 filter_v1;
  std::optional<std::string> colo_name;
  std::optional<std::string> destination_conf;
  // Simple captures only: the end of a window of the host's sampled history
  // (docs/history.md), as given (RFC 3339). Whether the host keeps that history, and whether
  // the time is within it, is the daemon's check (it needs the clock and the history).
  std::optional<std::string> offset_time;
  // ringcap's own field (not Cloudflare's): absent means the daemon's configured default.
  std::optional<OutputFormat> output_format;
  // ringcap's own field: the capture's id, supplied by a fleet agent so that every host's
  // capture carries the fleet's id (docs/fleet.md); absent: the daemon makes one. Who may
  // supply one is the daemon's check, not the validator's.
  std::optional<std::string> id;

  // Cloudflare-shaped request fields; absent ones (and an empty filter_v1) are omitted.
  nlohmann::json toJson() const;

  bool operator==(const CaptureRequest &) const = default;
};

enum class RequestMode {
  // The daemon's API: the request model of DESIGN.md exactly.
  Api,
  // The foreground ringcap-dump tool: every field optional (system "magic-transit", type
  // "full" and no limits by default), the same ranges for the limits that are given,
  // packet_limit and byte_limit allowed for both types, and no colo_name, destination_conf,
  // offset_time or output_format (those belong to the daemon's API).
  Tool,
};

// The rule of a capture id (ringcapd's own ids and a request's `id`).
inline constexpr std::string_view kCaptureIdRule =
    "must be 32 lowercase hexadecimal digits (0-9, a-f)";
// Whether `text` has the form of a capture id: 32 lowercase hexadecimal digits.
bool isCaptureIdForm(std::string_view text);

// An RFC 3339 date-time (section 5.6, as the validator accepts it) as ns since the Unix
// epoch; nullopt if `text` is not one. A leap second (ss = 60) counts as the next second.
std::optional<int64_t> parseRfc3339Ns(std::string_view text);

// A client's offset_time: an RFC 3339 date-time as it is, or a time ago, "-" followed by one
// or more of <n>d, <n>h, <n>m, <n>s ("-10m", "-90s", "-2h", "-1h30m"), as the RFC 3339 UTC
// time that long before nowNs (whole seconds). The error names the rule.
Result<std::string> resolveOffsetTime(std::string_view text, int64_t nowNs);

// The keys a request body may have.
std::span<const std::string_view> captureRequestFields();

// Validates a request body. Unknown keys, wrong types, out-of-range values and fields that
// the capture type does not allow are rejected; null stands for an absent field. The error
// (EINVAL) is the first problem found, in a fixed order, and names the field path and the
// rule, such as "time_limit: must be an integer from 1 to 300 (got 0)".
Result<CaptureRequest> validateCaptureRequest(const nlohmann::json &body, RequestMode mode);

} // namespace ringcap
