// BusService: ringcapd on D-Bus (docs/dbus-api.md): the Manager object, one object per
// capture, PropertiesChanged, and the caller check that backs up the bus policy.
#pragma once

#include "CaptureService.h"
#include "api/ServiceApi.h"

#include <optional>
#include <string>
#include <sys/types.h>
#include <systemd/sd-bus.h>

namespace ringcap {

using api::kBusName;
using api::kCaptureInterface;
using api::kCapturePrefix;
using api::kManagerInterface;
using api::kManagerPath;

class BusService {
public:
  // `group` is the group whose members may call (besides root); gid -1: root only.
  BusService(sd_bus *bus, CaptureService &service, OwnershipService &ownership,
             std::string groupName, gid_t group);
  ~BusService();

  // The user (besides root) whose CreateCapture may carry an `id`, and who may call
  // ImportOwnership ([fleet] agent_user); nullopt: root only.
  void setAgentUser(std::optional<std::string> user) { agentUser_ = std::move(user); }

  // Registers the objects and takes the bus name.
  Result<void> start();

  static std::string capturePath(const std::string &id) { return api::capturePath(id); }

private:
  static const sd_bus_vtable kManagerVtable[];
  static const sd_bus_vtable kCaptureVtable[];

  static int onCreate(sd_bus_message *m, void *userdata, sd_bus_error *e);
  static int onGet(sd_bus_message *m, void *userdata, sd_bus_error *e);
  static int onList(sd_bus_message *m, void *userdata, sd_bus_error *e);
  static int onStop(sd_bus_message *m, void *userdata, sd_bus_error *e);
  static int onOpenFile(sd_bus_message *m, void *userdata, sd_bus_error *e);
  static int onCreateOwnership(sd_bus_message *m, void *userdata, sd_bus_error *e);
  static int onValidateOwnership(sd_bus_message *m, void *userdata, sd_bus_error *e);
  static int onListOwnerships(sd_bus_message *m, void *userdata, sd_bus_error *e);
  static int onDeleteOwnership(sd_bus_message *m, void *userdata, sd_bus_error *e);
  static int onImportOwnership(sd_bus_message *m, void *userdata, sd_bus_error *e);
  static int findCapture(sd_bus *bus, const char *path, const char *interface, void *userdata,
                         void **found, sd_bus_error *e);
  static int enumerateCaptures(sd_bus *bus, const char *prefix, void *userdata, char ***nodes,
                               sd_bus_error *e);
  static int getProperty(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *e);

  // Refuses method calls to ringcap's objects from callers that fail checkCaller.
  static int filterCalls(sd_bus_message *m, void *userdata, sd_bus_error *e);
  // 0 when the caller is root or in the group; else sets AccessDenied and returns < 0.
  int checkCaller(sd_bus_message *m, sd_bus_error *e) const;
  int fail(const Error &error, sd_bus_error *e) const;
  // Empty when the caller of `m` is root or the agent user (who may supply a capture id and
  // import an ownership); else AccessDenied: "<what> only by root ...".
  std::optional<Error> checkFleetCaller(sd_bus_message *m, const std::string &what) const;
  void onChange(const CaptureRecord &record, bool statusChanged);

  sd_bus *bus_;
  CaptureService &service_;
  OwnershipService &ownership_;
  std::string groupName_;
  gid_t group_;
  std::optional<std::string> agentUser_;
  sd_bus_slot *slots_[4] = {nullptr, nullptr, nullptr, nullptr};
};

} // namespace ringcap
