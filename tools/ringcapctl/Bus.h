// Bus: ringcapctl's connection to the system bus and calls to ringcapd's manager object.
#pragma once

#include "api/ServiceApi.h"
#include "ringcapctl/Failure.h"

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <systemd/sd-bus.h>

namespace ringcap::ctl {

using api::kCaptureInterface;
using api::kManagerInterface;
using api::kManagerPath;
inline constexpr const char *kService = api::kBusName;

struct MessageUnref {
  void operator()(sd_bus_message *m) const { sd_bus_message_unref(m); }
};
using Message = std::unique_ptr<sd_bus_message, MessageUnref>;

// The Failure for a D-Bus error (r is the negative errno that came with it): the name's
// ErrorKind and its exit code (api::errorKindFromDbusName, api::exitCode: 3 when nothing
// owns ringcapd's name, 1 otherwise), with "<message> (<name>)".
Failure failureFromError(const sd_bus_error *error, int r);

class Bus {
public:
  // Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS when set) and waits for the bus to
  // accept the connection; Failure with exit code 3 when it cannot be reached.
  Bus();
  ~Bus();
  Bus(const Bus &) = delete;
  Bus &operator=(const Bus &) = delete;

  sd_bus *get() const { return bus_; }

  // Calls a method of the manager object; append adds the arguments. Throws Failure.
  Message call(const char *method, const std::function<void(sd_bus_message *)> &append = {});
  // A method that takes strings.
  Message call(const char *method, const std::string &a);
  Message call(const char *method, const std::string &a, const std::string &b);

private:
  sd_bus *bus_ = nullptr;
};

// Reads the a{sv} / aa{sv} at the reply's current position; Failure (1) when malformed.
nlohmann::json readRecord(sd_bus_message *m);
nlohmann::json readRecords(sd_bus_message *m);

} // namespace ringcap::ctl
