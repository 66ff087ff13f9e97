#include "api/Client.h"

#include "dbus/Variant.h"
#include "util/Text.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>

namespace ringcap::api {

Error errorFromBus(const sd_bus_error *error, int r) {
  if (!error || !error->name)
    return Error::fromErrno(r, "D-Bus call failed");
  std::string name = error->name;
  std::string message = error->message ? error->message : name;
  ErrorKind kind = errorKindFromDbusName(name);
  Error e{kind, message, r < 0 ? -r : r};
  e.busName = name;
  if (kind == ErrorKind::Unavailable && name.starts_with("org.freedesktop.DBus.Error.Spawn."))
    e.message = "ringcapd could not be started: " + message;
  else if (kind == ErrorKind::Unavailable)
    e.message =
        std::string("ringcapd is not running on the system bus (") + kBusName + " has no owner)";
  else if (kind == ErrorKind::AccessDenied && message.starts_with("Rejected send message"))
    e.message = "the bus refused the call: only root and members of the group ringcap may call "
                "ringcapd"; // the bus's own message is a dump of its policy match
  return e;
}

namespace {

Result<std::unique_ptr<Client>> unreachable(int r, const std::string &address) {
  return Error{ErrorKind::Unavailable,
               "ringcapd cannot be reached: the system bus is unreachable (" + address + ": " +
                   std::strerror(-r) + ")",
               -r};
}

// Waits for the bus to accept the connection: the unique name is known after Hello.
int helloDone(sd_bus *bus) {
  const char *unique = nullptr;
  return sd_bus_get_unique_name(bus, &unique);
}

} // namespace

Result<std::unique_ptr<Client>> Client::connectSystem() {
  sd_bus *bus = nullptr;
  int r = sd_bus_open_system(&bus);
  if (r >= 0)
    r = helloDone(bus);
  if (r < 0) {
    sd_bus_flush_close_unref(bus);
    const char *address = secure_getenv("DBUS_SYSTEM_BUS_ADDRESS");
    return unreachable(r, address ? address : "unix:path=/run/dbus/system_bus_socket");
  }
  return std::unique_ptr<Client>(new Client(bus));
}

Result<std::unique_ptr<Client>> Client::connect(const std::string &address) {
  sd_bus *bus = nullptr;
  int r = sd_bus_new(&bus);
  if (r >= 0)
    r = sd_bus_set_address(bus, address.c_str());
  if (r >= 0)
    r = sd_bus_set_bus_client(bus, 1);
  if (r >= 0)
    r = sd_bus_start(bus);
  if (r >= 0)
    r = helloDone(bus);
  if (r < 0) {
    sd_bus_flush_close_unref(bus);
    return unreachable(r, address);
  }
  return std::unique_ptr<Client>(new Client(bus));
}

Client::~Client() { sd_bus_flush_close_unref(bus_); }

Result<Message> Client::call(const char *method,
                             const std::function<Result<void>(sd_bus_message *)> &append,
                             uint64_t timeoutUsec) {
  sd_bus_message *raw = nullptr;
  int r =
      sd_bus_message_new_method_call(bus_, &raw, kBusName, kManagerPath, kManagerInterface, method);
  if (r < 0)
    return Error::fromErrno(r, "building the D-Bus call");
  Message m(raw);
  if (append)
    if (auto a = append(m.get()); !a)
      return a.error();
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message *reply = nullptr;
  r = sd_bus_call(bus_, m.get(), timeoutUsec, &error, &reply);
  if (r < 0) {
    Error e = errorFromBus(&error, r);
    sd_bus_error_free(&error);
    return e;
  }
  return Message(reply);
}

Result<Message> Client::callStrings(const char *method, const std::string &a) {
  return call(method, [&](sd_bus_message *m) -> Result<void> {
    if (int r = sd_bus_message_append(m, "s", a.c_str()); r < 0)
      return Error{ErrorKind::InvalidRequest,
                   "\"" + safeText(a) + "\": cannot be sent: " + std::strerror(-r), -r};
    return {};
  });
}

Result<Message> Client::callStrings(const char *method, const std::string &a,
                                    const std::string &b) {
  return call(method, [&](sd_bus_message *m) -> Result<void> {
    if (int r = sd_bus_message_append(m, "ss", a.c_str(), b.c_str()); r < 0)
      return Error{ErrorKind::InvalidRequest,
                   "\"" + safeText(a) + "\", \"" + safeText(b) +
                       "\": cannot be sent: " + std::strerror(-r),
                   -r};
    return {};
  });
}

Result<CreatedCapture> Client::createCapture(const nlohmann::json &request) {
  auto reply = call("CreateCapture", [&](sd_bus_message *m) -> Result<void> {
    if (auto w = writeVariantDict(m, request); !w)
      return Error{ErrorKind::InvalidRequest, w.error().message, w.error().code};
    return {};
  });
  if (!reply)
    return reply.error();
  const char *path = nullptr;
  if (int r = sd_bus_message_read(reply->get(), "o", &path); r < 0)
    return Error::fromErrno(r, "unexpected reply from ringcapd");
  CreatedCapture created{path, {}};
  auto record = readRecord(reply->get());
  if (!record)
    return record.error();
  created.record = std::move(*record);
  return created;
}

Result<nlohmann::json> Client::getCapture(const std::string &id) {
  auto reply = callStrings("GetCapture", id);
  if (!reply)
    return reply.error();
  return readRecord(reply->get());
}

Result<nlohmann::json> Client::listCaptures() {
  auto reply = call("ListCaptures");
  if (!reply)
    return reply.error();
  return readRecords(reply->get());
}

Result<void> Client::stopCapture(const std::string &id) {
  auto reply = callStrings("StopCapture", id);
  if (!reply)
    return reply.error();
  return {};
}

Result<UniqueFd> Client::openCaptureFile(const std::string &id) {
  auto reply = callStrings("OpenCaptureFile", id);
  if (!reply)
    return reply.error();
  int received = -1;
  if (int r = sd_bus_message_read(reply->get(), "h", &received); r < 0)
    return Error::fromErrno(r, "unexpected reply from ringcapd");
  // The message owns the descriptor it carries: keep a duplicate of our own.
  int fd = fcntl(received, F_DUPFD_CLOEXEC, 3);
  if (fd < 0)
    return Error::fromErrno(errno, "receiving the capture file");
  return UniqueFd(fd);
}

Result<nlohmann::json> Client::createOwnership(const std::string &destination) {
  auto reply = callStrings("CreateOwnership", destination);
  if (!reply)
    return reply.error();
  return readRecord(reply->get());
}

Result<nlohmann::json> Client::validateOwnership(const std::string &destination,
                                                 const std::string &challenge) {
  auto reply = callStrings("ValidateOwnership", destination, challenge);
  if (!reply)
    return reply.error();
  return readRecord(reply->get());
}

Result<nlohmann::json> Client::listOwnerships() {
  auto reply = call("ListOwnerships");
  if (!reply)
    return reply.error();
  return readRecords(reply->get());
}

Result<void> Client::deleteOwnership(const std::string &id) {
  auto reply = callStrings("DeleteOwnership", id);
  if (!reply)
    return reply.error();
  return {};
}

Result<nlohmann::json> Client::importOwnership(const std::string &destination) {
  auto reply = callStrings("ImportOwnership", destination);
  if (!reply)
    return reply.error();
  return readRecord(reply->get());
}

Result<nlohmann::json> readRecord(sd_bus_message *m) {
  auto v = readVariantDict(m);
  if (!v)
    return Error{ErrorKind::Failed, "unexpected reply from ringcapd: " + v.error().message};
  return v;
}

Result<nlohmann::json> readRecords(sd_bus_message *m) {
  auto v = readVariantDictArray(m);
  if (!v)
    return Error{ErrorKind::Failed, "unexpected reply from ringcapd: " + v.error().message};
  return v;
}

} // namespace ringcap::api
