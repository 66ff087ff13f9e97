// The loaded XDP capture program: its skeleton, its attachments (through libxdp, so it
// shares interfaces with the host's own XDP programs) and its job slots.
#pragma once

#include "capture_abi.h"
#include "engine/SlotCounters.h"
#include "util/Result.h"
#include "util/UniqueFd.h"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct capture;
struct xdp_program;

namespace ringcap {

struct CaptureProgramOptions {
  // Ring memory in bytes, for all CPUs together: a power of two, at least one page. Each
  // CPU online at load gets a ring of its own of ringBytes / online CPUs, rounded down to a
  // power of two and at least one page (perCpuRingBytes()); a CPU offline at load writes
  // into the ring of an online one (ringOfCpu()).
  uint32_t ringBytes = 32u << 20;
  // Pending bytes in one CPU's ring that wake the consumer; 0 picks a sixteenth of a CPU's
  // ring within [64 KiB, 1 MiB].
  uint32_t wakeupBytes = 0;
  // Also wake the consumer for the first record into an empty ring. For a consumer that
  // drains a bounded time after that wake-up instead of on a periodic tick (ringcap-dump).
  bool wakeOnFirstRecord = false;
};

// The ring size of each CPU for a total of `ringBytes` over `cpus` CPUs.
uint32_t perCpuRingBytes(uint32_t ringBytes, unsigned cpus);

// A CPU list as the kernel writes it (/sys/devices/system/cpu/online: "0-3,8,10-11\n"), in
// increasing order; an error naming the text for anything else.
Result<std::vector<unsigned>> parseCpuList(std::string_view text);

// The ring each of `possible` CPUs writes to: ring i for the i-th CPU of `online` (those
// below `possible`), and for a CPU offline at load the ring of an online one (its number
// modulo the online count), so that a CPU brought online later writes into a ring that is
// drained, sharing its lock. Every possible CPU has a ring of its own if `online` names
// none of them.
std::vector<unsigned> ringOfCpu(unsigned possible, const std::vector<unsigned> &online);

// What one job asks of a slot.
struct SlotSettings {
  uint32_t cookie = 0;
  uint32_t sampleRate = 1;
  uint32_t snaplen = RINGCAP_MAX_SNAPLEN;
  std::vector<uint32_t> ifindexes; // empty: every interface the program is attached to
  ringcap_filter filter{};
  std::optional<uint64_t> packetLimit;
  std::optional<uint64_t> byteLimit;
};

// What the history slot is armed with (docs/history.md): apart from the job slots, it samples
// 1 in sampleRate packets (on average) on its interfaces, with no filter, and writes the first
// snaplen bytes of each into a ring of its own (historyRingFd()).
struct HistorySettings {
  uint32_t sampleRate = 100;       // 1..RINGCAP_MAX_SAMPLE_RATE
  uint32_t snaplen = 160;          // 1..RINGCAP_MAX_SNAPLEN
  std::vector<uint32_t> ifindexes; // at most RINGCAP_MAX_SLOT_IFACES; empty: any interface
  uint32_t cookie = 0;             // in every record's slot entry (RingDrainer::route)
  // The history ring's size: a power of two of at least one page. One ring for all CPUs.
  uint32_t ringBytes = 4u << 20;
  // Pending bytes in the history ring that wake the consumer; 0 picks a sixteenth of the
  // ring within [64 KiB, 1 MiB] (at most half the ring).
  uint32_t wakeupBytes = 0;
  // Also wake the consumer at the first record into an empty history ring; unset: as the
  // program's CaptureProgramOptions::wakeOnFirstRecord for the jobs' rings. False: only the
  // threshold wakes it, and the consumer drains the history on a timer of its own.
  std::optional<bool> wakeOnFirstRecord;
};

// The history slot's counters since it was last armed (RINGCAP_HISTORY_COUNTERS).
struct HistoryCounters {
#define RINGCAP_X(field, member, description) uint64_t member = 0;
  RINGCAP_HISTORY_COUNTERS(RINGCAP_X)
#undef RINGCAP_X
  bool operator==(const HistoryCounters &) const = default;
};

struct GlobalCounters {
  uint64_t packets = 0, nonIp = 0, malformed = 0, noPorts = 0;
};

struct SlotBudget {
  int64_t packetsLeft = 0;
  int64_t bytesLeft = 0;
};

struct Attachment {
  int ifindex = 0;
  std::string ifname;
};

class CaptureProgram {
public:
  // Opens the program; it is loaded by the first attach().
  static Result<std::unique_ptr<CaptureProgram>> open(const CaptureProgramOptions &options = {});
  // Loads the program without attaching it, for BPF_PROG_TEST_RUN (tests, benchmarks).
  Result<void> loadUnattached();
  ~CaptureProgram();
  CaptureProgram(const CaptureProgram &) = delete;
  CaptureProgram &operator=(const CaptureProgram &) = delete;

  // Attaches to every named interface, or to none: on a failure, the interfaces attached
  // by this call are detached again.
  Result<void> attach(const std::vector<std::string> &ifnames);
  // Detaches from one interface (also when it no longer exists).
  Result<void> detach(int ifindex);
  // Detaches from every interface; called by the destructor.
  void detachAll();
  const std::vector<Attachment> &attachments() const { return attachments_; }

  // A slot that is neither armed nor held.
  std::optional<unsigned> freeSlot() const;
  Result<void> armSlot(unsigned slot, const SlotSettings &settings);
  Result<void> disarmSlot(unsigned slot);
  bool slotArmed(unsigned slot) const { return config_.active_mask & (1u << slot); }
  // A held slot is not free although disarmed: its job still drains its records from the
  // ring and reads its counters.
  void holdSlot(unsigned slot, bool held) {
    if (slot < RINGCAP_MAX_SLOTS)
      held_ = held ? held_ | (1u << slot) : held_ & ~(1u << slot);
  }

  // Counters since the slot was last armed.
  Result<SlotCounters> slotCounters(unsigned slot) const;
  Result<SlotBudget> slotBudget(unsigned slot) const;
  Result<GlobalCounters> globalCounters() const;

  // The history slot. armHistory() validates every setting (an error naming the setting and
  // its rule, and nothing changes), creates the history ring if there is none or its size
  // differs from ringBytes (historyRingFd() then names a new ring), starts the counters and
  // the sampling anew and arms the slot; on an armed slot it re-arms it with the new
  // settings. Its records carry slot bit kHistoryRecordSlot and the cookie: drain them with a
  // RingDrainer of their own on historyRingFd(), routed with
  // route(kHistoryRecordSlot, cookie, sink). The program must be loaded (attach() first).
  static constexpr unsigned kHistoryRecordSlot = RINGCAP_HISTORY_RECORD_SLOT;
  Result<void> armHistory(const HistorySettings &settings);
  // Stops the sampling; the ring and its records stay for the consumer to drain.
  Result<void> disarmHistory();
  bool historyArmed() const { return config_.history_armed != 0; }
  // The history ring (a BPF ring buffer map), -1 before the first armHistory().
  int historyRingFd() const { return historyRing_.get(); }
  // The history ring's size in bytes (0 before the first armHistory()).
  uint32_t historyRingBytes() const { return historyRingBytes_; }
  // Counters since the history was last armed.
  Result<HistoryCounters> historyCounters() const;

  // The kernel id of the attached program (0 before the first attach).
  uint32_t programId() const;
  // Detaches the program with kernel id `programId` from the interface, if it is attached
  // there (directly or through libxdp's dispatcher); true if it was.
  static Result<bool> detachProgramById(int ifindex, uint32_t programId);

  int programFd() const;
  // The rings: an array of ring buffers indexed by CPU, one ring per CPU online at load
  // (ringOfCpu(); RingDrainer drains them all).
  int ringFd() const;
  // The pending bytes in one CPU's ring that wake the consumer.
  uint32_t wakeupBytes() const { return wakeupBytes_; }
  // One CPU's ring size; rings() rings of it.
  uint32_t ringBytes() const { return ringBytes_; }
  // Possible CPUs (entries of the array of rings, leases per slot).
  unsigned cpus() const { return cpus_; }
  // Rings: the CPUs online at load.
  unsigned rings() const { return rings_; }

private:
  CaptureProgram() = default;
  Result<std::vector<ringcap_counters>> readCounters() const;
  Result<SlotCounters> sumSlot(unsigned slot) const;
  Result<std::vector<ringcap_history_state>> readHistoryState() const;
  Result<HistoryCounters> sumHistory() const;
  Result<void> writeConfig(const ringcap_config &config);
  // After the program was loaded: each CPU's ring into the array of rings.
  Result<void> createRings();
  Result<void> afterLoad();

  capture *skel_ = nullptr;
  xdp_program *prog_ = nullptr;
  std::vector<Attachment> attachments_;
  ringcap_config config_{}; // what the program's .bss holds
  uint32_t ringBytes_ = 0;
  unsigned cpus_ = 1;
  unsigned rings_ = 1;
  std::vector<unsigned> ringOfCpu_; // by possible CPU: its index in ringFds_
  std::vector<UniqueFd> ringFds_;   // the rings until they are in the array
  uint32_t wakeupBytes_ = 0;
  bool wakeOnFirstRecord_ = false; // CaptureProgramOptions::wakeOnFirstRecord
  bool ringsCreated_ = false;
  bool loaded_ = false;
  bool standalone_ = false;
  uint32_t held_ = 0; // slots held by holdSlot()
  std::array<SlotCounters, RINGCAP_MAX_SLOTS> baseline_{};
  UniqueFd historyTemplate_; // the history ring's template until the program is loaded
  UniqueFd historyRing_;     // the history ring (also in the program's history_ring)
  uint32_t historyRingBytes_ = 0;
  HistoryCounters historyBaseline_{};
};

} // namespace ringcap
