// SegmentReader: walks the blocks of a history segment (a pcapng file written by
// PcapngWriter: one section, host byte order) mapped read-only (the page cache's pages, no
// copy; the file's size at open is what is read), and knows where the last whole block ends, so
// that a segment torn by a crash can be cut back to it.
#pragma once

#include "util/Result.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ringcap {

struct SegmentPacket {
  uint32_t interfaceId = 0; // index into SegmentReader::interfaces()
  uint64_t tsNs = 0;        // ns since the Unix epoch
  uint32_t origLen = 0;
  std::span<const uint8_t> data; // valid until the next call to next()
};

class SegmentReader {
public:
  // Opens `path` and reads its Section Header Block. An error when the file cannot be read
  // or does not start with a whole pcapng section header in host byte order.
  static Result<std::unique_ptr<SegmentReader>> open(const std::string &path);
  ~SegmentReader();
  SegmentReader(const SegmentReader &) = delete;
  SegmentReader &operator=(const SegmentReader &) = delete;

  // The next packet; nullopt at the end of the whole blocks. A block cut short by the end of
  // the file, or whose lengths are inconsistent, ends the walk there: torn() is then true.
  // An error only when reading fails.
  Result<std::optional<SegmentPacket>> next();

  // Offset of the end of the last whole block read so far.
  uint64_t wholeBytes() const { return whole_; }
  bool torn() const { return torn_; }
  // if_name of each Interface Description Block seen so far.
  const std::vector<std::string> &interfaces() const { return names_; }

private:
  explicit SegmentReader(std::string path) : path_(std::move(path)) {}
  // `n` bytes are there from pos_.
  bool have(size_t n) const { return len_ - pos_ >= n; }
  Result<void> readSectionHeader();

  std::string path_;
  const uint8_t *map_ = nullptr; // len_ bytes, nullptr for an empty file
  size_t pos_ = 0, len_ = 0;     // the unread bytes are map_[pos_, len_)
  uint64_t whole_ = 0;           // end of the last whole block (== pos_)
  bool torn_ = false;
  std::vector<std::string> names_;
  std::vector<uint64_t> unitsPerSec_; // per interface
};

} // namespace ringcap
