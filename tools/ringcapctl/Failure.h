// Failure: why ringcapctl stops, with the exit code that tells it to scripts.
#pragma once

#include "api/ServiceApi.h"

#include <stdexcept>
#include <string>

namespace ringcap::ctl {

// The exit codes are api/ServiceApi.h's, where each ErrorKind has its own.
using api::kExitFailure;    // ringcapd or the bus refused or failed; a capture failed
using api::kExitNotRunning; // ringcapd is not on the bus, or the bus is unreachable
using api::kExitOk;
using api::kExitUsage; // invalid command line

struct Failure : std::runtime_error {
  Failure(int exitCode, const std::string &message)
      : std::runtime_error(message), exitCode(exitCode) {}
  int exitCode;
};

} // namespace ringcap::ctl
