#include "util/Result.h"

#include <cstring>

namespace ringcap {

Error Error::fromErrno(int err, std::string what) {
  if (err < 0)
    err = -err; // libbpf returns negative errno values
  return Error{ErrorKind::Failed, std::move(what) + ": " + std::strerror(err), err};
}

} // namespace ringcap
