// Checks, before anything is loaded, that this kernel and this process can run ringcap.
#pragma once

#include "util/Result.h"

namespace ringcap {

// The oldest kernel ringcap supports: XDP multi-buffer (xdp.frags), bpf_xdp_load_bytes and
// bpf_xdp_get_buff_len arrived in 5.18; BPF ring buffers (5.8) and atomic fetch operations
// (5.12) are older.
inline constexpr int kMinKernelMajor = 5;
inline constexpr int kMinKernelMinor = 18;

// Returns an error with one sentence naming what is missing: an older kernel, or the
// capabilities needed to load, attach and detach XDP programs (CAP_SYS_ADMIN and
// CAP_NET_ADMIN; detaching through libxdp looks programs up by id).
Result<void> checkKernelSupport();

// Parses "6.1.0-18-amd64" style release strings; false if unparsable.
bool parseKernelRelease(const char *release, int &major, int &minor);

} // namespace ringcap
