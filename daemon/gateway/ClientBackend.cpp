#include "ClientBackend.h"

#include <memory>

namespace ringcap::gateway {
namespace {

thread_local std::unique_ptr<api::Client> tClient;

} // namespace

template <typename F>
auto ClientBackend::with(F &&f) -> decltype(f(std::declval<api::Client &>())) {
  if (!tClient) {
    auto c = api::Client::connectSystem();
    if (!c)
      return c.error();
    tClient = std::move(*c);
  }
  auto r = f(*tClient);
  // A connection that failed is not used again: the next request connects anew.
  if (!r && (r.error().kind == ErrorKind::Unavailable || r.error().code == ECONNRESET ||
             r.error().code == ENOTCONN || r.error().code == EPIPE))
    tClient.reset();
  return r;
}

Result<nlohmann::json> ClientBackend::createCapture(const nlohmann::json &request) {
  return with([&](api::Client &c) -> Result<nlohmann::json> {
    auto r = c.createCapture(request);
    if (!r)
      return r.error();
    return std::move(r->record);
  });
}
Result<nlohmann::json> ClientBackend::getCapture(const std::string &id) {
  return with([&](api::Client &c) { return c.getCapture(id); });
}
Result<nlohmann::json> ClientBackend::listCaptures() {
  return with([&](api::Client &c) { return c.listCaptures(); });
}
Result<void> ClientBackend::stopCapture(const std::string &id) {
  return with([&](api::Client &c) { return c.stopCapture(id); });
}
Result<UniqueFd> ClientBackend::openCaptureFile(const std::string &id) {
  return with([&](api::Client &c) { return c.openCaptureFile(id); });
}
Result<nlohmann::json> ClientBackend::createOwnership(const std::string &destination) {
  return with([&](api::Client &c) { return c.createOwnership(destination); });
}
Result<nlohmann::json> ClientBackend::validateOwnership(const std::string &destination,
                                                        const std::string &challenge) {
  return with([&](api::Client &c) { return c.validateOwnership(destination, challenge); });
}
Result<nlohmann::json> ClientBackend::listOwnerships() {
  return with([&](api::Client &c) { return c.listOwnerships(); });
}
Result<void> ClientBackend::deleteOwnership(const std::string &id) {
  return with([&](api::Client &c) { return c.deleteOwnership(id); });
}

} // namespace ringcap::gateway
