#include "LocalCapture.h"

#include <cerrno>

namespace ringcap::agent {

Result<void> RingcapdCapture::connect() {
  auto bus = busAddress_.empty() ? api::Client::connectSystem() : api::Client::connect(busAddress_);
  if (!bus)
    return Error{EIO, "cannot connect to the system bus: " + bus.error().message};
  bus_ = std::move(*bus);
  return {};
}

Result<nlohmann::json> RingcapdCapture::createCapture(const nlohmann::json &request) {
  auto created = bus_->createCapture(request);
  if (!created)
    return created.error();
  return std::move(created->record);
}

Result<nlohmann::json> RingcapdCapture::getCapture(const std::string &id) {
  auto reply = bus_->call(
      "GetCapture",
      [&](sd_bus_message *m) -> Result<void> {
        if (int r = sd_bus_message_append(m, "s", id.c_str()); r < 0)
          return Error{ErrorKind::InvalidRequest, "GetCapture: cannot send the id", -r};
        return {};
      },
      5'000'000);
  if (!reply)
    return reply.error();
  return api::readRecord(reply->get());
}

Result<void> RingcapdCapture::stopCapture(const std::string &id) { return bus_->stopCapture(id); }

Result<nlohmann::json> RingcapdCapture::importOwnership(const std::string &destination) {
  return bus_->importOwnership(destination);
}

Result<UniqueFd> RingcapdCapture::openCaptureFile(const std::string &id) {
  return bus_->openCaptureFile(id);
}

Result<nlohmann::json> LocalCapture::importOwnership(const std::string &destination) {
  return Error{ErrorKind::InvalidRequest,
               "this capture service keeps no ownerships (importing " + destination + ")"};
}

Result<UniqueFd> LocalCapture::openCaptureFile(const std::string &id) {
  return Error{ErrorKind::NotFound, "this capture service keeps no files (capture " + id + ")"};
}

} // namespace ringcap::agent
