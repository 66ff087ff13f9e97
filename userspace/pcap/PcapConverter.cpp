#include "pcap/PcapConverter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "pcap/PcapReader.h"
#include "pcap/PcapWriter.h"

namespace ringcap {
namespace {

constexpr uint16_t kLinktypeEthernet = 1;

// The snaplen of the interfaces seen so far: the largest, or 0 (no limit) if one has none.
uint32_t snaplenOf(const std::vector<PcapReaderInterface> &ifaces) {
  uint32_t snaplen = 0;
  for (const auto &i : ifaces) {
    if (i.snaplen == 0)
      return 0;
    snaplen = std::max(snaplen, i.snaplen);
  }
  return snaplen;
}

Result<ConversionSummary> convert(PcapReader &reader, const std::string &input,
                                  const std::string &part, mode_t mode, gid_t group) {
  std::unique_ptr<PcapWriter> writer;
  for (;;) {
    auto next = reader.next();
    if (!next)
      return next.error();
    if (!writer) {
      // ringcap writes every interface block before the first packet: the snaplen is known.
      auto created = PcapWriter::create(part, snaplenOf(reader.interfaces()), mode);
      if (!created)
        return created.error();
      writer = std::move(*created);
      if (group != gid_t(-1) && ::chown(part.c_str(), uid_t(-1), group) != 0 && errno != EPERM)
        return Error::fromErrno(errno, part + ": giving the file the group of " + input);
    }
    if (!next->has_value())
      break;
    const PcapPacket &packet = **next;
    const auto &ifaces = reader.interfaces();
    if (packet.interfaceId >= ifaces.size())
      return Error{EINVAL, input + ": a packet names interface " +
                               std::to_string(packet.interfaceId) + ", which is not described"};
    const auto &iface = ifaces[packet.interfaceId];
    if (iface.linkType != kLinktypeEthernet)
      return Error{EINVAL, input + ": interface " + std::to_string(packet.interfaceId) +
                               (iface.name.empty() ? "" : " (" + iface.name + ")") +
                               " has link type " + std::to_string(iface.linkType) +
                               "; classic PCAP holds one link type, Ethernet (1)"};
    if (auto r = writer->writePacket(packet.tsNs, packet.origLen, packet.data); !r)
      return r.error();
  }
  if (auto r = writer->finish(); !r)
    return r.error();
  return ConversionSummary{writer->packetsWritten(), writer->bytesWritten()};
}

} // namespace

Result<ConversionSummary> convertToPcap(const std::string &input, const std::string &output) {
  struct stat st {};
  if (::stat(input.c_str(), &st) != 0)
    return Error::fromErrno(errno, input + ": cannot read the capture file");
  auto reader = PcapReader::open(input);
  if (!reader)
    return reader.error();
  const std::string part = output + ".part";
  auto summary = convert(**reader, input, part, st.st_mode & 0777, st.st_gid);
  if (summary && ::rename(part.c_str(), output.c_str()) != 0)
    summary = Error::fromErrno(errno, "renaming " + part + " to " + output);
  if (!summary) {
    ::unlink(part.c_str());
    return Error{summary.error().code,
                 "converting " + input + " to PCAP: " + summary.error().message};
  }
  // The rename is durable once the directory is synced.
  const std::string dir = output.find('/') == std::string::npos
                              ? std::string(".")
                              : output.substr(0, output.rfind('/') + 1);
  if (int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
  return summary;
}

} // namespace ringcap
