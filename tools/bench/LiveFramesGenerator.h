// Load at the machine's limit: BPF_PROG_RUN in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES)
// runs bench_tx.bpf.c, which sends each frame out of the generator's interface with XDP_TX.
// The peer receives real frames; everything the receiver does runs in this thread's
// softirq, on this thread's CPU.
#pragma once

#include "util/Result.h"

#include <cstdint>
#include <memory>
#include <vector>

struct bench_tx;

namespace ringcap::bench {

struct LiveFramesOptions {
  uint16_t portBase = 5000;
  uint32_t portSpread = 100;
  // Frames the kernel runs the program on before it flushes them to the device (1..256).
  uint32_t batchSize = 64;
};

struct GeneratorRun {
  uint64_t sent = 0;    // frames handed to the device (XDP_TX, or sendmmsg's count)
  uint64_t failed = 0;  // frames that could not be sent
  uint64_t elapsedNs = 0;
  bool timedOut = false; // stopped by the time bound before `count` frames
};

class LiveFramesGenerator {
public:
  static Result<std::unique_ptr<LiveFramesGenerator>> open(const LiveFramesOptions &options);
  ~LiveFramesGenerator();
  LiveFramesGenerator(const LiveFramesGenerator &) = delete;
  LiveFramesGenerator &operator=(const LiveFramesGenerator &) = delete;

  // Sends `count` copies of `frame` (the program sets each one's destination port) out of
  // the interface `ifindex` of the current network namespace, stopping early after
  // `maxSeconds`. The port sequence starts again at portBase on every run.
  Result<GeneratorRun> run(int ifindex, const std::vector<uint8_t> &frame, uint64_t count,
                           double maxSeconds);

private:
  LiveFramesGenerator() = default;
  bench_tx *skel_ = nullptr;
  uint32_t batchSize_ = 64;
};

} // namespace ringcap::bench
