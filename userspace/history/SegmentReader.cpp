#include "history/SegmentReader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ringcap {

namespace {

constexpr uint32_t kShb = 0x0A0D0D0A, kIdb = 1, kEpb = 6;
constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;
constexpr uint32_t kMaxBlock = 16u << 20; // far above a 160-byte packet's block

uint32_t u32(const uint8_t *p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint16_t u16(const uint8_t *p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

} // namespace

SegmentReader::~SegmentReader() {
  if (map_)
    ::munmap(const_cast<uint8_t *>(map_), len_);
}

Result<std::unique_ptr<SegmentReader>> SegmentReader::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return Error::fromErrno(errno, "open " + path);
  std::unique_ptr<SegmentReader> r(new SegmentReader(path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Error::fromErrno(err, "fstat " + path);
  }
  if (st.st_size > 0) {
    void *m = ::mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return Error::fromErrno(err, "mmap " + path);
    }
    ::madvise(m, size_t(st.st_size), MADV_SEQUENTIAL);
    r->map_ = static_cast<const uint8_t *>(m);
    r->len_ = size_t(st.st_size);
  }
  ::close(fd);
  if (auto h = r->readSectionHeader(); !h)
    return h.error();
  return r;
}

Result<void> SegmentReader::readSectionHeader() {
  const uint8_t *b = map_ + pos_;
  if (!have(28) || u32(b) != kShb || u32(b + 8) != kByteOrderMagic)
    return Error{EINVAL, path_ + ": not a history segment (no pcapng section header in host "
                                 "byte order)"};
  uint32_t total = u32(b + 4);
  if (total < 28 || total % 4 || total > kMaxBlock)
    return Error{EINVAL,
                 path_ + ": section header block length " + std::to_string(total) + " is invalid"};
  if (!have(total) || u32(b + total - 4) != total)
    return Error{EINVAL, path_ + ": the section header block is cut short"};
  pos_ += total;
  whole_ += total;
  return {};
}

Result<std::optional<SegmentPacket>> SegmentReader::next() {
  while (!torn_) {
    if (!have(8)) {
      torn_ = len_ - pos_ > 0; // a few bytes of a block header
      return std::optional<SegmentPacket>{};
    }
    const uint8_t *b = map_ + pos_;
    uint32_t type = u32(b), total = u32(b + 4);
    if (total < 12 || total % 4 || total > kMaxBlock || type == kShb) {
      torn_ = true;
      break;
    }
    if (!have(total) || u32(b + total - 4) != total) {
      torn_ = true;
      break;
    }
    const uint8_t *body = b + 8;
    const uint32_t bodyLen = total - 12;
    std::optional<SegmentPacket> packet;
    if (type == kIdb) {
      if (bodyLen < 8) {
        torn_ = true;
        break;
      }
      std::string name;
      uint64_t units = 1'000'000; // pcapng's default: microseconds
      for (uint32_t at = 8; at + 4 <= bodyLen;) {
        uint16_t code = u16(body + at), len = u16(body + at + 2);
        if (code == 0 || at + 4 + len > bodyLen)
          break;
        if (code == 2)
          name.assign(reinterpret_cast<const char *>(body + at + 4), len);
        if (code == 9 && len >= 1) {
          uint8_t r = body[at + 4];
          units = 1;
          for (int i = 0; i < (r & 0x7F) && i < 19; i++)
            units *= (r & 0x80) ? 2 : 10;
        }
        at += 4 + ((len + 3u) & ~3u);
      }
      names_.push_back(std::move(name));
      unitsPerSec_.push_back(units);
    } else if (type == kEpb) {
      if (bodyLen < 20) {
        torn_ = true;
        break;
      }
      uint32_t id = u32(body), capLen = u32(body + 12);
      if (id >= names_.size() || capLen > bodyLen - 20) {
        torn_ = true;
        break;
      }
      uint64_t units = (uint64_t(u32(body + 4)) << 32) | u32(body + 8);
      uint64_t ups = unitsPerSec_[id];
      uint64_t ts = ups == 1'000'000'000
                        ? units
                        : units / ups * 1'000'000'000 + units % ups * 1'000'000'000 / ups;
      packet = SegmentPacket{id, ts, u32(body + 16), {body + 20, capLen}};
    }
    pos_ += total;
    whole_ += total;
    if (packet)
      return packet;
  }
  return std::optional<SegmentPacket>{};
}

} // namespace ringcap
