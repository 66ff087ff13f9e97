#include "ClientBackend.h"

#include <memory>

namespace ringcap::gateway {
namespace {

thread_local std::unique_ptr<api::Client> tClient;

} // namespace

// Whether a call failed because the connection to the bus broke (the bus went away).
bool connectionLost(const Error &e) {
  return e.kind == ErrorKind::Failed &&
         (e.code == ECONNRESET || e.code == ENOTCONN || e.code == EPIPE || e.code == ESHUTDOWN ||
          e.code == ECONNABORTED);
}

// Whether the thread's connection is still open: reads what the bus sent since the last call
// (nothing the gateway waits for), which is how a closed socket is noticed before anything
// is sent on it.
bool stillOpen(api::Client &c) {
  int r;
  while ((r = sd_bus_process(c.bus(), nullptr)) > 0) {
  }
  return r >= 0 && sd_bus_is_open(c.bus()) > 0;
}

template <typename F>
auto ClientBackend::with(bool idempotent, F &&f) -> decltype(f(std::declval<api::Client &>())) {
  for (int attempt = 0;; attempt++) {
    if (tClient && !stillOpen(*tClient))
      tClient.reset();
    if (!tClient) {
      auto c = api::Client::connectSystem();
      if (!c)
        return c.error(); // Unavailable: nothing was sent
      tClient = std::move(*c);
    }
    auto r = f(*tClient);
    if (r)
      return r;
    if (r.error().kind == ErrorKind::Unavailable) {
      tClient.reset(); // ringcapd is away: the next request connects anew
      return r;
    }
    if (!connectionLost(r.error()))
      return r;
    // The connection broke during the call.
    tClient.reset();
    if (idempotent && attempt == 0)
      continue; // once more, on a new connection
    if (idempotent)
      return Error{ErrorKind::Unavailable,
                   "the connection to the system bus was lost: " + r.error().message,
                   r.error().code};
    return Error{ErrorKind::Failed,
                 "the connection to the system bus was lost during the call, so whether ringcapd "
                 "did it is unknown; list before sending it again (" +
                     r.error().message + ")",
                 r.error().code};
  }
}

Result<nlohmann::json> ClientBackend::createCapture(const nlohmann::json &request) {
  return with(false, [&](api::Client &c) -> Result<nlohmann::json> {
    auto r = c.createCapture(request);
    if (!r)
      return r.error();
    return std::move(r->record);
  });
}
Result<nlohmann::json> ClientBackend::getCapture(const std::string &id) {
  return with(true, [&](api::Client &c) { return c.getCapture(id); });
}
Result<nlohmann::json> ClientBackend::listCaptures() {
  return with(true, [&](api::Client &c) { return c.listCaptures(); });
}
Result<void> ClientBackend::stopCapture(const std::string &id) {
  return with(true, [&](api::Client &c) { return c.stopCapture(id); });
}
Result<UniqueFd> ClientBackend::openCaptureFile(const std::string &id) {
  return with(true, [&](api::Client &c) { return c.openCaptureFile(id); });
}
Result<nlohmann::json> ClientBackend::createOwnership(const std::string &destination) {
  return with(false, [&](api::Client &c) { return c.createOwnership(destination); });
}
Result<nlohmann::json> ClientBackend::validateOwnership(const std::string &destination,
                                                        const std::string &challenge) {
  return with(false, [&](api::Client &c) { return c.validateOwnership(destination, challenge); });
}
Result<nlohmann::json> ClientBackend::listOwnerships() {
  return with(true, [&](api::Client &c) { return c.listOwnerships(); });
}
Result<void> ClientBackend::deleteOwnership(const std::string &id) {
  return with(true, [&](api::Client &c) { return c.deleteOwnership(id); });
}

} // namespace ringcap::gateway
