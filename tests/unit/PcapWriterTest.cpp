// PcapWriter (classic PCAP, nanosecond) and convertToPcap (pcapng spool -> PCAP), checked
// with PcapReader and with third-party readers (capinfos, tshark, tcpdump).
#include "pcap/PcapWriter.h"
#include "../lib/Skip.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "pcap/PcapConverter.h"
#include "pcap/PcapReader.h"
#include "pcap/PcapngWriter.h"

namespace ringcap {
namespace {

constexpr uint64_t kBaseTs = 1'700'000'000'123'456'789ULL;

// An Ethernet/IPv4/UDP frame (192.0.2.1:40000+seed -> 203.0.113.7:47000) of origLen bytes
// cut to capLen.
std::vector<uint8_t> udpFrame(uint32_t origLen, uint32_t capLen, uint32_t seed) {
  std::vector<uint8_t> f(origLen);
  const uint8_t head[] = {2,    0, 0, 0, 0,   2, 2,   0, 0, 0, 0, 1, 8, 0, // Ethernet
                          0x45, 0, 0, 0, 0,   0, 0,   0, 0, 0, 0, 0,       // IPv4 ...
                          192,  0, 2, 1, 203, 0, 113, 7};                  // addresses
  std::memcpy(f.data(), head, sizeof head);
  auto put16 = [&](size_t at, uint32_t v) {
    f[at] = static_cast<uint8_t>(v >> 8);
    f[at + 1] = static_cast<uint8_t>(v);
  };
  put16(16, origLen - 14);
  put16(22, 64 << 8 | 17);
  put16(34, 40000 + seed);
  put16(36, 47000);
  put16(38, origLen - 34);
  for (size_t i = 42; i < f.size(); ++i)
    f[i] = static_cast<uint8_t>(seed * 31 + i);
  f.resize(capLen);
  return f;
}

struct Sent {
  uint32_t iface;
  uint64_t tsNs;
  uint32_t origLen;
  std::vector<uint8_t> data;
};

std::vector<Sent> samplePackets() {
  return {
      {0, kBaseTs, 60, udpFrame(60, 60, 0)},
      {1, kBaseTs + 1'000, 1500, udpFrame(1500, 160, 1)}, // cut like a simple capture
      {0, kBaseTs + 2'000'000'000, 1514, udpFrame(1514, 1514, 2)},
      {1, kBaseTs + 2'000'000'001, 61, udpFrame(61, 61, 3)},
      {0, kBaseTs + 3'999'999'999, 63, udpFrame(63, 63, 4)},
  };
}

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

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

struct CommandOutput {
  bool succeeded = false;
  std::vector<std::string> lines;
};

CommandOutput runCommand(const std::string &command) {
  CommandOutput out;
  FILE *pipe = ::popen(command.c_str(), "r");
  if (!pipe)
    return out;
  std::string text;
  char chunk[4096];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, pipe)) > 0)
    text.append(chunk, n);
  const int status = ::pclose(pipe);
  out.succeeded = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.lines.push_back(line);
  return out;
}

std::string findTool(std::initializer_list<const char *> candidates) {
  for (const char *c : candidates)
    if (::access(c, X_OK) == 0)
      return c;
  return "";
}

// A "Name:   123 kB" line of /proc/self/status, in KiB (0 when absent).
uint64_t statusKib(const std::string &name) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(name + ":", 0) == 0)
      return std::stoull(line.substr(name.size() + 1));
  return 0;
}

// AddressSanitizer keeps freed memory in quarantine: resident size says nothing there.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

class PcapWriterTest : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ringcap-pcap-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string file(const std::string &name) const { return dir_ + "/" + name; }

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
    const std::string capinfos = findTool({"/usr/bin/capinfos"});
    const std::string tshark = findTool({"/usr/bin/tshark"});
    const std::string tcpdump = findTool({"/usr/sbin/tcpdump", "/usr/bin/tcpdump"});
    if (capinfos.empty() || tshark.empty() || tcpdump.empty()) {
      RINGCAP_SKIP("THIRD-PARTY PCAP READERS MISSING (apt-get install tshark tcpdump)");
    }
    const auto sent = samplePackets();
    auto info = runCommand(capinfos + " -t -c '" + path + "'");
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
    auto precision = runCommand(capinfos + " '" + path + "' | grep 'File timestamp precision'");
    ASSERT_TRUE(precision.succeeded);
    ASSERT_EQ(precision.lines.size(), 1u);
    EXPECT_NE(precision.lines[0].find("nanoseconds (9)"), std::string::npos) << precision.lines[0];

    auto rows = runCommand(tshark + " -r '" + path +
                           "' -T fields -e frame.len -e frame.cap_len -e frame.time_epoch"
                           " 2>/dev/null");
    ASSERT_TRUE(rows.succeeded);
    std::vector<std::string> want;
    for (const auto &p : sent) {
      char epoch[32];
      std::snprintf(epoch, sizeof epoch, "%llu.%09llu",
                    static_cast<unsigned long long>(p.tsNs / 1'000'000'000),
                    static_cast<unsigned long long>(p.tsNs % 1'000'000'000));
      want.push_back(std::to_string(p.origLen) + "\t" + std::to_string(p.data.size()) + "\t" +
                     epoch);
    }
    EXPECT_EQ(rows.lines, want);

    auto dump =
        runCommand(tcpdump + " -r '" + path + "' -nn --time-stamp-precision=nano -tt 2>/dev/null");
    ASSERT_TRUE(dump.succeeded);
    ASSERT_EQ(dump.lines.size(), sent.size());
    for (size_t i = 0; i < sent.size(); ++i) {
      const std::string ts = want[i].substr(want[i].rfind('\t') + 1);
      EXPECT_EQ(dump.lines[i].rfind(ts + " IP 192.0.2.1." + std::to_string(40000 + i) +
                                        " > 203.0.113.7.47000: UDP",
                                    0),
                0u)
          << dump.lines[i];
    }
  }

  std::string dir_;
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
  if (peakReset && !kAddressSanitizer) {
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
