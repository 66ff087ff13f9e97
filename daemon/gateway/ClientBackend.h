// The Backend that calls ringcapd on the system bus through api::Client: one sd-bus
// connection per thread (a Client is used from one thread at a time), made on first use and
// made again after ringcapd or the bus was found unavailable.
#pragma once

#include "Api.h"
#include "api/Client.h"

namespace ringcap::gateway {

class ClientBackend : public Backend {
public:
  Result<nlohmann::json> createCapture(const nlohmann::json &request) override;
  Result<nlohmann::json> getCapture(const std::string &id) override;
  Result<nlohmann::json> listCaptures() override;
  Result<void> stopCapture(const std::string &id) override;
  Result<UniqueFd> openCaptureFile(const std::string &id) override;
  Result<nlohmann::json> createOwnership(const std::string &destination) override;
  Result<nlohmann::json> validateOwnership(const std::string &destination,
                                           const std::string &challenge) override;
  Result<nlohmann::json> listOwnerships() override;
  Result<void> deleteOwnership(const std::string &id) override;

private:
  // Runs f on the thread's connection, made first if needed. A connection found closed before
  // the call is replaced; one that breaks during it is replaced, and the call made once more
  // when it is idempotent (reads, stop, delete), else answered Failed: a create may have been
  // done, so it must not look safe to resend.
  template <typename F>
  auto with(bool idempotent, F &&f) -> decltype(f(std::declval<api::Client &>()));
};

} // namespace ringcap::gateway
