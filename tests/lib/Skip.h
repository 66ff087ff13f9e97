// How a GoogleTest test of ringcap skips (docs/testing.md, "How a check is written"): only
// through RINGCAP_SKIP, which fails the test under CI=true and otherwise skips it loudly.
// ctest reports such a test as Skipped, not Passed: every GoogleTest binary is registered
// with ringcap_gtest() (tests/CMakeLists.txt), which sets SKIP_REGULAR_EXPRESSION.
// tests/lib/test_checks.sh fails when GTEST_SKIP is used anywhere else.
#pragma once

#include <cstdlib>
#include <cstring>
#include <gtest/gtest.h>
#include <iostream>
#include <string>

namespace ringcap::testsupport {

// CI sets CI=true (.ci/run); only "true" counts.
inline bool runningInCi() {
  const char *ci = std::getenv("CI");
  return ci != nullptr && std::strcmp(ci, "true") == 0;
}

} // namespace ringcap::testsupport

// Ends the calling test (a function returning void): a failure under CI=true, a skip that
// says why otherwise.
#define RINGCAP_SKIP(why)                                                                          \
  do {                                                                                             \
    const std::string ringcapSkipWhy_ = (why);                                                     \
    if (::ringcap::testsupport::runningInCi())                                                     \
      GTEST_FAIL() << "CI=true, so this is a failure rather than a skip: " << ringcapSkipWhy_;     \
    std::cerr << "SKIP: " << ringcapSkipWhy_ << "\n";                                              \
    GTEST_SKIP() << ringcapSkipWhy_;                                                               \
  } while (0)
