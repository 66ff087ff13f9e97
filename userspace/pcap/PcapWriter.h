// PcapWriter: writes a classic PCAP file (libpcap format, magic 0xa1b23c4d: nanosecond
// timestamps, host byte order, link type Ethernet). Classic PCAP has one link type and no
// interface ids or statistics; PcapngWriter keeps those.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "pcap/CaptureFileOutput.h"
#include "util/Result.h"

namespace ringcap {

class PcapWriter {
public:
  static constexpr size_t kDefaultBufferSize = 256 * 1024;
  // The snaplen written when the packets have no limit (libpcap's MAXIMUM_SNAPLEN).
  static constexpr uint32_t kMaxSnaplen = 262144;

  // Creates the file (O_CREAT|O_TRUNC|O_NOFOLLOW) and writes the file header with `snaplen`
  // (0: kMaxSnaplen). The file is removed if that fails.
  static Result<std::unique_ptr<PcapWriter>> create(const std::string &path, uint32_t snaplen,
                                                    mode_t mode = 0640);
  // Same on an open, writable fd, which the writer owns from now on (closed on error too).
  // `path` only names the file in messages.
  static Result<std::unique_ptr<PcapWriter>>
  fromFd(int fd, const std::string &path, uint32_t snaplen, size_t bufferSize = kDefaultBufferSize);

  PcapWriter(const PcapWriter &) = delete;
  PcapWriter &operator=(const PcapWriter &) = delete;
  // Flushes (errors ignored) and closes the fd.
  ~PcapWriter();

  // Appends one packet record; data.size() must not exceed the snaplen or origLen.
  Result<void> writePacket(uint64_t tsNs, uint32_t origLen, std::span<const uint8_t> data);
  // Writes the buffered records to the file.
  Result<void> flush();
  // Flushes, fsyncs and closes the file. Later writes are errors.
  Result<void> finish();

  uint64_t packetsWritten() const { return packets_; }
  // Bytes handed to the file so far (flushed).
  uint64_t bytesWritten() const { return out_.wholeBytes(); }
  uint32_t snaplen() const { return snaplen_; }
  const std::string &path() const { return out_.path(); }

private:
  PcapWriter(int fd, std::string path, uint32_t snaplen, size_t bufferSize);

  Result<void> writeOut(std::span<const uint8_t> bytes);

  CaptureFileOutput out_;
  uint32_t snaplen_;
  size_t bufferSize_;
  std::vector<uint8_t> buf_;
  uint64_t packets_ = 0;
};

} // namespace ringcap
