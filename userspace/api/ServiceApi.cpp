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

} // namespace ringcap::api
