#include "history/HistoryStore.h"

#include "history/FilterMatcher.h"
#include "history/SegmentReader.h"
#include "pcap/PcapWriter.h"
#include "util/AtomicFile.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <queue>
#include <spdlog/spdlog.h>

namespace ringcap {

namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000;
constexpr uint64_t kFreeCheckIntervalNs = kNsPerSec;
constexpr uint64_t kWriteRetryNs = kNsPerSec;

uint64_t realtimeNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * kNsPerSec + uint64_t(ts.tv_nsec);
}

// An Enhanced Packet Block's size for capLen bytes of packet (no options).
uint64_t epbBytes(size_t capLen) { return 32 + ((capLen + 3) & ~size_t(3)); }

constexpr const char *kStatsComment = "sampled packets kept in this segment";
// The Interface Statistics Block finishActive() writes for one interface: header and
// trailer, interface id, timestamp, three 8-byte counters, the comment, the end of options.
constexpr uint64_t kIsbBytes = 12 + 4 + 8 + 3 * 12 + (4 + 36) + 4;
static_assert(sizeof("sampled packets kept in this segment") - 1 == 36);

bool isSegmentName(const std::string &name) {
  return name.size() > 11 && name.rfind("seg-", 0) == 0 &&
         name.compare(name.size() - 7, 7, ".pcapng") == 0;
}

nlohmann::json toJson(const HistorySegment &s) {
  return {{"file", s.file},       {"first_ns", s.firstNs}, {"last_ns", s.lastNs},
          {"packets", s.packets}, {"bytes", s.bytes},      {"interfaces", s.interfaces}};
}

std::optional<HistorySegment> fromJson(const nlohmann::json &j) {
  try {
    HistorySegment s;
    s.file = j.at("file").get<std::string>();
    s.firstNs = j.at("first_ns").get<uint64_t>();
    s.lastNs = j.at("last_ns").get<uint64_t>();
    s.packets = j.at("packets").get<uint64_t>();
    s.bytes = j.at("bytes").get<uint64_t>();
    s.interfaces = j.at("interfaces").get<std::vector<std::string>>();
    if (!isSegmentName(s.file) || s.file.find('/') != std::string::npos || s.firstNs > s.lastNs)
      return std::nullopt;
    return s;
  } catch (const nlohmann::json::exception &) {
    return std::nullopt;
  }
}

bool olderFirst(const HistorySegment &a, const HistorySegment &b) {
  return a.firstNs != b.firstNs ? a.firstNs < b.firstNs : a.file < b.file;
}

// Walks a segment: its packets, timestamps and interfaces; cuts a torn tail back to the
// last whole block. nullopt (and the file removed) when nothing whole is left in it.
Result<std::optional<HistorySegment>> scanSegment(const std::string &dir, const std::string &file,
                                                  HistoryStoreCounters &counters) {
  const std::string path = dir + "/" + file;
  auto reader = SegmentReader::open(path);
  if (!reader) {
    spdlog::warn("history: removing {}: {}", path, reader.error().message);
    ::unlink(path.c_str());
    return std::optional<HistorySegment>{};
  }
  HistorySegment s;
  s.file = file;
  bool sorted = true;
  for (;;) {
    auto p = (*reader)->next();
    if (!p)
      return p.error();
    if (!*p)
      break;
    if (s.packets == 0)
      s.firstNs = (*p)->tsNs;
    if ((*p)->tsNs < s.lastNs)
      sorted = false;
    s.lastNs = std::max(s.lastNs, (*p)->tsNs);
    s.packets++;
  }
  s.interfaces = (*reader)->interfaces();
  s.bytes = (*reader)->wholeBytes();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return Error::fromErrno(errno, "stat " + path);
  if (uint64_t(st.st_size) > s.bytes) {
    if (::truncate(path.c_str(), off_t(s.bytes)) != 0)
      return Error::fromErrno(errno, "truncate " + path);
    spdlog::warn("history: {} was torn: cut from {} to {} bytes (its last whole block)", path,
                 st.st_size, s.bytes);
    counters.segmentsRepaired++;
    counters.bytesCut += uint64_t(st.st_size) - s.bytes;
  }
  if (s.packets == 0 || !sorted) {
    // A segment out of timestamp order is not one this store writes.
    if (!sorted)
      spdlog::warn("history: removing {}: its packets are not in timestamp order", path);
    ::unlink(path.c_str());
    return std::optional<HistorySegment>{};
  }
  return std::optional<HistorySegment>{std::move(s)};
}

} // namespace

Result<void> validateHistoryConfig(const HistoryConfig &c) {
  auto rule = [](const std::string &field, const std::string &what) {
    return Error{ErrorKind::InvalidRequest, "history." + field + ": " + what};
  };
  if (c.directory.empty())
    return rule("directory", "must be given");
  if (c.maxAgeSeconds < 1 || c.maxAgeSeconds > 86400)
    return rule("max_age_seconds",
                "must be an integer from 1 to 86400 (got " + std::to_string(c.maxAgeSeconds) + ")");
  if (c.segmentSeconds < 1 || c.segmentSeconds > 3600)
    return rule("segment_seconds",
                "must be an integer from 1 to 3600 (got " + std::to_string(c.segmentSeconds) + ")");
  if (c.snaplen < 1 || c.snaplen > 65535)
    return rule("snaplen",
                "must be an integer from 1 to 65535 (got " + std::to_string(c.snaplen) + ")");
  if (c.segmentMaxBytes < 4096)
    return rule("segment_max_bytes",
                "must be at least 4096 (got " + std::to_string(c.segmentMaxBytes) + ")");
  if (c.maxBytes / 2 < c.segmentMaxBytes)
    return rule("max_bytes", "must be at least twice segment_max_bytes (" +
                                 std::to_string(c.segmentMaxBytes) + "; got " +
                                 std::to_string(c.maxBytes) + ")");
  return {};
}

HistoryStore::HistoryStore(HistoryConfig config, Clock clock, FreeSpace freeSpace)
    : config_(std::move(config)), clock_(std::move(clock)), freeSpace_(std::move(freeSpace)) {
  for (const auto &[ifindex, name] : config_.interfaces)
    ifindexes_.push_back(ifindex);
}

Result<std::unique_ptr<HistoryStore>> HistoryStore::open(HistoryConfig config, Clock clock,
                                                         FreeSpace freeSpace) {
  if (auto v = validateHistoryConfig(config); !v)
    return v.error();
  if (auto d = makePrivateDirectory(config.directory); !d)
    return d.error();
  if (!clock)
    clock = realtimeNs;
  if (!freeSpace)
    freeSpace = [dir = config.directory]() -> std::optional<uint64_t> {
      struct statvfs vfs {};
      if (::statvfs(dir.c_str(), &vfs) != 0)
        return std::nullopt;
      return uint64_t(vfs.f_bavail) * vfs.f_frsize;
    };
  std::unique_ptr<HistoryStore> store(
      new HistoryStore(std::move(config), std::move(clock), std::move(freeSpace)));
  if (auto r = store->recover(); !r)
    return r.error();
  return store;
}

HistoryStore::~HistoryStore() {
  if (active_)
    if (auto r = closeActive(); !r)
      spdlog::warn("history: closing the active segment: {}", r.error().message);
}

Result<void> HistoryStore::recover() {
  // What the index says about the closed segments, trusted while the file has that size.
  std::map<std::string, HistorySegment> indexed;
  {
    std::ifstream in(path(kIndexFile));
    if (in) {
      auto j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_object() && j.contains("segments") && j["segments"].is_array()) {
        for (const auto &e : j["segments"])
          if (auto s = fromJson(e))
            indexed.emplace(s->file, *s);
      } else {
        spdlog::warn("history: {} is not a valid index: every segment is read again",
                     path(kIndexFile));
      }
    }
  }
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto &entry : std::filesystem::directory_iterator(config_.directory, ec)) {
    std::string name = entry.path().filename().string();
    if (isSegmentName(name) && entry.is_regular_file())
      files.push_back(name);
  }
  if (ec)
    return Error{ec.value(), "reading " + config_.directory + ": " + ec.message()};
  for (const auto &file : files) {
    auto it = indexed.find(file);
    struct stat st {};
    if (it != indexed.end() && ::stat(path(file).c_str(), &st) == 0 &&
        uint64_t(st.st_size) == it->second.bytes) {
      closed_.push_back(it->second);
      continue;
    }
    auto s = scanSegment(config_.directory, file, counters_);
    if (!s)
      return s.error();
    if (*s)
      closed_.push_back(**s);
  }
  std::sort(closed_.begin(), closed_.end(), olderFirst);
  for (const auto &s : closed_)
    closedBytes_ += s.bytes;
  maintain();
  enforceBytes();
  return writeIndex();
}

Result<void> HistoryStore::writeIndex() {
  nlohmann::json segs = nlohmann::json::array();
  for (const auto &s : closed_)
    segs.push_back(toJson(s));
  nlohmann::json j = {{"version", 1}, {"segments", segs}};
  auto r = writeFileAtomically(path(kIndexFile), j.dump() + "\n");
  if (!r)
    lastError_ = r.error();
  return r;
}

bool HistoryStore::checkFreeSpace(uint64_t now) {
  if (haveFreeCheck_ && now - lastFreeCheckNs_ < kFreeCheckIntervalNs && now >= lastFreeCheckNs_)
    return !lowSpace_;
  haveFreeCheck_ = true;
  lastFreeCheckNs_ = now;
  auto free = freeSpace_();
  bool low = free && *free <= config_.minFreeBytes;
  if (low && !lowSpace_) {
    counters_.lowSpaceEpisodes++;
    spdlog::warn("history: {} has {} bytes free, not more than min_free_bytes ({}): not "
                 "writing until there is more",
                 config_.directory, *free, config_.minFreeBytes);
    lowSpace_ = true;
    if (active_)
      finishActive();
  } else if (!low && lowSpace_) {
    lowSpace_ = false;
  }
  return !lowSpace_;
}

bool HistoryStore::openActive(uint64_t tsNs) {
  uint64_t now = clock_();
  if (!checkFreeSpace(now))
    return false;
  if (now < retryAfterNs_)
    return false;
  std::string base = "seg-" + std::to_string(tsNs);
  std::string file = base + ".pcapng";
  for (int n = 1; ::access(path(file).c_str(), F_OK) == 0; n++)
    file = base + "-" + std::to_string(n) + ".pcapng";
  std::vector<PcapInterface> ifaces;
  for (const auto &[ifindex, name] : config_.interfaces)
    ifaces.push_back({name, "", config_.snaplen});
  auto w = PcapngWriter::create(path(file), ifaces, "ringcapd history");
  if (!w) {
    lastError_ = w.error();
    retryAfterNs_ = now + kWriteRetryNs;
    spdlog::warn("history: {}", w.error().message);
    return false;
  }
  Active a;
  a.info.file = file;
  a.info.firstNs = a.info.lastNs = tsNs;
  for (const auto &[ifindex, name] : config_.interfaces)
    a.info.interfaces.push_back(name);
  a.info.bytes = (*w)->bytesWritten();
  a.perInterface.assign(config_.interfaces.size(), 0);
  a.writer = std::move(*w);
  uint64_t period = config_.segmentSeconds * kNsPerSec;
  a.periodEndNs = (tsNs / period + 1) * period;
  active_ = std::move(a);
  return true;
}

void HistoryStore::finishActive() {
  Active a = std::move(*active_);
  active_.reset();
  // One statistics block per interface: the packets of this segment.
  std::vector<PcapInterfaceStats> stats;
  for (uint64_t n : a.perInterface)
    stats.push_back({a.info.lastNs, n, 0, n, kStatsComment});
  auto r = a.writer->finish(stats);
  if (!r) {
    lastError_ = r.error();
    spdlog::warn("history: {}", r.error().message);
  }
  struct stat st {};
  if (::stat(path(a.info.file).c_str(), &st) == 0)
    a.info.bytes = uint64_t(st.st_size);
  if (a.info.packets == 0) {
    ::unlink(path(a.info.file).c_str());
  } else {
    closedBytes_ += a.info.bytes;
    closed_.push_back(std::move(a.info));
  }
  enforceBytes();
  (void)writeIndex();
}

Result<void> HistoryStore::closeActive() {
  if (active_)
    finishActive();
  return lastError_ ? Result<void>(*lastError_) : Result<void>();
}

void HistoryStore::removeOldest(bool byAge) {
  const HistorySegment &s = closed_.front();
  if (::unlink(path(s.file).c_str()) != 0 && errno != ENOENT)
    lastError_ = Error::fromErrno(errno, "unlink " + path(s.file));
  closedBytes_ -= s.bytes;
  (byAge ? counters_.segmentsRemovedByAge : counters_.segmentsRemovedByBytes)++;
  closed_.erase(closed_.begin());
}

void HistoryStore::enforceBytes() {
  bool removed = false;
  while (!closed_.empty() &&
         closedBytes_ + (active_ ? active_->info.bytes : 0) > config_.maxBytes) {
    removeOldest(false);
    removed = true;
  }
  if (removed)
    (void)writeIndex();
}

void HistoryStore::maintain() {
  const uint64_t now = clock_();
  const uint64_t maxAge = config_.maxAgeSeconds * kNsPerSec;
  if (active_ && (now >= active_->periodEndNs + config_.segmentSeconds * kNsPerSec ||
                  (now > maxAge && active_->info.lastNs < now - maxAge)))
    finishActive();
  bool removed = false;
  while (!closed_.empty() && now > maxAge && closed_.front().lastNs < now - maxAge) {
    removeOldest(true);
    removed = true;
  }
  if (removed)
    (void)writeIndex();
  checkFreeSpace(now);
}

uint64_t HistoryStore::isbReserve() const { return kIsbBytes * config_.interfaces.size(); }

void HistoryStore::onPacket(const CapturedPacket &p) {
  uint32_t id = 0;
  while (id < ifindexes_.size() && ifindexes_[id] != p.ifindex)
    id++;
  if (id == ifindexes_.size()) {
    counters_.droppedUnknownInterface++;
    return;
  }
  if (lowSpace_) {
    counters_.droppedLowSpace++;
    return;
  }
  auto data = p.data.first(std::min<size_t>(p.data.size(), config_.snaplen));
  const uint64_t block = epbBytes(data.size());
  // A segment holds one period, in timestamp order, within segment_max_bytes.
  if (active_ && (p.tsNs >= active_->periodEndNs || p.tsNs < active_->info.lastNs ||
                  active_->info.bytes + block + isbReserve() > config_.segmentMaxBytes))
    finishActive();
  if (!active_ && !openActive(p.tsNs)) {
    (lowSpace_ ? counters_.droppedLowSpace : counters_.droppedWriteError)++;
    return;
  }
  Active &a = *active_;
  auto r =
      a.writer->writePacket(id, p.tsNs, std::max<uint32_t>(p.pktLen, uint32_t(data.size())), data);
  if (!r) {
    counters_.droppedWriteError++;
    lastError_ = r.error();
    spdlog::warn("history: {}", r.error().message);
    retryAfterNs_ = clock_() + kWriteRetryNs;
    finishActive();
    return;
  }
  if (a.info.packets == 0)
    a.info.firstNs = p.tsNs;
  a.info.lastNs = p.tsNs;
  a.info.packets++;
  a.perInterface[id]++;
  a.info.bytes += block;
  counters_.packetsWritten++;
  counters_.bytesWritten += data.size();
  if (closedBytes_ + a.info.bytes > config_.maxBytes)
    enforceBytes();
}

void HistoryStore::endBatch() {
  if (active_)
    if (auto r = active_->writer->flush(); !r) {
      lastError_ = r.error();
      spdlog::warn("history: {}", r.error().message);
      retryAfterNs_ = clock_() + kWriteRetryNs;
      finishActive();
    }
  maintain();
}

std::vector<HistorySegment> HistoryStore::segments() const {
  std::vector<HistorySegment> all = closed_;
  if (active_ && active_->info.packets)
    all.push_back(active_->info);
  return all;
}

std::optional<uint64_t> HistoryStore::historyStartNs() const {
  std::optional<uint64_t> start;
  for (const auto &s : segments())
    if (!start || s.firstNs < *start)
      start = s.firstNs;
  return start;
}

uint64_t HistoryStore::totalBytes() const {
  return closedBytes_ + (active_ ? active_->info.bytes : 0);
}

namespace {

// One segment being read by a query, at its current packet.
struct Stream {
  std::unique_ptr<SegmentReader> reader;
  SegmentPacket packet;
  std::vector<uint32_t> outIds; // segment interface id -> output interface id (pcapng)
};

} // namespace

Result<HistoryQueryResult> HistoryStore::query(const HistoryQuery &q) {
  if (q.fromNs > q.toNs)
    return Error{ErrorKind::InvalidRequest,
                 "history query: the window's start (" + std::to_string(q.fromNs) +
                     " ns) is after its end (" + std::to_string(q.toNs) + " ns)"};
  if (active_)
    if (auto r = active_->writer->flush(); !r)
      return r.error();
  HistoryQueryResult res;
  res.historyStartNs = historyStartNs();
  res.windowPartlyKept = !res.historyStartNs || q.fromNs < *res.historyStartNs;

  std::vector<HistorySegment> segs;
  for (auto &s : segments())
    if (s.lastNs >= q.fromNs && s.firstNs <= q.toNs)
      segs.push_back(std::move(s));
  std::sort(segs.begin(), segs.end(), olderFirst);

  // The output's interfaces (pcapng): every name of the window's segments, once.
  auto wanted = [&](const std::string &n) {
    return q.interfaces.empty() ||
           std::find(q.interfaces.begin(), q.interfaces.end(), n) != q.interfaces.end();
  };
  std::vector<std::string> names;
  for (const auto &s : segs)
    for (const auto &n : s.interfaces)
      if (wanted(n) && std::find(names.begin(), names.end(), n) == names.end())
        names.push_back(n);

  const std::string part = q.outputPath + ".part";
  std::unique_ptr<PcapWriter> pcap;
  std::unique_ptr<PcapngWriter> pcapng;
  if (q.format == HistoryOutputFormat::Pcap) {
    auto w = PcapWriter::create(part, config_.snaplen);
    if (!w)
      return w.error();
    pcap = std::move(*w);
  } else {
    std::vector<PcapInterface> ifaces;
    for (const auto &n : names)
      ifaces.push_back({n, "", config_.snaplen});
    auto w = PcapngWriter::create(part, ifaces, "ringcapd history");
    if (!w)
      return w.error();
    pcapng = std::move(*w);
  }
  auto fail = [&](const Error &e) -> Result<HistoryQueryResult> {
    pcap.reset();
    pcapng.reset();
    ::unlink(part.c_str());
    return e;
  };

  const FilterMatcher matcher(q.filter);
  std::vector<uint64_t> perInterface(names.size()); // pcapng: packets written by interface
  std::vector<Stream> streams;
  streams.reserve(segs.size());
  // Streams by their current packet's timestamp, then by age: a k-way merge of the
  // segments (each in timestamp order), which overlap only after a clock step.
  auto later = [&](size_t a, size_t b) {
    return streams[a].packet.tsNs != streams[b].packet.tsNs
               ? streams[a].packet.tsNs > streams[b].packet.tsNs
               : a > b;
  };
  std::priority_queue<size_t, std::vector<size_t>, decltype(later)> heap(later);
  // Moves stream i to its next packet of the window; false when it has none left.
  auto advance = [&](size_t i) -> Result<bool> {
    Stream &st = streams[i];
    for (;;) {
      auto p = st.reader->next();
      if (!p)
        return p.error();
      if (!*p) {
        if (st.reader->torn())
          res.segmentsDamaged++;
        return false;
      }
      if ((*p)->tsNs > q.toNs)
        return false;
      if ((*p)->tsNs < q.fromNs)
        continue;
      // A packet of another interface (another system's), or of none the segment declares.
      const auto &ifaces = st.reader->interfaces();
      if ((*p)->interfaceId >= ifaces.size() || !wanted(ifaces[(*p)->interfaceId]))
        continue;
      res.packetsScanned++;
      st.packet = **p;
      return true;
    }
  };
  size_t pending = 0;
  for (;;) {
    // Opens the next segments once the merge reaches their first timestamp.
    while (pending < segs.size() &&
           (heap.empty() || segs[pending].firstNs <= streams[heap.top()].packet.tsNs)) {
      size_t i = pending++;
      auto r = SegmentReader::open(path(segs[i].file));
      if (!r) {
        if (r.error().code == ENOENT) { // removed by the bounds meanwhile
          streams.push_back({});
          continue;
        }
        return fail(r.error());
      }
      res.segmentsRead++;
      Stream st;
      st.reader = std::move(*r);
      streams.push_back(std::move(st));
      auto more = advance(i);
      if (!more)
        return fail(more.error());
      if (*more)
        heap.push(i);
    }
    if (heap.empty())
      break;
    size_t i = heap.top();
    heap.pop();
    Stream &st = streams[i];
    SegmentPacket p = st.packet;
    // Segments written under a larger snaplen (before a configuration change) are cut to
    // today's, which the output's header announces.
    p.data = p.data.first(std::min<size_t>(p.data.size(), config_.snaplen));
    if (pcapng && st.outIds.size() < st.reader->interfaces().size()) {
      st.outIds.clear(); // the segment declared an interface since
      for (const auto &n : st.reader->interfaces())
        st.outIds.push_back(uint32_t(std::find(names.begin(), names.end(), n) - names.begin()));
    }
    // pcapng: an interface the index does not list (not in the output's header) cannot be
    // written; advance() passed only packets of an interface the segment declares.
    const bool writable = !pcapng || st.outIds[p.interfaceId] < names.size();
    if (writable && matcher(p.data)) {
      Result<void> w;
      if (pcap) {
        w = pcap->writePacket(p.tsNs, std::max<uint32_t>(p.origLen, uint32_t(p.data.size())),
                              p.data);
      } else {
        perInterface[st.outIds[p.interfaceId]]++;
        w = pcapng->writePacket(st.outIds[p.interfaceId], p.tsNs,
                                std::max<uint32_t>(p.origLen, uint32_t(p.data.size())), p.data);
      }
      if (!w)
        return fail(w.error());
      res.packets++;
      if (q.packetLimit && res.packets >= q.packetLimit) {
        res.limitReached = true;
        break;
      }
    }
    auto more = advance(i);
    if (!more)
      return fail(more.error());
    if (*more)
      heap.push(i);
  }
  std::vector<PcapInterfaceStats> stats;
  for (uint64_t n : perInterface)
    stats.push_back({q.toNs, n, 0, n, "history query: packets written"});
  Result<void> done = pcap ? pcap->finish() : pcapng->finish(stats);
  if (!done)
    return fail(done.error());
  res.fileBytes = pcap ? pcap->bytesWritten() : pcapng->bytesWritten();
  pcap.reset();
  pcapng.reset();
  if (::rename(part.c_str(), q.outputPath.c_str()) != 0) {
    int err = errno;
    ::unlink(part.c_str());
    return Error::fromErrno(err, "rename " + part + " to " + q.outputPath);
  }
  return res;
}

} // namespace ringcap
