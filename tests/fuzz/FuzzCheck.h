// Checks shared by the fuzz targets: a broken property prints what broke and aborts, so that
// libFuzzer saves the input as a crash.
#pragma once

#include "util/Result.h"

#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringcap::fuzz {

[[noreturn]] inline void fail(const std::string &what) {
  std::fprintf(stderr, "fuzz property broken: %s\n", what.c_str());
  std::abort();
}

// FUZZ_CHECK(condition, what): `what` (a std::string) is built only when the check fails.
#define FUZZ_CHECK(condition, what)                                                            \
  do {                                                                                         \
    if (!(condition))                                                                          \
      ::ringcap::fuzz::fail(what);                                                             \
  } while (0)

// A validation error of user input: an EINVAL-style code and a message that is short and
// printable (user text appears in messages only quoted, escaped and cut to 64 bytes).
inline void checkUserError(const Error &error, const char *where) {
  FUZZ_CHECK(error.code != 0, std::string(where) + ": error without a code: " + error.message);
  FUZZ_CHECK(!error.message.empty(), std::string(where) + ": empty error message");
  FUZZ_CHECK(error.message.size() <= 1024, std::string(where) + ": error message of " +
                                          std::to_string(error.message.size()) + " bytes");
  for (unsigned char c : error.message)
    FUZZ_CHECK(c >= 0x20 && c < 0x7f, std::string(where) + ": unprintable byte in error message: " +
                                     error.message);
}

// Whether s is valid UTF-8 as D-Bus requires it of every string (no overlong forms, no
// surrogates, nothing above U+10FFFF).
inline bool isValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = s[i];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size())
      return false;
    for (size_t k = 1; k <= n; k++) {
      const unsigned char cc = s[i + k];
      if ((cc & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

} // namespace ringcap::fuzz
