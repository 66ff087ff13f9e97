// Drains the capture ring: checks every record, converts its kernel timestamp to wall-clock
// time and hands it to the sink of the job that owns the record's slot.
#pragma once

#include "capture_abi.h"
#include "util/Result.h"
#include "util/UniqueFd.h"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

struct ring_buffer;

namespace ringcap {

struct CapturedPacket {
  uint64_t tsNs = 0; // wall-clock time, ns since the Unix epoch
  uint32_t ifindex = 0;
  uint32_t rxQueue = 0;
  uint32_t pktLen = 0;
  std::span<const uint8_t> data; // cap_len bytes
};

class PacketSink {
public:
  virtual ~PacketSink() = default;
  virtual void onPacket(const CapturedPacket &packet) = 0;
};

// A ring record after its lengths were checked.
struct RingRecord {
  ringcap_record header;
  std::span<const uint8_t> data;
};

// Checks a raw ring record; nullopt if it is too short, its cap_len runs past its end or
// exceeds pkt_len or the largest snaplen, or its slot is out of range.
std::optional<RingRecord> parseRingRecord(std::span<const uint8_t> raw);

// CLOCK_REALTIME minus CLOCK_BOOTTIME in ns, from the closest of several paired readings.
int64_t realtimeMinusBoottimeNs();

struct DrainerStats {
  uint64_t records = 0;   // records delivered to a sink
  uint64_t malformed = 0; // records that failed parseRingRecord (never expected)
  uint64_t stale = 0;     // records of a slot with no sink or another job's cookie
};

class RingDrainer {
public:
  // Where the clock offset comes from: realtimeMinusBoottimeNs, or a fake in tests.
  using ClockOffsetSource = int64_t (*)();
  // `ringFd` is a ring buffer, or an array of them (CaptureProgram::ringFd(): one per CPU),
  // all drained through one epoll fd. Records of one ring arrive in the order they were
  // committed; the rings are drained one after the other, so records of different CPUs are
  // not merged by time.
  static Result<std::unique_ptr<RingDrainer>>
  create(int ringFd, ClockOffsetSource clockOffset = realtimeMinusBoottimeNs);
  ~RingDrainer();
  RingDrainer(const RingDrainer &) = delete;
  RingDrainer &operator=(const RingDrainer &) = delete;

  // Records of `slot` carrying `cookie` go to `sink` (not owned) until unroute().
  void route(unsigned slot, uint32_t cookie, PacketSink *sink);
  void unroute(unsigned slot);

  // An fd that is readable when records wait (for epoll / sd-event).
  int epollFd() const;
  // Hands the records available now to their sinks, at most maxRecords of them (the rest
  // stay in the ring, whose fd stays readable); returns how many were consumed.
  Result<uint64_t> consume(uint64_t maxRecords = UINT64_MAX);
  // Waits up to timeoutMs for records, then consumes them.
  Result<uint64_t> poll(int timeoutMs);

  const DrainerStats &stats() const { return stats_; }
  size_t rings() const { return rings_; }
  // Re-reads the clock offset: after the wall clock was set (ClockStepWatch), and now and
  // then while capturing (NTP slews the real-time clock against the boot-time clock).
  // Records drained afterwards are converted with the new offset. Returns the change in ns.
  int64_t refreshClockOffset();
  int64_t clockOffsetNs() const { return offsetNs_; }

private:
  RingDrainer() = default;
  static int onRecord(void *ctx, void *data, size_t size);
  void deliver(void *data, size_t size);

  struct Route {
    PacketSink *sink = nullptr;
    uint32_t cookie = 0;
  };
  Result<void> addRing(int fd);

  std::vector<UniqueFd> ringFds_; // the rings of an array, opened by id
  ring_buffer *rb_ = nullptr;
  std::array<Route, RINGCAP_MAX_SLOTS> routes_{};
  DrainerStats stats_;
  int64_t offsetNs_ = 0;
  ClockOffsetSource clockOffset_ = realtimeMinusBoottimeNs;
  uint64_t budget_ = UINT64_MAX; // records consume() may still take in this call
  size_t rings_ = 0;
};

} // namespace ringcap
