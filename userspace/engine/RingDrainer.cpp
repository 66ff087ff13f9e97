#include "engine/RingDrainer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>

namespace ringcap {

std::optional<RingRecord> parseRingRecord(std::span<const uint8_t> raw) {
  if (raw.size() < RINGCAP_RECORD_HDR_LEN)
    return std::nullopt;
  RingRecord r;
  std::memcpy(&r.header, raw.data(), sizeof r.header);
  const auto &h = r.header;
  if (h.slot >= RINGCAP_MAX_SLOTS || h.cap_len > RINGCAP_MAX_SNAPLEN || h.cap_len > h.pkt_len ||
      h.cap_len > raw.size() - RINGCAP_RECORD_HDR_LEN)
    return std::nullopt;
  r.data = raw.subspan(RINGCAP_RECORD_HDR_LEN, h.cap_len);
  return r;
}

int64_t realtimeMinusBoottimeNs() {
  auto ns = [](const timespec &t) { return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; };
  int64_t best = 0, bestSpan = INT64_MAX;
  for (int i = 0; i < 8; i++) {
    timespec b1, r, b2;
    clock_gettime(CLOCK_BOOTTIME, &b1);
    clock_gettime(CLOCK_REALTIME, &r);
    clock_gettime(CLOCK_BOOTTIME, &b2);
    int64_t span = ns(b2) - ns(b1);
    if (span < bestSpan) {
      bestSpan = span;
      best = ns(r) - (ns(b1) + span / 2);
    }
  }
  return best;
}

Result<void> RingDrainer::addRing(int fd) {
  if (!rb_) {
    rb_ = ring_buffer__new(fd, &RingDrainer::onRecord, this, nullptr);
    if (!rb_)
      return Error::fromErrno(errno, "opening the capture ring");
  } else if (int err = ring_buffer__add(rb_, fd, &RingDrainer::onRecord, this)) {
    return Error::fromErrno(err, "opening the capture ring");
  }
  rings_++;
  return {};
}

Result<std::unique_ptr<RingDrainer>> RingDrainer::create(int ringFd,
                                                         ClockOffsetSource clockOffset) {
  std::unique_ptr<RingDrainer> d(new RingDrainer());
  d->clockOffset_ = clockOffset;
  bpf_map_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(ringFd, &info, &len))
    return Error::fromErrno(errno, "reading the capture ring's map");
  if (info.type == BPF_MAP_TYPE_ARRAY_OF_MAPS) {
    for (uint32_t key = 0; key < info.max_entries; key++) {
      uint32_t id = 0;
      if (bpf_map_lookup_elem(ringFd, &key, &id))
        return Error::fromErrno(errno, "reading ring " + std::to_string(key) + " of the array");
      UniqueFd fd(bpf_map_get_fd_by_id(id));
      if (!fd)
        return Error::fromErrno(errno, "opening ring " + std::to_string(key) + " of the array");
      if (auto r = d->addRing(fd.get()); !r)
        return r.error();
      d->ringFds_.push_back(std::move(fd));
    }
  } else if (auto r = d->addRing(ringFd); !r) {
    return r.error();
  }
  if (!d->rb_)
    return Error{EINVAL, "the array of capture rings is empty"};
  d->offsetNs_ = d->clockOffset_();
  return d;
}

int64_t RingDrainer::refreshClockOffset() {
  int64_t before = offsetNs_;
  offsetNs_ = clockOffset_();
  return offsetNs_ - before;
}

RingDrainer::~RingDrainer() { ring_buffer__free(rb_); }

void RingDrainer::route(unsigned slot, uint32_t cookie, PacketSink *sink) {
  if (slot < RINGCAP_MAX_SLOTS)
    routes_[slot] = {sink, cookie};
}

void RingDrainer::unroute(unsigned slot) {
  if (slot < RINGCAP_MAX_SLOTS)
    routes_[slot] = {};
}

int RingDrainer::epollFd() const { return ring_buffer__epoll_fd(rb_); }

namespace {
// What onRecord returns to make libbpf stop after the record it was handed (libbpf advances
// the consumer position past that record first).
constexpr int kBudgetSpent = -ERANGE;
} // namespace

int RingDrainer::onRecord(void *ctx, void *data, size_t size) {
  auto *self = static_cast<RingDrainer *>(ctx);
  self->deliver(data, size);
  if (self->budget_ != UINT64_MAX && --self->budget_ == 0)
    return kBudgetSpent;
  return 0;
}

void RingDrainer::deliver(void *data, size_t size) {
  auto rec = parseRingRecord({static_cast<const uint8_t *>(data), size});
  if (!rec) {
    stats_.malformed++;
    return;
  }
  const Route &route = routes_[rec->header.slot];
  if (!route.sink || route.cookie != rec->header.cookie) {
    stats_.stale++;
    return;
  }
  CapturedPacket p;
  p.tsNs = uint64_t(int64_t(rec->header.tstamp_boot_ns) + offsetNs_);
  p.ifindex = rec->header.ifindex;
  p.rxQueue = rec->header.rx_queue;
  p.pktLen = rec->header.pkt_len;
  p.data = rec->data;
  stats_.records++;
  route.sink->onPacket(p);
}

Result<uint64_t> RingDrainer::consume(uint64_t maxRecords) {
  if (maxRecords == 0)
    return uint64_t(0);
  budget_ = maxRecords;
  int n = ring_buffer__consume(rb_);
  uint64_t taken = maxRecords == UINT64_MAX ? 0 : maxRecords - budget_;
  budget_ = UINT64_MAX;
  if (n == kBudgetSpent)
    return taken;
  if (n < 0)
    return Error::fromErrno(n, "draining the capture ring");
  return uint64_t(n);
}

Result<uint64_t> RingDrainer::poll(int timeoutMs) {
  int n = ring_buffer__poll(rb_, timeoutMs);
  if (n == -EINTR)
    return uint64_t(0);
  if (n < 0)
    return Error::fromErrno(n, "waiting on the capture ring");
  return uint64_t(n);
}

} // namespace ringcap
