#include "pcap/PcapngWriter.h"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <limits>
#include <string_view>

namespace ringcap {
namespace {

constexpr uint32_t kShbType = 0x0A0D0D0A;
constexpr uint32_t kIdbType = 1;
constexpr uint32_t kIsbType = 5;
constexpr uint32_t kEpbType = 6;
constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;
constexpr uint16_t kLinktypeEthernet = 1;

constexpr uint16_t kOptComment = 1;
constexpr uint16_t kShbHardware = 2;
constexpr uint16_t kShbOs = 3;
constexpr uint16_t kShbUserAppl = 4;
constexpr uint16_t kIfName = 2;
constexpr uint16_t kIfDescription = 3;
constexpr uint16_t kIfTsresol = 9;
constexpr uint16_t kIsbIfRecv = 4;
constexpr uint16_t kIsbIfDrop = 5;
constexpr uint16_t kIsbFilterAccept = 6;

constexpr size_t kMaxOptionLength = std::numeric_limits<uint16_t>::max();
constexpr size_t kEpbOverhead = 32; // header, fixed fields, trailing length
constexpr size_t kEpbHead = 28;     // header and fixed fields, before the packet bytes
constexpr size_t kMaxPieces = IOV_MAX;

size_t pad4(size_t n) { return (n + 3) & ~size_t{3}; }
size_t optionSize(size_t valueLength) { return 4 + pad4(valueLength); }

// Appends one block in host byte order to `out`; finish() fills in the total length.
class BlockBuilder {
public:
  BlockBuilder(std::vector<uint8_t> &out, uint32_t type) : out_(out), start_(out.size()) {
    u32(type);
    u32(0);
  }
  void u16(uint16_t v) { raw(&v, sizeof v); }
  void u32(uint32_t v) { raw(&v, sizeof v); }
  void u64(uint64_t v) { raw(&v, sizeof v); }
  void bytes(std::span<const uint8_t> data) {
    raw(data.data(), data.size());
    out_.resize(out_.size() + pad4(data.size()) - data.size(), 0);
  }
  void option(uint16_t code, std::string_view value) {
    u16(code);
    u16(static_cast<uint16_t>(value.size()));
    bytes({reinterpret_cast<const uint8_t *>(value.data()), value.size()});
  }
  void option(uint16_t code, uint64_t value) {
    u16(code);
    u16(sizeof value);
    u64(value);
  }
  void option(uint16_t code, uint8_t value) {
    u16(code);
    u16(1);
    bytes({&value, 1});
  }
  void endOfOptions() { u32(0); }
  void finish() {
    const auto total = static_cast<uint32_t>(out_.size() - start_ + 4);
    u32(total);
    std::memcpy(out_.data() + start_ + 4, &total, sizeof total);
  }

private:
  void raw(const void *p, size_t n) {
    const auto *b = static_cast<const uint8_t *>(p);
    out_.insert(out_.end(), b, b + n);
  }
  std::vector<uint8_t> &out_;
  size_t start_;
};

Error invalid(const std::string &path, const std::string &what) {
  return Error{EINVAL, path + ": " + what};
}

Result<void> checkOption(const std::string &path, const char *name, const std::string &value) {
  if (value.size() > kMaxOptionLength)
    return invalid(path, std::string(name) + " is longer than " + std::to_string(kMaxOptionLength) +
                             " bytes");
  return {};
}

Result<void> validate(const std::string &path, const std::vector<PcapInterface> &ifaces,
                      const std::string &userAppl) {
  if (ifaces.empty())
    return invalid(path, "a capture file needs at least one interface");
  if (ifaces.size() > std::numeric_limits<uint32_t>::max())
    return invalid(path, "too many interfaces");
  if (auto r = checkOption(path, "user application", userAppl); !r)
    return r;
  for (const auto &iface : ifaces) {
    if (auto r = checkOption(path, "interface name", iface.name); !r)
      return r;
    if (auto r = checkOption(path, "interface description", iface.description); !r)
      return r;
  }
  return {};
}

} // namespace

PcapngWriter::PcapngWriter(int fd, std::string path, std::vector<PcapInterface> ifaces,
                           size_t bufferSize)
    : out_(fd, std::move(path)), ifaces_(std::move(ifaces)), bufferSize_(bufferSize) {
  buf_ = std::make_unique_for_overwrite<uint8_t[]>(bufferSize_);
  iov_.reserve(kMaxPieces);
  blocks_.reserve(bufferSize_ / kEpbOverhead + 2); // every block takes >= 32 bytes of buf_
}

PcapngWriter::~PcapngWriter() {
  if (out_.isOpen() && !out_.failure())
    (void)flush();
}

Result<std::unique_ptr<PcapngWriter>> PcapngWriter::create(const std::string &path,
                                                           const std::vector<PcapInterface> &ifaces,
                                                           const std::string &userAppl,
                                                           mode_t mode) {
  if (auto r = validate(path, ifaces, userAppl); !r)
    return r.error();
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    return Error::fromErrno(errno, path + ": cannot create capture file");
  auto writer = fromFd(fd, path, ifaces, userAppl);
  if (!writer.ok())
    ::unlink(path.c_str());
  return writer;
}

Result<std::unique_ptr<PcapngWriter>> PcapngWriter::fromFd(int fd, const std::string &path,
                                                           const std::vector<PcapInterface> &ifaces,
                                                           const std::string &userAppl,
                                                           size_t bufferSize) {
  if (auto r = validate(path, ifaces, userAppl); !r) {
    ::close(fd);
    return r.error();
  }
  std::unique_ptr<PcapngWriter> w(new PcapngWriter(fd, path, ifaces, bufferSize));

  std::string hardware, os;
  struct utsname uts {};
  if (::uname(&uts) == 0) {
    hardware = uts.machine;
    os = std::string(uts.sysname) + " " + uts.release;
  }
  size_t shbLength = 28 + optionSize(userAppl.size()) + 4;
  if (!hardware.empty())
    shbLength += optionSize(hardware.size()) + optionSize(os.size());
  auto r = w->appendBlock(shbLength, false, [&](std::vector<uint8_t> &out) {
    BlockBuilder b(out, kShbType);
    b.u32(kByteOrderMagic);
    b.u16(1);            // major version
    b.u16(0);            // minor version
    b.u64(~uint64_t{0}); // section length: unknown
    if (!hardware.empty()) {
      b.option(kShbHardware, hardware);
      b.option(kShbOs, os);
    }
    b.option(kShbUserAppl, userAppl);
    b.endOfOptions();
    b.finish();
  });
  for (size_t i = 0; r.ok() && i < ifaces.size(); ++i) {
    const auto &iface = ifaces[i];
    size_t length = 20 + optionSize(iface.name.size()) + optionSize(1) + 4;
    if (!iface.description.empty())
      length += optionSize(iface.description.size());
    r = w->appendBlock(length, false, [&](std::vector<uint8_t> &out) {
      BlockBuilder b(out, kIdbType);
      b.u16(kLinktypeEthernet);
      b.u16(0); // reserved
      b.u32(iface.snaplen);
      b.option(kIfName, iface.name);
      if (!iface.description.empty())
        b.option(kIfDescription, iface.description);
      b.option(kIfTsresol, uint8_t{9}); // 10^-9 s
      b.endOfOptions();
      b.finish();
    });
  }
  if (r.ok())
    r = w->flush();
  if (!r.ok())
    return r.error();
  return w;
}

Error PcapngWriter::packetError(uint32_t interfaceId, uint32_t origLen, size_t capLen) const {
  if (auto r = out_.usable(); !r)
    return r.error();
  if (interfaceId >= ifaces_.size())
    return invalid(path(), "interface id " + std::to_string(interfaceId) + " out of range (" +
                               std::to_string(ifaces_.size()) + " interfaces)");
  if (capLen > origLen)
    return invalid(path(), "captured length " + std::to_string(capLen) +
                               " exceeds original length " + std::to_string(origLen));
  return invalid(path(), "captured length " + std::to_string(capLen) + " exceeds snaplen " +
                             std::to_string(ifaces_[interfaceId].snaplen) + " of interface " +
                             ifaces_[interfaceId].name);
}

namespace {

void epbHead(uint8_t *p, uint32_t total, uint32_t interfaceId, uint64_t tsNs, size_t capLen,
             uint32_t origLen) {
  const uint32_t head[7] = {kEpbType,
                            total,
                            interfaceId,
                            static_cast<uint32_t>(tsNs >> 32),
                            static_cast<uint32_t>(tsNs),
                            static_cast<uint32_t>(capLen),
                            origLen};
  std::memcpy(p, head, sizeof head);
}

// The padding after the packet bytes and the trailing block length.
void epbTail(uint8_t *p, uint32_t total, size_t capLen) {
  const size_t pad = pad4(capLen) - capLen;
  std::memset(p, 0, pad);
  std::memcpy(p + pad, &total, 4);
}

} // namespace

Result<void> PcapngWriter::writePacket(uint32_t interfaceId, uint64_t tsNs, uint32_t origLen,
                                       std::span<const uint8_t> data) {
  if (!packetFits(interfaceId, origLen, data.size()))
    return packetError(interfaceId, origLen, data.size());
  // capLen <= origLen < 2^32, so the block length fits in 32 bits but for the last 35 values.
  const size_t length = kEpbOverhead + pad4(data.size());
  if (length > std::numeric_limits<uint32_t>::max())
    return invalid(path(), "packet too large for a pcapng block");
  const auto total = static_cast<uint32_t>(length);
  if (length > bufferSize_) // written at once, after the buffered blocks
    return appendBlock(length, true, [&](std::vector<uint8_t> &out) {
      out.resize(length);
      epbHead(out.data(), total, interfaceId, tsNs, data.size(), origLen);
      std::memcpy(out.data() + kEpbHead, data.data(), data.size());
      epbTail(out.data() + kEpbHead + data.size(), total, data.size());
      ++packets_;
    });
  // The per-packet path: three copies into the buffer.
  if (auto r = reserve(length, 1); !r)
    return r;
  uint8_t *p = buf_.get() + used_;
  epbHead(p, total, interfaceId, tsNs, data.size(), origLen);
  if (!data.empty())
    std::memcpy(p + kEpbHead, data.data(), data.size());
  epbTail(p + kEpbHead + data.size(), total, data.size());
  used_ += length;
  addPiece(p, length);
  blocks_.push_back({total, true});
  ++packets_;
  return {};
}

Result<void> PcapngWriter::writePacketRef(uint32_t interfaceId, uint64_t tsNs, uint32_t origLen,
                                          std::span<const uint8_t> data) {
  const size_t built = kEpbOverhead + pad4(data.size()) - data.size(); // all but the data
  if (built > bufferSize_ || data.empty() || !packetFits(interfaceId, origLen, data.size()) ||
      data.size() > std::numeric_limits<uint32_t>::max() - kEpbOverhead - 3)
    return writePacket(interfaceId, tsNs, origLen, data); // its errors, or a tiny buffer
  if (auto r = reserve(built, 3); !r)
    return r;
  // Header and trailer in the buffer, the packet bytes where they are: three pieces, of
  // which the trailer and the next block's header usually join.
  const auto total = static_cast<uint32_t>(built + data.size());
  uint8_t *p = buf_.get() + used_;
  epbHead(p, total, interfaceId, tsNs, data.size(), origLen);
  epbTail(p + kEpbHead, total, data.size());
  used_ += built;
  addPiece(p, kEpbHead);
  addPiece(data.data(), data.size());
  addPiece(p + kEpbHead, built - kEpbHead);
  blocks_.push_back({total, true});
  references_ = true;
  ++packets_;
  return {};
}

Result<void> PcapngWriter::finish(const std::vector<PcapInterfaceStats> &stats, bool sync) {
  if (auto r = out_.usable(); !r)
    return r;
  if (stats.size() != ifaces_.size())
    return invalid(path(), "got statistics for " + std::to_string(stats.size()) +
                               " interfaces, expected " + std::to_string(ifaces_.size()));
  for (const auto &s : stats)
    if (auto r = checkOption(path(), "statistics comment", s.comment); !r)
      return r;

  for (uint32_t id = 0; id < stats.size(); ++id) {
    const auto &s = stats[id];
    size_t length = 24 + 3 * optionSize(8) + 4;
    if (!s.comment.empty())
      length += optionSize(s.comment.size());
    auto r = appendBlock(length, false, [&](std::vector<uint8_t> &out) {
      BlockBuilder b(out, kIsbType);
      b.u32(id);
      b.u32(static_cast<uint32_t>(s.timestampNs >> 32));
      b.u32(static_cast<uint32_t>(s.timestampNs));
      if (!s.comment.empty())
        b.option(kOptComment, s.comment);
      b.option(kIsbIfRecv, s.received);
      b.option(kIsbIfDrop, s.dropped);
      b.option(kIsbFilterAccept, s.accepted);
      b.endOfOptions();
      b.finish();
    });
    if (!r)
      return r;
  }
  if (auto r = flush(); !r)
    return r;
  return out_.finish(sync);
}

template <typename Build>
Result<void> PcapngWriter::appendBlock(size_t totalLength, bool packet, Build &&build) {
  if (auto r = reserve(totalLength, 1); !r)
    return r;
  scratch_.clear();
  build(scratch_);
  blocks_.push_back({static_cast<uint32_t>(totalLength), packet});
  if (totalLength > bufferSize_) { // larger than the buffer: written at once, from scratch_
    addPiece(scratch_.data(), scratch_.size());
    return flush();
  }
  uint8_t *p = buf_.get() + used_;
  std::memcpy(p, scratch_.data(), totalLength);
  used_ += totalLength;
  addPiece(p, totalLength);
  return {};
}

void PcapngWriter::addPiece(const uint8_t *p, size_t n) {
  if (n == 0)
    return;
  if (!iov_.empty()) {
    iovec &last = iov_.back();
    if (static_cast<const uint8_t *>(last.iov_base) + last.iov_len == p) {
      last.iov_len += n;
      return;
    }
  }
  iov_.push_back({const_cast<uint8_t *>(p), n});
}

Result<void> PcapngWriter::flush() {
  if (out_.failure())
    return *out_.failure();
  Result<void> r;
  if (!iov_.empty())
    if (const auto shortWrite = out_.writev(iov_))
      r = fail(shortWrite->written, shortWrite->err);
  used_ = 0;
  iov_.clear();
  blocks_.clear();
  references_ = false;
  return r;
}

// Cuts the file back to the last whole pending block, of whose bytes `written` reached the
// file, and marks the writer failed.
Error PcapngWriter::fail(size_t written, int err) {
  size_t keep = 0, off = 0;
  uint64_t lostPackets = 0;
  for (const auto &b : blocks_) {
    if (off + b.length <= written)
      keep = off + b.length;
    else if (b.packet)
      ++lostPackets;
    off += b.length;
  }
  out_.truncateToWhole(keep, written);
  packets_ -= lostPackets;
  return out_.fail(Error::fromErrno(err, path() + ": write failed after " +
                                             std::to_string(out_.wholeBytes()) + " bytes (" +
                                             std::to_string(packets_) + " packets)"));
}

} // namespace ringcap
