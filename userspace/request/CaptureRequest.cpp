#include "request/CaptureRequest.h"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <iterator>
#include <limits>

namespace ringcap {

namespace {

using nlohmann::json;

constexpr std::string_view kFields[] = {
    "system",      "type",          "time_limit", "packet_limit",
    "byte_limit",  "filter_v1",     "colo_name",  "destination_conf",
    "offset_time", "output_format", "id"};
constexpr std::string_view kSystem = "magic-transit";
constexpr uint64_t kMaxTimeLimit = 300;
constexpr uint64_t kMaxPacketLimit = 10000;
constexpr uint64_t kMaxByteLimit = 1000000000;
constexpr size_t kMaxColoName = 64;
constexpr size_t kMaxDestinationConf = 2048;

Error invalid(std::string_view path, std::string_view rule) {
  return Error{EINVAL, std::string(path) + ": " + std::string(rule)};
}

std::string got(const json &value) { return " (got " + describeJsonValue(value) + ")"; }

// Whether a field must, may or must not be given, and the rule to name when it breaks that.
struct Presence {
  enum { Required, Optional, Forbidden } kind;
  std::string_view rule;
};

// The field's value; nullptr when it is absent (or null) and that is allowed.
Result<const json *> lookup(const json &body, const char *key, Presence presence) {
  const auto it = body.find(key);
  const json *value = it == body.end() || it->is_null() ? nullptr : &*it;
  if ((!value && presence.kind == Presence::Required) ||
      (value && presence.kind == Presence::Forbidden))
    return invalid(key, presence.rule);
  return value;
}

template <typename T>
Result<void> readLimit(const json &body, const char *key, Presence presence, uint64_t max,
                       std::optional<T> &out) {
  auto value = lookup(body, key, presence);
  if (!value)
    return value.error();
  if (*value) {
    auto n = parseIntegerField(**value, key, 1, max);
    if (!n)
      return n.error();
    out = static_cast<T>(*n);
  }
  return {};
}

Result<void> readFilter(const json &body, FilterV1 &out) {
  const auto it = body.find("filter_v1");
  if (it == body.end())
    return {};
  auto filter = parseFilterV1(*it);
  if (!filter)
    return filter.error();
  out = *filter;
  return {};
}

bool isDestinationConf(std::string_view s) { return !s.empty() && s.size() <= kMaxDestinationConf; }

bool isColoName(std::string_view s) {
  return !s.empty() && s.size() <= kMaxColoName &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
             std::string_view::npos;
}

int daysInMonth(int year, int month) {
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : days[month - 1];
}

// Days from 1970-01-01 to year-month-day (proleptic Gregorian; H. Hinnant's algorithm).
int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool isRfc3339DateTime(std::string_view s) { return parseRfc3339Ns(s).has_value(); }

// A string field whose value must satisfy check; rule describes what is accepted.
Result<void> readString(const json &body, const char *key, Presence presence,
                        bool (*check)(std::string_view), std::string_view rule,
                        std::optional<std::string> &out) {
  auto value = lookup(body, key, presence);
  if (!value)
    return value.error();
  if (*value) {
    if (!(*value)->is_string() || !check((*value)->get_ref<const std::string &>()))
      return invalid(key, std::string(rule) + got(**value));
    out = (*value)->get<std::string>();
  }
  return {};
}

bool isOutputFormat(std::string_view s) { return parseOutputFormat(s).has_value(); }

bool isIdForm(std::string_view s) { return isCaptureIdForm(s); }

} // namespace

std::string_view toString(CaptureType type) {
  return type == CaptureType::Simple ? "simple" : "full";
}

std::string_view toString(OutputFormat format) {
  return format == OutputFormat::Pcapng ? "pcapng" : "pcap";
}

std::optional<OutputFormat> parseOutputFormat(std::string_view text) {
  if (text == "pcap")
    return OutputFormat::Pcap;
  if (text == "pcapng")
    return OutputFormat::Pcapng;
  return std::nullopt;
}

std::string_view fileExtension(OutputFormat format) {
  return format == OutputFormat::Pcapng ? ".pcapng" : ".pcap";
}

json CaptureRequest::toJson() const {
  json j = {{"system", system}, {"type", std::string(toString(type))}};
  if (time_limit)
    j["time_limit"] = *time_limit;
  if (packet_limit)
    j["packet_limit"] = *packet_limit;
  if (byte_limit)
    j["byte_limit"] = *byte_limit;
  if (!filter_v1.empty())
    j["filter_v1"] = filter_v1.toJson();
  if (colo_name)
    j["colo_name"] = *colo_name;
  if (destination_conf)
    j["destination_conf"] = *destination_conf;
  if (offset_time)
    j["offset_time"] = *offset_time;
  if (output_format)
    j["output_format"] = std::string(toString(*output_format));
  if (id)
    j["id"] = *id;
  return j;
}

std::span<const std::string_view> captureRequestFields() { return kFields; }

bool isCaptureIdForm(std::string_view text) {
  return text.size() == 32 && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// RFC 3339 section 5.6 date-time: YYYY-MM-DD "T" hh:mm:ss [.fraction] ("Z" | +hh:mm | -hh:mm),
// "T" and "Z" in either case, a leap second (ss = 60) allowed, at most 9 fraction digits.
std::optional<int64_t> parseRfc3339Ns(std::string_view s) {
  size_t i = 0;
  auto digits = [&](size_t n, int &out) {
    out = 0;
    for (size_t end = i + n; i < end; ++i) {
      if (i >= s.size() || s[i] < '0' || s[i] > '9')
        return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  auto literal = [&](std::string_view options) {
    if (i >= s.size() || options.find(s[i]) == std::string_view::npos)
      return false;
    ++i;
    return true;
  };
  int year, month, day, hour, minute, second, offsetHour = 0, offsetMinute = 0;
  if (!(digits(4, year) && literal("-") && digits(2, month) && literal("-") && digits(2, day) &&
        literal("Tt") && digits(2, hour) && literal(":") && digits(2, minute) && literal(":") &&
        digits(2, second)))
    return std::nullopt;
  int64_t fraction = 0;
  if (literal(".")) {
    const size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9')
      ++i;
    if (i == start || i - start > 9)
      return std::nullopt;
    for (size_t k = start; k < start + 9; ++k)
      fraction = fraction * 10 + (k < i ? s[k] - '0' : 0);
  }
  int sign = 0;
  if (!literal("Zz")) {
    sign = i < s.size() && s[i] == '-' ? -1 : 1;
    if (!(literal("+-") && digits(2, offsetHour) && literal(":") && digits(2, offsetMinute)))
      return std::nullopt;
  }
  if (!(i == s.size() && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month) &&
        hour <= 23 && minute <= 59 && second <= 60 && offsetHour <= 23 && offsetMinute <= 59))
    return std::nullopt;
  const int64_t secs = daysFromCivil(year, unsigned(month), unsigned(day)) * 86400 + hour * 3600 +
                       minute * 60 + second - sign * (offsetHour * 3600 + offsetMinute * 60);
  // Years 0000-9999 reach beyond int64 nanoseconds (1677-2262): such a time is clamped to the
  // int64 range, so that it is refused as in the future or too old, never wrapped around.
  const __int128 ns = __int128(secs) * 1000000000 + fraction;
  if (ns > std::numeric_limits<int64_t>::max())
    return std::numeric_limits<int64_t>::max();
  if (ns < std::numeric_limits<int64_t>::min())
    return std::numeric_limits<int64_t>::min();
  return int64_t(ns);
}

Result<std::string> resolveOffsetTime(std::string_view text, int64_t nowNs) {
  const std::string rule = "must be an RFC 3339 date-time such as 2026-11-26T10:00:00Z, or a "
                           "time ago such as -10m, -90s, -2h or -1h30m (got \"" +
                           std::string(text) + "\")";
  if (text.empty() || text[0] != '-')
    return parseRfc3339Ns(text) ? Result<std::string>(std::string(text))
                                : Result<std::string>(Error{EINVAL, rule});
  int64_t ago = 0;
  size_t i = 1;
  if (i == text.size())
    return Error{EINVAL, rule};
  while (i < text.size()) {
    int64_t n = 0;
    const size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && i - start < 9)
      n = n * 10 + (text[i++] - '0');
    if (i == start || i == text.size())
      return Error{EINVAL, rule};
    switch (text[i++]) {
    case 'd':
      ago += n * 86400;
      break;
    case 'h':
      ago += n * 3600;
      break;
    case 'm':
      ago += n * 60;
      break;
    case 's':
      ago += n;
      break;
    default:
      return Error{EINVAL, rule};
    }
  }
  const time_t at = time_t(nowNs / 1000000000 - ago);
  struct tm tm {};
  char buf[32];
  if (!gmtime_r(&at, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
    return Error{EINVAL, rule};
  return std::string(buf);
}

Result<CaptureRequest> validateCaptureRequest(const json &body, RequestMode mode) {
  if (!body.is_object())
    return invalid("request", "must be a JSON object" + got(body));
  for (const auto &item : body.items())
    if (std::find(std::begin(kFields), std::end(kFields), item.key()) == std::end(kFields))
      return invalid(describeJsonKey(item.key()), "unknown field");

  const bool api = mode == RequestMode::Api;
  const Presence requiredField{Presence::Required, "required"};
  const Presence optionalField{Presence::Optional, ""};
  CaptureRequest req;

  auto system = lookup(body, "system", api ? requiredField : optionalField);
  if (!system)
    return system.error();
  if (*system && (!(*system)->is_string() || (*system)->get_ref<const std::string &>() != kSystem))
    return invalid("system", "must be \"magic-transit\"" + got(**system));
  req.system = kSystem;

  auto type = lookup(body, "type", api ? requiredField : optionalField);
  if (!type)
    return type.error();
  if (*type) {
    if (**type == "simple" || **type == "sample")
      req.type = CaptureType::Simple;
    else if (**type == "full")
      req.type = CaptureType::Full;
    else
      return invalid("type", "must be \"simple\", \"full\" or \"sample\"" + got(**type));
  } else {
    req.type = CaptureType::Full;
  }
  const bool simple = req.type == CaptureType::Simple;

  const Presence fullOnly{Presence::Forbidden, "only allowed for full captures"};
  const Presence apiOnly{Presence::Forbidden,
                         "not accepted by ringcap-dump (it belongs to the daemon's API)"};
  const Presence packetLimit =
      api && simple ? Presence{Presence::Required, "required for simple captures"} : optionalField;
  const Presence fullField =
      !api ? apiOnly
           : (simple ? fullOnly : Presence{Presence::Required, "required for full captures"});
  const Presence offsetTime =
      !api ? apiOnly
           : (simple ? optionalField
                     : Presence{Presence::Forbidden, "only allowed for simple captures"});

  Result<void> r = readLimit(body, "time_limit", api ? requiredField : optionalField, kMaxTimeLimit,
                             req.time_limit);
  if (r)
    r = readLimit(body, "packet_limit", packetLimit, kMaxPacketLimit, req.packet_limit);
  if (r)
    r = readLimit(body, "byte_limit", api && simple ? fullOnly : optionalField, kMaxByteLimit,
                  req.byte_limit);
  if (r)
    r = readFilter(body, req.filter_v1);
  if (r)
    r = readString(body, "colo_name", fullField, isColoName,
                   "must be 1 to 64 letters, digits, '_' or '-'", req.colo_name);
  if (r)
    r = readString(body, "destination_conf", fullField, isDestinationConf,
                   "must be a non-empty string of at most 2048 bytes", req.destination_conf);
  // Its form only: whether the host keeps the history it names is the daemon's check.
  if (r)
    r = readString(body, "offset_time", offsetTime, isRfc3339DateTime,
                   "must be an RFC 3339 date-time such as \"2026-11-26T10:00:00Z\"",
                   req.offset_time);
  std::optional<std::string> format;
  if (r)
    r = readString(body, "output_format", api ? optionalField : apiOnly, isOutputFormat,
                   "must be \"pcap\" or \"pcapng\"", format);
  // Who may supply an id is the daemon's check (the caller); its form is checked here.
  if (r)
    r = readString(body, "id", api ? optionalField : apiOnly, isIdForm, kCaptureIdRule, req.id);
  if (!r)
    return r.error();
  if (format)
    req.output_format = parseOutputFormat(*format);
  return req;
}

} // namespace ringcap
