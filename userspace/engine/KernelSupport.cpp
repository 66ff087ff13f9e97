#include "engine/KernelSupport.h"

#include <cstdio>
#include <linux/capability.h>
#include <string>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

namespace ringcap {

bool parseKernelRelease(const char *release, int &major, int &minor) {
  return std::sscanf(release, "%d.%d", &major, &minor) == 2;
}

namespace {

bool hasCap(const __user_cap_data_struct (&data)[2], int cap) {
  return data[cap / 32].effective & (1u << (cap % 32));
}

} // namespace

Result<void> checkKernelSupport() {
  struct utsname u {};
  if (uname(&u) != 0)
    return Error::fromErrno(errno, "uname");
  int major = 0, minor = 0;
  if (!parseKernelRelease(u.release, major, minor))
    return Error{ENOTSUP, std::string("cannot read the kernel version from \"") + u.release + "\""};
  if (major < kMinKernelMajor || (major == kMinKernelMajor && minor < kMinKernelMinor))
    return Error{ENOTSUP,
                 "ringcap needs Linux " + std::to_string(kMinKernelMajor) + "." +
                     std::to_string(kMinKernelMinor) +
                     " or newer (XDP multi-buffer and bpf_xdp_load_bytes); this kernel is " +
                     u.release};

  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0)
    return Error::fromErrno(errno, "capget");
  bool admin = hasCap(data, CAP_SYS_ADMIN);
  bool bpf = hasCap(data, CAP_BPF) && hasCap(data, CAP_PERFMON);
  bool net = hasCap(data, CAP_NET_ADMIN);
  if (!(admin || bpf) || !net)
    return Error{EPERM, "ringcap needs the capabilities CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN "
                        "(or CAP_SYS_ADMIN with CAP_NET_ADMIN) to load and attach XDP programs; "
                        "run it as root or grant them"};
  return {};
}

} // namespace ringcap
