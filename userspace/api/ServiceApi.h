// ServiceApi: ringcapd's names on D-Bus (bus name, object paths, interfaces, error names) and
// the one table that maps an ErrorKind to its D-Bus error name, its HTTP status and
// ringcapctl's exit code. The daemon, its clients and the tests all take them from here;
// docs/dbus-api.md and docs/ringcapctl.md describe them.
#pragma once

#include "util/Result.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringcap::api {

inline constexpr const char *kBusName = "org.ringcap.Ringcap1";
inline constexpr const char *kManagerPath = "/org/ringcap/Ringcap1";
inline constexpr const char *kManagerInterface = "org.ringcap.Ringcap1.Manager";
// Capture objects are kCapturePrefix + "/" + id (capturePath).
inline constexpr const char *kCapturePrefix = "/org/ringcap/Ringcap1/capture";
inline constexpr const char *kCaptureInterface = "org.ringcap.Ringcap1.Capture";
inline constexpr const char *kErrorPrefix = "org.ringcap.Ringcap1.Error.";

std::string capturePath(std::string_view id);

// ringcapctl's exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;    // ringcapd or the bus refused or failed
inline constexpr int kExitUsage = 2;      // invalid command line; nothing was sent
inline constexpr int kExitNotRunning = 3; // ringcapd is not on the bus, or the bus is unreachable

// One row per ErrorKind, in the enum's order.
struct ErrorKindInfo {
  ErrorKind kind;
  const char *name;     // "InvalidRequest"
  const char *dbusName; // the D-Bus error name ringcapd replies with
  int httpStatus;
  int exitCode; // ringcapctl's
};

inline constexpr std::array<ErrorKindInfo, 9> kErrorKinds{{
    {ErrorKind::Failed, "Failed", "org.ringcap.Ringcap1.Error.Failed", 500, kExitFailure},
    {ErrorKind::InvalidRequest, "InvalidRequest", "org.ringcap.Ringcap1.Error.InvalidRequest", 400,
     kExitFailure},
    {ErrorKind::RateLimited, "RateLimited", "org.ringcap.Ringcap1.Error.RateLimited", 429,
     kExitFailure},
    {ErrorKind::CaptureBusy, "CaptureBusy", "org.ringcap.Ringcap1.Error.CaptureBusy", 429,
     kExitFailure},
    {ErrorKind::NotFound, "NotFound", "org.ringcap.Ringcap1.Error.NotFound", 404, kExitFailure},
    {ErrorKind::NotReady, "NotReady", "org.ringcap.Ringcap1.Error.NotReady", 409, kExitFailure},
    {ErrorKind::OwnershipRequired, "OwnershipRequired",
     "org.ringcap.Ringcap1.Error.OwnershipRequired", 403, kExitFailure},
    // Sent by ringcapd's caller check and by the bus itself (policy), under the bus's name.
    {ErrorKind::AccessDenied, "AccessDenied", "org.freedesktop.DBus.Error.AccessDenied", 403,
     kExitFailure},
    // Never sent by ringcapd: the bus answers so when nothing owns kBusName.
    {ErrorKind::Unavailable, "Unavailable", "org.freedesktop.DBus.Error.ServiceUnknown", 503,
     kExitNotRunning},
}};

constexpr bool kindsInEnumOrder() {
  for (size_t i = 0; i < kErrorKinds.size(); i++)
    if (static_cast<size_t>(kErrorKinds[i].kind) != i)
      return false;
  return true;
}
static_assert(kindsInEnumOrder(), "kErrorKinds: one row per ErrorKind, in the enum's order");
static_assert(static_cast<size_t>(ErrorKind::Unavailable) + 1 == kErrorKinds.size(),
              "kErrorKinds: every ErrorKind has a row (Unavailable is the last kind)");

constexpr const ErrorKindInfo &info(ErrorKind kind) {
  auto i = static_cast<size_t>(kind);
  return i < kErrorKinds.size() ? kErrorKinds[i] : kErrorKinds[0];
}
constexpr const char *toString(ErrorKind kind) { return info(kind).name; }
constexpr const char *dbusErrorName(ErrorKind kind) { return info(kind).dbusName; }
constexpr int httpStatus(ErrorKind kind) { return info(kind).httpStatus; }
constexpr int exitCode(ErrorKind kind) { return info(kind).exitCode; }

// The kind of a D-Bus error name a client received: the table's names, the bus's names for
// "nobody owns the service" (ServiceUnknown, NameHasNoOwner, Spawn.*) as Unavailable, and
// Failed for any other name.
ErrorKind errorKindFromDbusName(std::string_view name);

// When a RateLimited request will be accepted again: ringcapd ends the message with
// retryAfterPhrase(seconds) ("the next is allowed in 42 s"), and the gateway reads the seconds
// back with retryAfterSeconds (its Retry-After header). nullopt when the message has no such
// phrase (a limit that lifts when something else happens).
std::string retryAfterPhrase(uint64_t seconds);
std::optional<uint64_t> retryAfterSeconds(std::string_view message);

} // namespace ringcap::api
