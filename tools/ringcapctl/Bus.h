// Bus: ringcapctl's view of api::Client: its errors become Failures with exit codes.
#pragma once

#include "api/Client.h"
#include "ringcapctl/Failure.h"

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <systemd/sd-bus.h>

namespace ringcap::ctl {

using api::Message;

// The Failure for an error of api::Client: its kind's exit code (api::exitCode: 3 when
// ringcapd is not on the bus or the bus is unreachable, 1 otherwise), with
// "<message> (<D-Bus error name>)" when ringcapd or the bus sent the error.
Failure failureFrom(const Error &error);

template <typename T> T unwrap(Result<T> result) {
  if (!result)
    throw failureFrom(result.error());
  return std::move(*result);
}
inline void unwrap(Result<void> result) {
  if (!result)
    throw failureFrom(result.error());
}

class Bus {
public:
  // Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS when set); Failure with exit code 3
  // when it cannot be reached.
  Bus() : client_(unwrap(api::Client::connectSystem())) {}

  api::Client &client() { return *client_; }
  api::Client *operator->() { return client_.get(); }
  sd_bus *get() const { return client_->bus(); }

private:
  std::unique_ptr<api::Client> client_;
};

// Reads the a{sv} at the reply's current position; Failure (1) when malformed.
inline nlohmann::json readRecord(sd_bus_message *m) { return unwrap(api::readRecord(m)); }

} // namespace ringcap::ctl
