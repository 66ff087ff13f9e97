#include "ringcapctl/Bus.h"

#include "dbus/Variant.h"

#include <cstdlib>
#include <cstring>
#include <string_view>

namespace ringcap::ctl {

Failure failureFromError(const sd_bus_error *error, int r) {
  if (!error || !error->name)
    return Failure(kExitFailure, std::string("D-Bus call failed: ") + std::strerror(-r));
  std::string name = error->name;
  std::string message = error->message ? error->message : name;
  ErrorKind kind = api::errorKindFromDbusName(name);
  int exit = api::exitCode(kind);
  if (kind == ErrorKind::Unavailable && name.starts_with("org.freedesktop.DBus.Error.Spawn."))
    return Failure(exit, "ringcapd could not be started: " + message + " (" + name + ")");
  if (kind == ErrorKind::Unavailable)
    return Failure(exit, std::string("ringcapd is not running on the system bus (") + kService +
                             " has no owner)");
  if (kind == ErrorKind::AccessDenied && message.starts_with("Rejected send message"))
    message = "the bus refused the call: only root and members of the group ringcap may call "
              "ringcapd"; // the bus's own message is a dump of its policy match
  return Failure(exit, message + " (" + name + ")");
}

Bus::Bus() {
  int r = sd_bus_open_system(&bus_);
  // The unique name is known once the bus has accepted the connection (Hello).
  const char *unique = nullptr;
  if (r >= 0)
    r = sd_bus_get_unique_name(bus_, &unique);
  if (r < 0) {
    bus_ = sd_bus_flush_close_unref(bus_);
    const char *address = secure_getenv("DBUS_SYSTEM_BUS_ADDRESS");
    throw Failure(kExitNotRunning,
                  std::string("ringcapd cannot be reached: the system bus is unreachable (") +
                      (address ? address : "unix:path=/run/dbus/system_bus_socket") + ": " +
                      std::strerror(-r) + ")");
  }
}

Bus::~Bus() { sd_bus_flush_close_unref(bus_); }

Message Bus::call(const char *method, const std::function<void(sd_bus_message *)> &append) {
  sd_bus_message *raw = nullptr;
  int r =
      sd_bus_message_new_method_call(bus_, &raw, kService, kManagerPath, kManagerInterface, method);
  if (r < 0)
    throw Failure(kExitFailure, std::string("building the D-Bus call: ") + std::strerror(-r));
  Message m(raw);
  if (append)
    append(m.get());
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message *reply = nullptr;
  r = sd_bus_call(bus_, m.get(), 0, &error, &reply);
  if (r < 0) {
    Failure f = failureFromError(&error, r);
    sd_bus_error_free(&error);
    throw f;
  }
  return Message(reply);
}

Message Bus::call(const char *method, const std::string &a) {
  return call(method, [&](sd_bus_message *m) {
    if (int r = sd_bus_message_append(m, "s", a.c_str()); r < 0)
      throw Failure(kExitUsage, "\"" + a + "\": cannot be sent: " + std::strerror(-r));
  });
}

Message Bus::call(const char *method, const std::string &a, const std::string &b) {
  return call(method, [&](sd_bus_message *m) {
    if (int r = sd_bus_message_append(m, "ss", a.c_str(), b.c_str()); r < 0)
      throw Failure(kExitUsage,
                    "\"" + a + "\", \"" + b + "\": cannot be sent: " + std::strerror(-r));
  });
}

nlohmann::json readRecord(sd_bus_message *m) {
  auto v = readVariantDict(m);
  if (!v)
    throw Failure(kExitFailure, "unexpected reply from ringcapd: " + v.error().message);
  return *v;
}

nlohmann::json readRecords(sd_bus_message *m) {
  auto v = readVariantDictArray(m);
  if (!v)
    throw Failure(kExitFailure, "unexpected reply from ringcapd: " + v.error().message);
  return *v;
}

} // namespace ringcap::ctl
