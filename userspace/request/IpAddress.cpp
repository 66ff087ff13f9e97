#include "request/IpAddress.h"

#include <arpa/inet.h>
#include <cerrno>
#include <nlohmann/json.hpp>

namespace ringcap {

namespace {

constexpr size_t kQuotedBytes = 64;

// True when a dotted-quad part (the whole text for IPv4, the text after the last ':' for
// IPv6) has a decimal group with a leading zero, such as "01" in "01.2.3.4".
bool hasLeadingZero(std::string_view text) {
  const size_t colon = text.rfind(':');
  std::string_view rest = colon == std::string_view::npos ? text : text.substr(colon + 1);
  if (rest.find('.') == std::string_view::npos)
    return false;
  while (!rest.empty()) {
    const size_t dot = rest.find('.');
    const std::string_view group = rest.substr(0, dot);
    if (group.size() > 1 && group[0] == '0')
      return true;
    rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
  }
  return false;
}

} // namespace

std::string quoteForMessage(std::string_view text) {
  const nlohmann::json head = std::string(text.substr(0, kQuotedBytes));
  std::string quoted = head.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  if (text.size() > kQuotedBytes)
    quoted += "... (" + std::to_string(text.size()) + " bytes)";
  return quoted;
}

std::string IpAddress::text() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (!inet_ntop(family == 6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof(buf)))
    return {};
  return buf;
}

Result<IpAddress> IpAddress::parse(std::string_view text) {
  IpAddress addr;
  addr.family = text.find(':') != std::string_view::npos ? 6 : 4;
  // Addresses consist of hex digits, ':' and '.' only: checking that first rules out
  // whitespace, prefix lengths and zone ids, and bounds the copy made for inet_pton.
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN ||
      text.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos ||
      hasLeadingZero(text) ||
      inet_pton(addr.family == 6 ? AF_INET6 : AF_INET, std::string(text).c_str(),
                addr.bytes.data()) != 1)
    return Error{EINVAL, "not an IPv4 or IPv6 address (" + quoteForMessage(text) + ")"};
  return addr;
}

} // namespace ringcap
