// PcapngWriter: writes a pcapng capture file (one section, Ethernet interfaces, nanosecond
// timestamps). Blocks are buffered and only whole blocks reach the file, so the file stays
// readable while the capture runs and after a failed write.
//
// A packet is either copied into the buffer (writePacket) or gathered (writePacketRef): its
// block's header and trailer are built in the buffer, and the packet bytes stay where they
// are until flush() writes the pending bytes with writev, straight from the caller's memory
// (the capture ring). Either way the file receives the same bytes.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "pcap/CaptureFileOutput.h"
#include "util/Result.h"

namespace ringcap {

// libpcap (tcpdump) reads a multi-interface file only if all interfaces share link type and
// snaplen; Wireshark has no such limit.
struct PcapInterface {
  std::string name;        // if_name, e.g. "veth0"
  std::string description; // if_description, skipped when empty
  uint32_t snaplen = 0;    // IDB SnapLen; 0 means no limit
};

// Written as one Interface Statistics Block per interface by finish().
struct PcapInterfaceStats {
  uint64_t timestampNs = 0; // when the counters were read (ns since the Unix epoch)
  uint64_t received = 0;    // isb_ifrecv: packets seen on the interface by the capture
  uint64_t dropped = 0;     // isb_ifdrop: packets lost because the ring was full
  uint64_t accepted = 0;    // isb_filteraccept: packets that matched the filter
  std::string comment;      // opt_comment, skipped when empty
};

class PcapngWriter {
public:
  static constexpr size_t kDefaultBufferSize = 256 * 1024;

  // Creates the file (O_CREAT|O_TRUNC|O_NOFOLLOW) and writes the Section Header Block and one
  // Interface Description Block per interface. The file is removed if that fails.
  static Result<std::unique_ptr<PcapngWriter>> create(const std::string &path,
                                                      const std::vector<PcapInterface> &ifaces,
                                                      const std::string &userAppl,
                                                      mode_t mode = 0640);
  // Same on an open, writable fd, which the writer owns from now on (closed on error too).
  // `path` only names the file in messages. A failed write truncates the file back to the
  // offset the fd had here plus the whole blocks written.
  static Result<std::unique_ptr<PcapngWriter>> fromFd(int fd, const std::string &path,
                                                      const std::vector<PcapInterface> &ifaces,
                                                      const std::string &userAppl,
                                                      size_t bufferSize = kDefaultBufferSize);

  PcapngWriter(const PcapngWriter &) = delete;
  PcapngWriter &operator=(const PcapngWriter &) = delete;
  // Flushes whole blocks (errors ignored) and closes the fd.
  ~PcapngWriter();

  // Appends one Enhanced Packet Block. interfaceId indexes the interfaces given at creation.
  Result<void> writePacket(uint32_t interfaceId, uint64_t tsNs, uint32_t origLen,
                           std::span<const uint8_t> data);
  // The same without copying `data`: its bytes must stay valid and unchanged until the next
  // flush() (which writePacket/writePacketRef/finish may also call when the buffer fills).
  Result<void> writePacketRef(uint32_t interfaceId, uint64_t tsNs, uint32_t origLen,
                              std::span<const uint8_t> data);
  // Gathered packet bytes wait for flush(): the caller must flush before their memory changes.
  bool holdsReferences() const { return references_; }
  // Writes every pending block to the file (one writev per IOV_MAX pieces).
  Result<void> flush();
  // Writes one Interface Statistics Block per interface (stats[i] for interface i), flushes,
  // fsyncs (unless `sync` is false) and closes the file. Later writes are errors.
  Result<void> finish(const std::vector<PcapInterfaceStats> &stats, bool sync = true);

  // Packets in the file or buffered for it; after a failure, packets in the file.
  uint64_t packetsWritten() const { return packets_; }
  // Bytes in the file (flushed), always the end of a whole block.
  uint64_t bytesWritten() const { return out_.wholeBytes(); }
  const std::string &path() const { return out_.path(); }
  bool failed() const { return out_.failure().has_value(); }

private:
  PcapngWriter(int fd, std::string path, std::vector<PcapInterface> ifaces, size_t bufferSize);

  // One block waiting for flush(), in file order.
  struct PendingBlock {
    uint32_t length;
    bool packet;
  };

  // True when a packet may be written: the per-packet check, inline.
  bool packetFits(uint32_t interfaceId, uint32_t origLen, size_t capLen) const {
    return out_.isOpen() && !out_.failure() && interfaceId < ifaces_.size() && capLen <= origLen &&
           (ifaces_[interfaceId].snaplen == 0 || capLen <= ifaces_[interfaceId].snaplen);
  }
  // Why it may not (out of line: the error path).
  Error packetError(uint32_t interfaceId, uint32_t origLen, size_t capLen) const;
  // Room for `bytes` more in the buffer and `pieces` more pending pieces, flushing if needed.
  Result<void> reserve(size_t bytes, size_t pieces) {
    if (used_ + bytes <= bufferSize_ && iov_.size() + pieces <= iov_.capacity())
      return {};
    return flush();
  }
  template <typename Build>
  Result<void> appendBlock(size_t totalLength, bool packet, Build &&build);
  // Appends `n` bytes at `p` (in buf_, scratch_ or the caller's memory) to the pending bytes.
  void addPiece(const uint8_t *p, size_t n);
  Error fail(size_t written, int err);

  CaptureFileOutput out_;
  std::vector<PcapInterface> ifaces_;
  size_t bufferSize_;
  std::unique_ptr<uint8_t[]> buf_; // bufferSize_ bytes: built blocks and block parts
  size_t used_ = 0;                // bytes of buf_ pending
  std::vector<uint8_t> scratch_;   // the other blocks are built here, then copied to buf_
                                   // (or written from here when larger than buf_)
  std::vector<iovec> iov_;         // the pending bytes: pieces of buf_, scratch_, gathered packets
  std::vector<PendingBlock> blocks_;
  bool references_ = false; // iov_ points into the caller's memory
  uint64_t packets_ = 0;
};

} // namespace ringcap
