#include "request/FilterV1.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <iterator>

namespace ringcap {

namespace {

using nlohmann::json;

constexpr std::string_view kFields[] = {"source_address", "destination_address", "source_port",
                                        "destination_port", "protocol"};

Error invalid(std::string_view path, std::string_view rule) {
  return Error{EINVAL, std::string(path) + ": " + std::string(rule)};
}

// The value of a key, or nullptr when it is absent or null.
const json *member(const json &object, const char *key) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

const char *familyName(int family) { return family == 6 ? "IPv6" : "IPv4"; }

} // namespace

bool FilterV1::empty() const {
  return !source_address && !destination_address && !source_port && !destination_port && !protocol;
}

ringcap_filter FilterV1::toKernel() const {
  ringcap_filter k;
  std::memset(&k, 0, sizeof(k));
  if (source_address) {
    k.fields |= RINGCAP_F_SRC_ADDR;
    k.family = source_address->family == 6 ? RINGCAP_FAMILY_IPV6 : RINGCAP_FAMILY_IPV4;
    std::memcpy(k.src_addr, source_address->bytes.data(), sizeof(k.src_addr));
  }
  if (destination_address) {
    k.fields |= RINGCAP_F_DST_ADDR;
    k.family = destination_address->family == 6 ? RINGCAP_FAMILY_IPV6 : RINGCAP_FAMILY_IPV4;
    std::memcpy(k.dst_addr, destination_address->bytes.data(), sizeof(k.dst_addr));
  }
  if (source_port) {
    k.fields |= RINGCAP_F_SRC_PORT;
    k.src_port = htons(*source_port);
  }
  if (destination_port) {
    k.fields |= RINGCAP_F_DST_PORT;
    k.dst_port = htons(*destination_port);
  }
  if (protocol) {
    k.fields |= RINGCAP_F_PROTOCOL;
    k.protocol = *protocol;
  }
  return k;
}

json FilterV1::toJson() const {
  json j = json::object();
  if (source_address)
    j["source_address"] = source_address->text();
  if (destination_address)
    j["destination_address"] = destination_address->text();
  if (source_port)
    j["source_port"] = *source_port;
  if (destination_port)
    j["destination_port"] = *destination_port;
  if (protocol)
    j["protocol"] = *protocol;
  return j;
}

Result<FilterV1> parseFilterV1(const json &value) {
  FilterV1 filter;
  if (value.is_null())
    return filter;
  if (!value.is_object())
    return invalid("filter_v1", "must be an object (got " + describeJsonValue(value) + ")");
  for (const auto &item : value.items())
    if (std::find(std::begin(kFields), std::end(kFields), item.key()) == std::end(kFields))
      return invalid("filter_v1." + describeJsonKey(item.key()), "unknown field");

  const struct {
    const char *key;
    std::optional<IpAddress> FilterV1::*field;
  } addresses[] = {{"source_address", &FilterV1::source_address},
                   {"destination_address", &FilterV1::destination_address}};
  for (const auto &[key, field] : addresses) {
    const json *v = member(value, key);
    if (!v)
      continue;
    const std::string path = std::string("filter_v1.") + key;
    if (!v->is_string())
      return invalid(path, "must be a string with an IPv4 or IPv6 address (got " +
                               describeJsonValue(*v) + ")");
    auto addr = IpAddress::parse(v->get_ref<const std::string &>());
    if (!addr)
      return invalid(path, addr.error().message);
    filter.*field = *addr;
  }

  const struct {
    const char *key;
    std::optional<uint16_t> FilterV1::*field;
  } ports[] = {{"source_port", &FilterV1::source_port},
               {"destination_port", &FilterV1::destination_port}};
  for (const auto &[key, field] : ports) {
    if (const json *v = member(value, key)) {
      auto port = parseIntegerField(*v, std::string("filter_v1.") + key, 0, 65535);
      if (!port)
        return port.error();
      filter.*field = static_cast<uint16_t>(*port);
    }
  }

  if (const json *v = member(value, "protocol")) {
    auto protocol = parseIntegerField(*v, "filter_v1.protocol", 0, 255);
    if (!protocol)
      return protocol.error();
    filter.protocol = static_cast<uint8_t>(*protocol);
  }

  if (filter.source_address && filter.destination_address &&
      filter.source_address->family != filter.destination_address->family)
    return invalid("filter_v1.destination_address",
                   std::string("must be the same address family as source_address (got ") +
                       familyName(filter.destination_address->family) + ", source_address is " +
                       familyName(filter.source_address->family) + ")");
  return filter;
}

std::string describeJsonValue(const json &value) {
  switch (value.type()) {
  case json::value_t::string:
    return quoteForMessage(value.get_ref<const std::string &>());
  case json::value_t::object:
    return "an object";
  case json::value_t::array:
    return "an array";
  case json::value_t::binary:
    return "binary data";
  default:
    return value.dump(-1, ' ', true, json::error_handler_t::replace);
  }
}

std::span<const std::string_view> filterV1Fields() { return kFields; }

std::string describeJsonKey(std::string_view key) {
  const bool plain =
      !key.empty() && key.size() <= 64 &&
      key.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
          std::string_view::npos;
  return plain ? std::string(key) : quoteForMessage(key);
}

Result<uint64_t> parseIntegerField(const json &value, std::string_view path, uint64_t lo,
                                   uint64_t hi) {
  // JSON parsing yields number_unsigned for non-negative integers, but a json built in code
  // (or converted from D-Bus) may hold a non-negative number_integer.
  std::optional<uint64_t> n;
  if (value.is_number_unsigned())
    n = value.get<uint64_t>();
  else if (value.is_number_integer() && value.get<int64_t>() >= 0)
    n = static_cast<uint64_t>(value.get<int64_t>());
  if (!n || *n < lo || *n > hi)
    return invalid(path, "must be an integer from " + std::to_string(lo) + " to " +
                             std::to_string(hi) + " (got " + describeJsonValue(value) + ")");
  return *n;
}

} // namespace ringcap
