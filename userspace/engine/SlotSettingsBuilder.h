// Turns a validated capture request into the settings of a kernel job slot.
#pragma once

#include "engine/CaptureProgram.h"
#include "request/CaptureRequest.h"

#include <optional>

namespace ringcap {

// Simple captures keep the first 160 bytes of each packet (the request model's rule).
inline constexpr uint32_t kSimpleSnaplen = 160;

struct SlotOptions {
  uint32_t cookie = 0;
  uint32_t sampleRate = 1;         // 1 in N
  std::optional<uint32_t> snaplen; // overrides the type's default
  std::vector<uint32_t> ifindexes; // empty: every attached interface
};

SlotSettings slotSettingsFor(const CaptureRequest &request, const SlotOptions &options);

} // namespace ringcap
