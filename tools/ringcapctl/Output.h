// Human-readable output of capture and ownership records.
#pragma once

#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace ringcap::ctl {

// One "key  value" line per field, in a fixed order (unknown keys last, sorted).
std::string formatRecord(const nlohmann::json &record);

// Tables with a header line: captures (id, type, status, submitted, packets captured / limit,
// bytes, error shortened) and ownerships (id, status, submitted, validated, destination).
std::string formatCaptureTable(const nlohmann::json &records);
std::string formatOwnershipTable(const nlohmann::json &ownerships);

// A progress line: local time, status, packets captured / limit, bytes, packets lost when
// any, the time left while running (from started + time_limit) and the stop reason at the end.
std::string formatProgress(const nlohmann::json &record, std::time_t now);

// Seconds since the epoch of an RFC 3339 timestamp ("2024-05-01T10:00:00.5Z", "...+02:00").
std::optional<std::time_t> parseTimestamp(std::string_view text);

// s cut to at most max characters, ending in "..." when cut.
std::string shorten(const std::string &s, size_t max);

} // namespace ringcap::ctl
