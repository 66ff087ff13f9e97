// HistoryStore: the sampled packet history behind offset_time (docs/history.md). A
// PacketSink that writes the packets of the always-armed history slot, cut to the snaplen,
// into pcapng segment files under one directory, one file per period (and per
// segment_max_bytes), with an index of each segment's first and last timestamps, so that a
// query opens only the segments of its window. Bounded by bytes and by age (oldest segments
// removed first); it stops writing, and counts the drops, while the filesystem has
// min_free_bytes or less free. On open it indexes the directory again and cuts a segment
// torn by a crash back to its last whole block.
#pragma once

#include "engine/RingDrainer.h"
#include "pcap/PcapngWriter.h"
#include "request/FilterV1.h"
#include "util/Result.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ringcap {

struct HistoryConfig {
  std::string directory;                  // created (mode 0750) if missing
  uint64_t maxBytes = 1ull << 30;         // all segments together
  uint64_t maxAgeSeconds = 86400;         // 1 .. 86400
  uint64_t segmentSeconds = 60;           // period of a segment, 1 .. 3600
  uint64_t segmentMaxBytes = 64ull << 20; // at most maxBytes / 2
  uint64_t minFreeBytes = 1ull << 30;     // free space kept on the directory's filesystem
  uint32_t snaplen = 160;                 // bytes kept of each packet, 1 .. 65535
  // The capturing interfaces: ifindex and name (the name goes into each segment). Packets
  // of other interfaces are dropped (counted in droppedUnknownInterface).
  std::vector<std::pair<uint32_t, std::string>> interfaces;
};

// Checks the bounds; the error names the field ("history.max_age_seconds: ...").
Result<void> validateHistoryConfig(const HistoryConfig &config);

struct HistoryStoreCounters {
  uint64_t packetsWritten = 0;
  uint64_t bytesWritten = 0; // packet bytes kept (after the cut)
  uint64_t droppedLowSpace = 0;
  uint64_t droppedWriteError = 0;
  uint64_t droppedUnknownInterface = 0;
  uint64_t segmentsRemovedByAge = 0;
  uint64_t segmentsRemovedByBytes = 0;
  uint64_t segmentsRepaired = 0; // torn tails cut on open
  uint64_t bytesCut = 0;         // bytes of those tails
  uint64_t lowSpaceEpisodes = 0; // times writing stopped for free space
};

// One segment file as the index knows it.
struct HistorySegment {
  std::string file;     // name in the directory: seg-<first ts ns>[-n].pcapng
  uint64_t firstNs = 0; // first (and smallest) packet timestamp
  uint64_t lastNs = 0;  // last (and largest) packet timestamp
  uint64_t packets = 0;
  uint64_t bytes = 0;                  // file size
  std::vector<std::string> interfaces; // interface names, by interface id
};

enum class HistoryOutputFormat { Pcap, Pcapng };

struct HistoryQuery {
  uint64_t fromNs = 0, toNs = 0; // the window, both ends included
  FilterV1 filter;
  uint64_t packetLimit = 0; // 0: no limit
  // The interfaces (names) whose packets are wanted, such as a system's; empty: every one.
  std::vector<std::string> interfaces;
  std::string outputPath; // written as <outputPath>.part, renamed when complete
  // Pcap: classic PCAP with nanosecond timestamps, as ringcapd delivers a simple capture
  // (PcapWriter); Pcapng: one interface block per interface name (PcapngWriter).
  HistoryOutputFormat format = HistoryOutputFormat::Pcap;
};

struct HistoryQueryResult {
  uint64_t packets = 0;        // written to the output, in timestamp order
  uint64_t fileBytes = 0;      // size of the output file
  uint64_t packetsScanned = 0; // of the window and the interfaces, before the filter
  uint64_t segmentsRead = 0;
  uint64_t segmentsDamaged = 0; // segments whose walk ended at a bad block
  bool limitReached = false;    // packetLimit packets were written: more may match
  // The oldest packet kept (nullopt: nothing kept). A window starting before it is only
  // partly kept: windowPartlyKept.
  std::optional<uint64_t> historyStartNs;
  bool windowPartlyKept = false;
};

class HistoryStore : public PacketSink {
public:
  using Clock = std::function<uint64_t()>;                    // wall clock, ns since the epoch
  using FreeSpace = std::function<std::optional<uint64_t>()>; // free bytes; nullopt: unknown

  static constexpr const char *kIndexFile = "index.json";

  // Validates the config, creates the directory, indexes the segments found (index.json for
  // the closed ones it lists with their size, a walk of every other segment file, torn
  // tails cut) and applies the bounds. `clock` defaults to CLOCK_REALTIME, `freeSpace` to
  // statvfs of the directory.
  static Result<std::unique_ptr<HistoryStore>> open(HistoryConfig config, Clock clock = {},
                                                    FreeSpace freeSpace = {});
  // Closes the active segment and writes the index (errors are logged).
  ~HistoryStore() override;
  HistoryStore(const HistoryStore &) = delete;
  HistoryStore &operator=(const HistoryStore &) = delete;

  void onPacket(const CapturedPacket &packet) override;
  // Flushes the active segment, then maintain().
  void endBatch() override;
  // The bounds by the clock: removes segments older than max_age_seconds, closes an active
  // segment whose period has passed, checks the free space (at most once a second).
  void maintain();
  // Closes the active segment (the next packet opens another) and writes the index.
  Result<void> closeActive();

  // Writes the packets of the window that match the filter, in timestamp order, to
  // query.outputPath. Reads only the segments whose [firstNs, lastNs] meets the window, one
  // block at a time (memory does not grow with the history). Errors: a window whose from
  // is after its to (InvalidRequest), an output that cannot be written (the .part file is
  // removed).
  Result<HistoryQueryResult> query(const HistoryQuery &query);

  // Closed segments and the active one, oldest first.
  std::vector<HistorySegment> segments() const;
  std::optional<uint64_t> historyStartNs() const;
  uint64_t totalBytes() const;
  bool writingStopped() const { return lowSpace_; }
  const HistoryStoreCounters &counters() const { return counters_; }
  // The latest write or index error, if any.
  const std::optional<Error> &lastError() const { return lastError_; }
  const HistoryConfig &config() const { return config_; }

private:
  HistoryStore(HistoryConfig config, Clock clock, FreeSpace freeSpace);
  Result<void> recover();
  Result<void> writeIndex();
  bool openActive(uint64_t tsNs);
  void finishActive();
  void enforceBytes();
  // Bytes the statistics blocks take at the end of a segment.
  uint64_t isbReserve() const;
  void removeOldest(bool byAge);
  bool checkFreeSpace(uint64_t now);
  std::string path(const std::string &file) const { return config_.directory + "/" + file; }

  HistoryConfig config_;
  Clock clock_;
  FreeSpace freeSpace_;
  std::vector<HistorySegment> closed_; // oldest first
  uint64_t closedBytes_ = 0;

  struct Active {
    HistorySegment info;
    std::unique_ptr<PcapngWriter> writer;
    uint64_t periodEndNs = 0;
    std::vector<uint64_t> perInterface; // packets by interface id
  };
  std::optional<Active> active_;
  std::vector<uint32_t> ifindexes_; // interface id -> ifindex

  bool lowSpace_ = false;
  bool haveFreeCheck_ = false;
  uint64_t lastFreeCheckNs_ = 0;
  uint64_t retryAfterNs_ = 0; // after a write error, no new segment before this time
  HistoryStoreCounters counters_;
  std::optional<Error> lastError_;
};

} // namespace ringcap
