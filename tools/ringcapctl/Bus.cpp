#include "ringcapctl/Bus.h"

namespace ringcap::ctl {

Failure failureFrom(const Error &error) {
  int exit = api::exitCode(error.kind);
  if (error.busName.empty() || error.kind == ErrorKind::Unavailable)
    return Failure(exit, error.message);
  return Failure(exit, error.message + " (" + error.busName + ")");
}

} // namespace ringcap::ctl
