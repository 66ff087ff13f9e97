// IpAddress: an IPv4 or IPv6 address as filter_v1 takes it.
#pragma once

#include "util/Result.h"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringcap {

struct IpAddress {
  int family = 4; // 4 or 6
  // Network byte order; an IPv4 address fills the first 4 bytes, the rest are zero.
  std::array<uint8_t, 16> bytes{};

  // The canonical text form ("10.1.2.3", "2001:db8::1").
  std::string text() const;

  // Parses a plain address. Rejects empty strings, surrounding whitespace, prefix lengths
  // ("/24"), zone ids ("%eth0") and leading zeros in dotted quads ("01.2.3.4").
  static Result<IpAddress> parse(std::string_view text);

  bool operator==(const IpAddress &) const = default;
};

// User-supplied text as error messages show it: quoted, escaped to printable ASCII and cut
// to 64 bytes (the full length is then appended), so that a message never echoes large or
// hostile input back.
std::string quoteForMessage(std::string_view text);

} // namespace ringcap
