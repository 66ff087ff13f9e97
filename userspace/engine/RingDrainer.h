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
  // packet.data points into the ring, whose memory the producer may reuse once the drainer
  // publishes its consumer position: a sink keeps it at most until endBatch().
  virtual void onPacket(const CapturedPacket &packet) = 0;
  // Called before every publish of a batch's consumer positions (also on sinks that got no
  // packet): the last moment to use the packets' data in place.
  virtual void endBatch() {}
};

// A ring record after its lengths were checked: one packet for every slot in
// header.slot_mask.
struct RingRecord {
  ringcap_record header;
  // Indexed by slot; set only for the slots in header.slot_mask.
  std::array<ringcap_record_slot, RINGCAP_MAX_SLOTS> slots{};
  std::span<const uint8_t> data; // the largest cap_len of the slots
  // Slot `slot`'s packet: the first cap_len bytes of the data.
  std::span<const uint8_t> dataOf(unsigned slot) const { return data.first(slots[slot].cap_len); }
};

// Checks a raw ring record; nullopt if it is shorter than its header and slot entries, its
// slot mask is empty or names a slot out of range, its flags are set, a cap_len exceeds
// pkt_len or the largest snaplen, or the data runs past its end.
std::optional<RingRecord> parseRingRecord(std::span<const uint8_t> raw);

// CLOCK_REALTIME minus CLOCK_BOOTTIME in ns, from the closest of several paired readings.
int64_t realtimeMinusBoottimeNs();

struct DrainerStats {
  uint64_t records = 0;   // packets delivered to a sink (one per slot of a record)
  uint64_t malformed = 0; // records that failed parseRingRecord (never expected)
  uint64_t stale = 0;     // a record's slots with no sink or another job's cookie
};

class RingDrainer {
public:
  // Where the clock offset comes from: realtimeMinusBoottimeNs, or a fake in tests.
  using ClockOffsetSource = int64_t (*)();
  // `ringFd` is a ring buffer, or an array of them (CaptureProgram::ringFd(): indexed by CPU,
  // one ring per CPU online at load, shared by the others), each ring drained once, all
  // through one epoll fd. A drain merges the records waiting in the rings by
  // their timestamps (each ring is in commit order); the position of a ring's consumer is
  // published once per batch, not after every record.
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
  // Hands the records available now to their sinks in timestamp order, at most maxRecords
  // of them (the rest stay in the rings, whose fds stay readable); returns how many were
  // consumed.
  // At most maxBytes of records too (a record that starts below it is taken whole). `cut`,
  // if given, is set when a limit ended the drain (records may be left), cleared otherwise.
  Result<uint64_t> consume(uint64_t maxRecords = UINT64_MAX, uint64_t maxBytes = UINT64_MAX,
                           bool *cut = nullptr);
  // Waits up to timeoutMs for records, then consumes them.
  Result<uint64_t> poll(int timeoutMs);
  // The rings' own fds, for a caller that waits on each of them (edge-triggered, to see
  // every wake-up of the program) instead of on epollFd().
  std::vector<int> ringFds() const;
  // The most bytes waiting in one ring (the program's wake-up threshold is per ring).
  uint64_t maxPendingBytes() const;

  const DrainerStats &stats() const { return stats_; }
  size_t rings() const { return rings_.size(); }
  // Re-reads the clock offset: after the wall clock was set (ClockStepWatch), and now and
  // then while capturing (NTP slews the real-time clock against the boot-time clock).
  // Records drained afterwards are converted with the new offset. Returns the change in ns.
  int64_t refreshClockOffset();
  int64_t clockOffsetNs() const { return offsetNs_; }

private:
  RingDrainer() = default;
  void deliver(const uint8_t *data, size_t size);

  struct Route {
    PacketSink *sink = nullptr;
    uint32_t cookie = 0;
  };
  // One mapped ring buffer: the consumer page (read-write), the producer page and the data
  // pages (read-only, the data mapped twice, so a record that wraps is contiguous).
  struct Ring {
    int fd = -1;
    uint64_t mask = 0;               // data size - 1
    uint64_t *consumerPos = nullptr; // shared with the kernel
    const uint64_t *producerPos = nullptr;
    const uint8_t *data = nullptr;
    void *consumerMap = nullptr, *producerMap = nullptr;
    size_t producerMapLen = 0;
    uint64_t cons = 0;      // next record to read (published in *consumerPos per batch)
    uint64_t published = 0; // the last value written to *consumerPos
    uint64_t prod = 0;      // the producer position last read
  };
  struct Head {
    const uint8_t *data = nullptr;
    uint32_t size = 0;
    uint64_t next = 0; // consumer position after the record
    uint64_t tsNs = 0; // the record's kernel timestamp (0 if it is too short to hold one)
  };
  Result<void> addRing(int fd);
  // The first committed record of `r`, skipping discarded ones; false if none is ready.
  static bool head(Ring &r, Head &h);
  static void publish(Ring &r);

  std::vector<UniqueFd> ringFds_; // the rings of an array, opened by id
  std::vector<Ring> rings_;
  UniqueFd epoll_;
  std::array<Route, RINGCAP_MAX_SLOTS> routes_{};
  DrainerStats stats_;
  int64_t offsetNs_ = 0;
  ClockOffsetSource clockOffset_ = realtimeMinusBoottimeNs;
};

} // namespace ringcap
