// Text from outside (a server's answer, a file name, a request) made fit to be stored in a
// record, sent over D-Bus or logged: valid UTF-8, on one line, bounded.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ringcap {

// `s` as valid UTF-8 of at most `maxBytes` bytes (plus "..." when it was cut):
// - well-formed UTF-8 sequences (no overlong forms, no surrogates, at most U+10FFFF) are kept;
// - every other byte >= 0x80 and the control bytes (< 0x20, 0x7F, so also newlines) are
//   written as "\xNN";
// - the cut never splits a character or an escape.
std::string safeText(std::string_view s, size_t maxBytes = 300);

// Whether `s` is valid UTF-8 (as D-Bus and JSON require).
bool isValidUtf8(std::string_view s);

} // namespace ringcap
