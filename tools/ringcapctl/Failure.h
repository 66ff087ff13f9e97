// Failure: why ringcapctl stops, with the exit code that tells it to scripts.
#pragma once

#include <stdexcept>
#include <string>

namespace ringcap::ctl {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;    // ringcapd or the bus refused or failed; a capture failed
constexpr int kExitUsage = 2;      // invalid command line
constexpr int kExitNotRunning = 3; // ringcapd is not on the bus, or the bus is unreachable

struct Failure : std::runtime_error {
  Failure(int exitCode, const std::string &message)
      : std::runtime_error(message), exitCode(exitCode) {}
  int exitCode;
};

} // namespace ringcap::ctl
