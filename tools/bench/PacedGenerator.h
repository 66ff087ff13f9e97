// Load at a fixed rate: an AF_PACKET socket on the generator's interface sends batches of
// frames with sendmmsg, each batch at its scheduled time (clock_nanosleep to an absolute
// deadline, so a late batch does not shift the later ones).
#pragma once

#include "bench/BenchFrame.h"
#include "bench/LiveFramesGenerator.h"
#include "util/Result.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace ringcap::bench {

struct PacedOptions {
  uint64_t rate = 200'000; // frames per second
  uint32_t batch = 16;     // frames per sendmmsg call
};

class PacedGenerator {
public:
  static Result<std::unique_ptr<PacedGenerator>> open(int ifindex, const PacedOptions &options);
  ~PacedGenerator();
  PacedGenerator(const PacedGenerator &) = delete;
  PacedGenerator &operator=(const PacedGenerator &) = delete;

  // Sends `count` frames of the spec (destination ports cycling like the live generator's),
  // stopping early after `maxSeconds`.
  Result<GeneratorRun> run(const FrameSpec &spec, uint64_t count, double maxSeconds);

private:
  PacedGenerator() = default;
  int fd_ = -1;
  PacedOptions options_;
};

} // namespace ringcap::bench
