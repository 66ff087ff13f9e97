#include "pcap/PcapWriter.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ringcap {
namespace {

constexpr uint32_t kMagicNanoseconds = 0xA1B23C4D;
constexpr uint16_t kVersionMajor = 2;
constexpr uint16_t kVersionMinor = 4;
constexpr uint32_t kLinktypeEthernet = 1;
constexpr uint64_t kNsPerSec = 1'000'000'000;

struct FileHeader {
  uint32_t magic;
  uint16_t versionMajor, versionMinor;
  int32_t thiszone;
  uint32_t sigfigs;
  uint32_t snaplen;
  uint32_t linktype;
};
static_assert(sizeof(FileHeader) == 24);

struct RecordHeader {
  uint32_t tsSec, tsNsec, inclLen, origLen;
};
static_assert(sizeof(RecordHeader) == 16);

Error invalid(const std::string &path, const std::string &what) {
  return Error{EINVAL, path + ": " + what};
}

} // namespace

PcapWriter::PcapWriter(int fd, std::string path, uint32_t snaplen, size_t bufferSize)
    : out_(fd, std::move(path)), snaplen_(snaplen), bufferSize_(bufferSize) {
  buf_.reserve(bufferSize_);
}

PcapWriter::~PcapWriter() {
  if (out_.isOpen() && !out_.failure())
    (void)flush();
}

Result<std::unique_ptr<PcapWriter>> PcapWriter::create(const std::string &path, uint32_t snaplen,
                                                       mode_t mode) {
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    return Error::fromErrno(errno, path + ": cannot create capture file");
  auto writer = fromFd(fd, path, snaplen);
  if (!writer.ok())
    ::unlink(path.c_str());
  return writer;
}

Result<std::unique_ptr<PcapWriter>> PcapWriter::fromFd(int fd, const std::string &path,
                                                       uint32_t snaplen, size_t bufferSize) {
  if (snaplen == 0 || snaplen > kMaxSnaplen)
    snaplen = kMaxSnaplen;
  std::unique_ptr<PcapWriter> w(new PcapWriter(fd, path, snaplen, bufferSize));
  const FileHeader h{kMagicNanoseconds, kVersionMajor,    kVersionMinor, 0, 0,
                     snaplen,           kLinktypeEthernet};
  auto r = w->writeOut({reinterpret_cast<const uint8_t *>(&h), sizeof h});
  if (!r)
    return r.error();
  return w;
}

Result<void> PcapWriter::writePacket(uint64_t tsNs, uint32_t origLen,
                                     std::span<const uint8_t> data) {
  if (auto r = out_.usable(); !r)
    return r;
  if (data.size() > origLen)
    return invalid(path(), "captured length " + std::to_string(data.size()) +
                               " exceeds original length " + std::to_string(origLen));
  if (data.size() > snaplen_)
    return invalid(path(), "captured length " + std::to_string(data.size()) + " exceeds snaplen " +
                               std::to_string(snaplen_));
  if (tsNs / kNsPerSec > UINT32_MAX)
    return invalid(path(), "timestamp " + std::to_string(tsNs) +
                               " ns is past the classic PCAP range (year 2106)");
  const RecordHeader h{static_cast<uint32_t>(tsNs / kNsPerSec),
                       static_cast<uint32_t>(tsNs % kNsPerSec), static_cast<uint32_t>(data.size()),
                       origLen};
  const size_t length = sizeof h + data.size();
  if (buf_.size() + length > bufferSize_)
    if (auto r = flush(); !r)
      return r;
  const size_t at = buf_.size();
  buf_.resize(at + length);
  std::memcpy(buf_.data() + at, &h, sizeof h);
  if (!data.empty())
    std::memcpy(buf_.data() + at + sizeof h, data.data(), data.size());
  ++packets_;
  if (buf_.size() >= bufferSize_)
    return flush();
  return {};
}

Result<void> PcapWriter::flush() {
  if (out_.failure())
    return *out_.failure();
  if (buf_.empty())
    return {};
  auto r = writeOut(buf_);
  buf_.clear();
  return r;
}

Result<void> PcapWriter::finish() {
  if (auto r = out_.usable(); !r)
    return r;
  if (auto r = flush(); !r)
    return r;
  return out_.finish();
}

// A failed write leaves what reached the file: classic PCAP files are not cut back to the
// last whole record (the converter removes its unfinished output).
Result<void> PcapWriter::writeOut(std::span<const uint8_t> bytes) {
  if (const auto shortWrite = out_.write(bytes))
    return out_.fail(Error::fromErrno(
        shortWrite->err, out_.path() + ": write failed after " +
                             std::to_string(out_.wholeBytes() + shortWrite->written) + " bytes"));
  return {};
}

} // namespace ringcap
