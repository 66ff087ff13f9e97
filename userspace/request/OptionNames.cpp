#include "request/OptionNames.h"

#include <utility>

namespace ringcap {

std::string fieldMessageToOptions(const std::string &message) {
  static const std::pair<const char *, const char *> names[] = {
      {"filter_v1.source_address", "--source-address"},
      {"filter_v1.destination_address", "--destination-address"},
      {"filter_v1.source_port", "--source-port"},
      {"filter_v1.destination_port", "--destination-port"},
      {"filter_v1.protocol", "--protocol"},
      {"filter_v1", "filter options"},
      {"time_limit", "--time-limit"},
      {"packet_limit", "--packet-limit"},
      {"byte_limit", "--byte-limit"},
      {"type", "--type"},
      {"system", "--system"},
      {"colo_name", "--colo-name"},
      {"destination_conf", "--destination-conf"},
      {"offset_time", "--offset-time"},
      {"output_format", "--output-format"},
  };
  for (const auto &[field, option] : names) {
    std::string prefix = std::string(field) + ":";
    if (message.rfind(prefix, 0) == 0)
      return option + message.substr(prefix.size() - 1);
  }
  return message;
}

} // namespace ringcap
