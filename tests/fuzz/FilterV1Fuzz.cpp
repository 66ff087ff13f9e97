// parseFilterV1 and IpAddress::parse. The first byte picks the target; the rest is its input:
//   0..127   : JSON text, given to parseFilterV1 (also wrapped as {"source_address": <text>}
//              when it is a JSON string)
//   128..255 : an address, given to IpAddress::parse as is
// Properties: no crash; errors are short and printable; what is accepted round-trips through
// toJson() / text().
#include "FuzzCheck.h"
#include "request/FilterV1.h"
#include "request/IpAddress.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

using namespace ringcap;
using nlohmann::json;

namespace {

void filter(const json &value) {
  auto f = parseFilterV1(value);
  if (!f) {
    fuzz::checkUserError(f.error(), "parseFilterV1");
    return;
  }
  auto kernel = f->toKernel();
  (void)kernel;
  auto again = parseFilterV1(f->toJson());
  FUZZ_CHECK(again.ok(), "parseFilterV1 refuses its own toJson(): " + f->toJson().dump());
  FUZZ_CHECK(*again == *f, "parseFilterV1(toJson()) differs: " + f->toJson().dump());
}

void address(std::string_view text) {
  auto a = IpAddress::parse(text);
  if (!a) {
    fuzz::checkUserError(a.error(), "IpAddress::parse");
    return;
  }
  FUZZ_CHECK(a->family == 4 || a->family == 6, "family " + std::to_string(a->family));
  if (a->family == 4)
    for (size_t i = 4; i < a->bytes.size(); i++)
      FUZZ_CHECK(a->bytes[i] == 0, "IPv4 address with bytes past the fourth: " + a->text());
  auto again = IpAddress::parse(a->text());
  FUZZ_CHECK(again.ok(), "IpAddress::parse refuses its own text(): " + a->text());
  FUZZ_CHECK(*again == *a, "IpAddress::parse(text()) differs: " + a->text());
  FUZZ_CHECK(again->text() == a->text(), "text() is not canonical: " + a->text());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const uint8_t selector = data[0];
  data++, size--;
  if (selector >= 128) {
    address(std::string_view(reinterpret_cast<const char *>(data), size));
    return 0;
  }
  auto value = json::parse(data, data + size, nullptr, false);
  if (value.is_discarded())
    return 0;
  filter(value);
  if (value.is_string()) {
    address(value.get_ref<const std::string &>());
    filter(json{{"source_address", value}, {"destination_address", value}});
  }
  return 0;
}
