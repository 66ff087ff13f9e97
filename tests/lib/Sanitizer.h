// Whether this test binary (and so the ringcapd of the same build) runs under
// AddressSanitizer, whose quarantine keeps freed memory and whose redzones pad every
// allocation: memory bounds measured without it do not hold there.
#pragma once

namespace ringcap::testsupport {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

} // namespace ringcap::testsupport
