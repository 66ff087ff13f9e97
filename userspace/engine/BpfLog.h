// Routes libbpf's and libxdp's messages into spdlog, one level lower than they claim.
#pragma once

namespace ringcap {

// Installs the print callbacks once; safe to call more than once.
void routeBpfLogsToSpdlog();

} // namespace ringcap
