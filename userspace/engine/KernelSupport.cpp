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
  // Loading needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN), attaching CAP_NET_ADMIN; libxdp
  // finds attached programs by id to detach them, which the kernel allows only with
  // CAP_SYS_ADMIN.
  if (!hasCap(data, CAP_SYS_ADMIN) || !hasCap(data, CAP_NET_ADMIN))
    return Error{EPERM, "ringcap needs the capabilities CAP_SYS_ADMIN and CAP_NET_ADMIN (and "
                        "CAP_BPF, CAP_PERFMON where the kernel has them) to load, attach and "
                        "detach XDP programs; run it as root or grant them"};
  return {};
}

} // namespace ringcap
