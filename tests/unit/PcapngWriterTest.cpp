#include "pcap/PcapngWriter.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <thread>

#include "../lib/PcapTestSupport.h"
#include "pcap/PcapFileSink.h"
#include "pcap/PcapReader.h"

namespace ringcap {
namespace {

using namespace testsupport;

// Both interfaces share the snaplen: libpcap (tcpdump) rejects files whose interfaces differ.
const std::vector<PcapInterface> kIfaces = {{"veth0", "first test interface", 1600},
                                            {"veth1", "", 1600}};

// Packet i of a long deterministic sequence, used where the writer runs until a fault.
Sent sequencePacket(uint32_t i) {
  const uint32_t origLen = 60 + (i * 37) % 1400;
  return {i % 2, kBaseTs + uint64_t{i} * 1'000, origLen, udpFrame(origLen, origLen, i)};
}

struct ReadBack {
  std::vector<PcapPacket> packets;
  std::string error; // empty: clean end of file
  std::vector<PcapReaderInterface> ifaces;
  std::vector<std::optional<PcapReaderStats>> stats;
};

ReadBack readAll(const std::string &path) {
  ReadBack rb;
  auto reader = PcapReader::open(path);
  if (!reader) {
    rb.error = reader.error().message;
    return rb;
  }
  for (;;) {
    auto p = (*reader)->next();
    if (!p) {
      rb.error = p.error().message;
      break;
    }
    if (!p->has_value())
      break;
    rb.packets.push_back(std::move(**p));
  }
  rb.ifaces = (*reader)->interfaces();
  rb.stats = (*reader)->statistics();
  return rb;
}

bool samePacket(const PcapPacket &got, const Sent &want) {
  return got.interfaceId == want.iface && got.tsNs == want.tsNs && got.origLen == want.origLen &&
         got.data == want.data;
}

std::vector<std::string> tsharkRows(const ThirdPartyTools &tools, const std::string &path) {
  auto out = runCommand(tools.tshark + " -r '" + path +
                        "' -T fields -e frame.len -e frame.cap_len -e frame.interface_name"
                        " -e frame.time_epoch 2>/dev/null");
  EXPECT_TRUE(out.succeeded) << "tshark failed on " << path;
  return out.lines;
}

std::string tsharkRow(const Sent &p) {
  return std::to_string(p.origLen) + "\t" + std::to_string(p.data.size()) + "\t" +
         kIfaces[p.iface].name + "\t" + epochText(p.tsNs);
}

// Result of a writer run in a child process that is made to fail with a full file.
struct FaultReport {
  int setupErrno;      // non-zero: the child could not arrange the fault
  bool writeFailed;    // a write or flush returned an error
  bool laterCallsFail; // writePacket, flush and finish all failed afterwards
  bool writerFailed;   // failed() is true
  uint64_t packetsWritten, bytesWritten, fileSize, packetsRead;
  bool readCleanEnd; // the reader reached a clean end of file
  bool readMatches;  // every packet read equals the one sent
  char message[512];
};

// Forks; the child runs setup() (returns 0 or an errno), writes the packet sequence to path
// until a write fails, reads the file back and reports.
FaultReport runFaultChild(const std::function<int()> &setup, const std::string &path,
                          size_t bufferSize, bool gather = false) {
  FaultReport report{};
  int fds[2];
  if (::pipe(fds) != 0) {
    report.setupErrno = errno;
    return report;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    report.setupErrno = setup();
    if (report.setupErrno == 0) {
      const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0640);
      auto writer = PcapngWriter::fromFd(fd, path, kIfaces, "ringcap-test", bufferSize);
      if (!writer) {
        report.writeFailed = true;
        std::snprintf(report.message, sizeof report.message, "%s", writer.error().message.c_str());
      } else {
        auto &w = **writer;
        Result<void> r;
        std::vector<Sent> batch; // gathered packets stay valid until the flush of their batch
        batch.reserve(64);
        for (uint32_t i = 0; i < 100'000 && r.ok(); ++i) {
          if (!gather) {
            const Sent p = sequencePacket(i);
            r = w.writePacket(p.iface, p.tsNs, p.origLen, p.data);
            continue;
          }
          if (batch.size() == 64) {
            r = w.flush();
            batch.clear();
            if (!r.ok())
              break;
          }
          const Sent &p = batch.emplace_back(sequencePacket(i));
          r = w.writePacketRef(p.iface, p.tsNs, p.origLen, p.data);
        }
        if (r.ok())
          r = w.flush();
        report.writeFailed = !r.ok();
        if (!r.ok())
          std::snprintf(report.message, sizeof report.message, "%s", r.error().message.c_str());
        report.writerFailed = w.failed();
        report.packetsWritten = w.packetsWritten();
        report.bytesWritten = w.bytesWritten();
        const Sent p = sequencePacket(0);
        report.laterCallsFail = !w.writePacket(p.iface, p.tsNs, p.origLen, p.data).ok() &&
                                !w.flush().ok() && !w.finish({{}, {}}).ok();
      }
      report.fileSize = fileSize(path);
      const ReadBack rb = readAll(path);
      report.packetsRead = rb.packets.size();
      report.readCleanEnd = rb.error.empty();
      report.readMatches = true;
      for (uint32_t i = 0; i < rb.packets.size(); ++i)
        report.readMatches = report.readMatches && samePacket(rb.packets[i], sequencePacket(i));
    }
    const bool sent = ::write(fds[1], &report, sizeof report) == sizeof report;
    ::_exit(sent ? 0 : 1);
  }
  ::close(fds[1]);
  if (pid < 0) {
    report.setupErrno = errno;
  } else {
    if (::read(fds[0], &report, sizeof report) != sizeof report)
      report.setupErrno = EPIPE;
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }
  ::close(fds[0]);
  return report;
}

class PcapngWriterTest : public TempDirTest {
protected:
  PcapngWriterTest() : TempDirTest("ringcap-pcapng-") {}

  // Writes samplePackets() and the given statistics to a finished file.
  void writeSampleFile(const std::string &path, const std::vector<PcapInterfaceStats> &stats) {
    auto w = PcapngWriter::create(path, kIfaces, "ringcap-test");
    ASSERT_TRUE(w.ok()) << w.error().message;
    for (const auto &p : samplePackets()) {
      auto r = (*w)->writePacket(p.iface, p.tsNs, p.origLen, p.data);
      ASSERT_TRUE(r.ok()) << r.error().message;
    }
    EXPECT_EQ((*w)->packetsWritten(), samplePackets().size());
    auto r = (*w)->finish(stats);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ((*w)->bytesWritten(), fileSize(path));
  }
};

TEST_F(PcapngWriterTest, RoundTripTwoInterfaces) {
  const std::string path = file("roundtrip.pcapng");
  const std::vector<PcapInterfaceStats> stats = {
      {kBaseTs + 5'000'000'000, 40, 2, 3, "ring full twice"},
      {kBaseTs + 5'000'000'001, 7, 0, 2, ""},
  };
  writeSampleFile(path, stats);

  const ReadBack rb = readAll(path);
  EXPECT_EQ(rb.error, "");
  const auto sent = samplePackets();
  ASSERT_EQ(rb.packets.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(rb.packets[i].interfaceId, sent[i].iface) << "packet " << i;
    EXPECT_EQ(rb.packets[i].tsNs, sent[i].tsNs) << "packet " << i;
    EXPECT_EQ(rb.packets[i].origLen, sent[i].origLen) << "packet " << i;
    EXPECT_EQ(rb.packets[i].data, sent[i].data) << "packet " << i;
  }
  ASSERT_EQ(rb.ifaces.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(rb.ifaces[i].name, kIfaces[i].name);
    EXPECT_EQ(rb.ifaces[i].snaplen, kIfaces[i].snaplen);
    EXPECT_EQ(rb.ifaces[i].linkType, 1);
    EXPECT_EQ(rb.ifaces[i].tsUnitsPerSec, 1'000'000'000u);
  }
  ASSERT_EQ(rb.stats.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(rb.stats[i].has_value());
    EXPECT_EQ(rb.stats[i]->tsNs, stats[i].timestampNs);
    EXPECT_EQ(rb.stats[i]->received, stats[i].received);
    EXPECT_EQ(rb.stats[i]->dropped, stats[i].dropped);
    EXPECT_EQ(rb.stats[i]->accepted, stats[i].accepted);
    EXPECT_EQ(rb.stats[i]->comment, stats[i].comment);
  }

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0640 & ~mask);
  EXPECT_EQ(st.st_size % 4, 0);
}

TEST_F(PcapngWriterTest, ThirdPartyReadersAgree) {
  const ThirdPartyTools tools = findTools();
  REQUIRE_THIRD_PARTY_TOOLS(tools);
  const std::string path = file("tools.pcapng");
  writeSampleFile(path, {{kBaseTs, 5, 1, 5, "stats"}, {kBaseTs, 0, 0, 0, ""}});
  const auto sent = samplePackets();

  auto capinfos = runCommand(tools.capinfos + " -c -M '" + path + "'");
  ASSERT_TRUE(capinfos.succeeded);
  bool found = false;
  for (const auto &line : capinfos.lines)
    if (line.rfind("Number of packets:", 0) == 0) {
      found = true;
      EXPECT_EQ(std::stoull(line.substr(line.find(':') + 1)), sent.size()) << line;
    }
  EXPECT_TRUE(found) << "capinfos printed no packet count";

  std::vector<std::string> want;
  for (const auto &p : sent)
    want.push_back(tsharkRow(p));
  EXPECT_EQ(tsharkRows(tools, path), want);

  auto tcpdump = runCommand(tools.tcpdump + " -r '" + path + "' -nn 2>/dev/null");
  ASSERT_TRUE(tcpdump.succeeded);
  EXPECT_EQ(tcpdump.lines.size(), sent.size());
  for (size_t i = 0; i < sent.size() && i < tcpdump.lines.size(); ++i) {
    const std::string want = "IP 192.0.2.1." + std::to_string(40000 + i) + " > 203.0.113.7." +
                             std::to_string(kUdpPort) + ": UDP, length " +
                             std::to_string(sent[i].origLen - 42);
    EXPECT_NE(tcpdump.lines[i].find(want), std::string::npos) << tcpdump.lines[i];
  }
}

TEST_F(PcapngWriterTest, FlushedPacketsAreReadableWhileWriting) {
  const ThirdPartyTools tools = findTools();
  const std::string path = file("live.pcapng");
  auto w = PcapngWriter::create(path, kIfaces, "ringcap-test");
  ASSERT_TRUE(w.ok()) << w.error().message;
  const auto sent = samplePackets();

  // Checks, with the writer still open, that exactly the first n packets are readable.
  auto expectReadable = [&](size_t n) {
    const ReadBack rb = readAll(path);
    EXPECT_EQ(rb.error, "");
    EXPECT_EQ(rb.ifaces.size(), 2u);
    ASSERT_EQ(rb.packets.size(), n);
    std::vector<std::string> want;
    for (size_t i = 0; i < n; ++i) {
      EXPECT_TRUE(samePacket(rb.packets[i], sent[i])) << "packet " << i;
      want.push_back(tsharkRow(sent[i]));
    }
    if (tools.missing.empty()) {
      EXPECT_EQ(tsharkRows(tools, path), want);
    }
    EXPECT_EQ((*w)->bytesWritten(), fileSize(path));
  };
  auto write = [&](size_t i) {
    auto r = (*w)->writePacket(sent[i].iface, sent[i].tsNs, sent[i].origLen, sent[i].data);
    ASSERT_TRUE(r.ok()) << r.error().message;
  };

  expectReadable(0); // the headers are on disk at once
  write(0);
  write(1);
  expectReadable(0); // packets wait in the buffer
  ASSERT_TRUE((*w)->flush().ok());
  expectReadable(2);
  for (size_t i = 2; i < sent.size(); ++i)
    write(i);
  ASSERT_TRUE((*w)->flush().ok());
  expectReadable(sent.size());
  REQUIRE_THIRD_PARTY_TOOLS(tools); // the PcapReader checks above ran anyway
}

TEST_F(PcapngWriterTest, FileEndsOnWholeBlocksWhenTheBufferFills) {
  const std::string path = file("small-buffer.pcapng");
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0640);
  ASSERT_GE(fd, 0);
  const std::vector<PcapInterface> ifaces = {{"veth0", "", 0}}; // 0: no snaplen limit
  auto w = PcapngWriter::fromFd(fd, path, ifaces, "ringcap-test", 512);
  ASSERT_TRUE(w.ok()) << w.error().message;

  const uint64_t headerBytes = fileSize(path);
  EXPECT_EQ((*w)->bytesWritten(), headerBytes);
  bool sawBuffered = false;
  for (uint32_t i = 0; i < 20; ++i) {
    const auto frame = udpFrame(100, 100, i);
    ASSERT_TRUE((*w)->writePacket(0, kBaseTs + i, 100, frame).ok());
    const uint64_t size = fileSize(path);
    EXPECT_EQ(size, (*w)->bytesWritten());
    EXPECT_EQ((size - headerBytes) % 132, 0u) << "a 100-byte packet takes a 132-byte block";
    const ReadBack rb = readAll(path);
    EXPECT_EQ(rb.error, "");
    EXPECT_EQ(rb.packets.size(), (size - headerBytes) / 132);
    sawBuffered = sawBuffered || rb.packets.size() < i + 1;
  }
  EXPECT_TRUE(sawBuffered);

  // A block larger than the buffer goes to the file at once, behind the buffered ones.
  const auto big = udpFrame(9000, 9000, 99);
  ASSERT_TRUE((*w)->writePacket(0, kBaseTs + 99, 9000, big).ok());
  const ReadBack rb = readAll(path);
  EXPECT_EQ(rb.error, "");
  ASSERT_EQ(rb.packets.size(), 21u);
  EXPECT_EQ(rb.packets.back().data, big);
  EXPECT_EQ((*w)->packetsWritten(), 21u);
  EXPECT_EQ((*w)->bytesWritten(), fileSize(path));
}

TEST_F(PcapngWriterTest, FileSizeLimitTruncatesToLastWholeBlock) {
  constexpr rlim_t kLimit = 20'000;
  for (const bool gather : {false, true})
    for (size_t bufferSize : {PcapngWriter::kDefaultBufferSize, size_t{1000}, size_t{64}}) {
      SCOPED_TRACE("buffer size " + std::to_string(bufferSize) + (gather ? ", gathered" : ""));
      const std::string path =
          file("limited-" + std::to_string(bufferSize) + (gather ? "-gathered" : "") + ".pcapng");
      const FaultReport rep = runFaultChild(
          [] {
            ::signal(SIGXFSZ, SIG_IGN);
            const rlimit limit{kLimit, kLimit};
            return ::setrlimit(RLIMIT_FSIZE, &limit) == 0 ? 0 : errno;
          },
          path, bufferSize, gather);
      ASSERT_EQ(rep.setupErrno, 0) << std::strerror(rep.setupErrno);
      ASSERT_TRUE(rep.writeFailed);
      const std::string message = rep.message;
      EXPECT_NE(message.find(path), std::string::npos) << message;
      EXPECT_NE(message.find(std::strerror(EFBIG)), std::string::npos) << message;
      EXPECT_TRUE(rep.writerFailed);
      EXPECT_TRUE(rep.laterCallsFail);
      EXPECT_GT(rep.packetsWritten, 0u);
      EXPECT_LE(rep.fileSize, kLimit);
      EXPECT_GT(rep.fileSize, kLimit - 1600) << "only the cut block is missing";
      EXPECT_EQ(rep.fileSize, rep.bytesWritten);
      EXPECT_EQ(rep.fileSize, fileSize(path));
      EXPECT_TRUE(rep.readCleanEnd) << "the file must end on a whole block";
      EXPECT_TRUE(rep.readMatches);
      EXPECT_EQ(rep.packetsRead, rep.packetsWritten);
    }
}

TEST_F(PcapngWriterTest, FullFileSystemReportsNoSpace) {
  const std::string path = file("tmpfs/full.pcapng");
  ASSERT_TRUE(std::filesystem::create_directory(file("tmpfs")));
  const std::string mountPoint = file("tmpfs");
  const FaultReport rep = runFaultChild(
      [&] {
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("tmpfs", mountPoint.c_str(), "tmpfs", 0, "size=64k") != 0)
          return errno;
        return 0;
      },
      path, PcapngWriter::kDefaultBufferSize);
  if (rep.setupErrno == EPERM || rep.setupErrno == EACCES)
    RINGCAP_SKIP("cannot mount a small tmpfs here (needs root); the file size limit test "
                 "covers the same path");
  ASSERT_EQ(rep.setupErrno, 0) << std::strerror(rep.setupErrno);
  ASSERT_TRUE(rep.writeFailed);
  const std::string message = rep.message;
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("No space left on device"), std::string::npos) << message;
  EXPECT_TRUE(rep.laterCallsFail);
  EXPECT_GT(rep.packetsWritten, 0u);
  EXPECT_EQ(rep.fileSize, rep.bytesWritten);
  EXPECT_TRUE(rep.readCleanEnd) << "the file must end on a whole block";
  EXPECT_TRUE(rep.readMatches);
  EXPECT_EQ(rep.packetsRead, rep.packetsWritten);
}

// Mixed capture lengths (every padding, empty, both sides of the sink's gather threshold)
// and more packets than IOV_MAX pieces in one batch.
std::vector<Sent> gatherMix() {
  std::vector<Sent> out;
  uint32_t i = 0;
  for (uint32_t cap :
       {0u, 1u, 2u, 3u, 5u, 59u, 60u, 61u, 62u, 63u, 511u, 512u, 513u, 1514u, 1515u, 1599u, 1600u})
    out.push_back({i % 2, kBaseTs + i, std::max(cap, 60u), udpFrame(std::max(cap, 60u), cap, i)}),
        ++i;
  for (uint32_t k = 0; k < 3000; ++k, ++i)
    out.push_back(sequencePacket(i));
  return out;
}

std::string fileBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

size_t firstDifference(const std::string &a, const std::string &b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i])
    ++i;
  return i;
}

TEST_F(PcapngWriterTest, GatheredPacketsGiveTheSameFileAsCopiedOnes) {
  const std::vector<Sent> mix = gatherMix();
  for (size_t bufferSize : {PcapngWriter::kDefaultBufferSize, size_t{1000}, size_t{64}}) {
    for (size_t batchSize : {size_t{7}, size_t{5000}}) { // 5000: the whole mix in one batch
      SCOPED_TRACE("buffer " + std::to_string(bufferSize) + ", batch " + std::to_string(batchSize));
      const std::string copied = file("copied.pcapng"), gathered = file("gathered.pcapng");
      auto open = [&](const std::string &path) {
        return PcapngWriter::fromFd(::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0640), path,
                                    kIfaces, "ringcap-test", bufferSize);
      };
      auto c = open(copied);
      auto g = open(gathered);
      ASSERT_TRUE(c.ok() && g.ok());
      for (const auto &p : mix)
        ASSERT_TRUE((*c)->writePacket(p.iface, p.tsNs, p.origLen, p.data).ok());
      // Each batch is written from its own copy of the packets, overwritten after the flush:
      // the file must not depend on the gathered bytes once flush() returned.
      for (size_t at = 0; at < mix.size(); at += batchSize) {
        std::vector<Sent> batch(mix.begin() + at,
                                mix.begin() + std::min(mix.size(), at + batchSize));
        for (const auto &p : batch)
          ASSERT_TRUE((*g)->writePacketRef(p.iface, p.tsNs, p.origLen, p.data).ok());
        EXPECT_EQ((*g)->packetsWritten(), at + batch.size());
        ASSERT_TRUE((*g)->flush().ok());
        EXPECT_FALSE((*g)->holdsReferences());
        for (auto &p : batch)
          std::fill(p.data.begin(), p.data.end(), 0xEE);
      }
      const std::vector<PcapInterfaceStats> stats = {{kBaseTs, 9, 1, 8, "end"}, {}};
      ASSERT_TRUE((*c)->finish(stats).ok());
      ASSERT_TRUE((*g)->finish(stats).ok());
      EXPECT_EQ((*g)->packetsWritten(), mix.size());
      EXPECT_EQ((*g)->bytesWritten(), (*c)->bytesWritten());
      const std::string a = fileBytes(copied), b = fileBytes(gathered);
      ASSERT_EQ(a.size(), b.size());
      EXPECT_EQ(firstDifference(a, b), a.size()) << "the files differ";
      const ReadBack rb = readAll(gathered);
      EXPECT_EQ(rb.error, "");
      ASSERT_EQ(rb.packets.size(), mix.size());
      EXPECT_TRUE(samePacket(rb.packets.back(), mix.back()));
    }
  }
}

volatile sig_atomic_t gAlarms = 0;

// writev to a pipe whose reader is slower, interrupted by a timer signal without SA_RESTART:
// partial writes and EINTR, more than IOV_MAX pieces in one call of CaptureFileOutput.
TEST_F(PcapngWriterTest, GatheredWritesGoOnAfterShortWrites) {
  const std::vector<Sent> mix = gatherMix();
  const std::string copied = file("copied.pcapng");
  {
    auto c = PcapngWriter::create(copied, kIfaces, "ringcap-test");
    ASSERT_TRUE(c.ok());
    for (const auto &p : mix)
      ASSERT_TRUE((*c)->writePacket(p.iface, p.tsNs, p.origLen, p.data).ok());
    ASSERT_TRUE((*c)->finish({{}, {}}).ok());
  }
  // The same blocks cut into one piece per 100 bytes: > IOV_MAX pieces in one writev call.
  std::string want = fileBytes(copied);
  std::vector<iovec> iov;
  for (size_t at = 0; at < want.size(); at += 100)
    iov.push_back({want.data() + at, std::min<size_t>(100, want.size() - at)});
  ASSERT_GT(iov.size(), size_t{IOV_MAX} * 3);

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  sigset_t alarm;
  sigemptyset(&alarm);
  sigaddset(&alarm, SIGALRM);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &alarm, nullptr), 0); // the reader does not take it
  std::string got;
  std::thread reader([&] {
    char chunk[777];
    for (ssize_t n; (n = ::read(fds[0], chunk, sizeof chunk)) != 0;)
      if (n > 0)
        got.append(chunk, static_cast<size_t>(n));
  });
  ASSERT_EQ(::pthread_sigmask(SIG_UNBLOCK, &alarm, nullptr), 0);
  struct sigaction sa {
  }, old{};
  sa.sa_handler = [](int) { gAlarms = gAlarms + 1; };
  ASSERT_EQ(::sigaction(SIGALRM, &sa, &old), 0); // no SA_RESTART
  const itimerval every{{0, 50}, {0, 50}};
  ASSERT_EQ(::setitimer(ITIMER_REAL, &every, nullptr), 0);
  gAlarms = 0;
  std::optional<CaptureFileOutput::ShortWrite> shortWrite;
  uint64_t whole = 0;
  {
    CaptureFileOutput out(fds[1], "pipe");
    shortWrite = out.writev(iov);
    whole = out.wholeBytes();
  } // closes the pipe
  const itimerval off{};
  ::setitimer(ITIMER_REAL, &off, nullptr);
  ::sigaction(SIGALRM, &old, nullptr);
  reader.join();
  ::close(fds[0]);
  EXPECT_FALSE(shortWrite.has_value()) << std::strerror(shortWrite ? shortWrite->err : 0);
  EXPECT_EQ(whole, want.size());
  EXPECT_GT(gAlarms, 0) << "the timer never interrupted the writes";
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(firstDifference(got, want), want.size()) << "the bytes differ";
}

// The sink gathers large packets and writes them at endBatch(), before the drainer hands the
// ring's memory back; small ones are copied.
TEST_F(PcapngWriterTest, SinkWritesGatheredPacketsAtEndBatch) {
  const std::vector<Sent> mix = gatherMix();
  const std::string path = file("sink.pcapng");
  auto w = PcapngWriter::create(path, kIfaces, "ringcap-test");
  ASSERT_TRUE(w.ok());
  PcapFileSink sink(std::move(*w), {{11, kIfaces[0]}, {12, kIfaces[1]}});
  std::vector<uint8_t> ring; // one batch's packets, overwritten after endBatch() as the ring is
  for (size_t at = 0; at < mix.size(); at += 1000) {
    const size_t end = std::min(mix.size(), at + 1000);
    ring.clear();
    ring.reserve(2'000'000);
    std::vector<CapturedPacket> batch;
    for (size_t i = at; i < end; ++i) {
      const size_t off = ring.size();
      ring.insert(ring.end(), mix[i].data.begin(), mix[i].data.end());
      batch.push_back({mix[i].tsNs, mix[i].iface + 11, 0, mix[i].origLen,
                       std::span<const uint8_t>(ring.data() + off, mix[i].data.size())});
    }
    for (const auto &p : batch)
      sink.onPacket(p);
    EXPECT_TRUE(sink.writer().holdsReferences());
    sink.endBatch();
    EXPECT_FALSE(sink.writer().holdsReferences());
    std::fill(ring.begin(), ring.end(), 0xEE);
  }
  ASSERT_FALSE(sink.error().has_value()) << sink.error()->message;
  EXPECT_EQ(sink.packetsReceived(), mix.size());
  ASSERT_TRUE(sink.writer().finish({{}, {}}).ok());
  const ReadBack rb = readAll(path);
  EXPECT_EQ(rb.error, "");
  ASSERT_EQ(rb.packets.size(), mix.size());
  for (size_t i = 0; i < mix.size(); ++i)
    ASSERT_TRUE(samePacket(rb.packets[i], mix[i])) << "packet " << i;
}

TEST_F(PcapngWriterTest, FullDeviceFailsAtCreation) {
  const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto w = PcapngWriter::fromFd(fd, "/dev/full", kIfaces, "ringcap-test");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, ENOSPC);
  EXPECT_NE(w.error().message.find("/dev/full"), std::string::npos) << w.error().message;
  EXPECT_NE(w.error().message.find("No space left on device"), std::string::npos)
      << w.error().message;
}

TEST_F(PcapngWriterTest, RejectsInvalidArguments) {
  const std::string path = file("args.pcapng");
  EXPECT_FALSE(PcapngWriter::create(path, {}, "ringcap-test").ok());
  EXPECT_FALSE(
      PcapngWriter::create(path, {{std::string(70'000, 'x'), "", 0}}, "ringcap-test").ok());

  const std::vector<PcapInterface> ifaces = {{"veth0", "", 1514}, {"veth1", "", 160}};
  auto w = PcapngWriter::create(path, ifaces, "ringcap-test");
  ASSERT_TRUE(w.ok()) << w.error().message;
  const auto frame = udpFrame(200, 200, 0);

  auto r = (*w)->writePacket(2, kBaseTs, 200, frame);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_NE(r.error().message.find("out of range"), std::string::npos) << r.error().message;
  r = (*w)->writePacket(0, kBaseTs, 199, frame);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("exceeds original length"), std::string::npos);
  r = (*w)->writePacket(1, kBaseTs, 200, frame);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("exceeds snaplen 160"), std::string::npos);
  EXPECT_FALSE((*w)->failed()) << "argument errors do not break the writer";

  EXPECT_TRUE((*w)->writePacket(1, kBaseTs, 200, std::span(frame).first(160)).ok());
  r = (*w)->finish({{}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("expected 2"), std::string::npos) << r.error().message;
  EXPECT_FALSE((*w)->finish({{}, {0, 0, 0, 0, std::string(70'000, 'c')}}).ok());
  ASSERT_TRUE((*w)->finish({{}, {}}).ok());
  r = (*w)->writePacket(0, kBaseTs, 200, frame);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("finished"), std::string::npos) << r.error().message;
  EXPECT_FALSE((*w)->finish({{}, {}}).ok());
  EXPECT_EQ(readAll(path).packets.size(), 1u);
}

TEST_F(PcapngWriterTest, CreateReportsPathAndSystemError) {
  const std::string missing = file("no-such-dir/x.pcapng");
  auto w = PcapngWriter::create(missing, kIfaces, "ringcap-test");
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find(missing), std::string::npos) << w.error().message;
  EXPECT_NE(w.error().message.find(std::strerror(ENOENT)), std::string::npos);

  const std::string link = file("link.pcapng");
  ASSERT_EQ(::symlink(file("target").c_str(), link.c_str()), 0);
  w = PcapngWriter::create(link, kIfaces, "ringcap-test");
  ASSERT_FALSE(w.ok()) << "a symlink is not followed";
  EXPECT_EQ(w.error().code, ELOOP);
  EXPECT_FALSE(std::filesystem::exists(file("target")));
}

} // namespace
} // namespace ringcap
