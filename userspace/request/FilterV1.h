// FilterV1: Cloudflare's filter_v1, the packet filter of a capture request.
#pragma once

#include "capture_abi.h"
#include "request/IpAddress.h"
#include "util/Result.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ringcap {

// Every given field must match; an empty filter matches all packets.
struct FilterV1 {
  std::optional<IpAddress> source_address, destination_address;
  std::optional<uint16_t> source_port, destination_port;
  std::optional<uint8_t> protocol;

  bool empty() const;
  // Kernel form: addresses and ports in network byte order.
  ringcap_filter toKernel() const;
  // Cloudflare's shape with absent fields omitted; {} when empty.
  nlohmann::json toJson() const;

  bool operator==(const FilterV1 &) const = default;
};

// The keys a filter_v1 object may have.
std::span<const std::string_view> filterV1Fields();

// Parses a filter_v1 object (null is an empty filter). Errors (EINVAL) name the field path,
// such as "filter_v1.source_port: must be an integer from 0 to 65535 (got 70000)".
Result<FilterV1> parseFilterV1(const nlohmann::json &value);

// Helpers shared by the request parsers.

// A JSON value as error messages show it: strings quoted (see quoteForMessage), numbers,
// booleans and null as JSON, containers as "an object" / "an array".
std::string describeJsonValue(const nlohmann::json &value);

// A JSON object key as error messages show it in a field path: plain when it is a short
// identifier, quoted otherwise.
std::string describeJsonKey(std::string_view key);

// A JSON integer from lo to hi. Floats (even 10.0), strings, booleans and null are rejected,
// and so is every value outside the range; the error is
// "<path>: must be an integer from <lo> to <hi> (got <value>)".
Result<uint64_t> parseIntegerField(const nlohmann::json &value, std::string_view path, uint64_t lo,
                                   uint64_t hi);

} // namespace ringcap
