// The HTTP(S) server around Api: cpp-httplib with a bounded pool of request threads, body
// and time limits, the request log, and the file stream of downloads.
#pragma once

#include "Api.h"
#include "GatewayConfig.h"

#include <functional>

namespace ringcap::gateway {

// Serves until stopRequested() (polled by the caller's thread through `wait`) returns; calls
// `ready` with the address it listens on once it accepts connections. Returns 0 after a clean
// stop, 1 when it could not start (logged). `backend`: the one backend every request thread
// uses (fleet mode's FleetBackend, safe to call from several threads); null: each request
// builds a ClientBackend (the thread's D-Bus connection to ringcapd).
int serve(const GatewayConfig &config, Api &api,
          const std::function<void(const std::string &)> &ready, const std::function<void()> &wait,
          Backend *backend = nullptr);

} // namespace ringcap::gateway
