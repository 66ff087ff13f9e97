#include "pcap/PcapReader.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <map>
#include <random>
#include <string_view>

namespace ringcap {
namespace {

using ByteVec = std::vector<uint8_t>;

// Builds input in a chosen byte order.
class Bytes {
public:
  explicit Bytes(bool bigEndian = false) : big_(bigEndian) {}
  Bytes &u8(uint8_t v) { return put(v, 1); }
  Bytes &u16(uint16_t v) { return put(v, 2); }
  Bytes &u32(uint32_t v) { return put(v, 4); }
  Bytes &u64(uint64_t v) { return put(v, 8); }
  Bytes &raw(const ByteVec &b) {
    out_.insert(out_.end(), b.begin(), b.end());
    return *this;
  }
  Bytes &pad() {
    while (out_.size() % 4)
      out_.push_back(0);
    return *this;
  }
  Bytes &option(uint16_t code, const ByteVec &value) {
    return u16(code).u16(static_cast<uint16_t>(value.size())).raw(value).pad();
  }
  Bytes &option(uint16_t code, std::string_view s) {
    return option(code, ByteVec(s.begin(), s.end()));
  }
  Bytes &endOfOptions() { return u32(0); }
  const ByteVec &bytes() const { return out_; }

private:
  Bytes &put(uint64_t v, int n) {
    for (int i = 0; i < n; ++i)
      out_.push_back(static_cast<uint8_t>(v >> (8 * (big_ ? n - 1 - i : i))));
    return *this;
  }
  bool big_;
  ByteVec out_;
};

ByteVec cat(std::initializer_list<ByteVec> parts) {
  ByteVec out;
  for (const auto &p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

ByteVec payload(size_t n, uint8_t seed) {
  ByteVec b(n);
  for (size_t i = 0; i < n; ++i)
    b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

// --- pcapng blocks ---

ByteVec block(bool big, uint32_t type, const ByteVec &body) {
  Bytes padded;
  padded.raw(body).pad();
  const auto length = static_cast<uint32_t>(12 + padded.bytes().size());
  return Bytes(big).u32(type).u32(length).raw(padded.bytes()).u32(length).bytes();
}

ByteVec shb(bool big, uint16_t major = 1) {
  return block(big, 0x0A0D0D0A,
               Bytes(big)
                   .u32(0x1A2B3C4D)
                   .u16(major)
                   .u16(0)
                   .u64(~uint64_t{0})
                   .option(4, "test writer")
                   .endOfOptions()
                   .bytes());
}

ByteVec idb(bool big, std::string_view name, uint32_t snaplen, std::optional<uint8_t> tsresol,
            uint16_t linkType = 1) {
  Bytes b(big);
  b.u16(linkType).u16(0).u32(snaplen).option(2, name);
  if (tsresol)
    b.option(9, ByteVec{*tsresol});
  return block(big, 1, b.endOfOptions().bytes());
}

ByteVec epb(bool big, uint32_t ifid, uint64_t units, uint32_t origLen, const ByteVec &data) {
  return block(big, 6,
               Bytes(big)
                   .u32(ifid)
                   .u32(static_cast<uint32_t>(units >> 32))
                   .u32(static_cast<uint32_t>(units))
                   .u32(static_cast<uint32_t>(data.size()))
                   .u32(origLen)
                   .raw(data)
                   .pad()
                   .bytes());
}

ByteVec isb(bool big, uint32_t ifid, uint64_t units, uint64_t recv, uint64_t drop,
            std::string_view comment) {
  return block(big, 5,
               Bytes(big)
                   .u32(ifid)
                   .u32(static_cast<uint32_t>(units >> 32))
                   .u32(static_cast<uint32_t>(units))
                   .option(1, comment)
                   .option(4, Bytes(big).u64(recv).bytes())
                   .option(5, Bytes(big).u64(drop).bytes())
                   .endOfOptions()
                   .bytes());
}

// --- classic pcap ---

ByteVec pcapHeader(bool big, bool nano, uint32_t snaplen = 65535) {
  return Bytes(big)
      .u32(nano ? 0xA1B23C4D : 0xA1B2C3D4)
      .u16(2)
      .u16(4)
      .u32(0)
      .u32(0)
      .u32(snaplen)
      .u32(1)
      .bytes();
}

ByteVec pcapRecord(bool big, uint32_t sec, uint32_t frac, uint32_t origLen, const ByteVec &data) {
  return Bytes(big)
      .u32(sec)
      .u32(frac)
      .u32(static_cast<uint32_t>(data.size()))
      .u32(origLen)
      .raw(data)
      .bytes();
}

struct ReadAll {
  std::unique_ptr<PcapReader> reader;
  std::vector<PcapPacket> packets;
  std::string error; // empty: clean end
};

ReadAll readAll(Result<std::unique_ptr<PcapReader>> opened) {
  ReadAll out;
  if (!opened) {
    out.error = opened.error().message;
    return out;
  }
  out.reader = std::move(*opened);
  for (int guard = 0; guard < 100'000; ++guard) {
    auto p = out.reader->next();
    if (!p) {
      out.error = p.error().message;
      return out;
    }
    if (!p->has_value())
      return out;
    out.packets.push_back(std::move(**p));
  }
  out.error = "reader did not stop";
  return out;
}

ReadAll readBuffer(ByteVec bytes) { return readAll(PcapReader::fromBuffer(std::move(bytes))); }

constexpr uint64_t kSec = 1'700'000'000;
constexpr uint64_t kNs = 1'000'000'000;

TEST(PcapReaderTest, ClassicPcapMicroseconds) {
  const ByteVec a = payload(60, 1), b = payload(33, 2);
  const auto r =
      readBuffer(cat({pcapHeader(false, false, 1514), pcapRecord(false, kSec, 123'456, 60, a),
                      pcapRecord(false, kSec + 1, 999'999, 1500, b)}));
  ASSERT_EQ(r.error, "");
  EXPECT_FALSE(r.reader->isPcapng());
  ASSERT_EQ(r.reader->interfaces().size(), 1u);
  EXPECT_EQ(r.reader->interfaces()[0].linkType, 1);
  EXPECT_EQ(r.reader->interfaces()[0].snaplen, 1514u);
  EXPECT_EQ(r.reader->interfaces()[0].tsUnitsPerSec, 1'000'000u);
  ASSERT_EQ(r.packets.size(), 2u);
  EXPECT_EQ(r.packets[0].tsNs, kSec * kNs + 123'456'000);
  EXPECT_EQ(r.packets[0].origLen, 60u);
  EXPECT_EQ(r.packets[0].data, a);
  EXPECT_EQ(r.packets[1].tsNs, (kSec + 1) * kNs + 999'999'000);
  EXPECT_EQ(r.packets[1].origLen, 1500u);
  EXPECT_EQ(r.packets[1].data, b);
  EXPECT_EQ(r.packets[1].interfaceId, 0u);
}

TEST(PcapReaderTest, ClassicPcapNanosecondsBothByteOrders) {
  for (bool big : {false, true}) {
    SCOPED_TRACE(big ? "big-endian" : "little-endian");
    const ByteVec a = payload(61, 3);
    const auto r =
        readBuffer(cat({pcapHeader(big, true), pcapRecord(big, kSec, 123'456'789, 61, a)}));
    ASSERT_EQ(r.error, "");
    EXPECT_EQ(r.reader->interfaces()[0].tsUnitsPerSec, kNs);
    ASSERT_EQ(r.packets.size(), 1u);
    EXPECT_EQ(r.packets[0].tsNs, kSec * kNs + 123'456'789);
    EXPECT_EQ(r.packets[0].data, a);
  }
}

TEST(PcapReaderTest, ClassicPcapBigEndianMicroseconds) {
  const ByteVec a = payload(42, 4);
  const auto r =
      readBuffer(cat({pcapHeader(true, false, 262144), pcapRecord(true, kSec, 7, 100, a)}));
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.reader->interfaces()[0].snaplen, 262144u);
  ASSERT_EQ(r.packets.size(), 1u);
  EXPECT_EQ(r.packets[0].tsNs, kSec * kNs + 7'000);
  EXPECT_EQ(r.packets[0].origLen, 100u);
  EXPECT_EQ(r.packets[0].data, a);
}

TEST(PcapReaderTest, PcapngMicrosecondResolution) {
  const ByteVec a = payload(64, 5), b = payload(65, 6);
  const auto r = readBuffer(
      cat({shb(false), idb(false, "eth0", 65535, 6), idb(false, "eth1", 128, std::nullopt),
           epb(false, 0, kSec * 1'000'000 + 123'456, 64, a),
           epb(false, 1, kSec * 1'000'000 + 1, 200, b)}));
  ASSERT_EQ(r.error, "");
  EXPECT_TRUE(r.reader->isPcapng());
  const auto &ifaces = r.reader->interfaces();
  ASSERT_EQ(ifaces.size(), 2u);
  EXPECT_EQ(ifaces[0].name, "eth0");
  EXPECT_EQ(ifaces[0].tsUnitsPerSec, 1'000'000u);
  EXPECT_EQ(ifaces[1].name, "eth1");
  EXPECT_EQ(ifaces[1].snaplen, 128u);
  EXPECT_EQ(ifaces[1].tsUnitsPerSec, 1'000'000u) << "the default resolution is microseconds";
  ASSERT_EQ(r.packets.size(), 2u);
  EXPECT_EQ(r.packets[0].tsNs, kSec * kNs + 123'456'000);
  EXPECT_EQ(r.packets[0].data, a);
  EXPECT_EQ(r.packets[1].interfaceId, 1u);
  EXPECT_EQ(r.packets[1].tsNs, kSec * kNs + 1'000);
  EXPECT_EQ(r.packets[1].origLen, 200u);
  EXPECT_EQ(r.packets[1].data, b);
}

TEST(PcapReaderTest, PcapngPowerOfTwoResolution) {
  const ByteVec a = payload(60, 7);
  const auto r = readBuffer(
      cat({shb(false), idb(false, "eth0", 0, 0x80 | 10), epb(false, 0, kSec * 1024 + 512, 60, a)}));
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.reader->interfaces()[0].tsUnitsPerSec, 1024u);
  ASSERT_EQ(r.packets.size(), 1u);
  EXPECT_EQ(r.packets[0].tsNs, kSec * kNs + 500'000'000);
}

TEST(PcapReaderTest, PcapngBigEndianWithStatistics) {
  const ByteVec a = payload(70, 8);
  const auto r =
      readBuffer(cat({shb(true), idb(true, "veth0", 1600, 9), epb(true, 0, kSec * kNs + 5, 1000, a),
                      isb(true, 0, kSec * kNs + 9, 12, 3, "done")}));
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.packets.size(), 1u);
  EXPECT_EQ(r.packets[0].tsNs, kSec * kNs + 5);
  EXPECT_EQ(r.packets[0].origLen, 1000u);
  EXPECT_EQ(r.packets[0].data, a);
  ASSERT_EQ(r.reader->statistics().size(), 1u);
  const auto &s = r.reader->statistics()[0];
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->tsNs, kSec * kNs + 9);
  EXPECT_EQ(s->received, 12u);
  EXPECT_EQ(s->dropped, 3u);
  EXPECT_EQ(s->accepted, std::nullopt);
  EXPECT_EQ(s->comment, "done");
}

TEST(PcapReaderTest, SimpleAndObsoletePacketBlocks) {
  const ByteVec full = payload(100, 9);
  const ByteVec old = payload(50, 10);
  const ByteVec spb = block(false, 3, Bytes().u32(100).raw(full).bytes());
  const ByteVec pb = block(false, 2,
                           Bytes()
                               .u16(0)
                               .u16(0)
                               .u32(static_cast<uint32_t>((kSec * 1'000'000) >> 32))
                               .u32(static_cast<uint32_t>(kSec * 1'000'000))
                               .u32(50)
                               .u32(80)
                               .raw(old)
                               .pad()
                               .bytes());
  const auto r = readBuffer(cat({shb(false), idb(false, "eth0", 64, std::nullopt), spb, pb}));
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.packets.size(), 2u);
  EXPECT_EQ(r.packets[0].origLen, 100u);
  EXPECT_EQ(r.packets[0].data, ByteVec(full.begin(), full.begin() + 64)) << "cut to the snaplen";
  EXPECT_EQ(r.packets[0].tsNs, 0u);
  EXPECT_EQ(r.packets[1].origLen, 80u);
  EXPECT_EQ(r.packets[1].data, old);
  EXPECT_EQ(r.packets[1].tsNs, kSec * kNs);
}

TEST(PcapReaderTest, SkipsUnknownBlocks) {
  const ByteVec a = payload(60, 11);
  const ByteVec nameResolution = block(false, 4, Bytes().u16(0).u16(0).bytes());
  const ByteVec custom = block(false, 0x40000BAD, payload(1000, 12));
  const auto r = readBuffer(cat({shb(false), nameResolution, idb(false, "eth0", 0, 9), custom,
                                 epb(false, 0, 1, 60, a), custom}));
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.packets.size(), 1u);
  EXPECT_EQ(r.packets[0].data, a);
}

TEST(PcapReaderTest, SectionsNumberInterfacesAcrossTheFile) {
  const ByteVec a = payload(60, 13), b = payload(60, 14);
  const auto r = readBuffer(cat({shb(false), idb(false, "a0", 0, 9), epb(false, 0, 1, 60, a),
                                 shb(true), idb(true, "b0", 0, 9), idb(true, "b1", 0, 9),
                                 epb(true, 1, 2, 60, b), isb(true, 1, 3, 4, 0, "")}));
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.reader->interfaces().size(), 3u);
  EXPECT_EQ(r.reader->interfaces()[2].name, "b1");
  ASSERT_EQ(r.packets.size(), 2u);
  EXPECT_EQ(r.packets[0].interfaceId, 0u);
  EXPECT_EQ(r.packets[1].interfaceId, 2u);
  EXPECT_EQ(r.packets[1].data, b);
  EXPECT_FALSE(r.reader->statistics()[1].has_value());
  ASSERT_TRUE(r.reader->statistics()[2].has_value());
  EXPECT_EQ(r.reader->statistics()[2]->received, 4u);
}

TEST(PcapReaderTest, InterfaceTimestampOffset) {
  const ByteVec body = Bytes()
                           .u16(1)
                           .u16(0)
                           .u32(0)
                           .option(9, ByteVec{9})
                           .option(14, Bytes().u64(kSec).bytes())
                           .endOfOptions()
                           .bytes();
  const auto r =
      readBuffer(cat({shb(false), block(false, 1, body), epb(false, 0, 42, 60, payload(60, 0))}));
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.packets.size(), 1u);
  EXPECT_EQ(r.reader->interfaces()[0].tsOffsetSeconds, static_cast<int64_t>(kSec));
  EXPECT_EQ(r.packets[0].tsNs, kSec * kNs + 42);
}

// Valid inputs with a variety of blocks, used whole and cut.
std::vector<ByteVec> validSamples() {
  const ByteVec a = payload(61, 15), b = payload(20, 16);
  return {
      cat({pcapHeader(false, false), pcapRecord(false, kSec, 1, 61, a),
           pcapRecord(false, kSec, 2, 20, b)}),
      cat({pcapHeader(true, true), pcapRecord(true, kSec, 1, 61, a),
           pcapRecord(true, 1, 2, 99, b)}),
      cat({shb(false), idb(false, "eth0", 0, 9), epb(false, 0, 1, 61, a),
           block(false, 0x40000BAD, b), block(false, 3, Bytes().u32(20).raw(b).bytes()),
           isb(false, 0, 5, 1, 2, "x"), shb(true), idb(true, "eth1", 0, 0x80 | 20),
           epb(true, 0, 7, 20, b)}),
  };
}

// Where the blocks (pcapng) or the header and records (pcap) of a valid file end, each with the
// number of packets before it: parsed here from the format's own length fields, apart from the
// reader under test.
std::map<size_t, size_t> blockEnds(const ByteVec &file) {
  auto u32 = [&](size_t at, bool be) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v |= uint32_t(file[at + i]) << (be ? 8 * (3 - i) : 8 * i);
    return v;
  };
  std::map<size_t, size_t> ends;
  size_t packets = 0;
  const uint32_t magic = u32(0, false);
  if (magic == 0x0A0D0D0Au) { // pcapng
    bool be = false;
    for (size_t off = 0; off + 12 <= file.size();) {
      if (u32(off, false) == 0x0A0D0D0Au)
        be = u32(off + 8, false) != 0x1A2B3C4Du;
      const uint32_t type = u32(off, be);
      if (type == 6 || type == 3 || type == 2)
        ++packets;
      off += u32(off + 4, be);
      ends[off] = packets;
    }
  } else { // pcap
    const bool be = magic == 0xD4C3B2A1u || magic == 0x4D3CB2A1u;
    ends[24] = 0;
    for (size_t off = 24; off + 16 <= file.size();) {
      off += 16 + u32(off + 8, be);
      ends[off] = ++packets;
    }
  }
  return ends;
}

// Every prefix of a valid file: cut where a block (record) ends, it reads without an error and
// yields exactly the packets before the cut; cut anywhere else (also empty), it ends with a
// "truncated" error after the whole packets before the cut.
void expectTruncatedPrefixes(const ByteVec &whole, const std::function<ReadAll(ByteVec)> &read) {
  const ReadAll full = read(whole);
  ASSERT_EQ(full.error, "");
  ASSERT_FALSE(full.packets.empty());
  const std::map<size_t, size_t> ends = blockEnds(whole);
  ASSERT_EQ(ends.rbegin()->first, whole.size()) << "the sample is not whole blocks";
  ASSERT_EQ(ends.rbegin()->second, full.packets.size());
  for (size_t len = 0; len < whole.size(); ++len) {
    const ReadAll cut = read(ByteVec(whole.begin(), whole.begin() + len));
    auto end = ends.upper_bound(len); // the first block end after the cut
    const size_t wholePackets = end == ends.begin() ? 0 : std::prev(end)->second;
    if (ends.count(len)) {
      EXPECT_EQ(cut.error, "") << "cut at a block end, " << len << " bytes";
    } else {
      EXPECT_NE(cut.error.find("truncated"), std::string::npos)
          << "cut in the middle of a block, " << len << " bytes, read without a truncation "
          << "error: '" << cut.error << "'";
    }
    EXPECT_EQ(cut.packets.size(), wholePackets) << len << " bytes";
    ASSERT_LE(cut.packets.size(), full.packets.size()) << len;
    for (size_t i = 0; i < cut.packets.size(); ++i) {
      EXPECT_EQ(cut.packets[i].data, full.packets[i].data) << len;
      EXPECT_EQ(cut.packets[i].tsNs, full.packets[i].tsNs) << len;
    }
  }
}

TEST(PcapReaderTest, TruncatedAtEveryOffset) {
  for (const auto &sample : validSamples())
    expectTruncatedPrefixes(sample, readBuffer);
}

TEST(PcapReaderTest, TruncatedFileOnDiskAtEveryOffset) {
  char tmpl[] = "/tmp/ringcap-reader-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/cut.pcapng";
  auto readFile = [&](ByteVec bytes) {
    const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
    return readAll(PcapReader::open(path));
  };
  expectTruncatedPrefixes(validSamples()[2], readFile);
  std::filesystem::remove_all(tmpl);
}

TEST(PcapReaderTest, HostileInputIsAnError) {
  const ByteVec a = payload(60, 17);
  const ByteVec head = cat({shb(false), idb(false, "eth0", 0, 9)});
  auto withBlock = [&](const ByteVec &b) { return cat({head, b}); };
  ByteVec mismatch = epb(false, 0, 1, 60, a);
  mismatch.back() ^= 0x04;
  ByteVec lyingCapLen = epb(false, 0, 1, 60, a);
  lyingCapLen[8 + 12] = 200;
  ByteVec unaligned = epb(false, 0, 1, 60, a);
  unaligned[4] = static_cast<uint8_t>(unaligned[4] + 1);
  ByteVec badOptions = idb(false, "eth0", 0, 9);
  badOptions[8 + 8 + 2] = 0xF0; // if_name claims 240 bytes
  ByteVec badBom = shb(false);
  badBom[8] = 0x11;
  const ByteVec hugeRecord = cat(
      {pcapHeader(false, false), Bytes().u32(1).u32(2).u32(0x7FFFFFFF).u32(0x7FFFFFFF).bytes()});

  const std::vector<std::pair<ByteVec, std::string>> cases = {
      {withBlock(Bytes().u32(6).u32(8).u32(8).bytes()), "invalid block length 8"},
      {withBlock(unaligned), "invalid block length"},
      {withBlock(Bytes().u32(6).u32(0xFFFFFFFC).bytes()), "invalid block length"},
      {withBlock(Bytes().u32(6).u32(60u << 20).bytes()), "truncated"},
      {withBlock(mismatch), "do not match"},
      {withBlock(lyingCapLen), "captured length exceeds"},
      {withBlock(epb(false, 5, 1, 60, a)), "unknown interface 5"},
      {withBlock(block(false, 6, Bytes().u32(0).bytes())), "too short"},
      {withBlock(idb(false, "eth1", 0, 20)), "if_tsresol"},
      {withBlock(idb(false, "eth1", 0, 0x80 | 64)), "if_tsresol"},
      {withBlock(isb(false, 3, 0, 0, 0, "")), "unknown interface"},
      {cat({shb(false), badOptions}), "malformed options"},
      {cat({shb(false), idb(false, "s", 0, 0), epb(false, 0, ~uint64_t{0}, 60, a)}),
       "timestamp out of range"},
      {hugeRecord, "too large"},
      {ByteVec{'G', 'I', 'F', '8', '9', 'a'}, "not a pcap or pcapng file"},
      {badBom, "byte-order magic"},
      {shb(false, 2), "unsupported pcapng version"},
      {Bytes().u32(0xA1B2C3D4).u16(3).u16(0).u32(0).u32(0).u32(0).u32(1).bytes(),
       "unsupported pcap version"},
      {ByteVec{}, "empty file"},
  };
  for (const auto &[input, expected] : cases) {
    const ReadAll r = readBuffer(input);
    EXPECT_NE(r.error.find(expected), std::string::npos)
        << "expected \"" << expected << "\", got \"" << r.error << "\"";
  }
}

TEST(PcapReaderTest, ErrorsAreFinal) {
  ByteVec bytes = cat({shb(false), idb(false, "eth0", 0, 9), epb(false, 0, 1, 60, payload(60, 0)),
                       epb(false, 0, 2, 60, payload(60, 1))});
  bytes.erase(bytes.end() - 3, bytes.end());
  auto reader = PcapReader::fromBuffer(bytes);
  ASSERT_TRUE(reader.ok());
  auto first = (*reader)->next();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->has_value());
  auto second = (*reader)->next();
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("truncated"), std::string::npos);
  auto third = (*reader)->next();
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().message, second.error().message);
}

TEST(PcapReaderTest, OpenNamesPathAndCause) {
  const std::string path = "/nonexistent-ringcap-dir/capture.pcapng";
  auto r = PcapReader::open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_NE(r.error().message.find(path), std::string::npos);
  EXPECT_NE(r.error().message.find("No such file or directory"), std::string::npos);
}

TEST(PcapReaderTest, GarbageNeverCrashes) {
  std::mt19937 rng(12345);
  auto randomBytes = [&](size_t n) {
    ByteVec b(n);
    for (auto &x : b)
      x = static_cast<uint8_t>(rng());
    return b;
  };
  size_t errors = 0;
  auto check = [&](ByteVec input) {
    const ReadAll r = readBuffer(std::move(input));
    EXPECT_NE(r.error, "reader did not stop");
    errors += !r.error.empty();
  };
  for (int i = 0; i < 2000; ++i) {
    check(randomBytes(rng() % 300));
    check(cat({ByteVec{0x0A, 0x0D, 0x0D, 0x0A}, randomBytes(rng() % 300)}));
    check(cat({shb(false), randomBytes(rng() % 300)}));
    check(cat({pcapHeader(false, true), randomBytes(rng() % 300)}));
  }
  EXPECT_GT(errors, 0u);
  // Every single-byte mutation of the valid samples.
  for (const auto &sample : validSamples())
    for (size_t pos = 0; pos < sample.size(); ++pos)
      for (uint8_t value :
           {uint8_t{0x00}, uint8_t{0xFF}, uint8_t{0x80}, static_cast<uint8_t>(sample[pos] + 1)}) {
        ByteVec mutated = sample;
        mutated[pos] = value;
        check(std::move(mutated));
      }
}

} // namespace
} // namespace ringcap
