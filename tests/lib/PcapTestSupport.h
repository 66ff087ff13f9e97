// Helpers shared by the capture-file tests (PcapWriterTest, PcapngWriterTest): the sample
// packets, reading a file back, and running the third-party readers (capinfos, tshark,
// tcpdump) on it.
#pragma once

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "Skip.h"

namespace ringcap::testsupport {

inline constexpr uint64_t kBaseTs = 1'700'000'000'123'456'789ULL; // above 2^32: both halves used

inline constexpr uint16_t kUdpPort = 47000; // a port no reader decodes as a protocol

// An Ethernet/IPv4/UDP frame (192.0.2.1:40000+seed -> 203.0.113.7:kUdpPort) of origLen bytes
// cut to capLen, with a payload derived from seed.
inline std::vector<uint8_t> udpFrame(uint32_t origLen, uint32_t capLen, uint32_t seed) {
  std::vector<uint8_t> f(origLen);
  const uint8_t head[] = {2,    0, 0, 0, 0,   2, 2,   0, 0, 0, 0, 1, 8, 0, // Ethernet
                          0x45, 0, 0, 0, 0,   0, 0,   0, 0, 0, 0, 0,       // IPv4 ...
                          192,  0, 2, 1, 203, 0, 113, 7};                  // addresses
  std::memcpy(f.data(), head, sizeof head);
  auto put16 = [&](size_t at, uint32_t v) {
    f[at] = static_cast<uint8_t>(v >> 8);
    f[at + 1] = static_cast<uint8_t>(v);
  };
  put16(16, origLen - 14); // IPv4 total length
  put16(20, 0x4000);       // don't fragment
  put16(22, 64 << 8 | 17); // TTL, UDP
  uint32_t sum = 0;
  for (size_t i = 14; i < 34; i += 2)
    sum += f[i] << 8 | f[i + 1];
  while (sum >> 16)
    sum = (sum & 0xFFFF) + (sum >> 16);
  put16(24, ~sum);
  put16(34, 40000 + seed); // source port
  put16(36, kUdpPort);     // destination port
  put16(38, origLen - 34); // UDP length
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

// Five packets on interfaces 0 and 1; packet i comes from udpFrame(..., seed i).
inline std::vector<Sent> samplePackets() {
  return {
      {0, kBaseTs, 60, udpFrame(60, 60, 0)},
      {1, kBaseTs + 1'000, 1500, udpFrame(1500, 160, 1)}, // cut like a simple capture
      {0, kBaseTs + 2'000'000'000, 1514, udpFrame(1514, 1514, 2)},
      {1, kBaseTs + 2'000'000'001, 61, udpFrame(61, 61, 3)}, // odd length: padded in pcapng
      {0, kBaseTs + 3'999'999'999, 63, udpFrame(63, 63, 4)},
  };
}

// A timestamp as tshark prints frame.time_epoch: "seconds.nanoseconds".
inline std::string epochText(uint64_t tsNs) {
  char epoch[32];
  std::snprintf(epoch, sizeof epoch, "%llu.%09llu",
                static_cast<unsigned long long>(tsNs / 1'000'000'000),
                static_cast<unsigned long long>(tsNs % 1'000'000'000));
  return epoch;
}

inline std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The size of the file at `path`, 0 when it cannot be read.
inline uint64_t fileSize(const std::string &path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

struct CommandOutput {
  bool succeeded = false; // exited with status 0
  std::vector<std::string> lines;
};

// Runs `command` through the shell and collects its standard output.
inline CommandOutput runCommand(const std::string &command) {
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

struct ThirdPartyTools {
  std::string capinfos, tshark, tcpdump;
  std::string missing; // the tools not found, comma-separated
};

inline ThirdPartyTools findTools() {
  ThirdPartyTools t;
  auto find = [&](std::string &out, std::initializer_list<const char *> candidates) {
    for (const char *c : candidates)
      if (::access(c, X_OK) == 0) {
        out = c;
        return;
      }
    t.missing += std::string(t.missing.empty() ? "" : ", ") + *candidates.begin();
  };
  find(t.capinfos, {"/usr/bin/capinfos"});
  find(t.tshark, {"/usr/bin/tshark"});
  find(t.tcpdump, {"/usr/sbin/tcpdump", "/usr/bin/tcpdump"});
  return t;
}

// A test fixture with a fresh directory /tmp/<prefix>XXXXXX, removed after the test.
class TempDirTest : public ::testing::Test {
protected:
  explicit TempDirTest(std::string prefix) : prefix_(std::move(prefix)) {}
  void SetUp() override {
    std::string tmpl = "/tmp/" + prefix_ + "XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string file(const std::string &name) const { return dir_ + "/" + name; }

private:
  std::string prefix_;
  std::string dir_;
};

} // namespace ringcap::testsupport

// Skips (or in CI fails) the calling test when a third-party reader is missing.
#define REQUIRE_THIRD_PARTY_TOOLS(tools)                                                           \
  do {                                                                                             \
    if (!(tools).missing.empty())                                                                  \
      RINGCAP_SKIP("THIRD-PARTY PCAP READERS MISSING: " + (tools).missing +                        \
                   " (apt-get install tshark tcpdump)");                                           \
  } while (0)
