#include "pcap/PcapngWriter.h"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
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
  buf_.reserve(bufferSize_);
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
  auto r = w->appendBlock(shbLength, [&](std::vector<uint8_t> &out) {
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
    r = w->appendBlock(length, [&](std::vector<uint8_t> &out) {
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

Result<void> PcapngWriter::writePacket(uint32_t interfaceId, uint64_t tsNs, uint32_t origLen,
                                       std::span<const uint8_t> data) {
  if (auto r = out_.usable(); !r)
    return r;
  if (interfaceId >= ifaces_.size())
    return invalid(path(), "interface id " + std::to_string(interfaceId) + " out of range (" +
                               std::to_string(ifaces_.size()) + " interfaces)");
  if (data.size() > origLen)
    return invalid(path(), "captured length " + std::to_string(data.size()) +
                               " exceeds original length " + std::to_string(origLen));
  const uint32_t snaplen = ifaces_[interfaceId].snaplen;
  if (snaplen != 0 && data.size() > snaplen)
    return invalid(path(), "captured length " + std::to_string(data.size()) + " exceeds snaplen " +
                               std::to_string(snaplen) + " of interface " +
                               ifaces_[interfaceId].name);
  const size_t length = kEpbOverhead + pad4(data.size());
  if (length > std::numeric_limits<uint32_t>::max())
    return invalid(path(), "packet too large for a pcapng block");
  // The per-packet path: one resize and three copies into the buffer.
  return appendBlock(length, [&](std::vector<uint8_t> &out) {
    const uint32_t total = static_cast<uint32_t>(length);
    const uint32_t head[7] = {kEpbType,
                              total,
                              interfaceId,
                              static_cast<uint32_t>(tsNs >> 32),
                              static_cast<uint32_t>(tsNs),
                              static_cast<uint32_t>(data.size()),
                              origLen};
    size_t at = out.size();
    out.resize(at + length);
    uint8_t *p = out.data() + at;
    std::memcpy(p, head, sizeof head);
    if (!data.empty())
      std::memcpy(p + sizeof head, data.data(), data.size());
    std::memset(p + sizeof head + data.size(), 0, pad4(data.size()) - data.size());
    std::memcpy(p + length - 4, &total, 4);
    ++packets_;
  });
}

Result<void> PcapngWriter::finish(const std::vector<PcapInterfaceStats> &stats) {
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
    auto r = appendBlock(length, [&](std::vector<uint8_t> &out) {
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
  return out_.finish();
}

template <typename Build>
Result<void> PcapngWriter::appendBlock(size_t totalLength, Build &&build) {
  if (buf_.size() + totalLength > bufferSize_)
    if (auto r = flush(); !r)
      return r;
  if (totalLength <= bufferSize_) {
    build(buf_);
    return {};
  }
  std::vector<uint8_t> block; // larger than the buffer: written directly
  block.reserve(totalLength);
  build(block);
  return writeOut(block);
}

Result<void> PcapngWriter::flush() {
  if (out_.failure())
    return *out_.failure();
  if (buf_.empty())
    return {};
  auto r = writeOut(buf_);
  buf_.clear();
  return r;
}

Result<void> PcapngWriter::writeOut(std::span<const uint8_t> blocks) {
  if (const auto shortWrite = out_.write(blocks))
    return fail(blocks, shortWrite->written, shortWrite->err);
  return {};
}

// Cuts the file back to the last whole block among `blocks`, of which `written` bytes reached
// the file, and marks the writer failed.
Error PcapngWriter::fail(std::span<const uint8_t> blocks, size_t written, int err) {
  size_t keep = 0;
  uint64_t lostPackets = 0;
  for (size_t off = 0; off + 8 <= blocks.size();) {
    uint32_t type, length;
    std::memcpy(&type, blocks.data() + off, 4);
    std::memcpy(&length, blocks.data() + off + 4, 4);
    if (off + length <= written)
      keep = off + length;
    else if (type == kEpbType)
      ++lostPackets;
    off += length;
  }
  out_.truncateToWhole(keep, written);
  packets_ -= lostPackets;
  return out_.fail(Error::fromErrno(err, path() + ": write failed after " +
                                             std::to_string(out_.wholeBytes()) + " bytes (" +
                                             std::to_string(packets_) + " packets)"));
}

} // namespace ringcap
