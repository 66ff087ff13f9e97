#include "engine/RingDrainer.h"

#include <algorithm>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

namespace ringcap {

std::optional<RingRecord> parseRingRecord(std::span<const uint8_t> raw) {
  if (raw.size() < RINGCAP_RECORD_HDR_LEN)
    return std::nullopt;
  RingRecord r;
  std::memcpy(&r.header, raw.data(), sizeof r.header);
  const auto &h = r.header;
  if (h.slot_mask == 0 || (h.slot_mask >> RINGCAP_MAX_SLOTS) != 0 || h.flags != 0)
    return std::nullopt;
  size_t off = RINGCAP_RECORD_HDR_LEN;
  uint32_t capLen = 0;
  for (unsigned s = 0; s < RINGCAP_MAX_SLOTS; s++) {
    if (!(h.slot_mask & (1u << s)))
      continue;
    if (raw.size() - off < RINGCAP_RECORD_SLOT_LEN)
      return std::nullopt;
    ringcap_record_slot &e = r.slots[s];
    std::memcpy(&e, raw.data() + off, sizeof e);
    off += RINGCAP_RECORD_SLOT_LEN;
    if (e.cap_len > RINGCAP_MAX_SNAPLEN || e.cap_len > h.pkt_len)
      return std::nullopt;
    capLen = std::max(capLen, e.cap_len);
  }
  if (capLen > raw.size() - off)
    return std::nullopt;
  r.data = raw.subspan(off, capLen);
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

namespace {

// The kernel's ring buffer record header (kernel/bpf/ringbuf.c): the length with two flag
// bits, then the page offset; the sample follows, the whole rounded up to 8 bytes.
constexpr uint32_t kBusyBit = 1u << 31;
constexpr uint32_t kDiscardBit = 1u << 30;
constexpr uint64_t kRecordHeader = 8;

} // namespace

Result<void> RingDrainer::addRing(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len))
    return Error::fromErrno(errno, "reading the capture ring's map");
  if (info.type != BPF_MAP_TYPE_RINGBUF || !info.max_entries ||
      (info.max_entries & (info.max_entries - 1)))
    return Error{EINVAL, "the capture ring is not a ring buffer"};
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  Ring r;
  r.fd = fd;
  r.mask = info.max_entries - 1;
  r.consumerMap = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (r.consumerMap == MAP_FAILED)
    return Error::fromErrno(errno, "mapping the capture ring's consumer page");
  r.producerMapLen = page + 2 * size_t(info.max_entries);
  r.producerMap = mmap(nullptr, r.producerMapLen, PROT_READ, MAP_SHARED, fd, off_t(page));
  if (r.producerMap == MAP_FAILED) {
    int err = errno;
    munmap(r.consumerMap, page);
    return Error::fromErrno(err, "mapping the capture ring's data");
  }
  r.consumerPos = static_cast<uint64_t *>(r.consumerMap);
  r.producerPos = static_cast<const uint64_t *>(r.producerMap);
  r.data = static_cast<const uint8_t *>(r.producerMap) + page;
  r.cons = r.published = __atomic_load_n(r.consumerPos, __ATOMIC_ACQUIRE);
  r.prod = __atomic_load_n(r.producerPos, __ATOMIC_ACQUIRE);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = rings_.size();
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev)) {
    int err = errno;
    munmap(r.consumerMap, page);
    munmap(r.producerMap, r.producerMapLen);
    return Error::fromErrno(err, "watching the capture ring");
  }
  rings_.push_back(r);
  return {};
}

Result<std::unique_ptr<RingDrainer>> RingDrainer::create(int ringFd,
                                                         ClockOffsetSource clockOffset) {
  std::unique_ptr<RingDrainer> d(new RingDrainer());
  d->clockOffset_ = clockOffset;
  d->epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!d->epoll_)
    return Error::fromErrno(errno, "creating the capture ring's epoll fd");
  bpf_map_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(ringFd, &info, &len))
    return Error::fromErrno(errno, "reading the capture ring's map");
  if (info.type == BPF_MAP_TYPE_ARRAY_OF_MAPS) {
    // Indexed by CPU; CPUs that were offline at load share an online CPU's ring: each ring
    // is drained once.
    std::vector<uint32_t> ids;
    for (uint32_t key = 0; key < info.max_entries; key++) {
      uint32_t id = 0;
      if (bpf_map_lookup_elem(ringFd, &key, &id))
        return Error::fromErrno(errno, "reading ring " + std::to_string(key) + " of the array");
      if (std::find(ids.begin(), ids.end(), id) != ids.end())
        continue;
      ids.push_back(id);
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
  if (d->rings_.empty())
    return Error{EINVAL, "the array of capture rings is empty"};
  d->offsetNs_ = d->clockOffset_();
  return d;
}

int64_t RingDrainer::refreshClockOffset() {
  int64_t before = offsetNs_;
  offsetNs_ = clockOffset_();
  return offsetNs_ - before;
}

RingDrainer::~RingDrainer() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (auto &r : rings_) {
    publish(r);
    munmap(r.consumerMap, page);
    munmap(r.producerMap, r.producerMapLen);
  }
}

void RingDrainer::route(unsigned slot, uint32_t cookie, PacketSink *sink) {
  if (slot < RINGCAP_MAX_SLOTS)
    routes_[slot] = {sink, cookie};
}

void RingDrainer::unroute(unsigned slot) {
  if (slot < RINGCAP_MAX_SLOTS)
    routes_[slot] = {};
}

int RingDrainer::epollFd() const { return epoll_.get(); }

bool RingDrainer::head(Ring &r, Head &h) {
  for (;;) {
    if (r.cons >= r.prod) {
      r.prod = __atomic_load_n(r.producerPos, __ATOMIC_ACQUIRE);
      if (r.cons >= r.prod)
        return false;
    }
    const uint8_t *hdr = r.data + (r.cons & r.mask);
    uint32_t len = __atomic_load_n(reinterpret_cast<const uint32_t *>(hdr), __ATOMIC_ACQUIRE);
    if (len & kBusyBit)
      return false; // reserved, not yet committed: it and what follows wait
    uint32_t size = len & ~(kBusyBit | kDiscardBit);
    uint64_t next = r.cons + ((kRecordHeader + size + 7) & ~uint64_t(7));
    if (len & kDiscardBit) {
      r.cons = next;
      continue;
    }
    h.data = hdr + kRecordHeader;
    h.size = size;
    h.next = next;
    h.tsNs = 0;
    if (size >= sizeof(uint64_t))
      std::memcpy(&h.tsNs, h.data, sizeof h.tsNs); // ringcap_record.tstamp_boot_ns
    return true;
  }
}

void RingDrainer::publish(Ring &r) {
  if (r.cons != r.published) {
    __atomic_store_n(r.consumerPos, r.cons, __ATOMIC_RELEASE);
    r.published = r.cons;
  }
}

void RingDrainer::deliver(const uint8_t *data, size_t size) {
  auto rec = parseRingRecord({data, size});
  if (!rec) {
    stats_.malformed++;
    return;
  }
  CapturedPacket p;
  p.tsNs = uint64_t(int64_t(rec->header.tstamp_boot_ns) + offsetNs_);
  p.ifindex = rec->header.ifindex;
  p.rxQueue = rec->header.rx_queue;
  p.pktLen = rec->header.pkt_len;
  for (unsigned s = 0; s < RINGCAP_MAX_SLOTS; s++) {
    if (!(rec->header.slot_mask & (1u << s)))
      continue;
    const Route &route = routes_[s];
    if (!route.sink || route.cookie != rec->slots[s].cookie) {
      stats_.stale++;
      continue;
    }
    p.data = rec->dataOf(s);
    stats_.records++;
    route.sink->onPacket(p);
  }
}

Result<uint64_t> RingDrainer::consume(uint64_t maxRecords, uint64_t maxBytes, bool *cut) {
  // A k-way merge of the rings' heads by timestamp. A ring's consumer position is published
  // at the end of the batch, or once a quarter of the ring was read, so that a producer
  // filling a ring gets room back while a long backlog is drained.
  uint64_t taken = 0, bytes = 0;
  if (cut)
    *cut = false;
  auto endBatch = [this] { // the sinks' last moment to read the records in place
    for (const Route &route : routes_)
      if (route.sink)
        route.sink->endBatch();
  };
  std::vector<Head> heads(rings_.size());
  std::vector<bool> ready(rings_.size());
  for (size_t i = 0; i < rings_.size(); i++)
    ready[i] = head(rings_[i], heads[i]);
  while (true) {
    if (taken >= maxRecords || bytes >= maxBytes) {
      if (cut)
        *cut = true;
      break;
    }
    size_t best = rings_.size();
    for (size_t i = 0; i < rings_.size(); i++)
      if (ready[i] && (best == rings_.size() || heads[i].tsNs < heads[best].tsNs))
        best = i;
    if (best == rings_.size())
      break;
    Ring &r = rings_[best];
    deliver(heads[best].data, heads[best].size);
    r.cons = heads[best].next;
    taken++;
    bytes += heads[best].size;
    if (r.cons - r.published > (r.mask + 1) / 4) {
      endBatch();
      publish(r);
    }
    ready[best] = head(r, heads[best]);
  }
  endBatch();
  for (auto &r : rings_)
    publish(r);
  return taken;
}

Result<uint64_t> RingDrainer::poll(int timeoutMs) {
  std::vector<epoll_event> events(rings_.size());
  int n = epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeoutMs);
  if (n < 0) {
    if (errno == EINTR)
      return uint64_t(0);
    return Error::fromErrno(errno, "waiting on the capture ring");
  }
  return consume();
}

std::vector<int> RingDrainer::ringFds() const {
  std::vector<int> fds;
  for (const auto &r : rings_)
    fds.push_back(r.fd);
  return fds;
}

uint64_t RingDrainer::maxPendingBytes() const {
  uint64_t most = 0;
  for (const auto &r : rings_)
    most = std::max(most, __atomic_load_n(r.producerPos, __ATOMIC_ACQUIRE) - r.cons);
  return most;
}

} // namespace ringcap
