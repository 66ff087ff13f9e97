#include "engine/BpfLog.h"

#include <bpf/libbpf.h>
#include <cstdarg>
#include <cstdio>
#include <spdlog/spdlog.h>
#include <string>
#include <xdp/libxdp.h>

namespace ringcap {
namespace {

void emit(spdlog::level::level_enum level, const char *prefix, const char *fmt, va_list args) {
  if (!spdlog::should_log(level))
    return;
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  if (n < 0)
    return;
  std::string msg(buf);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' '))
    msg.pop_back();
  spdlog::log(level, "{}: {}", prefix, msg);
}

int libbpfPrint(enum libbpf_print_level level, const char *fmt, va_list args) {
  // One level lower than libbpf claims: its warnings are often expected probes.
  spdlog::level::level_enum l = level == LIBBPF_WARN   ? spdlog::level::info
                                : level == LIBBPF_INFO ? spdlog::level::debug
                                                       : spdlog::level::trace;
  emit(l, "libbpf", fmt, args);
  return 0;
}

int libxdpPrint(enum libxdp_print_level level, const char *fmt, va_list args) {
  spdlog::level::level_enum l = level == LIBXDP_WARN   ? spdlog::level::info
                                : level == LIBXDP_INFO ? spdlog::level::debug
                                                       : spdlog::level::trace;
  emit(l, "libxdp", fmt, args);
  return 0;
}

} // namespace

void routeBpfLogsToSpdlog() {
  libbpf_set_print(libbpfPrint);
  libxdp_set_print(libxdpPrint);
}

} // namespace ringcap
