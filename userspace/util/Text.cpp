#include "util/Text.h"

#include <algorithm>
#include <cstdint>

namespace ringcap {
namespace {

// The length of the well-formed UTF-8 sequence at s[i], or 0 when there is none.
size_t utf8SequenceAt(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if ((c & 0xE0) == 0xC0)
    n = 1, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0)
    n = 2, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0)
    n = 3, cp = c & 0x07;
  else
    return 0;
  if (i + n >= s.size())
    return 0;
  for (size_t k = 1; k <= n; k++) {
    const unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n + 1;
}

} // namespace

bool isValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8SequenceAt(s, i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

std::string safeText(std::string_view s, size_t maxBytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::min(s.size(), maxBytes) + 3);
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = utf8SequenceAt(s, i);
    bool escape = n == 0 || c < 0x20 || c == 0x7F;
    size_t add = escape ? 4 : n;
    if (out.size() + add > maxBytes) {
      out += "...";
      break;
    }
    if (escape) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      i += 1;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

} // namespace ringcap
