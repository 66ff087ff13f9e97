#include "pcap/PcapReader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <span>

namespace ringcap {
namespace {

constexpr uint32_t kShbType = 0x0A0D0D0A;
constexpr uint32_t kIdbType = 1;
constexpr uint32_t kPbType = 2; // obsolete Packet Block
constexpr uint32_t kSpbType = 3;
constexpr uint32_t kIsbType = 5;
constexpr uint32_t kEpbType = 6;
constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;

constexpr uint16_t kOptEndOfOpt = 0;
constexpr uint16_t kOptComment = 1;
constexpr uint16_t kIfName = 2;
constexpr uint16_t kIfTsresol = 9;
constexpr uint16_t kIfTsoffset = 14;
constexpr uint16_t kIsbIfRecv = 4;
constexpr uint16_t kIsbIfDrop = 5;
constexpr uint16_t kIsbFilterAccept = 6;

constexpr uint32_t kMaxBlockLength = 64u << 20; // far above any real packet
constexpr size_t kReadChunk = 256 * 1024;
constexpr uint64_t kNsPerSec = 1'000'000'000;

uint16_t load16(const uint8_t *p, bool swap) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return swap ? __builtin_bswap16(v) : v;
}
uint32_t load32(const uint8_t *p, bool swap) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return swap ? __builtin_bswap32(v) : v;
}
uint64_t load64(const uint8_t *p, bool swap) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return swap ? __builtin_bswap64(v) : v;
}

// Calls fn(code, value) for each option; false if an option runs past the end.
template <typename Fn> bool forEachOption(std::span<const uint8_t> opts, bool swap, Fn &&fn) {
  size_t off = 0;
  while (opts.size() - off >= 4) {
    const uint16_t code = load16(opts.data() + off, swap);
    const uint16_t length = load16(opts.data() + off + 2, swap);
    if (code == kOptEndOfOpt)
      return true;
    const size_t padded = (size_t{length} + 3) & ~size_t{3};
    if (padded > opts.size() - off - 4)
      return false;
    fn(code, opts.subspan(off + 4, length));
    off += 4 + padded;
  }
  return true;
}

std::string optionString(std::span<const uint8_t> v) {
  std::string s(v.begin(), v.end());
  while (!s.empty() && s.back() == '\0')
    s.pop_back();
  return s;
}

} // namespace

// Bytes from a file descriptor (read through a buffer) or from memory.
class PcapReader::Input {
public:
  Input(int fd, std::string name) : fd_(fd), name_(std::move(name)), buf_(kReadChunk) {}
  explicit Input(std::vector<uint8_t> bytes) : buf_(std::move(bytes)), end_(buf_.size()) {}
  ~Input() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  uint64_t offset() const { return offset_; }

  // Copies up to n bytes to dst (or drops them if dst is null); fewer only at the end of input.
  Result<size_t> read(uint8_t *dst, size_t n) {
    size_t done = 0;
    while (done < n) {
      if (pos_ == end_) {
        auto more = refill();
        if (!more)
          return more.error();
        if (!*more)
          break;
      }
      const size_t k = std::min(n - done, end_ - pos_);
      if (dst)
        std::memcpy(dst + done, buf_.data() + pos_, k);
      pos_ += k;
      done += k;
    }
    offset_ += done;
    return done;
  }

  // Appends n bytes to out, growing it only as data arrives; false if the input ends first.
  Result<bool> append(std::vector<uint8_t> &out, size_t n) {
    while (n > 0) {
      const size_t k = std::min(n, kReadChunk);
      const size_t old = out.size();
      out.resize(old + k);
      auto got = read(out.data() + old, k);
      if (!got)
        return got.error();
      if (*got < k) {
        out.resize(old + *got);
        return false;
      }
      n -= k;
    }
    return true;
  }

private:
  Result<bool> refill() {
    if (fd_ < 0)
      return false;
    ssize_t n;
    int err;
    do {
      n = ::read(fd_, buf_.data(), buf_.size());
      err = errno;
    } while (n < 0 && err == EINTR);
    if (n < 0)
      return Error::fromErrno(err, name_ + ": read failed");
    pos_ = 0;
    end_ = static_cast<size_t>(n);
    return n > 0;
  }

  int fd_ = -1;
  std::string name_;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
  size_t end_ = 0;
  uint64_t offset_ = 0;
};

PcapReader::PcapReader(std::unique_ptr<Input> in, std::string name)
    : in_(std::move(in)), name_(std::move(name)) {}

PcapReader::~PcapReader() = default;

Result<std::unique_ptr<PcapReader>> PcapReader::open(const std::string &path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Error::fromErrno(errno, path + ": cannot open");
  std::unique_ptr<PcapReader> reader(new PcapReader(std::make_unique<Input>(fd, path), path));
  if (auto r = reader->readHeader(); !r)
    return r.error();
  return reader;
}

Result<std::unique_ptr<PcapReader>> PcapReader::fromBuffer(std::vector<uint8_t> bytes) {
  std::unique_ptr<PcapReader> reader(
      new PcapReader(std::make_unique<Input>(std::move(bytes)), "<buffer>"));
  if (auto r = reader->readHeader(); !r)
    return r.error();
  return reader;
}

Error PcapReader::corrupt(const std::string &what, uint64_t offset) const {
  return Error{0, name_ + ": " + what + " at offset " + std::to_string(offset)};
}

Error PcapReader::truncated(const std::string &what, uint64_t offset) const {
  return Error{0, name_ + ": truncated " + what + " at offset " + std::to_string(offset)};
}

Result<void> PcapReader::readHeader() {
  uint8_t hdr[24];
  auto n = in_->read(hdr, 4);
  if (!n)
    return n.error();
  if (*n < 4)
    return truncated(*n == 0 ? "file header (empty file)" : "file header", 0);
  uint32_t magic;
  std::memcpy(&magic, hdr, sizeof magic);
  if (magic == kShbType) {
    pcapng_ = true;
    if (n = in_->read(hdr + 4, 4); !n)
      return n.error();
    if (*n < 4)
      return truncated("section header block", 0);
    return readSectionHeader(hdr, 0);
  }

  uint64_t unitsPerSec;
  switch (magic) {
  case 0xA1B2C3D4:
  case 0xD4C3B2A1:
    unitsPerSec = 1'000'000;
    break;
  case 0xA1B23C4D:
  case 0x4D3CB2A1:
    unitsPerSec = kNsPerSec;
    break;
  default:
    return corrupt("not a pcap or pcapng file (bad magic number)", 0);
  }
  swap_ = magic == 0xD4C3B2A1 || magic == 0x4D3CB2A1;
  if (n = in_->read(hdr + 4, 20); !n)
    return n.error();
  if (*n < 20)
    return truncated("file header", 0);
  if (const uint16_t major = load16(hdr + 4, swap_); major != 2)
    return corrupt("unsupported pcap version " + std::to_string(major), 0);
  PcapReaderInterface iface;
  iface.snaplen = load32(hdr + 16, swap_);
  iface.linkType = static_cast<uint16_t>(load32(hdr + 20, swap_)); // upper bits: FCS flags
  iface.tsUnitsPerSec = unitsPerSec;
  interfaces_.push_back(iface);
  stats_.emplace_back();
  return {};
}

Result<std::optional<PcapPacket>> PcapReader::next() {
  if (error_)
    return *error_;
  auto r = pcapng_ ? nextPcapng() : nextPcap();
  if (!r)
    error_ = r.error();
  return r;
}

Result<std::optional<PcapPacket>> PcapReader::nextPcap() {
  const uint64_t off = in_->offset();
  uint8_t rec[16];
  auto n = in_->read(rec, sizeof rec);
  if (!n)
    return n.error();
  if (*n == 0)
    return std::optional<PcapPacket>();
  if (*n < sizeof rec)
    return truncated("packet record", off);
  const uint32_t sec = load32(rec, swap_);
  const uint32_t frac = load32(rec + 4, swap_);
  const uint32_t capLen = load32(rec + 8, swap_);
  if (capLen > kMaxBlockLength)
    return corrupt("packet length " + std::to_string(capLen) + " too large", off);
  PcapPacket p;
  p.origLen = load32(rec + 12, swap_);
  p.tsNs = uint64_t{sec} * kNsPerSec + uint64_t{frac} * (kNsPerSec / interfaces_[0].tsUnitsPerSec);
  auto complete = in_->append(p.data, capLen);
  if (!complete)
    return complete.error();
  if (!*complete)
    return truncated("packet record", off);
  return std::optional<PcapPacket>(std::move(p));
}

Result<std::optional<PcapPacket>> PcapReader::nextPcapng() {
  for (;;) {
    const uint64_t off = in_->offset();
    uint8_t hdr[8];
    auto n = in_->read(hdr, sizeof hdr);
    if (!n)
      return n.error();
    if (*n == 0)
      return std::optional<PcapPacket>();
    if (*n < sizeof hdr)
      return truncated("block header", off);
    if (load32(hdr, false) == kShbType) {
      if (auto r = readSectionHeader(hdr, off); !r)
        return r.error();
      continue;
    }
    const uint32_t type = load32(hdr, swap_);
    const uint32_t length = load32(hdr + 4, swap_);
    if (length < 12 || length % 4 != 0 || length > kMaxBlockLength)
      return corrupt("invalid block length " + std::to_string(length), off);
    const bool known = type == kIdbType || type == kIsbType || type == kEpbType ||
                       type == kSpbType || type == kPbType;
    if (auto r = readBody(length, sizeof hdr, off, known); !r)
      return r.error();
    if (type == kIdbType) {
      if (auto r = parseInterface(off); !r)
        return r.error();
    } else if (type == kIsbType) {
      if (auto r = parseStatistics(off); !r)
        return r.error();
    } else if (known) {
      return parsePacket(type, off);
    }
  }
}

Result<void> PcapReader::readSectionHeader(const uint8_t *typeAndLength, uint64_t offset) {
  uint8_t bom[4];
  auto n = in_->read(bom, sizeof bom);
  if (!n)
    return n.error();
  if (*n < sizeof bom)
    return truncated("section header block", offset);
  const uint32_t magic = load32(bom, false);
  if (magic != kByteOrderMagic && magic != __builtin_bswap32(kByteOrderMagic))
    return corrupt("bad byte-order magic in section header block", offset);
  swap_ = magic != kByteOrderMagic;
  const uint32_t length = load32(typeAndLength + 4, swap_);
  if (length < 28 || length % 4 != 0 || length > kMaxBlockLength)
    return corrupt("invalid section header block length " + std::to_string(length), offset);
  if (auto r = readBody(length, 12, offset, true); !r)
    return r;
  if (const uint16_t major = load16(body_.data(), swap_); major != 1)
    return corrupt("unsupported pcapng version " + std::to_string(major), offset);
  sectionBase_ = interfaces_.size();
  return {};
}

// Reads the rest of a block after `consumed` bytes into body_ (or skips it) and checks the
// trailing length.
Result<void> PcapReader::readBody(uint32_t totalLength, size_t consumed, uint64_t offset,
                                  bool keep) {
  const size_t length = totalLength - consumed - 4;
  body_.clear();
  if (keep) {
    auto complete = in_->append(body_, length);
    if (!complete)
      return complete.error();
    if (!*complete)
      return truncated("block", offset);
  } else {
    auto n = in_->read(nullptr, length);
    if (!n)
      return n.error();
    if (*n < length)
      return truncated("block", offset);
  }
  uint8_t trailer[4];
  auto n = in_->read(trailer, sizeof trailer);
  if (!n)
    return n.error();
  if (*n < sizeof trailer)
    return truncated("block", offset);
  if (load32(trailer, swap_) != totalLength)
    return corrupt("block lengths do not match", offset);
  return {};
}

Result<void> PcapReader::parseInterface(uint64_t offset) {
  if (body_.size() < 8)
    return corrupt("interface description block too short", offset);
  PcapReaderInterface iface;
  iface.linkType = load16(body_.data(), swap_);
  iface.snaplen = load32(body_.data() + 4, swap_);
  iface.tsUnitsPerSec = 1'000'000;
  bool badResolution = false;
  const bool ok = forEachOption(
      std::span(body_).subspan(8), swap_, [&](uint16_t code, std::span<const uint8_t> v) {
        if (code == kIfName) {
          iface.name = optionString(v);
        } else if (code == kIfTsresol && v.size() == 1) {
          const unsigned exp = v[0] & 0x7F;
          if (v[0] & 0x80) { // power of 2
            badResolution = exp > 63;
            iface.tsUnitsPerSec = badResolution ? 1 : uint64_t{1} << exp;
          } else { // power of 10
            badResolution = exp > 19;
            iface.tsUnitsPerSec = 1;
            for (unsigned i = 0; i < exp && !badResolution; ++i)
              iface.tsUnitsPerSec *= 10;
          }
        } else if (code == kIfTsoffset && v.size() == 8) {
          iface.tsOffsetSeconds = static_cast<int64_t>(load64(v.data(), swap_));
        }
      });
  if (!ok)
    return corrupt("malformed options in interface description block", offset);
  if (badResolution)
    return corrupt("unsupported if_tsresol", offset);
  interfaces_.push_back(std::move(iface));
  stats_.emplace_back();
  return {};
}

Result<void> PcapReader::parseStatistics(uint64_t offset) {
  if (body_.size() < 12)
    return corrupt("interface statistics block too short", offset);
  const uint64_t id = sectionBase_ + load32(body_.data(), swap_);
  if (id >= interfaces_.size())
    return corrupt("statistics for unknown interface", offset);
  const uint64_t units =
      (uint64_t{load32(body_.data() + 4, swap_)} << 32) | load32(body_.data() + 8, swap_);
  auto ts = toNs(id, units, offset);
  if (!ts)
    return ts.error();
  PcapReaderStats s;
  s.tsNs = *ts;
  const bool ok = forEachOption(std::span(body_).subspan(12), swap_,
                                [&](uint16_t code, std::span<const uint8_t> v) {
                                  if (code == kOptComment)
                                    s.comment = optionString(v);
                                  else if (v.size() == 8 && code == kIsbIfRecv)
                                    s.received = load64(v.data(), swap_);
                                  else if (v.size() == 8 && code == kIsbIfDrop)
                                    s.dropped = load64(v.data(), swap_);
                                  else if (v.size() == 8 && code == kIsbFilterAccept)
                                    s.accepted = load64(v.data(), swap_);
                                });
  if (!ok)
    return corrupt("malformed options in interface statistics block", offset);
  stats_[id] = std::move(s);
  return {};
}

Result<std::optional<PcapPacket>> PcapReader::parsePacket(uint32_t type, uint64_t offset) {
  const uint8_t *b = body_.data();
  const size_t minimum = type == kSpbType ? 4 : 20;
  if (body_.size() < minimum)
    return corrupt("packet block too short", offset);
  uint32_t localId = 0, capLen = 0;
  uint64_t units = 0;
  PcapPacket p;
  if (type == kSpbType) {
    p.origLen = load32(b, swap_);
    capLen = static_cast<uint32_t>(std::min<size_t>(p.origLen, body_.size() - 4));
  } else {
    localId = type == kEpbType ? load32(b, swap_) : load16(b, swap_);
    units = (uint64_t{load32(b + 4, swap_)} << 32) | load32(b + 8, swap_);
    capLen = load32(b + 12, swap_);
    p.origLen = load32(b + 16, swap_);
    if (capLen > body_.size() - minimum)
      return corrupt("captured length exceeds the packet block", offset);
  }
  const uint64_t id = sectionBase_ + localId;
  if (id >= interfaces_.size())
    return corrupt("packet for unknown interface " + std::to_string(localId), offset);
  p.interfaceId = static_cast<uint32_t>(id);
  if (type == kSpbType) {
    if (const uint32_t snaplen = interfaces_[id].snaplen; snaplen != 0)
      capLen = std::min(capLen, snaplen);
  } else {
    auto ts = toNs(p.interfaceId, units, offset);
    if (!ts)
      return ts.error();
    p.tsNs = *ts;
  }
  p.data.assign(b + minimum, b + minimum + capLen);
  return std::optional<PcapPacket>(std::move(p));
}

Result<uint64_t> PcapReader::toNs(size_t id, uint64_t units, uint64_t offset) const {
  const auto &iface = interfaces_[id];
  const __int128 ns = static_cast<__int128>(static_cast<unsigned __int128>(units) * kNsPerSec /
                                            iface.tsUnitsPerSec) +
                      static_cast<__int128>(iface.tsOffsetSeconds) * kNsPerSec;
  if (ns < 0 || ns > std::numeric_limits<uint64_t>::max())
    return corrupt("timestamp out of range", offset);
  return static_cast<uint64_t>(ns);
}

} // namespace ringcap
