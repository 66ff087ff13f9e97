// LocalCapture: what ringcap-agent asks of the capture service on its own host. The agent
// makes every call to the local ringcapd through this interface; RingcapdCapture is the real
// one (D-Bus, api::Client). Another implementation runs captures without ringcapd (the fleet
// simulation, tools/bench/ringcap-bench-fleet).
//
// Errors carry ringcapd's kinds (api::errorKindFromDbusName): the agent tells a refusal
// (isRefusal) from no answer, and NotFound from both. Calls come from one thread at a time
// (the agent's lock).
#pragma once

#include "api/Client.h"
#include "util/Result.h"

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace ringcap::agent {

class LocalCapture {
public:
  virtual ~LocalCapture() = default;
  // Called once by Agent::run before any other call; an error ends the run.
  virtual Result<void> connect() = 0;
  // CreateCapture: the capture's record (docs/dbus-api.md).
  virtual Result<nlohmann::json> createCapture(const nlohmann::json &request) = 0;
  // GetCapture: the capture's record; NotFound when the service does not know the id.
  virtual Result<nlohmann::json> getCapture(const std::string &id) = 0;
  // StopCapture.
  virtual Result<void> stopCapture(const std::string &id) = 0;
  // ImportOwnership: records the fleet's validated ownership of `destination` (the full
  // capture's destination_conf) on the local service. The default refuses (a LocalCapture without
  // ringcapd keeps no ownerships).
  virtual Result<nlohmann::json> importOwnership(const std::string &destination);
  // OpenCaptureFile: a finished capture's file, read-only. The default: NotFound.
  virtual Result<UniqueFd> openCaptureFile(const std::string &id);
  // Whether captures leave a file to stage for the gateway (a simple capture's): ringcapd's
  // do; a simulation's do not (false by default), and then nothing is staged.
  virtual bool hasFiles() const { return false; }
};

// The local ringcapd over D-Bus: the bus at `busAddress`, or the system bus when it is empty
// (DBUS_SYSTEM_BUS_ADDRESS when set).
class RingcapdCapture : public LocalCapture {
public:
  explicit RingcapdCapture(std::string busAddress) : busAddress_(std::move(busAddress)) {}
  Result<void> connect() override;
  Result<nlohmann::json> createCapture(const nlohmann::json &request) override;
  // With a short bus timeout (5 s): a stalled ringcapd holds the agent's lock (and the
  // watch) no longer than that.
  Result<nlohmann::json> getCapture(const std::string &id) override;
  Result<void> stopCapture(const std::string &id) override;
  Result<nlohmann::json> importOwnership(const std::string &destination) override;
  Result<UniqueFd> openCaptureFile(const std::string &id) override;
  bool hasFiles() const override { return true; }

private:
  std::string busAddress_;
  std::unique_ptr<api::Client> bus_;
};

} // namespace ringcap::agent
