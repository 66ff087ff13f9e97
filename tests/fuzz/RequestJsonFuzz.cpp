// The capture request validator on a request body given as JSON text, in both modes.
// Properties: no crash; errors are short and printable; an accepted request, written back
// with toJson(), is accepted again as the same request.
#include "FuzzCheck.h"
#include "request/CaptureRequest.h"

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

using namespace ringcap;

namespace {

void validate(const nlohmann::json &body, RequestMode mode, const char *name) {
  auto request = validateCaptureRequest(body, mode);
  if (!request) {
    fuzz::checkUserError(request.error(), name);
    return;
  }
  auto again = validateCaptureRequest(request->toJson(), mode);
  FUZZ_CHECK(again.ok(), std::string(name) + ": toJson() of an accepted request is refused: " +
                              (again ? "" : again.error().message));
  FUZZ_CHECK(*again == *request,
              std::string(name) + ": toJson() changes the request: " + request->toJson().dump());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto body = nlohmann::json::parse(data, data + size, nullptr, false);
  if (body.is_discarded())
    return 0;
  validate(body, RequestMode::Api, "api");
  validate(body, RequestMode::Tool, "tool");
  return 0;
}
