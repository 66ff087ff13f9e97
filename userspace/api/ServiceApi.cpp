#include "api/ServiceApi.h"

namespace ringcap::api {

std::string capturePath(std::string_view id) {
  return std::string(kCapturePrefix) + "/" + std::string(id);
}

ErrorKind errorKindFromDbusName(std::string_view name) {
  for (const auto &row : kErrorKinds)
    if (name == row.dbusName)
      return row.kind;
  if (name == "org.freedesktop.DBus.Error.NameHasNoOwner" ||
      name.starts_with("org.freedesktop.DBus.Error.Spawn."))
    return ErrorKind::Unavailable;
  return ErrorKind::Failed;
}

namespace {
constexpr std::string_view kRetryPrefix = "the next is allowed in ";
}

std::string retryAfterPhrase(uint64_t seconds) {
  return std::string(kRetryPrefix) + std::to_string(seconds) + " s";
}

std::optional<uint64_t> retryAfterSeconds(std::string_view message) {
  auto at = message.rfind(kRetryPrefix);
  if (at == std::string_view::npos)
    return std::nullopt;
  auto rest = message.substr(at + kRetryPrefix.size());
  uint64_t v = 0;
  size_t n = 0;
  while (n < rest.size() && n < 12 && rest[n] >= '0' && rest[n] <= '9')
    v = v * 10 + static_cast<uint64_t>(rest[n++] - '0');
  if (n == 0 || n == 12 || !rest.substr(n).starts_with(" s"))
    return std::nullopt;
  return v;
}

} // namespace ringcap::api
