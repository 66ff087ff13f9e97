// PcapWriter (classic PCAP, nanosecond) and convertToPcap (pcapng spool -> PCAP), checked
// with PcapReader and with third-party readers (capinfos, tshark, tcpdump).
#include "pcap/PcapWriter.h"
#include "../lib/PcapTestSupport.h"
#include "../lib/Sanitizer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "pcap/PcapConverter.h"
#include "pcap/PcapReader.h"
#include "pcap/PcapngWriter.h"

namespace ringcap {
namespace {

using namespace testsupport;

const std::vector<PcapInterface> kIfaces = {{"veth0", "", 1600}, {"veth1", "", 1600}};

std::vector<PcapPacket> readAll(const std::string &path, bool &pcapng,
                                std::vector<PcapReaderInterface> &ifaces) {
  std::vector<PcapPacket> packets;
  auto reader = PcapReader::open(path);
  EXPECT_TRUE(reader.ok()) << reader.error().message;
  if (!reader)
    return packets;
  for (;;) {
    auto p = (*reader)->next();
    EXPECT_TRUE(p.ok()) << p.error().message;
    if (!p || !p->has_value())
      break;
    packets.push_back(std::move(**p));
  }
  pcapng = (*reader)->isPcapng();
  ifaces = (*reader)->interfaces();
  return packets;
}

// A "Name:   123 kB" line of /proc/self/status, in KiB (0 when absent).
uint64_t statusKib(const std::string &name) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(name + ":", 0) == 0)
      return std::stoull(line.substr(name.size() + 1));
  return 0;
}

class PcapWriterTest : public TempDirTest {
protected:
  PcapWriterTest() : TempDirTest("ringcap-pcap-") {}

  void writeSpool(const std::string &path, const std::vector<PcapInterface> &ifaces) {
    auto w = PcapngWriter::create(path, ifaces, "ringcap-test");
    ASSERT_TRUE(w.ok()) << w.error().message;
    for (const auto &p : samplePackets()) {
      auto r = (*w)->writePacket(p.iface % ifaces.size(), p.tsNs, p.origLen, p.data);
      ASSERT_TRUE(r.ok()) << r.error().message;
    }
    std::vector<PcapInterfaceStats> stats(ifaces.size(), {kBaseTs, 5, 1, 5, "stats"});
    auto r = (*w)->finish(stats);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  // Checks `path` with capinfos, tshark and tcpdump: classic PCAP, nanoseconds, the sample
  // packets with their exact timestamps.
  void expectThirdPartyReadersAgree(const std::string &path) {
    const ThirdPartyTools tools = findTools();
    REQUIRE_THIRD_PARTY_TOOLS(tools);
    const auto sent = samplePackets();
    auto info = runCommand(tools.capinfos + " -t -c '" + path + "'");
    ASSERT_TRUE(info.succeeded);
    std::string type, count;
    for (const auto &line : info.lines) {
      if (line.rfind("File type:", 0) == 0)
        type = line.substr(line.find(':') + 1);
      if (line.rfind("Number of packets:", 0) == 0)
        count = line.substr(line.find(':') + 1);
    }
    EXPECT_NE(type.find("Wireshark/tcpdump/... - nanosecond pcap"), std::string::npos) << type;
    EXPECT_EQ(std::stoull(count), sent.size());
    auto precision =
        runCommand(tools.capinfos + " '" + path + "' | grep 'File timestamp precision'");
    ASSERT_TRUE(precision.succeeded);
    ASSERT_EQ(precision.lines.size(), 1u);
    EXPECT_NE(precision.lines[0].find("nanoseconds (9)"), std::string::npos) << precision.lines[0];

    auto rows = runCommand(tools.tshark + " -r '" + path +
                           "' -T fields -e frame.len -e frame.cap_len -e frame.time_epoch"
                           " 2>/dev/null");
    ASSERT_TRUE(rows.succeeded);
    std::vector<std::string> want;
    for (const auto &p : sent) {
      want.push_back(std::to_string(p.origLen) + "\t" + std::to_string(p.data.size()) + "\t" +
                     epochText(p.tsNs));
    }
    EXPECT_EQ(rows.lines, want);

    auto dump = runCommand(tools.tcpdump + " -r '" + path +
                           "' -nn --time-stamp-precision=nano -tt 2>/dev/null");
    ASSERT_TRUE(dump.succeeded);
    ASSERT_EQ(dump.lines.size(), sent.size());
    for (size_t i = 0; i < sent.size(); ++i) {
      const std::string ts = want[i].substr(want[i].rfind('\t') + 1);
      EXPECT_EQ(dump.lines[i].rfind(ts + " IP 192.0.2.1." + std::to_string(40000 + i) +
                                        " > 203.0.113.7." + std::to_string(kUdpPort) + ": UDP",
                                    0),
                0u)
          << dump.lines[i];
    }
  }
};

TEST_F(PcapWriterTest, WritesNanosecondPcapThatReadsBack) {
  const std::string path = file("w.pcap");
  {
    auto w = PcapWriter::create(path, 1600);
    ASSERT_TRUE(w.ok()) << w.error().message;
    for (const auto &p : samplePackets())
      ASSERT_TRUE((*w)->writePacket(p.tsNs, p.origLen, p.data).ok());
    ASSERT_TRUE((*w)->finish().ok());
    EXPECT_EQ((*w)->packetsWritten(), samplePackets().size());
    EXPECT_EQ((*w)->bytesWritten(), std::filesystem::file_size(path));
  }
  const std::string bytes = readBytes(path);
  ASSERT_GE(bytes.size(), 24u);
  uint32_t magic, snaplen, linktype;
  std::memcpy(&magic, bytes.data(), 4);
  std::memcpy(&snaplen, bytes.data() + 16, 4);
  std::memcpy(&linktype, bytes.data() + 20, 4);
  EXPECT_EQ(magic, 0xA1B23C4Du);
  EXPECT_EQ(snaplen, 1600u);
  EXPECT_EQ(linktype, 1u);

  bool pcapng = true;
  std::vector<PcapReaderInterface> ifaces;
  const auto got = readAll(path, pcapng, ifaces);
  EXPECT_FALSE(pcapng);
  ASSERT_EQ(ifaces.size(), 1u);
  EXPECT_EQ(ifaces[0].tsUnitsPerSec, 1'000'000'000u);
  const auto sent = samplePackets();
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(got[i].tsNs, sent[i].tsNs) << i;
    EXPECT_EQ(got[i].origLen, sent[i].origLen) << i;
    EXPECT_EQ(got[i].data, sent[i].data) << i;
  }
  expectThirdPartyReadersAgree(path);
}

TEST_F(PcapWriterTest, RejectsPacketsItCannotHold) {
  auto w = PcapWriter::create(file("r.pcap"), 100);
  ASSERT_TRUE(w.ok());
  const auto frame = udpFrame(200, 200, 0);
  auto r = (*w)->writePacket(kBaseTs, 200, frame);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("exceeds snaplen 100"), std::string::npos) << r.error().message;
  r = (*w)->writePacket(kBaseTs, 50, std::span(frame).first(60));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("exceeds original length 50"), std::string::npos);
  r = (*w)->writePacket(uint64_t{1} << 63, 60, std::span(frame).first(60));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("classic PCAP range"), std::string::npos);
  EXPECT_EQ((*w)->packetsWritten(), 0u);
}

// A write the file takes only in part (a full non-blocking pipe) fails the writer. The error
// counts every byte that reached the file; bytesWritten() counts the whole writes only, and
// what reached the file stays (classic PCAP is not cut back to the last whole record).
TEST_F(PcapWriterTest, ShortWriteFailsTheWriterAndKeepsWhatWasWritten) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  const int capacity = ::fcntl(fds[1], F_GETPIPE_SZ);
  ASSERT_GT(capacity, 0);
  auto w = PcapWriter::fromFd(fds[1], "pipe", 1600);
  ASSERT_TRUE(w.ok()) << w.error().message;
  const auto frame = udpFrame(1514, 1514, 0);
  const uint32_t packets = 2 * static_cast<uint32_t>(capacity) / (16 + 1514); // twice too many
  for (uint32_t i = 0; i < packets; ++i)
    ASSERT_TRUE((*w)->writePacket(kBaseTs + i, 1514, frame).ok()) << i;
  auto r = (*w)->finish(); // the first write of the buffer
  ASSERT_FALSE(r.ok());
  EXPECT_EQ((*w)->bytesWritten(), 24u);
  EXPECT_FALSE((*w)->writePacket(kBaseTs, 1514, frame).ok());
  EXPECT_FALSE((*w)->flush().ok());
  EXPECT_EQ((*w)->finish().error().message, r.error().message);
  w->reset(); // closes the write end
  std::vector<uint8_t> got(2 * static_cast<size_t>(capacity));
  size_t total = 0;
  for (ssize_t n; (n = ::read(fds[0], got.data() + total, got.size() - total)) > 0;)
    total += static_cast<size_t>(n);
  ::close(fds[0]);
  EXPECT_GT(total, 24u);
  EXPECT_LT(total, 24u + packets * (16 + 1514));
  EXPECT_EQ(r.error().code, EAGAIN);
  EXPECT_EQ(
      r.error().message.rfind("pipe: write failed after " + std::to_string(total) + " bytes: ", 0),
      0u)
      << r.error().message;
}

TEST_F(PcapWriterTest, ConvertsATwoInterfaceSpool) {
  const std::string spool = file("spool.pcapng"), out = file("out.pcap");
  writeSpool(spool, kIfaces);
  ASSERT_EQ(::chmod(spool.c_str(), 0604), 0);
  auto summary = convertToPcap(spool, out);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->packets, samplePackets().size());
  EXPECT_EQ(summary->bytes, std::filesystem::file_size(out));
  EXPECT_FALSE(std::filesystem::exists(out + ".part"));
  EXPECT_TRUE(std::filesystem::exists(spool)); // the caller decides what to do with it
  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0604u) << "the output takes the spool's mode";

  bool pcapng = true;
  std::vector<PcapReaderInterface> ifaces;
  const auto got = readAll(out, pcapng, ifaces);
  EXPECT_FALSE(pcapng);
  ASSERT_EQ(ifaces.size(), 1u);
  EXPECT_EQ(ifaces[0].snaplen, 1600u);
  EXPECT_EQ(ifaces[0].linkType, 1u);
  const auto sent = samplePackets();
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(got[i].tsNs, sent[i].tsNs) << i;
    EXPECT_EQ(got[i].origLen, sent[i].origLen) << i;
    EXPECT_EQ(got[i].data, sent[i].data) << i;
  }
  expectThirdPartyReadersAgree(out);
}

TEST_F(PcapWriterTest, ConversionSnaplenIsTheLargestOrUnlimited) {
  const std::string spool = file("s.pcapng"), out = file("s.pcap");
  writeSpool(spool, {{"a", "", 1600}, {"b", "", 0}});
  auto summary = convertToPcap(spool, out);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  bool pcapng = true;
  std::vector<PcapReaderInterface> ifaces;
  readAll(out, pcapng, ifaces);
  ASSERT_EQ(ifaces.size(), 1u);
  EXPECT_EQ(ifaces[0].snaplen, PcapWriter::kMaxSnaplen);
}

TEST_F(PcapWriterTest, ConversionStreamsALargeSpool) {
  // 20000 packets of 1514 bytes (about 30 MB): read and written a block at a time.
  const std::string spool = file("big.pcapng"), out = file("big.pcap");
  {
    auto w = PcapngWriter::create(spool, {{"veth0", "", 0}}, "ringcap-test");
    ASSERT_TRUE(w.ok());
    const auto frame = udpFrame(1514, 1514, 9);
    for (uint32_t i = 0; i < 20000; ++i)
      ASSERT_TRUE((*w)->writePacket(0, kBaseTs + i, 1514, frame).ok());
    ASSERT_TRUE((*w)->finish({{kBaseTs, 20000, 0, 20000, ""}}).ok());
  }
  // The peak resident size, reset just before the conversion (Linux: clear_refs 5).
  const bool peakReset =
      static_cast<bool>(std::ofstream("/proc/self/clear_refs") << "5" << std::flush);
  const uint64_t before = statusKib("VmRSS");
  auto summary = convertToPcap(spool, out);
  const uint64_t peak = statusKib("VmHWM");
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->packets, 20000u);
  EXPECT_EQ(summary->bytes, 24u + 20000u * (16 + 1514));
  if (peakReset && !testsupport::kAddressSanitizer) {
    std::cout << "conversion of " << summary->bytes << " bytes: resident memory " << before
              << " KiB before, peak " << peak << " KiB\n";
    EXPECT_LT(peak, before + 8 * 1024) << "the conversion should not hold the file in memory";
  }
}

TEST_F(PcapWriterTest, FailedConversionLeavesNoOutput) {
  const std::string spool = file("cut.pcapng"), out = file("cut.pcap");
  writeSpool(spool, kIfaces);
  // Cut the last packet block in the middle: the reader reports a truncated block.
  const auto size = std::filesystem::file_size(spool);
  std::filesystem::resize_file(spool, size - 100);
  auto summary = convertToPcap(spool, out);
  ASSERT_FALSE(summary.ok());
  EXPECT_NE(summary.error().message.find("converting " + spool + " to PCAP"), std::string::npos)
      << summary.error().message;
  EXPECT_NE(summary.error().message.find("truncated"), std::string::npos)
      << summary.error().message;
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(out + ".part"));

  auto missing = convertToPcap(file("absent.pcapng"), out);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ENOENT);
}

} // namespace
} // namespace ringcap
