// Following a capture until it ends, from its PropertiesChanged signals.
#pragma once

#include "ringcapctl/Bus.h"

#include <string>

namespace ringcap::ctl {

// Prints a progress line (with json: the record, one JSON document per line) at the start and
// whenever the capture's status or counters change, until it ends. Returns kExitOk when it
// ends success, kExitFailure when failed (after printing its error_message); throws Failure
// when ringcapd refuses, leaves the bus, or the connection is lost.
int watchCapture(Bus &bus, const std::string &id, bool json);

} // namespace ringcap::ctl
