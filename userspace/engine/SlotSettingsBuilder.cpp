#include "engine/SlotSettingsBuilder.h"

namespace ringcap {

SlotSettings slotSettingsFor(const CaptureRequest &request, const SlotOptions &options) {
  SlotSettings s;
  s.cookie = options.cookie;
  s.sampleRate = options.sampleRate;
  s.snaplen = options.snaplen.value_or(request.type == CaptureType::Simple ? kSimpleSnaplen
                                                                           : RINGCAP_MAX_SNAPLEN);
  s.ifindexes = options.ifindexes;
  s.filter = request.filter_v1.toKernel();
  s.packetLimit = request.packet_limit;
  s.byteLimit = request.byte_limit;
  return s;
}

} // namespace ringcap
