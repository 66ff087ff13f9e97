// Client: a connection to ringcapd on the system bus and its methods, shared by ringcapctl,
// ringcap-gateway and the tests. Every call returns a Result: the reply, or an Error whose
// kind comes from the D-Bus error name (api::errorKindFromDbusName) and whose message is
// ringcapd's own. Exit codes and HTTP statuses are the caller's business (api/ServiceApi.h).
//
// A Client is one sd-bus connection: use it from one thread at a time.
#pragma once

#include "api/ServiceApi.h"
#include "util/Result.h"
#include "util/UniqueFd.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <systemd/sd-bus.h>

namespace ringcap::api {

struct MessageUnref {
  void operator()(sd_bus_message *m) const { sd_bus_message_unref(m); }
};
using Message = std::unique_ptr<sd_bus_message, MessageUnref>;

// The Error for a failed call (r: the negative errno that came with it): the kind of the
// error's name, and the daemon's message followed by " (<name>)". Names that mean ringcapd is
// not on the bus give Unavailable with a message that says so; the bus's policy refusal gives
// AccessDenied with a message naming who may call.
Error errorFromBus(const sd_bus_error *error, int r);

// CreateCapture's reply: the capture's object path and its record.
struct CreatedCapture {
  std::string path;
  nlohmann::json record;
};

class Client {
public:
  // Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS when set). Unavailable when the bus
  // cannot be reached.
  static Result<std::unique_ptr<Client>> connectSystem();
  // Connects to the bus at `address` ("unix:path=...").
  static Result<std::unique_ptr<Client>> connect(const std::string &address);
  ~Client();
  Client(const Client &) = delete;
  Client &operator=(const Client &) = delete;

  sd_bus *bus() const { return bus_; }

  // Calls a method of the manager object; `append` adds the arguments (an error it returns
  // is returned as it is, and nothing is sent). timeoutUsec 0: sd-bus's default (25 s).
  Result<Message> call(const char *method,
                       const std::function<Result<void>(sd_bus_message *)> &append = {},
                       uint64_t timeoutUsec = 0);

  // The manager's methods (docs/dbus-api.md). A request that cannot be sent as a{sv}
  // (writeVariantDict's rules) is InvalidRequest, naming the member.
  Result<CreatedCapture> createCapture(const nlohmann::json &request);
  Result<nlohmann::json> getCapture(const std::string &id);
  Result<nlohmann::json> listCaptures(); // a JSON array, newest first
  Result<void> stopCapture(const std::string &id);
  // The capture's file, read-only, close-on-exec.
  Result<UniqueFd> openCaptureFile(const std::string &id);
  Result<nlohmann::json> createOwnership(const std::string &destination);
  Result<nlohmann::json> validateOwnership(const std::string &destination,
                                           const std::string &challenge);
  Result<nlohmann::json> listOwnerships(); // a JSON array
  Result<void> deleteOwnership(const std::string &id);
  // Records a fleet's validated ownership without a challenge (root or fleet.agent_user only).
  Result<nlohmann::json> importOwnership(const std::string &destination);

private:
  explicit Client(sd_bus *bus) : bus_(bus) {}
  Result<Message> callStrings(const char *method, const std::string &a);
  Result<Message> callStrings(const char *method, const std::string &a, const std::string &b);

  sd_bus *bus_ = nullptr;
};

// Reads the a{sv} / aa{sv} at the reply's current position; Failed when malformed.
Result<nlohmann::json> readRecord(sd_bus_message *m);
Result<nlohmann::json> readRecords(sd_bus_message *m);

} // namespace ringcap::api
