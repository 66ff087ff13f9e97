// Result<T>: a value or an Error that says what went wrong and where.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace ringcap {

struct Error {
  // errno-style code (positive), or 0 when the error is not a system error.
  int code = 0;
  std::string message;

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
