#include "ringcapctl/Output.h"

#include "engine/SlotCounters.h"

#include <algorithm>
#include <cstdio>
#include <fmt/format.h>
#include <sstream>
#include <vector>

namespace ringcap::ctl {

namespace {

using nlohmann::json;

// The order of a record's fields in human output.
const std::vector<std::string> kRecordOrder = [] {
  std::vector<std::string> keys;
  std::istringstream in(
      "id system type status error_message submitted started finished validated stop_reason "
      "time_limit packet_limit byte_limit filter_v1 colo_name destination_conf filename "
      "offset_time history_start output_format");
  for (std::string key; in >> key;)
    keys.push_back(key);
  for (const auto &f : kSlotCounterFields)
    keys.emplace_back(f.name);
  keys.emplace_back(kPacketsLostName);
  for (const char *key : {"file_name", "file_size", "location", "checksum"})
    keys.emplace_back(key);
  return keys;
}();

std::string text(const json &v) {
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_null())
    return "";
  return v.dump();
}

std::string field(const json &record, const char *key) {
  auto it = record.find(key);
  return it == record.end() ? "" : text(*it);
}

std::string filterText(const json &filter) {
  if (!filter.is_object())
    return text(filter);
  if (filter.empty())
    return "(all packets)";
  std::string out;
  for (const auto &[key, value] : filter.items())
    out += (out.empty() ? "" : " ") + key + "=" + text(value);
  return out;
}

std::string formatTable(const std::vector<std::vector<std::string>> &rows) {
  std::vector<size_t> widths;
  for (const auto &row : rows)
    for (size_t i = 0; i < row.size(); i++) {
      widths.resize(std::max(widths.size(), row.size()));
      widths[i] = std::max(widths[i], row[i].size());
    }
  std::string out;
  for (const auto &row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); i++)
      line += i + 1 < row.size() ? fmt::format("{:<{}}  ", row[i], widths[i]) : row[i];
    line.erase(line.find_last_not_of(' ') + 1);
    out += line + "\n";
  }
  return out;
}

} // namespace

std::string shorten(const std::string &s, size_t max) {
  if (s.size() <= max)
    return s;
  size_t n = max > 3 ? max - 3 : 0;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
    n--; // do not cut a UTF-8 sequence
  return s.substr(0, n) + "...";
}

std::string formatRecord(const json &record) {
  std::vector<std::string> keys;
  for (const auto &key : kRecordOrder)
    if (record.contains(key))
      keys.push_back(key);
  for (const auto &[key, value] : record.items()) // sorted
    if (std::find(kRecordOrder.begin(), kRecordOrder.end(), key) == kRecordOrder.end())
      keys.push_back(key);
  size_t width = 0;
  for (const auto &key : keys)
    width = std::max(width, key.size());
  std::string out;
  for (const auto &key : keys) {
    const json &v = record[key];
    out += fmt::format("{:<{}}  {}\n", key, width, key == "filter_v1" ? filterText(v) : text(v));
  }
  return out;
}

std::string formatCaptureTable(const json &records) {
  std::vector<std::vector<std::string>> rows{
      {"ID", "TYPE", "STATUS", "SUBMITTED", "PACKETS", "BYTES", "ERROR"}};
  for (const auto &r : records) {
    std::string packets = field(r, "packets_captured");
    if (r.contains("packet_limit"))
      packets += "/" + field(r, "packet_limit");
    rows.push_back({field(r, "id"), field(r, "type"), field(r, "status"), field(r, "submitted"),
                    packets, field(r, "bytes_captured"), shorten(field(r, "error_message"), 40)});
  }
  return formatTable(rows);
}

std::string formatOwnershipTable(const json &ownerships) {
  std::vector<std::vector<std::string>> rows{
      {"ID", "STATUS", "SUBMITTED", "VALIDATED", "DESTINATION"}};
  for (const auto &o : ownerships)
    rows.push_back({field(o, "id"), field(o, "status"), field(o, "submitted"),
                    field(o, "validated"), field(o, "destination_conf")});
  return formatTable(rows);
}

std::string formatProgress(const json &record, std::time_t now) {
  char clock[16] = "";
  std::tm tm{};
  if (localtime_r(&now, &tm))
    std::strftime(clock, sizeof clock, "%H:%M:%S", &tm);
  std::string status = field(record, "status");
  std::string line = fmt::format("{} {}: {}", clock, status, field(record, "packets_captured"));
  if (record.contains("packet_limit"))
    line += "/" + field(record, "packet_limit");
  line += " packets, " + field(record, "bytes_captured") + " bytes";
  if (auto lost = record.find("packets_lost");
      lost != record.end() && lost->is_number() && lost->get<double>() > 0)
    line += ", " + text(*lost) + " lost";
  auto started = parseTimestamp(field(record, "started"));
  auto limit = record.find("time_limit");
  if (status == "running" && started && limit != record.end() && limit->is_number()) {
    long left = static_cast<long>(*started + limit->get<int64_t>() - now);
    line += fmt::format(", {} s left", std::max(left, 0L));
  }
  if (record.contains("stop_reason"))
    line += " (stop_reason: " + field(record, "stop_reason") + ")";
  if (record.contains("location"))
    line += ", delivered to " + field(record, "location");
  return line;
}

std::optional<std::time_t> parseTimestamp(std::string_view s) {
  std::tm tm{};
  int consumed = 0;
  std::string copy(s);
  if (std::sscanf(copy.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6)
    return std::nullopt;
  std::string_view rest = s.substr(consumed);
  if (!rest.empty() && rest[0] == '.') {
    rest.remove_prefix(1);
    while (!rest.empty() && rest[0] >= '0' && rest[0] <= '9')
      rest.remove_prefix(1);
  }
  long offset = 0;
  int hours, minutes;
  if (rest == "Z" || rest == "z")
    offset = 0;
  else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') &&
           std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &hours, &minutes) == 2)
    offset = (rest[0] == '-' ? -1 : 1) * (hours * 3600L + minutes * 60L);
  else
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::time_t t = timegm(&tm);
  if (t == -1)
    return std::nullopt;
  return t - offset;
}

} // namespace ringcap::ctl
