#include "bench/PacedGenerator.h"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ringcap::bench {

namespace {

uint64_t monotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

void sleepUntil(uint64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1'000'000'000u), static_cast<long>(ns % 1'000'000'000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

} // namespace

Result<std::unique_ptr<PacedGenerator>> PacedGenerator::open(int ifindex,
                                                             const PacedOptions &options) {
  if (options.rate == 0 || options.batch == 0 || options.batch > 1024)
    return Error{EINVAL, "the rate must be positive and the batch 1..1024"};
  std::unique_ptr<PacedGenerator> g(new PacedGenerator());
  g->options_ = options;
  // Protocol 0: the socket sends only, it never receives (and so is no tap on the path).
  g->fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (g->fd_ < 0)
    return Error::fromErrno(errno, "opening an AF_PACKET socket");
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = ifindex;
  if (bind(g->fd_, reinterpret_cast<sockaddr *>(&sll), sizeof(sll)) < 0)
    return Error::fromErrno(errno, "binding the AF_PACKET socket to ifindex " +
                                       std::to_string(ifindex));
  return g;
}

PacedGenerator::~PacedGenerator() {
  if (fd_ >= 0)
    close(fd_);
}

Result<GeneratorRun> PacedGenerator::run(const FrameSpec &spec, uint64_t count,
                                         double maxSeconds) {
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < spec.portSpread; i++)
    frames.push_back(buildUdpFrame(spec, static_cast<uint16_t>(spec.portBase + i)));
  const uint32_t batch = options_.batch;
  std::vector<iovec> iov(batch);
  std::vector<mmsghdr> msgs(batch);

  GeneratorRun r;
  const uint64_t start = monotonicNs();
  const uint64_t deadline = start + static_cast<uint64_t>(maxSeconds * 1e9);
  uint64_t next = 0; // index of the next frame to send
  while (next < count) {
    // Batch k is due when k * batch frames should have gone at the rate.
    uint64_t due = start + static_cast<uint64_t>(static_cast<double>(next) * 1e9 /
                                                 static_cast<double>(options_.rate));
    if (due >= deadline) {
      r.timedOut = true;
      break;
    }
    sleepUntil(due);
    uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(batch, count - next));
    for (uint32_t i = 0; i < n; i++) {
      auto &f = frames[(next + i) % frames.size()];
      iov[i] = {f.data(), f.size()};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    uint32_t off = 0;
    while (off < n) {
      int sent = sendmmsg(fd_, msgs.data() + off, n - off, 0);
      if (sent < 0) {
        int err = errno;
        if (err == EINTR)
          continue;
        if (err == ENOBUFS || err == EAGAIN) {
          r.failed++; // the frame at `off` was dropped by the device queue
          off++;
          continue;
        }
        return Error::fromErrno(err, "sendmmsg");
      }
      r.sent += static_cast<uint64_t>(sent);
      off += static_cast<uint32_t>(sent);
    }
    next += n;
  }
  r.elapsedNs = monotonicNs() - start;
  return r;
}

} // namespace ringcap::bench
