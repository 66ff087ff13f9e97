// Result<T>: a value or an Error that says what went wrong and where.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace ringcap {

// What kind of failure an Error is, as a caller of the service sees it. A kind is not an
// errno: a failed system call is Failed, whatever errno it set (that stays in Error::code and
// in the message). api/ServiceApi.h maps each kind to its D-Bus error name, its HTTP status
// and ringcapctl's exit code.
enum class ErrorKind {
  Failed,            // the work could not be done: a system or library error, a fault
  InvalidRequest,    // a request field or argument breaks a rule
  RateLimited,       // too soon after the last accepted request of this type
  CaptureBusy,       // no capacity now (concurrent full captures, kernel slots)
  NotFound,          // no capture or ownership with that id
  NotReady,          // the capture has not finished yet
  OwnershipRequired, // the destination has not passed the ownership challenge
  AccessDenied,      // the caller may not use the service
  Unavailable,       // the service is not on the bus (seen by clients only); stays last
};

// The kinds under the names the service code uses: Error{service_error::kNotFound, "..."}.
namespace service_error {
inline constexpr ErrorKind kFailed = ErrorKind::Failed;
inline constexpr ErrorKind kInvalidRequest = ErrorKind::InvalidRequest;
inline constexpr ErrorKind kRateLimited = ErrorKind::RateLimited;
inline constexpr ErrorKind kCaptureBusy = ErrorKind::CaptureBusy;
inline constexpr ErrorKind kNotFound = ErrorKind::NotFound;
inline constexpr ErrorKind kNotReady = ErrorKind::NotReady;
inline constexpr ErrorKind kOwnershipRequired = ErrorKind::OwnershipRequired;
inline constexpr ErrorKind kAccessDenied = ErrorKind::AccessDenied;
inline constexpr ErrorKind kUnavailable = ErrorKind::Unavailable;
} // namespace service_error

struct Error {
  ErrorKind kind = ErrorKind::Failed;
  std::string message;
  // What the system said: a positive errno, or 0 when no system call failed.
  int code = 0;
  // The D-Bus error name a client received (api::Client), empty otherwise.
  std::string busName;

  Error() = default;
  // A service error: Error{service_error::kInvalidRequest, "field: rule"}.
  Error(ErrorKind kind, std::string message, int code = 0)
      : kind(kind), message(std::move(message)), code(code) {}
  // A system or library error with its errno: always of kind Failed, never a service kind.
  Error(int code, std::string message)
      : kind(ErrorKind::Failed), message(std::move(message)), code(code) {}

  // Failed, with `what: <strerror>`; a negative err (libbpf, sd-bus) is taken as -err.
  static Error fromErrno(int err, std::string what);
};

template <typename T> class [[nodiscard]] Result {
public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T &value() & { return std::get<0>(v_); }
  const T &value() const & { return std::get<0>(v_); }
  T &&value() && { return std::get<0>(std::move(v_)); }
  T &operator*() & { return value(); }
  const T &operator*() const & { return value(); }
  T *operator->() { return &value(); }
  const T *operator->() const { return &value(); }

  const Error &error() const { return std::get<1>(v_); }

private:
  std::variant<T, Error> v_;
};

template <> class [[nodiscard]] Result<void> {
public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error &error() const { return err_; }

private:
  Error err_;
  bool ok_ = true;
};

} // namespace ringcap
