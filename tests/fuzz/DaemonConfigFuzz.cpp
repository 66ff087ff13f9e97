// ringcapd's configuration parser (TOML) on arbitrary text. Properties: no crash; a failure
// is an error with a message; an accepted configuration satisfies the documented ranges.
#include "Config.h"
#include "FuzzCheck.h"

#include <cstddef>
#include <cstdint>
#include <string>

using namespace ringcap;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  auto config = parseDaemonConfig(text, "fuzz");
  if (!config) {
    FUZZ_CHECK(!config.error().message.empty(), "config error without a message");
    return 0;
  }
  const DaemonConfig &c = *config;
  FUZZ_CHECK(!c.colo_name.empty() && c.colo_name.size() <= 64, "colo_name " + c.colo_name);
  FUZZ_CHECK(!c.systems.empty(), "no systems");
  auto interfaces = c.allInterfaces();
  FUZZ_CHECK(!interfaces.empty() && interfaces.size() <= 64,
              std::to_string(interfaces.size()) + " interfaces");
  FUZZ_CHECK(c.simple_sample_rate >= 1 && c.simple_sample_rate <= 1000000, "simple_sample_rate");
  FUZZ_CHECK(c.ring_size_mib >= 1 && c.ring_size_mib <= 2048 &&
                  (c.ring_size_mib & (c.ring_size_mib - 1)) == 0,
              "ring_size_mib " + std::to_string(c.ring_size_mib));
  FUZZ_CHECK(c.simple_interval_seconds <= 86400, "simple_interval_seconds");
  FUZZ_CHECK(c.full_concurrent >= 1 && c.full_concurrent <= 8, "full_concurrent");
  FUZZ_CHECK(c.max_captures >= 1 && c.max_captures <= 1000000, "max_captures");
  FUZZ_CHECK(c.max_bytes >= 1 && c.max_bytes <= (uint64_t(1) << 62), "max_bytes");
  FUZZ_CHECK(!c.state_directory.empty() && c.state_directory[0] == '/', "state_directory");
  for (const auto &root : c.file_roots)
    FUZZ_CHECK(!root.empty() && root[0] == '/', "file_roots entry \"" + root + "\"");
  return 0;
}
