#include "bench/LiveFramesGenerator.h"

#include "bench_tx.skel.h"

#include <bpf/bpf.h>
#include <cerrno>
#include <ctime>
#include <linux/bpf.h>

namespace ringcap::bench {

namespace {

uint64_t monotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Program runs per BPF_PROG_RUN call: small enough to check the time bound often (about
// 0.1 s at 2 Mpps), large enough that the syscall costs nothing.
constexpr uint64_t kChunk = 1u << 18;

} // namespace

Result<std::unique_ptr<LiveFramesGenerator>>
LiveFramesGenerator::open(const LiveFramesOptions &options) {
  if (options.portSpread == 0)
    return Error{EINVAL, "the port spread must be at least 1"};
  if (options.batchSize == 0 || options.batchSize > 256)
    return Error{EINVAL, "the batch size must be 1..256"};
  std::unique_ptr<LiveFramesGenerator> g(new LiveFramesGenerator());
  g->batchSize_ = options.batchSize;
  g->skel_ = bench_tx__open();
  if (!g->skel_)
    return Error::fromErrno(errno, "opening the generator program (bench_tx)");
  g->skel_->rodata->port_base = options.portBase;
  g->skel_->rodata->port_spread = options.portSpread;
  if (int err = bench_tx__load(g->skel_))
    return Error::fromErrno(err, "loading the generator program (bench_tx)");
  return g;
}

LiveFramesGenerator::~LiveFramesGenerator() { bench_tx__destroy(skel_); }

Result<GeneratorRun> LiveFramesGenerator::run(int ifindex, const std::vector<uint8_t> &frame,
                                              uint64_t count, double maxSeconds) {
  skel_->bss->frames = 0;
  skel_->bss->refused = 0;
  int progFd = bpf_program__fd(skel_->progs.xdp_bench_tx);
  xdp_md ctx{};
  ctx.data_end = static_cast<uint32_t>(frame.size());
  ctx.ingress_ifindex = static_cast<uint32_t>(ifindex);
  GeneratorRun r;
  const uint64_t start = monotonicNs();
  const uint64_t deadline = start + static_cast<uint64_t>(maxSeconds * 1e9);
  uint64_t done = 0;
  while (done < count) {
    if (monotonicNs() >= deadline) {
      r.timedOut = true;
      break;
    }
    uint64_t n = std::min(kChunk, count - done);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()), .ctx_in = &ctx,
                .ctx_size_in = sizeof(ctx), .repeat = static_cast<int>(n),
                .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = batchSize_);
    if (int err = bpf_prog_test_run_opts(progFd, &opts))
      return Error::fromErrno(err, "BPF_PROG_RUN in live-frames mode on ifindex " +
                                       std::to_string(ifindex));
    done += n;
  }
  r.elapsedNs = monotonicNs() - start;
  // The program's own counts: XDP_TX verdicts, and frames it refused (never expected).
  r.sent = skel_->bss->frames;
  r.failed = skel_->bss->refused;
  return r;
}

} // namespace ringcap::bench
