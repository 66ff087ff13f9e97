// The XDP capture program under BPF_PROG_TEST_RUN: parsing, filters, slots, sampling, budgets,
// the ring and the records it writes. Every run must return XDP_PASS.
#include "engine/CaptureProgram.h"
#include "../common/FilterCases.h"
#include "../lib/Skip.h"
#include "PacketBuilder.h"
#include "engine/CaptureJob.h"
#include "engine/ClockStepWatch.h"
#include "engine/RingDrainer.h"
#include "request/FilterV1.h"
#include "request/IpAddress.h"

#include <algorithm>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <gtest/gtest.h>
#include <latch>
#include <linux/bpf.h>
#include <memory>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <sstream>
#include <string>
#include <sys/epoll.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace ringcap;
using ringcap::test::PacketBuilder;
namespace rt = ringcap::test;

namespace {

using namespace ringcap::test::filter_cases;

ringcap_filter kernelFilter(const Flt &f) { return toFilterV1(f).toKernel(); }

SlotSettings slotWith(uint32_t cookie, const Flt &f = {}) {
  SlotSettings s;
  s.cookie = cookie;
  s.filter = kernelFilter(f);
  return s;
}

std::string describe(const SlotCounters &c) { return describeCounters(c); }

std::string describe(const GlobalCounters &c) {
  std::ostringstream o;
  o << "packets=" << c.packets << " non_ip=" << c.nonIp << " malformed=" << c.malformed
    << " no_ports=" << c.noPorts;
  return o.str();
}

GlobalCounters operator-(const GlobalCounters &a, const GlobalCounters &b) {
  return {a.packets - b.packets, a.nonIp - b.nonIp, a.malformed - b.malformed,
          a.noPorts - b.noPorts};
}

SlotCounters operator-(const SlotCounters &a, const SlotCounters &b) { return minus(a, b); }

// One BPF_PROG_TEST_RUN; ctx (optional) is passed as ctx_in.
int testRun(int progFd, const Bytes &pkt, int repeat, uint32_t &retval,
            const xdp_md *ctx = nullptr) {
  LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt.data(),
              .data_size_in = static_cast<uint32_t>(pkt.size()), .repeat = repeat);
  if (ctx) {
    o.ctx_in = ctx;
    o.ctx_size_in = sizeof *ctx;
  }
  int err = bpf_prog_test_run_opts(progFd, &o);
  retval = o.retval;
  return err;
}

// Runs the program `repeat` times on pkt and checks the verdict.
::testing::AssertionResult passes(int progFd, const Bytes &pkt, int repeat = 1,
                                  const xdp_md *ctx = nullptr) {
  uint32_t retval = 0;
  if (int err = testRun(progFd, pkt, repeat, retval, ctx))
    return ::testing::AssertionFailure()
           << "BPF_PROG_TEST_RUN on " << pkt.size() << " bytes: " << std::strerror(-err);
  if (retval != XDP_PASS)
    return ::testing::AssertionFailure() << "verdict " << retval << ", expected XDP_PASS";
  return ::testing::AssertionSuccess();
}

// One slot's packet: a ring record seen by one of the slots in its mask.
struct RecHeader {
  uint64_t tstamp_boot_ns;
  uint32_t cookie, ifindex, rx_queue, pkt_len, cap_len;
  uint16_t slot, flags, slot_mask;
};

struct Rec {
  RecHeader h;
  Bytes data;
};

// Reads raw ring records (checked by parseRingRecord) with every header field; a record of
// several slots becomes one Rec per slot, in slot order, each cut to its slot's cap_len.
class RingReader {
public:
  // `ringFd`: a ring buffer, or the program's array of them (one per CPU).
  explicit RingReader(int ringFd) {
    bpf_map_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(ringFd, &info, &len))
      return;
    if (info.type != BPF_MAP_TYPE_ARRAY_OF_MAPS) {
      rb_ = ring_buffer__new(ringFd, &RingReader::onRecord, this, nullptr);
      return;
    }
    std::vector<uint32_t> ids; // CPUs offline at load share a ring: read each ring once
    for (uint32_t key = 0; key < info.max_entries; key++) {
      uint32_t id = 0;
      if (bpf_map_lookup_elem(ringFd, &key, &id))
        return;
      if (std::find(ids.begin(), ids.end(), id) != ids.end())
        continue;
      ids.push_back(id);
      UniqueFd fd(bpf_map_get_fd_by_id(id));
      if (!fd)
        return;
      if (!rb_) {
        rb_ = ring_buffer__new(fd.get(), &RingReader::onRecord, this, nullptr);
        if (!rb_)
          return;
      } else if (ring_buffer__add(rb_, fd.get(), &RingReader::onRecord, this)) {
        ring_buffer__free(rb_);
        rb_ = nullptr;
        return;
      }
      fds_.push_back(std::move(fd));
    }
  }
  ~RingReader() { ring_buffer__free(rb_); }
  RingReader(const RingReader &) = delete;
  RingReader &operator=(const RingReader &) = delete;
  bool ok() const { return rb_ != nullptr; }

  // Every record waiting now; invalid records and consume errors are test failures.
  std::vector<Rec> take() {
    recs_.clear();
    invalid_ = 0;
    records_ = 0;
    int n = ring_buffer__consume(rb_);
    EXPECT_GE(n, 0) << "ring_buffer__consume: " << std::strerror(-n);
    EXPECT_EQ(invalid_, 0u) << "records rejected by parseRingRecord";
    return std::move(recs_);
  }
  // Ring records read by the last take() (a record holds a packet for several slots).
  size_t records() const { return records_; }

private:
  static int onRecord(void *ctx, void *data, size_t size) {
    auto *self = static_cast<RingReader *>(ctx);
    auto r = parseRingRecord({static_cast<const uint8_t *>(data), size});
    if (!r) {
      self->invalid_++;
      return 0;
    }
    self->records_++;
    const ringcap_record &h = r->header;
    for (uint16_t s = 0; s < RINGCAP_MAX_SLOTS; s++) {
      if (!(h.slot_mask & (1u << s)))
        continue;
      auto d = r->dataOf(s);
      self->recs_.push_back({{h.tstamp_boot_ns, r->slots[s].cookie, h.ifindex, h.rx_queue,
                              h.pkt_len, r->slots[s].cap_len, s, h.flags, h.slot_mask},
                             Bytes(d.begin(), d.end())});
    }
    return 0;
  }
  ring_buffer *rb_ = nullptr;
  std::vector<UniqueFd> fds_;
  std::vector<Rec> recs_;
  size_t invalid_ = 0;
  size_t records_ = 0;
};

// Why the BPF tests cannot run here (empty: they can), and load errors that are failures.
struct Availability {
  std::string skip, error;
};

Result<std::unique_ptr<CaptureProgram>> loadProgram(uint32_t ringBytes, Availability &av,
                                                    bool wakeOnFirstRecord = false) {
  if (geteuid() != 0) {
    av.skip = "not running as root: BPF_PROG_TEST_RUN needs root";
    return Error{EPERM, av.skip};
  }
  CaptureProgramOptions o;
  o.ringBytes = ringBytes;
  o.wakeOnFirstRecord = wakeOnFirstRecord;
  auto p = CaptureProgram::open(o);
  if (p) {
    if (auto r = (*p)->loadUnattached(); r)
      return std::move(p).value();
    else
      p = r.error();
  }
  if (p.error().code == EPERM)
    av.skip = "BPF is unavailable (EPERM): " + p.error().message;
  else
    av.error = "loading the capture program: " + p.error().message;
  return p.error();
}

// Skips the test (fails it when CI=true) if BPF is unavailable; fails it on a load error.
#define REQUIRE_BPF(av)                                                                            \
  do {                                                                                             \
    if (!(av).skip.empty())                                                                        \
      RINGCAP_SKIP("\n*** SKIPPING THE BPF TESTS: " + (av).skip + " ***");                         \
    ASSERT_TRUE((av).error.empty()) << (av).error;                                                 \
  } while (0)

unsigned loopbackIfindex() { return if_nametoindex("lo"); }

class CaptureProgramTest : public ::testing::Test {
protected:
  static constexpr uint32_t kRingBytes = 4u << 20;

  static void SetUpTestSuite() {
    auto p = loadProgram(kRingBytes, av_);
    if (!p)
      return;
    program_ = std::move(p).value();
    reader_ = std::make_unique<RingReader>(program_->ringFd());
    if (!reader_->ok())
      av_.error = std::string("ring_buffer__new: ") + std::strerror(errno);
  }
  static void TearDownTestSuite() {
    reader_.reset();
    program_.reset();
  }
  void SetUp() override {
    REQUIRE_BPF(av_);
    ASSERT_TRUE(take().empty()) << "records left over from an earlier test";
  }
  void TearDown() override {
    if (!program_ || !reader_->ok())
      return;
    for (unsigned s = 0; s < RINGCAP_MAX_SLOTS; s++)
      if (program_->slotArmed(s)) {
        EXPECT_TRUE(program_->disarmSlot(s));
      }
    if (program_->historyArmed()) {
      EXPECT_TRUE(program_->disarmHistory());
    }
    take();
  }

  int fd() const { return program_->programFd(); }
  std::vector<Rec> take() { return reader_->take(); }
  void arm(unsigned slot, const SlotSettings &s) {
    auto r = program_->armSlot(slot, s);
    ASSERT_TRUE(r) << r.error().message;
  }
  void disarm(unsigned slot) { ASSERT_TRUE(program_->disarmSlot(slot)); }
  SlotCounters counters(unsigned slot) const { return program_->slotCounters(slot).value(); }
  GlobalCounters global() const { return program_->globalCounters().value(); }
  SlotBudget budget(unsigned slot) const { return program_->slotBudget(slot).value(); }

  static inline Availability av_;
  static inline std::unique_ptr<CaptureProgram> program_;
  static inline std::unique_ptr<RingReader> reader_;
};

// Checks one record against the packet it must hold.
void expectRecord(const Rec &r, unsigned slot, uint32_t cookie, const Bytes &pkt, uint32_t capLen) {
  EXPECT_EQ(r.h.slot, slot);
  EXPECT_EQ(r.h.cookie, cookie);
  EXPECT_EQ(r.h.ifindex, loopbackIfindex()); // test runs arrive on the loopback device
  EXPECT_EQ(r.h.rx_queue, 0u);
  EXPECT_EQ(r.h.pkt_len, pkt.size());
  EXPECT_EQ(r.h.cap_len, capLen);
  EXPECT_EQ(r.h.flags, 0u);
  ASSERT_EQ(r.data.size(), capLen);
  EXPECT_TRUE(std::equal(r.data.begin(), r.data.end(), pkt.begin())) << "captured bytes differ";
}

// The global counters bumped by a table row's packet (Parsed: tests/common/FilterCases.h).
GlobalCounters expectedGlobal(Parsed p) {
  return {1, p == Parsed::NonIp ? 1u : 0u, p == Parsed::Malformed ? 1u : 0u,
          p == Parsed::PortsUnknown ? 1u : 0u};
}

TEST_F(CaptureProgramTest, FilterTable) {
  auto cases = filterCases();
  for (size_t i = 0; i < cases.size(); i++) {
    const FilterCase &c = cases[i];
    SCOPED_TRACE(c.name);
    unsigned slot = i % RINGCAP_MAX_SLOTS;
    uint32_t cookie = 0x1000 + uint32_t(i);
    arm(slot, slotWith(cookie, c.filter));
    GlobalCounters before = global();
    ASSERT_TRUE(passes(fd(), c.packet));
    uint64_t n = c.hit ? 1 : 0;
    SlotCounters want{1, n, 0, n, n * c.packet.size(), 0, 0};
    EXPECT_EQ(describe(counters(slot)), describe(want));
    EXPECT_EQ(describe(global() - before), describe(expectedGlobal(c.parsed)));
    auto recs = take();
    ASSERT_EQ(recs.size(), n);
    if (n)
      expectRecord(recs[0], slot, cookie, c.packet, uint32_t(c.packet.size()));
    disarm(slot);
  }
}

// A packet truncated at every length from 14 bytes to its whole size, seen by three slots:
// 0: empty filter (always captured), 1: addresses + protocol (captured once the IP headers
// are complete), 2: 5-tuple (captured once the ports are there; never for non-first
// fragments).
struct SweepCase {
  const char *name;
  PacketBuilder packet;
  size_t l4Layer; // the layer after the IP headers (the transport header)
  bool fragment;  // non-first fragment: never any ports
  bool v6;
  uint8_t proto;
};

TEST_F(CaptureProgramTest, TruncatedAtEveryOffset) {
  // Ethernet / 802.1ad / 802.1Q / IPv4 + 8 bytes of options / TCP 1234 -> 53 / 6 bytes
  PacketBuilder qinqV4 = P().eth()
                             .vlan(rt::kTpid8021AD, 1)
                             .vlan(rt::kTpid8021Q, 2)
                             .ipv4(A4, B4, {.options = {1, 1, 1, 1, 1, 1, 1, 0}})
                             .tcp(SP, DP)
                             .payload(6);
  // Ethernet / 802.1Q / IPv6 / HBH (8) / routing (24) / AH (12) / DstOpts (16) / UDP / 6 bytes
  PacketBuilder vlanV6 = P().eth()
                             .vlan(rt::kTpid8021Q, 3)
                             .ipv6(A6, B6)
                             .ipv6Ext(rt::kIpProtoHopOpts, 8)
                             .ipv6Ext(rt::kIpProtoRouting, 24)
                             .ipv6Ext(rt::kIpProtoAh, 12)
                             .ipv6Ext(rt::kIpProtoDstOpts, 16)
                             .udp(SP, DP)
                             .payload(6);
  // Ethernet / IPv6 / fragment (offset 0, M) / SCTP 1234 -> 53 / 4 bytes
  PacketBuilder v6first = P().eth().ipv6(A6, B6).ipv6Frag(0, true).sctp(SP, DP).payload(4);
  // Ethernet / IPv4 + 4 bytes of options, non-first fragment (offset 100) / UDP look-alike
  PacketBuilder v4frag =
      P().eth().ipv4(A4, B4, {.options = {1, 1, 1, 0}, .fragOffset = 100}).udp(SP, DP).payload(4);
  // Ethernet / IPv6 / HBH (8) / fragment (offset 100, last) / UDP look-alike / 4 bytes
  PacketBuilder v6frag = P().eth()
                             .ipv6(A6, B6)
                             .ipv6Ext(rt::kIpProtoHopOpts, 8)
                             .ipv6Frag(100, false)
                             .udp(SP, DP)
                             .payload(4);
  SweepCase cases[] = {
      {"QinQ IPv4 options TCP", qinqV4, 4, false, false, TCP},
      {"802.1Q IPv6 ext chain UDP", vlanV6, 7, false, true, UDP},
      {"IPv6 first fragment SCTP", v6first, 3, false, true, SCTP},
      {"IPv4 non-first fragment", v4frag, 2, true, false, UDP},
      {"IPv6 non-first fragment", v6frag, 4, true, true, UDP},
  };
  for (const auto &c : cases) {
    SCOPED_TRACE(c.name);
    const char *src = c.v6 ? A6 : A4, *dst = c.v6 ? B6 : B4;
    const size_t l4 = c.packet.offsetOf(c.l4Layer);
    arm(0, slotWith(10, {}));
    arm(1, slotWith(11, {src, dst, -1, -1, c.proto}));
    arm(2, slotWith(12, {src, dst, SP, DP, c.proto}));
    for (size_t n = 14; n <= c.packet.size(); n++) {
      SCOPED_TRACE("truncated to " + std::to_string(n) + " bytes");
      Bytes pkt = c.packet.truncated(n);
      SlotCounters before[3] = {counters(0), counters(1), counters(2)};
      GlobalCounters g0 = global();
      ASSERT_TRUE(passes(fd(), pkt));
      Parsed p = n < l4 ? Malformed : c.fragment || n < l4 + 4 ? PortsUnknown : Ports;
      bool hits[3] = {true, p != Malformed, p == Ports};
      for (unsigned s = 0; s < 3; s++) {
        uint64_t h = hits[s];
        SlotCounters want{1, h, 0, h, h * n, 0, 0};
        EXPECT_EQ(describe(counters(s) - before[s]), describe(want)) << "slot " << s;
      }
      EXPECT_EQ(describe(global() - g0), describe(expectedGlobal(p)));
      auto recs = take();
      ASSERT_EQ(recs.size(), 1u + hits[1] + hits[2]);
      for (unsigned s = 0; s < recs.size(); s++)
        expectRecord(recs[s], s, 10 + s, pkt, uint32_t(n));
    }
    disarm(0);
    disarm(1);
    disarm(2);
  }
}

TEST_F(CaptureProgramTest, NoArmedSlotCountsNothing) {
  // Ethernet / IPv4 / UDP 1234 -> 53 / 32 bytes
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(32).build();
  GlobalCounters before = global();
  ASSERT_TRUE(passes(fd(), pkt, 10));
  EXPECT_EQ(describe(global() - before), describe(GlobalCounters{}));
  EXPECT_TRUE(take().empty());
}

TEST_F(CaptureProgramTest, KernelRefusesFramesShorterThanEthernet) {
  arm(0, slotWith(1));
  GlobalCounters before = global();
  // Zero bytes, and 13 bytes of an Ethernet header cut by one byte.
  for (Bytes pkt : {Bytes{}, P().eth().next(0x0800).truncated(13)}) {
    uint32_t retval = 0;
    EXPECT_EQ(testRun(fd(), pkt, 1, retval), -EINVAL) << pkt.size() << " bytes";
  }
  EXPECT_EQ(describe(global() - before), describe(GlobalCounters{}));
  EXPECT_EQ(describe(counters(0)), describe(SlotCounters{}));
  EXPECT_TRUE(take().empty());
}

// Lengths: single and multi-buffer packets, every ring size class boundary, snaplen cuts.
struct LengthCase {
  size_t size;
  uint32_t snaplen;
};

TEST_F(CaptureProgramTest, LengthTable) {
  const uint32_t full = RINGCAP_MAX_SNAPLEN;
  // Test runs keep about PAGE_SIZE - 256 (headroom) - 320 (skb_shared_info) bytes linear;
  // larger frames become multi-buffer packets (the program is xdp.frags).
  const size_t linear = size_t(sysconf(_SC_PAGESIZE)) - 256 - 320;
  std::vector<LengthCase> cases = {
      {60, full},    {60, 1},        {60, 59},           {60, 60},
      {1514, full},  {linear, full}, {linear + 1, full}, {9000, full},
      {9000, 100},   {9000, 4000},   {60000, full},      {60000, uint32_t(linear) + 1},
      {65536, full}, {70000, full},  {70000, 65535},
  };
  // Each size class of the ring (and one byte more), cut from a 70000-byte packet.
  for (uint32_t cls :
       {64, 96, 128, 192, 256, 384, 512, 768, 1024, 1280, 1536, 2048, 4096, 9216, 16384, 32768}) {
    cases.push_back({70000, cls});
    cases.push_back({70000, cls + 1});
  }
  for (const auto &c : cases) {
    SCOPED_TRACE(std::to_string(c.size) + " bytes, snaplen " + std::to_string(c.snaplen));
    // Ethernet / IPv4 / UDP 1234 -> 53 / pattern up to c.size bytes
    Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).padTo(c.size).build();
    SlotSettings s = slotWith(77, {A4, B4, SP, DP, UDP});
    s.snaplen = c.snaplen;
    arm(4, s);
    ASSERT_TRUE(passes(fd(), pkt));
    uint32_t capLen = uint32_t(std::min<size_t>(c.size, c.snaplen));
    EXPECT_EQ(describe(counters(4)), describe(SlotCounters{1, 1, 0, 1, capLen, 0, 0}));
    auto recs = take();
    EXPECT_EQ(recs.size(), 1u);
    if (recs.size() == 1)
      expectRecord(recs[0], 4, 77, pkt, capLen);
    disarm(4);
  }
}

TEST_F(CaptureProgramTest, SeveralSlotsAtOnce) {
  // Ethernet / IPv4 / UDP 1234 -> 53 / 32 bytes (74 bytes)
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(32).build();
  SlotSettings a = slotWith(0xa0, {}), b = slotWith(0xb3, {A4, B4, SP, DP, UDP});
  a.snaplen = 64;
  arm(0, a);
  arm(3, b);
  arm(5, slotWith(0xc5, {.dport = 80}));
  ASSERT_TRUE(passes(fd(), pkt));
  EXPECT_EQ(describe(counters(0)), describe(SlotCounters{1, 1, 0, 1, 64, 0, 0}));
  EXPECT_EQ(describe(counters(3)), describe(SlotCounters{1, 1, 0, 1, 74, 0, 0}));
  EXPECT_EQ(describe(counters(5)), describe(SlotCounters{1, 0, 0, 0, 0, 0, 0}));
  auto recs = take();
  EXPECT_EQ(reader_->records(), 1u) << "one ring record for both slots";
  ASSERT_EQ(recs.size(), 2u);
  expectRecord(recs[0], 0, 0xa0, pkt, 64);
  expectRecord(recs[1], 3, 0xb3, pkt, 74);
  disarm(0);
  disarm(3);
  disarm(5);

  // All eight slots: one record, with each slot's cookie.
  for (unsigned s = 0; s < RINGCAP_MAX_SLOTS; s++)
    arm(s, slotWith(0x100 + s, {.src = A4}));
  GlobalCounters before = global();
  ASSERT_TRUE(passes(fd(), pkt));
  EXPECT_EQ(describe(global() - before), describe(GlobalCounters{1, 0, 0, 0}));
  recs = take();
  EXPECT_EQ(reader_->records(), 1u) << "one ring record for eight slots";
  ASSERT_EQ(recs.size(), size_t(RINGCAP_MAX_SLOTS));
  for (unsigned s = 0; s < RINGCAP_MAX_SLOTS; s++)
    expectRecord(recs[s], s, 0x100 + s, pkt, 74);
}

// Three jobs on the same packets, with different snaplens, one of them sampled: the packet is
// copied into the ring once, and each job's sink gets exactly the bytes a record of its own
// would hold (the first min(pkt_len, snaplen) bytes), every packet it took, in order.
TEST_F(CaptureProgramTest, JobsSharingPacketsGetTheirOwnSnaplenFromOneRecord) {
  auto drainer = RingDrainer::create(program_->ringFd());
  ASSERT_TRUE(drainer) << drainer.error().message;
  struct Collect : PacketSink {
    void onPacket(const CapturedPacket &p) override {
      pktLens.push_back(p.pktLen);
      data.emplace_back(p.data.begin(), p.data.end());
    }
    std::vector<uint32_t> pktLens;
    std::vector<Bytes> data;
  } sinks[3];
  const unsigned slots[3] = {1, 4, 6};
  const uint32_t snaplens[3] = {64, 1000, 200}, rates[3] = {1, 1, 3};
  for (int j = 0; j < 3; j++) {
    SlotSettings st = slotWith(0x900 + slots[j], {.proto = UDP});
    st.snaplen = snaplens[j];
    st.sampleRate = rates[j];
    arm(slots[j], st);
    (*drainer)->route(slots[j], 0x900 + slots[j], &sinks[j]);
  }
  // 300 UDP packets of 60..1514 bytes, each with payload bytes of its own.
  const int n = 300;
  std::vector<Bytes> sent;
  for (int i = 0; i < n; i++) {
    size_t len = 60 + size_t(i) * 37 % 1455;
    Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(len - 42).build();
    for (size_t k = 42; k < pkt.size(); k++)
      pkt[k] = uint8_t(i * 7 + k);
    ASSERT_TRUE(passes(fd(), pkt));
    sent.push_back(std::move(pkt));
  }
  auto consumed = (*drainer)->consume();
  ASSERT_TRUE(consumed) << consumed.error().message;
  EXPECT_EQ(*consumed, uint64_t(n)) << "one ring record per packet, not one per job";
  EXPECT_EQ((*drainer)->stats().stale + (*drainer)->stats().malformed, 0u);
  auto prefix = [](const Bytes &p, uint32_t snaplen) {
    return Bytes(p.begin(), p.begin() + std::min<size_t>(p.size(), snaplen));
  };
  uint64_t delivered = 0;
  for (int j = 0; j < 3; j++) {
    SlotCounters c = counters(slots[j]);
    const Collect &got = sinks[j];
    ASSERT_EQ(got.data.size(), c.captured) << "slot " << slots[j];
    delivered += got.data.size();
    uint64_t bytes = 0;
    // The sink's packets are a subsequence of the sent ones (all of them when not sampled).
    size_t next = 0;
    for (size_t k = 0; k < got.data.size(); k++) {
      while (next < sent.size() && got.data[k] != prefix(sent[next], snaplens[j]))
        next++;
      ASSERT_LT(next, sent.size())
          << "slot " << slots[j] << " packet " << k << " is no prefix of a sent packet, in order";
      EXPECT_EQ(got.pktLens[k], sent[next].size());
      bytes += got.data[k].size();
      next++;
    }
    EXPECT_EQ(c.bytesCaptured, bytes) << "slot " << slots[j];
    EXPECT_EQ(c.matched, uint64_t(n));
    EXPECT_EQ(c.captured + c.sampledOut, c.matched);
    EXPECT_EQ(c.ringLost + c.limitReached + c.copyFailed, 0u);
    if (rates[j] == 1) {
      EXPECT_EQ(c.captured, uint64_t(n)) << "slot " << slots[j];
    } else {
      // Binomial(300, 1/3): mean 100, sigma 8.2; 5 sigma = 41.
      EXPECT_NEAR(double(c.captured), n / 3.0, 41) << describe(c);
    }
  }
  EXPECT_EQ((*drainer)->stats().records, delivered);
}

TEST_F(CaptureProgramTest, IngressIfindexRestriction) {
  // Ethernet / IPv6 / UDP 1234 -> 53 / 20 bytes, run with ctx_in ingress_ifindex = lo.
  Bytes pkt = P().eth().ipv6(A6, B6).udp(SP, DP).payload(20).build();
  const uint32_t lo = loopbackIfindex();
  ASSERT_NE(lo, 0u);
  xdp_md ctx{};
  ctx.data_end = uint32_t(pkt.size());
  ctx.ingress_ifindex = lo;
  ctx.rx_queue_index = 0;
  struct Row {
    std::vector<uint32_t> ifindexes;
    bool seen;
  } rows[] = {
      {{lo}, true},
      {{lo + 1000}, false},
      {{lo + 1000, lo}, true},
      {{lo + 1, lo + 2, lo + 3, lo + 4, lo + 5, lo + 6, lo + 7, lo}, true}, // last entry
      {{lo + 1, lo + 2, lo + 3, lo + 4, lo + 5, lo + 6, lo + 7, lo + 8}, false},
      {{}, true}, // any interface
  };
  for (unsigned s = 0; s < std::size(rows); s++) {
    SlotSettings st = slotWith(0x50 + s, {.dst = B6});
    st.ifindexes = rows[s].ifindexes;
    arm(s, st);
  }
  ASSERT_TRUE(passes(fd(), pkt, 1, &ctx)) << "the kernel refused ctx_in.ingress_ifindex = lo";
  std::vector<unsigned> want;
  for (unsigned s = 0; s < std::size(rows); s++) {
    uint64_t n = rows[s].seen;
    EXPECT_EQ(describe(counters(s)), describe(SlotCounters{n, n, 0, n, n * pkt.size(), 0, 0}))
        << "slot " << s;
    if (n)
      want.push_back(s);
  }
  auto recs = take();
  ASSERT_EQ(recs.size(), want.size());
  for (size_t i = 0; i < recs.size(); i++)
    expectRecord(recs[i], want[i], 0x50 + want[i], pkt, uint32_t(pkt.size()));
}

TEST_F(CaptureProgramTest, SamplingOneInTen) {
  // Ethernet / IPv4 / UDP 1234 -> 53 / 32 bytes (74 bytes), 20000 runs
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(32).build();
  SlotSettings s = slotWith(9, {A4, B4, SP, DP, UDP});
  s.sampleRate = 10;
  arm(1, s);
  const int runs = 20000;
  ASSERT_TRUE(passes(fd(), pkt, runs));
  SlotCounters c = counters(1);
  EXPECT_EQ(c.seen, uint64_t(runs));
  EXPECT_EQ(c.matched, uint64_t(runs));
  EXPECT_EQ(c.captured + c.sampledOut, c.matched);
  EXPECT_EQ(c.bytesCaptured, c.captured * pkt.size());
  EXPECT_EQ(c.ringLost + c.limitReached, 0u);
  // Binomial(20000, 0.1): mean 2000, sigma 42.4; 5 sigma = 212.
  double sigma = std::sqrt(runs * 0.1 * 0.9);
  EXPECT_LE(std::abs(double(c.captured) - runs * 0.1), 5 * sigma) << describe(c);
  auto recs = take();
  EXPECT_EQ(recs.size(), c.captured);
  for (const auto &r : recs)
    ASSERT_NO_FATAL_FAILURE(expectRecord(r, 1, 9, pkt, uint32_t(pkt.size())));
}

TEST_F(CaptureProgramTest, PacketBudgetIsExact) {
  // Ethernet / IPv6 / TCP 1234 -> 53 / 10 bytes (84 bytes), 5000 runs
  Bytes pkt = P().eth().ipv6(A6, B6).tcp(SP, DP).payload(10).build();
  SlotSettings s = slotWith(5, {.proto = TCP});
  s.packetLimit = 1000;
  arm(2, s);
  ASSERT_TRUE(passes(fd(), pkt, 5000));
  EXPECT_EQ(describe(counters(2)), describe(SlotCounters{5000, 5000, 0, 1000, 84000, 0, 4000}));
  EXPECT_EQ(budget(2).packetsLeft, 0);
  EXPECT_EQ(take().size(), 1000u);
}

std::vector<int> allowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int i = 0; i < CPU_SETSIZE; i++)
      if (CPU_ISSET(i, &set))
        cpus.push_back(i);
  return cpus;
}

// Per-CPU `captured` of one slot, read from the program's "counters" map.
std::vector<uint64_t> capturedPerCpu(int progFd, unsigned slot) {
  bpf_prog_info info{};
  uint32_t ids[16] = {}, len = sizeof info;
  info.nr_map_ids = 16;
  info.map_ids = reinterpret_cast<uintptr_t>(ids);
  if (bpf_obj_get_info_by_fd(progFd, &info, &len))
    return {};
  for (uint32_t i = 0; i < info.nr_map_ids && i < 16; i++) {
    int mfd = bpf_map_get_fd_by_id(ids[i]);
    bpf_map_info mi{};
    uint32_t mlen = sizeof mi;
    if (mfd < 0)
      continue;
    std::vector<ringcap_counters> v(static_cast<size_t>(libbpf_num_possible_cpus()));
    uint32_t key = 0;
    bool found = !bpf_obj_get_info_by_fd(mfd, &mi, &mlen) && std::string(mi.name) == "counters" &&
                 !bpf_map_lookup_elem(mfd, &key, v.data());
    close(mfd);
    if (found) {
      std::vector<uint64_t> out;
      for (const auto &c : v)
        out.push_back(c.slot[slot].captured);
      return out;
    }
  }
  return {};
}

// Two threads pinned to two CPUs run `repeat` test runs each, started together.
void runOnTwoCpus(int progFd, const Bytes &pkt, int repeat, const std::vector<int> &cpus) {
  std::latch start(2);
  std::string err[2];
  int ranOn[2] = {-1, -1};
  auto body = [&](int i) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpus[i], &one);
    if (pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0)
      ranOn[i] = sched_getcpu();
    start.arrive_and_wait();
    auto r = passes(progFd, pkt, repeat);
    err[i] = r ? "" : r.message();
  };
  std::thread a(body, 0), b(body, 1);
  a.join();
  b.join();
  EXPECT_EQ(ranOn[0], cpus[0]);
  EXPECT_EQ(ranOn[1], cpus[1]);
  EXPECT_EQ(err[0], "");
  EXPECT_EQ(err[1], "");
}

TEST_F(CaptureProgramTest, BudgetsAreExactFromTwoCpus) {
  auto cpus = allowedCpus();
  if (cpus.size() < 2)
    RINGCAP_SKIP("\n*** SKIPPING: the two-CPU budget test needs two CPUs ***");
  // Ethernet / IPv4 / UDP 1234 -> 53 / 32 bytes (74 bytes)
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(32).build();
  int shared = 0; // rounds in which both CPUs took part of the packet budget
  for (int round = 0; round < 20; round++) {
    SCOPED_TRACE("round " + std::to_string(round));
    // Packet budget: 1000 of 2 x 2500.
    SlotSettings s = slotWith(round, {.dport = DP});
    s.packetLimit = 1000;
    arm(0, s);
    // Byte budget: 1000 packets and 73 bytes, 1000 of 2 x 2500.
    SlotSettings t = slotWith(100 + round, {.src = A4});
    t.byteLimit = 1000 * pkt.size() + 73;
    arm(1, t);
    auto base = capturedPerCpu(fd(), 0);
    runOnTwoCpus(fd(), pkt, 2500, cpus);
    auto after = capturedPerCpu(fd(), 0);
    ASSERT_EQ(after.size(), base.size());
    ASSERT_GT(after.size(), size_t(std::max(cpus[0], cpus[1])));
    shared += after[cpus[0]] > base[cpus[0]] && after[cpus[1]] > base[cpus[1]];
    EXPECT_EQ(describe(counters(0)), describe(SlotCounters{5000, 5000, 0, 1000, 74000, 0, 4000}));
    EXPECT_EQ(describe(counters(1)), describe(SlotCounters{5000, 5000, 0, 1000, 74000, 0, 4000}));
    EXPECT_EQ(budget(0).packetsLeft, 0);
    EXPECT_EQ(budget(1).bytesLeft, 73);
    EXPECT_EQ(take().size(), 2000u);
    disarm(0);
    disarm(1);
    if (HasFailure())
      break;
  }
  EXPECT_GT(shared, 0) << "the two CPUs never shared a budget: nothing ran concurrently";
}

// One thread pinned to `cpu` runs `repeat` test runs.
void runOnCpu(int progFd, const Bytes &pkt, int repeat, int cpu) {
  std::string err;
  int ranOn = -1;
  std::thread t([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0)
      ranOn = sched_getcpu();
    auto r = passes(progFd, pkt, repeat);
    err = r ? "" : r.message();
  });
  t.join();
  EXPECT_EQ(ranOn, cpu);
  EXPECT_EQ(err, "");
}

// Budgets far larger than one lease (RINGCAP_LEASE_PACKETS, RINGCAP_LEASE_BYTES), so that each
// CPU takes many leases and the last of the budget is split between the CPUs' leases.
TEST_F(CaptureProgramTest, LeasedBudgetsAreExactFromTwoCpus) {
  auto cpus = allowedCpus();
  if (cpus.size() < 2)
    RINGCAP_SKIP("\n*** SKIPPING: the two-CPU budget test needs two CPUs ***");
  // Ethernet / IPv4 / UDP 1234 -> 53 / 32 bytes (74 bytes)
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(32).build();
  // 2 x 4000 runs for 5000 packets of budget; two slots, so at most 2 x 8000 records (136 bytes)
  // on one CPU: they fit its ring (2 MiB of the 4 MiB when there are two CPUs).
  const uint64_t limit = 5000, runs = 4000;
  static_assert(limit > 4 * RINGCAP_LEASE_PACKETS);
  for (int round = 0; round < 5; round++) {
    SCOPED_TRACE("round " + std::to_string(round));
    SlotSettings s = slotWith(200 + round, {.dport = DP});
    s.packetLimit = limit;
    arm(2, s);
    SlotSettings t = slotWith(300 + round, {.src = A4});
    t.byteLimit = limit * pkt.size() + 73;
    arm(3, t);
    runOnTwoCpus(fd(), pkt, int(runs), cpus);
    for (unsigned slot : {2u, 3u}) {
      SlotCounters c = counters(slot);
      EXPECT_EQ(describe(c), describe(SlotCounters{2 * runs, 2 * runs, 0, limit, limit * pkt.size(),
                                                   0, 2 * runs - limit}))
          << "slot " << slot;
      EXPECT_EQ(c.matched, c.captured + c.limitReached + c.ringLost + c.copyFailed);
    }
    EXPECT_EQ(budget(2).packetsLeft, 0);
    EXPECT_EQ(budget(3).bytesLeft, 73);
    auto recs = take();
    EXPECT_EQ(recs.size(), 2 * limit);
    uint64_t bytes[2] = {0, 0};
    for (const auto &r : recs)
      if (r.h.slot == 2 || r.h.slot == 3)
        bytes[r.h.slot - 2] += r.h.cap_len;
    EXPECT_EQ(bytes[0], limit * pkt.size());
    EXPECT_EQ(bytes[1], limit * pkt.size());
    disarm(2);
    disarm(3);
    if (HasFailure())
      break;
  }
}

// A CPU that took a lease and then saw no more packets: the other CPU collects the lease, so
// the capture still reaches its limit exactly.
TEST_F(CaptureProgramTest, LeaseOfAnIdleCpuIsCollected) {
  auto cpus = allowedCpus();
  if (cpus.size() < 2)
    RINGCAP_SKIP("\n*** SKIPPING: the two-CPU budget test needs two CPUs ***");
  // Ethernet / IPv4 / UDP 1234 -> 53 / 32 bytes (74 bytes)
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(32).build();
  const uint64_t limit = 5000, first = 10, runs = 2 * limit;
  SlotSettings s = slotWith(400, {.dport = DP});
  s.packetLimit = limit;
  arm(4, s);
  SlotSettings t = slotWith(401, {.src = A4});
  t.byteLimit = limit * pkt.size() + 50;
  arm(5, t);
  runOnCpu(fd(), pkt, int(first), cpus[0]);
  // cpus[0] holds a lease now; only cpus[1] runs from here on.
  EXPECT_GT(budget(4).packetsLeft, 0);
  runOnCpu(fd(), pkt, int(runs), cpus[1]);
  for (unsigned slot : {4u, 5u}) {
    SlotCounters c = counters(slot);
    EXPECT_EQ(describe(c), describe(SlotCounters{first + runs, first + runs, 0, limit,
                                                 limit * pkt.size(), 0, first + runs - limit}))
        << "slot " << slot;
  }
  EXPECT_EQ(budget(4).packetsLeft, 0);
  EXPECT_EQ(budget(5).bytesLeft, 50);
  EXPECT_EQ(take().size(), 2 * limit);
  // Spent everywhere: both CPUs refuse, and the budget stays exact.
  runOnCpu(fd(), pkt, 100, cpus[0]);
  EXPECT_EQ(counters(4).captured, limit);
  EXPECT_EQ(counters(5).captured, limit);
  EXPECT_EQ(counters(4).limitReached, first + runs - limit + 100);
  EXPECT_EQ(budget(5).bytesLeft, 50);
}

TEST_F(CaptureProgramTest, ByteBudgetIsExact) {
  // Ethernet / IPv4 / UDP 1234 -> 53 / padded to 100 bytes
  Bytes p100 = P().eth().ipv4(A4, B4).udp(SP, DP).padTo(100).build();
  // Ethernet / IPv4 / UDP 1234 -> 53 / padded to 64 and to 50 bytes
  Bytes p64 = P().eth().ipv4(A4, B4).udp(SP, DP).padTo(64).build();
  Bytes p50 = P().eth().ipv4(A4, B4).udp(SP, DP).padTo(50).build();
  // Ethernet header alone (14 bytes)
  Bytes p14 = P().eth().next(0x0800).build();
  SlotSettings s = slotWith(3);
  s.byteLimit = 1050;
  arm(6, s);
  for (int i = 0; i < 10; i++)
    ASSERT_TRUE(passes(fd(), p100));
  EXPECT_EQ(describe(counters(6)), describe(SlotCounters{10, 10, 0, 10, 1000, 0, 0}));
  // The first packet that does not fit is refused and counted.
  ASSERT_TRUE(passes(fd(), p100));
  EXPECT_EQ(describe(counters(6)), describe(SlotCounters{11, 11, 0, 10, 1000, 0, 1}));
  EXPECT_EQ(budget(6).bytesLeft, 50);
  ASSERT_TRUE(passes(fd(), p64)); // 64 > 50: refused
  ASSERT_TRUE(passes(fd(), p50)); // fits exactly
  ASSERT_TRUE(passes(fd(), p14)); // nothing left
  EXPECT_EQ(describe(counters(6)), describe(SlotCounters{14, 14, 0, 11, 1050, 0, 3}));
  EXPECT_EQ(budget(6).bytesLeft, 0);
  auto recs = take();
  ASSERT_EQ(recs.size(), 11u);
  uint64_t sum = 0;
  for (const auto &r : recs)
    sum += r.h.cap_len;
  EXPECT_EQ(sum, 1050u);
  expectRecord(recs.back(), 6, 3, p50, 50);
  disarm(6);

  // The byte budget counts cap_len: snaplen 64 over 100-byte packets, 1000 bytes: 15 fit.
  s.snaplen = 64;
  s.byteLimit = 1000;
  arm(6, s);
  ASSERT_TRUE(passes(fd(), p100, 100));
  EXPECT_EQ(describe(counters(6)), describe(SlotCounters{100, 100, 0, 15, 960, 0, 85}));
  EXPECT_EQ(budget(6).bytesLeft, 40);
  recs = take();
  ASSERT_EQ(recs.size(), 15u);
  for (const auto &r : recs)
    ASSERT_NO_FATAL_FAILURE(expectRecord(r, 6, 3, p100, 64));
  disarm(6);

  // Packet and byte limits together: whichever runs out first.
  s.snaplen = RINGCAP_MAX_SNAPLEN;
  s.packetLimit = 5;
  s.byteLimit = 10000;
  arm(6, s);
  ASSERT_TRUE(passes(fd(), p100, 20));
  EXPECT_EQ(describe(counters(6)), describe(SlotCounters{20, 20, 0, 5, 500, 0, 15}));
  disarm(6);
  s.byteLimit = 250;
  arm(6, s);
  ASSERT_TRUE(passes(fd(), p100, 20));
  EXPECT_EQ(describe(counters(6)), describe(SlotCounters{20, 20, 0, 2, 200, 0, 18}));
  EXPECT_EQ(take().size(), 7u);
}

TEST_F(CaptureProgramTest, TimestampsAreMonotonicWallClock) {
  auto drainer = RingDrainer::create(program_->ringFd());
  ASSERT_TRUE(drainer) << drainer.error().message;
  struct Collect : PacketSink {
    void onPacket(const CapturedPacket &p) override {
      packets.push_back(p);
      data.emplace_back(p.data.begin(), p.data.end());
    }
    std::vector<CapturedPacket> packets;
    std::vector<Bytes> data;
  } sink;
  (*drainer)->route(7, 0x77, &sink);
  arm(7, slotWith(0x77, {.proto = UDP}));
  // Ethernet / IPv6 / UDP 1234 -> 53 / 16 bytes
  Bytes pkt = P().eth().ipv6(A6, B6).udp(SP, DP).payload(16).build();
  auto now = [] {
    timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return uint64_t(t.tv_sec) * 1000000000u + uint64_t(t.tv_nsec);
  };
  const int n = 5;
  uint64_t before[n], after[n];
  for (int i = 0; i < n; i++) {
    before[i] = now();
    ASSERT_TRUE(passes(fd(), pkt));
    after[i] = now();
  }
  auto consumed = (*drainer)->consume();
  ASSERT_TRUE(consumed) << consumed.error().message;
  EXPECT_EQ(*consumed, uint64_t(n));
  EXPECT_EQ((*drainer)->stats().records, uint64_t(n));
  EXPECT_EQ((*drainer)->stats().stale + (*drainer)->stats().malformed, 0u);
  ASSERT_EQ(sink.packets.size(), size_t(n));
  // The clock offset is exact to microseconds; allow 10 ms for it.
  const uint64_t slack = 10'000'000;
  for (int i = 0; i < n; i++) {
    const CapturedPacket &p = sink.packets[i];
    EXPECT_GE(p.tsNs + slack, before[i]) << "packet " << i;
    EXPECT_LE(p.tsNs, after[i] + slack) << "packet " << i;
    if (i) {
      EXPECT_GE(p.tsNs, sink.packets[i - 1].tsNs) << "packet " << i;
    }
    EXPECT_EQ(p.ifindex, loopbackIfindex());
    EXPECT_EQ(p.rxQueue, 0u);
    EXPECT_EQ(p.pktLen, pkt.size());
    EXPECT_EQ(sink.data[i], pkt);
  }
}

// Records of two CPUs' rings waiting together come out of one drain ordered by timestamp,
// not ring by ring.
TEST_F(CaptureProgramTest, DrainMergesTheCpusRingsByTimestamp) {
  auto cpus = allowedCpus();
  if (cpus.size() < 2)
    RINGCAP_SKIP("\n*** SKIPPING: the merge test needs two CPUs ***");
  auto drainer = RingDrainer::create(program_->ringFd());
  ASSERT_TRUE(drainer) << drainer.error().message;
  struct Collect : PacketSink {
    void onPacket(const CapturedPacket &p) override { ts.push_back(p.tsNs); }
    std::vector<uint64_t> ts;
  } sink;
  (*drainer)->route(7, 0x78, &sink);
  arm(7, slotWith(0x78, {.proto = UDP}));
  // Ethernet / IPv4 / UDP 1234 -> 53 / 16 bytes
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(16).build();
  // CPU a, then CPU b, then CPU a again: a's ring holds records older and newer than b's.
  const int n = 50;
  runOnCpu(fd(), pkt, n, cpus[0]);
  runOnCpu(fd(), pkt, n, cpus[1]);
  runOnCpu(fd(), pkt, n, cpus[0]);
  auto consumed = (*drainer)->consume();
  ASSERT_TRUE(consumed) << consumed.error().message;
  EXPECT_EQ(*consumed, uint64_t(3 * n));
  ASSERT_EQ(sink.ts.size(), size_t(3 * n));
  size_t disorder = 0;
  for (size_t i = 1; i < sink.ts.size(); i++)
    disorder += sink.ts[i] < sink.ts[i - 1];
  EXPECT_EQ(disorder, 0u) << "records out of timestamp order";
  (*drainer)->unroute(7);
}

// The fd of the program's per-CPU "counters" map, found through the program's map ids.
int countersMapFd(int progFd) {
  uint32_t ids[16] = {};
  bpf_prog_info info{};
  info.nr_map_ids = 16;
  info.map_ids = reinterpret_cast<uint64_t>(ids);
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(progFd, &info, &len))
    return -1;
  for (uint32_t i = 0; i < std::min<uint32_t>(info.nr_map_ids, 16); i++) {
    int fd = bpf_map_get_fd_by_id(ids[i]);
    if (fd < 0)
      continue;
    bpf_map_info m{};
    uint32_t mlen = sizeof m;
    if (!bpf_obj_get_info_by_fd(fd, &m, &mlen) && std::string(m.name) == "counters")
      return fd;
    close(fd);
  }
  return -1;
}

TEST_F(CaptureProgramTest, EveryCounterFieldIsSummedAndBaselined) {
  // Writes a distinct value into every field of slot 1's counters on every CPU (after the
  // slot was armed, so the baseline is subtracted) and reads them back through slotCounters.
  arm(1, slotWith(7));
  int mapFd = countersMapFd(fd());
  ASSERT_GE(mapFd, 0) << "finding the counters map: " << std::strerror(errno);
  int ncpus = libbpf_num_possible_cpus();
  ASSERT_GT(ncpus, 0);
  std::vector<ringcap_counters> values(static_cast<size_t>(ncpus));
  uint32_t key = 0;
  ASSERT_EQ(bpf_map_lookup_elem(mapFd, &key, values.data()), 0) << std::strerror(errno);
  SlotCounters expected;
  for (int cpu = 0; cpu < ncpus; cpu++) {
    ringcap_slot_counters &one = values[size_t(cpu)].slot[1];
    for (size_t i = 0; i < kSlotCounterFields.size(); i++) {
      const auto &f = kSlotCounterFields[i];
      uint64_t delta = (i + 1) * 1000 + uint64_t(cpu) + 1;
      one.*f.kernel += delta;
      expected.*f.member += delta;
    }
  }
  ASSERT_EQ(bpf_map_update_elem(mapFd, &key, values.data(), BPF_EXIST), 0) << std::strerror(errno);
  close(mapFd);
  SlotCounters c = counters(1);
  EXPECT_EQ(describe(c), describe(expected));
  EXPECT_EQ(c.copyFailed, (8 * 1000 + 1) * uint64_t(ncpus) + uint64_t(ncpus) * (ncpus - 1) / 2)
      << "copy_failed";
  // Disarm and re-arm: the new baseline makes every field 0 again.
  disarm(1);
  arm(1, slotWith(7));
  EXPECT_EQ(describe(counters(1)), describe(SlotCounters{}));
}

// Adds `delta` to one counter of `slot` on CPU 0 in the program's counters map.
void bumpCounter(int progFd, unsigned slot, __u64 ringcap_slot_counters::*field, uint64_t delta) {
  int mapFd = countersMapFd(progFd);
  ASSERT_GE(mapFd, 0) << "finding the counters map: " << std::strerror(errno);
  std::vector<ringcap_counters> values(static_cast<size_t>(libbpf_num_possible_cpus()));
  uint32_t key = 0;
  ASSERT_EQ(bpf_map_lookup_elem(mapFd, &key, values.data()), 0) << std::strerror(errno);
  values[0].slot[slot].*field += delta;
  ASSERT_EQ(bpf_map_update_elem(mapFd, &key, values.data(), BPF_EXIST), 0) << std::strerror(errno);
  close(mapFd);
}

TEST_F(CaptureProgramTest, ARefusalWhileBudgetIsLeftDoesNotEndTheCapture) {
  // A CPU can refuse a packet while the rest of the budget is on its way between the shared
  // budget and another CPU's lease (docs/design.md). That refusal is not the end of the
  // budget: a capture with packets and bytes left goes on, and ends when a limit is reached.
  auto drainer = RingDrainer::create(program_->ringFd());
  ASSERT_TRUE(drainer) << drainer.error().message;
  CaptureRequest request;
  request.type = CaptureType::Full;
  request.time_limit = 60;
  request.packet_limit = 100;
  request.byte_limit = 1u << 20;
  char dir[] = "/tmp/ringcap-jobtest.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/job.pcapng";
  auto job = CaptureJob::start(*program_, **drainer, request, SlotOptions{}, path,
                               {Attachment{1, "lo"}}, "test");
  ASSERT_TRUE(job) << job.error().message;
  unsigned slot = (*job)->slot();
  auto now = std::chrono::steady_clock::now();

  bumpCounter(fd(), slot, &ringcap_slot_counters::limit_reached, 1);
  EXPECT_EQ((*job)->check(now), StopReason::None) << "one refusal with 100 packets and 1 MiB left";

  // Too few bytes left for another packet of the snap length: the byte budget has run out.
  bumpCounter(fd(), slot, &ringcap_slot_counters::bytes_captured, (1u << 20) - 100);
  EXPECT_EQ((*job)->check(now), StopReason::ByteLimit);

  bumpCounter(fd(), slot, &ringcap_slot_counters::captured, 100);
  EXPECT_EQ((*job)->check(now), StopReason::PacketLimit);
  job->reset();
  std::filesystem::remove_all(dir);
}

TEST_F(CaptureProgramTest, ConsumeTakesAtMostTheGivenNumberOfRecords) {
  auto drainer = RingDrainer::create(program_->ringFd());
  ASSERT_TRUE(drainer) << drainer.error().message;
  struct Count : PacketSink {
    void onPacket(const CapturedPacket &) override { n++; }
    uint64_t n = 0;
  } sink;
  (*drainer)->route(5, 0x55, &sink);
  arm(5, slotWith(0x55, {.proto = UDP}));
  // Ethernet / IPv4 / UDP 1234 -> 53 / 16 bytes
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(16).build();
  ASSERT_TRUE(passes(fd(), pkt, 5));
  // A slice of a full ring per event-loop dispatch; the rest stays for the next one.
  for (uint64_t want : {2u, 2u, 1u, 0u}) {
    auto n = (*drainer)->consume(2);
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, want);
  }
  EXPECT_EQ(sink.n, 5u);
  EXPECT_EQ((*drainer)->stats().records, 5u);
  ASSERT_TRUE(passes(fd(), pkt, 3));
  auto all = (*drainer)->consume();
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(*all, 3u);
  EXPECT_EQ(sink.n, 8u);
}

// The clock offset as a test sets it (the real one is realtimeMinusBoottimeNs).
int64_t fakeOffsetNs = 0;
int64_t fakeClockOffset() { return fakeOffsetNs; }

TEST_F(CaptureProgramTest, ClockOffsetIsReadAgainOnRefresh) {
  fakeOffsetNs = 1'700'000'000'000'000'000;
  auto drainer = RingDrainer::create(program_->ringFd(), fakeClockOffset);
  ASSERT_TRUE(drainer) << drainer.error().message;
  struct Collect : PacketSink {
    void onPacket(const CapturedPacket &p) override { ts.push_back(p.tsNs); }
    std::vector<uint64_t> ts;
  } sink;
  (*drainer)->route(4, 0x44, &sink);
  arm(4, slotWith(0x44, {.proto = UDP}));
  // Ethernet / IPv4 / UDP 1234 -> 53 / 16 bytes
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(16).build();
  auto boottime = [] {
    timespec t;
    clock_gettime(CLOCK_BOOTTIME, &t);
    return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
  };
  auto convertedAround = [&](int64_t offset) {
    int64_t before = boottime();
    EXPECT_TRUE(passes(fd(), pkt));
    int64_t after = boottime();
    auto n = (*drainer)->consume();
    EXPECT_TRUE(n && *n == 1u);
    EXPECT_FALSE(sink.ts.empty());
    int64_t ts = sink.ts.empty() ? 0 : int64_t(sink.ts.back());
    EXPECT_GE(ts, before + offset);
    EXPECT_LE(ts, after + offset);
  };
  convertedAround(fakeOffsetNs);
  // The wall clock is set one hour forward: until the offset is read again, stamps keep
  // the old one; afterwards they follow the clock.
  const int64_t hour = 3600'000'000'000;
  int64_t old = fakeOffsetNs;
  fakeOffsetNs += hour;
  convertedAround(old);
  EXPECT_EQ((*drainer)->refreshClockOffset(), hour);
  EXPECT_EQ((*drainer)->clockOffsetNs(), fakeOffsetNs);
  convertedAround(fakeOffsetNs);
  EXPECT_EQ((*drainer)->refreshClockOffset(), 0);
}

TEST(ClockStepWatch, IsQuietWhileTheClockIsNotSet) {
  auto w = ClockStepWatch::create();
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_GE((*w)->fd(), 0);
  EXPECT_FALSE((*w)->stepped());
}

// Pins the calling thread to the CPU it runs on, until destroyed.
class PinnedToOneCpu {
public:
  PinnedToOneCpu() {
    if (sched_getaffinity(0, sizeof saved_, &saved_))
      return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    ok_ = sched_setaffinity(0, sizeof one, &one) == 0;
  }
  ~PinnedToOneCpu() {
    if (ok_)
      sched_setaffinity(0, sizeof saved_, &saved_);
  }
  PinnedToOneCpu(const PinnedToOneCpu &) = delete;
  PinnedToOneCpu &operator=(const PinnedToOneCpu &) = delete;
  bool ok() const { return ok_; }

private:
  cpu_set_t saved_{};
  bool ok_ = false;
};

TEST(CaptureProgramRing, RingFullIsCountedAndGivesTheBudgetBack) {
  // The smallest ring, one page. A 60-byte frame takes the 64-byte size class: a record is
  // 8 (ring header) + 32 + 64 = 104 bytes, so 39 fit in 4 KiB. Nothing drains the ring.
  const uint32_t ringBytes = uint32_t(sysconf(_SC_PAGESIZE));
  const uint64_t fit = ringBytes / 104, limit = fit + 11, runs = fit + 61;
  Availability av;
  auto program = loadProgram(ringBytes, av);
  REQUIRE_BPF(av);
  ASSERT_TRUE(program);
  CaptureProgram &prog = **program;
  RingReader reader(prog.ringFd());
  ASSERT_TRUE(reader.ok());
  int fd = prog.programFd();
  // Every run on one CPU, so into one CPU's ring.
  PinnedToOneCpu pinned;
  ASSERT_TRUE(pinned.ok());
  // Ethernet / IPv4 / UDP 1234 -> 53 / padded to 60 bytes
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).padTo(60).build();
  SlotSettings s = slotWith(42, {A4, B4, SP, DP, UDP});
  s.packetLimit = limit;
  ASSERT_TRUE(prog.armSlot(0, s));
  ASSERT_TRUE(passes(fd, pkt, int(runs)));
  SlotCounters c = prog.slotCounters(0).value();
  EXPECT_EQ(describe(c), describe(SlotCounters{runs, runs, 0, fit, fit * 60, runs - fit, 0}));
  EXPECT_EQ(c.captured + c.ringLost, c.matched);
  EXPECT_EQ(prog.slotBudget(0).value().packetsLeft, 11) << "lost packets must not use budget";
  auto recs = reader.take();
  ASSERT_EQ(recs.size(), fit);
  for (const auto &r : recs)
    ASSERT_NO_FATAL_FAILURE(expectRecord(r, 0, 42, pkt, 60));
  // Drained: the 11 packets of budget left are captured, then the limit applies.
  ASSERT_TRUE(passes(fd, pkt, int(runs)));
  EXPECT_EQ(
      describe(prog.slotCounters(0).value()),
      describe(SlotCounters{2 * runs, 2 * runs, 0, limit, limit * 60, runs - fit, runs - 11}));
  EXPECT_EQ(reader.take().size(), 11u);
  EXPECT_EQ(prog.slotBudget(0).value().packetsLeft, 0);
}

// A packet that three slots take is one record: when it does not fit, each slot counts its
// own loss and gets its own budget back; a slot whose limit is reached leaves the records.
TEST(CaptureProgramRing, RingFullIsCountedPerSlotOfASharedRecord) {
  // One page. A 60-byte frame takes the 64-byte size class: a record of three slots is
  // 8 (ring header) + 24 + 3 * 8 + 64 = 120 bytes, of two slots 112. Slot 5 may take 10
  // packets: 10 records of three slots (1200 bytes), then 25 of two fit the page (4000).
  const uint32_t ringBytes = uint32_t(sysconf(_SC_PAGESIZE));
  ASSERT_EQ(ringBytes, 4096u) << "the arithmetic below is for 4 KiB pages";
  const uint64_t fit = 35, runs = 100;
  Availability av;
  auto program = loadProgram(ringBytes, av);
  REQUIRE_BPF(av);
  ASSERT_TRUE(program);
  CaptureProgram &prog = **program;
  RingReader reader(prog.ringFd());
  ASSERT_TRUE(reader.ok());
  int fd = prog.programFd();
  PinnedToOneCpu pinned;
  ASSERT_TRUE(pinned.ok());
  // Ethernet / IPv4 / UDP 1234 -> 53 / padded to 60 bytes
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).padTo(60).build();
  SlotSettings a = slotWith(0xa, {.proto = UDP}), b = slotWith(0xb, {.src = A4}),
               c = slotWith(0xc, {});
  a.packetLimit = fit + 7; // 7 packets of budget must be left
  b.snaplen = 40;
  b.byteLimit = 40 * (fit + 3); // 120 bytes of budget must be left
  c.snaplen = 20;
  c.packetLimit = 10;
  ASSERT_TRUE(prog.armSlot(0, a));
  ASSERT_TRUE(prog.armSlot(2, b));
  ASSERT_TRUE(prog.armSlot(5, c));
  ASSERT_TRUE(passes(fd, pkt, int(runs)));
  EXPECT_EQ(describe(prog.slotCounters(0).value()),
            describe(SlotCounters{runs, runs, 0, fit, fit * 60, runs - fit, 0}));
  EXPECT_EQ(describe(prog.slotCounters(2).value()),
            describe(SlotCounters{runs, runs, 0, fit, fit * 40, runs - fit, 0}));
  EXPECT_EQ(describe(prog.slotCounters(5).value()),
            describe(SlotCounters{runs, runs, 0, 10, 10 * 20, 0, runs - 10}));
  EXPECT_EQ(prog.slotBudget(0).value().packetsLeft, 7) << "lost packets must not use budget";
  EXPECT_EQ(prog.slotBudget(2).value().bytesLeft, 120) << "lost packets must not use budget";
  EXPECT_EQ(prog.slotBudget(5).value().packetsLeft, 0);
  auto recs = reader.take();
  EXPECT_EQ(reader.records(), fit);
  ASSERT_EQ(recs.size(), 2 * fit + 10);
  size_t i = 0;
  for (uint64_t k = 0; k < fit; k++) {
    ASSERT_NO_FATAL_FAILURE(expectRecord(recs[i++], 0, 0xa, pkt, 60));
    ASSERT_NO_FATAL_FAILURE(expectRecord(recs[i++], 2, 0xb, pkt, 40));
    if (k < 10)
      ASSERT_NO_FATAL_FAILURE(expectRecord(recs[i++], 5, 0xc, pkt, 20));
  }
}

// ---- The history slot ----

std::string describe(const HistoryCounters &c) {
  std::ostringstream o;
#define RINGCAP_X(field, member, description) o << #field "=" << c.member << " ";
  RINGCAP_HISTORY_COUNTERS(RINGCAP_X)
#undef RINGCAP_X
  return o.str();
}

HistorySettings historyWith(uint32_t cookie, uint32_t sampleRate, uint32_t ringBytes = 1u << 20) {
  HistorySettings h;
  h.cookie = cookie;
  h.sampleRate = sampleRate;
  h.ringBytes = ringBytes;
  return h;
}

class HistorySlotTest : public CaptureProgramTest {
protected:
  void armHistory(const HistorySettings &h) {
    auto r = program_->armHistory(h);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_TRUE(program_->historyArmed());
    ASSERT_GE(program_->historyRingFd(), 0);
    history_ = std::make_unique<RingReader>(program_->historyRingFd());
    ASSERT_TRUE(history_->ok());
    history_->take(); // records of an earlier arming
  }
  std::vector<Rec> takeHistory() { return history_->take(); }
  HistoryCounters historyCounters() const { return program_->historyCounters().value(); }
  std::unique_ptr<RingReader> history_;
};

TEST_F(HistorySlotTest, RateOneKeepsEveryPacketCutToTheSnaplen) {
  armHistory(historyWith(0x4157, 1));
  // Ethernet / IPv4 / UDP 1234 -> 53 / padded to 600 bytes; and one of 74 bytes
  Bytes big = P().eth().ipv4(A4, B4).udp(SP, DP).padTo(600).build();
  Bytes small = P().eth().ipv4(A4, B4).udp(SP, DP).payload(32).build();
  const int runs = 1000;
  ASSERT_TRUE(passes(fd(), big, runs));
  ASSERT_TRUE(passes(fd(), small, 1));
  EXPECT_EQ(describe(historyCounters()),
            describe(HistoryCounters{runs + 1, runs + 1, runs * 160 + small.size(), 0, 0}));
  auto recs = takeHistory();
  ASSERT_EQ(recs.size(), size_t(runs + 1));
  for (int i = 0; i < runs; i++) {
    EXPECT_EQ(recs[i].h.slot_mask, 1u << CaptureProgram::kHistoryRecordSlot);
    ASSERT_NO_FATAL_FAILURE(
        expectRecord(recs[i], CaptureProgram::kHistoryRecordSlot, 0x4157, big, 160));
  }
  ASSERT_NO_FATAL_FAILURE(expectRecord(recs[runs], CaptureProgram::kHistoryRecordSlot, 0x4157,
                                       small, uint32_t(small.size())));
  EXPECT_TRUE(take().empty()) << "the history wrote into the jobs' rings";
  GlobalCounters g = global();
  // The history alone does not run the jobs' path.
  ASSERT_TRUE(passes(fd(), small, 10));
  EXPECT_EQ(global().packets, g.packets);
}

TEST_F(HistorySlotTest, RateNSamplesOneInN) {
  const uint32_t rate = 10;
  HistorySettings h = historyWith(0x4158, rate);
  h.snaplen = 40;
  armHistory(h);
  // Ethernet / IPv4 / UDP 1234 -> 53 / 32 bytes (74 bytes), 20000 runs
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(32).build();
  const int runs = 20000;
  ASSERT_TRUE(passes(fd(), pkt, runs));
  HistoryCounters c = historyCounters();
  EXPECT_EQ(c.emitted, c.sampled) << describe(c);
  EXPECT_EQ(c.bytesEmitted, c.sampled * 40) << describe(c);
  EXPECT_EQ(c.ringFull + c.copyFailed, 0u) << describe(c);
  // Gaps uniform in 1..2N-1 (mean N): the count's sigma is below Binomial(20000, 0.1)'s, 42.4.
  double sigma = std::sqrt(runs * 0.1 * 0.9);
  EXPECT_LE(std::abs(double(c.sampled) - double(runs) / rate), 5 * sigma) << describe(c);
  auto recs = takeHistory();
  EXPECT_EQ(recs.size(), c.emitted);
  for (const auto &r : recs)
    ASSERT_NO_FATAL_FAILURE(expectRecord(r, CaptureProgram::kHistoryRecordSlot, 0x4158, pkt, 40));
}

TEST_F(HistorySlotTest, JobAndHistoryAtOnceEachGetTheirPackets) {
  arm(3, slotWith(0x33, {.proto = UDP}));
  armHistory(historyWith(0x4159, 1));
  // Ethernet / IPv6 / UDP 1234 -> 53 / padded to 300 bytes
  Bytes pkt = P().eth().ipv6(A6, B6).udp(SP, DP).padTo(300).build();
  const int runs = 50;
  ASSERT_TRUE(passes(fd(), pkt, runs));
  EXPECT_EQ(describe(counters(3)), describe(SlotCounters{runs, runs, 0, runs, runs * 300, 0, 0}));
  EXPECT_EQ(describe(historyCounters()), describe(HistoryCounters{runs, runs, runs * 160, 0, 0}));
  auto jobs = take();
  ASSERT_EQ(jobs.size(), size_t(runs));
  for (const auto &r : jobs) {
    EXPECT_EQ(r.h.slot_mask, 1u << 3) << "the history's slot bit in a job's record";
    ASSERT_NO_FATAL_FAILURE(expectRecord(r, 3, 0x33, pkt, 300));
  }
  auto hist = takeHistory();
  ASSERT_EQ(hist.size(), size_t(runs));
  for (const auto &r : hist)
    ASSERT_NO_FATAL_FAILURE(expectRecord(r, CaptureProgram::kHistoryRecordSlot, 0x4159, pkt, 160));
}

TEST_F(HistorySlotTest, DisarmStopsItAndRearmingStartsAnew) {
  armHistory(historyWith(0x415a, 1));
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(8).build();
  ASSERT_TRUE(passes(fd(), pkt, 10));
  ASSERT_TRUE(program_->disarmHistory());
  EXPECT_FALSE(program_->historyArmed());
  ASSERT_TRUE(passes(fd(), pkt, 25));
  EXPECT_EQ(historyCounters().sampled, 10u);
  EXPECT_EQ(takeHistory().size(), 10u);
  // A large rate leaves countdowns of up to 2N - 1; re-arming at 1 in 1 samples the next
  // packet, and the same ring size keeps the ring.
  int ring = program_->historyRingFd();
  armHistory(historyWith(0x415b, 1000));
  ASSERT_TRUE(passes(fd(), pkt, 5));
  armHistory(historyWith(0x415c, 1));
  EXPECT_EQ(program_->historyRingFd(), ring);
  EXPECT_EQ(describe(historyCounters()), describe(HistoryCounters{}));
  ASSERT_TRUE(passes(fd(), pkt, 3));
  EXPECT_EQ(historyCounters().emitted, 3u);
  auto recs = takeHistory();
  ASSERT_EQ(recs.size(), 3u);
  for (const auto &r : recs)
    EXPECT_EQ(r.h.cookie, 0x415cu);
}

TEST_F(HistorySlotTest, InterfaceRestriction) {
  const uint32_t lo = loopbackIfindex();
  ASSERT_NE(lo, 0u);
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(8).build();
  xdp_md ctx{};
  ctx.data_end = uint32_t(pkt.size());
  ctx.ingress_ifindex = lo;
  struct Row {
    std::vector<uint32_t> ifindexes;
    uint64_t sampled;
  } rows[] = {
      {{lo + 1000}, 0},
      {{lo + 1000, lo}, 4},
      {{lo + 1, lo + 2, lo + 3, lo + 4, lo + 5, lo + 6, lo + 7, lo}, 4},
      {{lo + 1, lo + 2, lo + 3, lo + 4, lo + 5, lo + 6, lo + 7, lo + 8}, 0},
      {{}, 4},
  };
  for (const auto &row : rows) {
    HistorySettings h = historyWith(0x415d, 1);
    h.ifindexes = row.ifindexes;
    armHistory(h);
    ASSERT_TRUE(passes(fd(), pkt, 4, &ctx));
    EXPECT_EQ(historyCounters().sampled, row.sampled) << row.ifindexes.size() << " interfaces";
    EXPECT_EQ(takeHistory().size(), row.sampled);
  }
}

TEST_F(HistorySlotTest, BadSettingsAreRefusedAndChangeNothing) {
  armHistory(historyWith(0x415e, 1));
  int ring = program_->historyRingFd();
  struct Row {
    const char *what;
    std::function<void(HistorySettings &)> change;
    const char *says;
  } rows[] = {
      {"rate 0", [](HistorySettings &h) { h.sampleRate = 0; }, "history sample rate must be"},
      {"rate too large", [](HistorySettings &h) { h.sampleRate = RINGCAP_MAX_SAMPLE_RATE + 1; },
       "history sample rate must be"},
      {"snaplen 0", [](HistorySettings &h) { h.snaplen = 0; }, "history snaplen must be"},
      {"snaplen too large", [](HistorySettings &h) { h.snaplen = RINGCAP_MAX_SNAPLEN + 1; },
       "history snaplen must be"},
      {"nine interfaces", [](HistorySettings &h) { h.ifindexes.assign(9, 1); },
       "the history can use at most 8 interfaces"},
      {"ifindex 0",
       [](HistorySettings &h) {
         h.ifindexes = {1, 0};
       },
       "ifindex 0"},
      {"ring not a power of two", [](HistorySettings &h) { h.ringBytes = 3u << 20; },
       "history ring size must be a power of two"},
      {"ring below a page", [](HistorySettings &h) { h.ringBytes = 1024; },
       "history ring size must be a power of two"},
      {"wake-up above half the ring", [](HistorySettings &h) { h.wakeupBytes = 600u << 10; },
       "history wake-up bytes must be at most half the ring"},
  };
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(8).build();
  for (const auto &row : rows) {
    HistorySettings h = historyWith(0x415f, 7);
    row.change(h);
    auto r = program_->armHistory(h);
    ASSERT_FALSE(r) << row.what;
    EXPECT_NE(r.error().message.find(row.says), std::string::npos)
        << row.what << ": " << r.error().message;
    EXPECT_TRUE(program_->historyArmed()) << row.what;
    EXPECT_EQ(program_->historyRingFd(), ring) << row.what;
  }
  // Still armed as before: every packet, the first cookie.
  ASSERT_TRUE(passes(fd(), pkt, 2));
  auto recs = takeHistory();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].h.cookie, 0x415eu);
}

TEST_F(HistorySlotTest, RingDrainerConsumesTheHistoryRing) {
  armHistory(historyWith(0x4160, 1));
  history_.reset(); // the drainer is the consumer here
  auto drainer = RingDrainer::create(program_->historyRingFd());
  ASSERT_TRUE(drainer) << drainer.error().message;
  struct Collect : PacketSink {
    void onPacket(const CapturedPacket &p) override {
      lens.push_back(p.data.size());
      pktLens.push_back(p.pktLen);
    }
    std::vector<size_t> lens;
    std::vector<uint32_t> pktLens;
  } sink;
  (*drainer)->route(CaptureProgram::kHistoryRecordSlot, 0x4160, &sink);
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).padTo(1000).build();
  ASSERT_TRUE(passes(fd(), pkt, 40));
  auto n = (*drainer)->consume();
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 40u);
  EXPECT_EQ(sink.lens, std::vector<size_t>(40, 160));
  EXPECT_EQ(sink.pktLens, std::vector<uint32_t>(40, 1000));
  EXPECT_EQ((*drainer)->stats().malformed, 0u);
  EXPECT_EQ((*drainer)->stats().stale, 0u);
}

// Whether the program wakes the history ring's consumer at the first record into the empty
// ring is the history's own choice: an edge-triggered epoll on the ring sees the wake-up (a
// submit without one does not make the ring's fd ready); unset, it is the jobs' setting
// (wakeOnFirstRecord, off in this fixture).
TEST_F(HistorySlotTest, WakeUpAtTheFirstRecordIsTheHistorysChoice) {
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(8).build();
  for (std::optional<bool> choice :
       {std::optional<bool>(true), std::optional<bool>(false), std::optional<bool>()}) {
    const bool wake = choice.value_or(false);
    HistorySettings h = historyWith(0x4162, 1);
    h.wakeOnFirstRecord = choice;
    armHistory(h); // the ring is empty after this
    UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
    ASSERT_TRUE(ep);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ASSERT_EQ(epoll_ctl(ep.get(), EPOLL_CTL_ADD, program_->historyRingFd(), &ev), 0);
    // Added to an empty ring: not ready.
    ASSERT_EQ(epoll_wait(ep.get(), &ev, 1, 0), 0);
    ASSERT_TRUE(passes(fd(), pkt, 1));
    // The wake-up is an irq_work after the run: a generous deadline for it; without one,
    // nothing makes the fd ready within the same time.
    int n = epoll_wait(ep.get(), &ev, 1, wake ? 5000 : 300);
    EXPECT_EQ(n, wake ? 1 : 0) << "wakeOnFirstRecord " << wake;
    EXPECT_EQ(takeHistory().size(), 1u);
  }
}

// Unset, the history ring wakes its consumer at the first record as the jobs' rings do when
// the program was opened with wakeOnFirstRecord (ringcapd's DrainLoop relies on it).
TEST(HistorySlotRing, WakeUpAtTheFirstRecordFollowsTheProgramWhenUnset) {
  Availability av;
  auto program = loadProgram(1u << 20, av, true);
  REQUIRE_BPF(av);
  ASSERT_TRUE(program);
  CaptureProgram &prog = **program;
  auto r = prog.armHistory(historyWith(0x4163, 1));
  ASSERT_TRUE(r) << r.error().message;
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  ASSERT_TRUE(ep);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ASSERT_EQ(epoll_ctl(ep.get(), EPOLL_CTL_ADD, prog.historyRingFd(), &ev), 0);
  ASSERT_EQ(epoll_wait(ep.get(), &ev, 1, 0), 0);
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).payload(8).build();
  ASSERT_TRUE(passes(prog.programFd(), pkt, 1));
  EXPECT_EQ(epoll_wait(ep.get(), &ev, 1, 5000), 1) << "no wake-up at the first record";
  EXPECT_EQ(prog.historyCounters().value().emitted, 1u);
}

// A full history ring drops the history's packets (counted) and takes nothing from a job.
TEST(HistorySlotRing, AFullHistoryRingIsCountedAndLeavesTheJobsAlone) {
  // The job's rings: 4 MiB, room for everything. The history's ring: one page. A 600-byte
  // frame cut to 160 bytes takes the 192-byte size class: 8 (ring header) + 32 + 192 = 232
  // bytes a record, so ringBytes / 232 fit. Nothing drains the history ring.
  const uint32_t page = uint32_t(sysconf(_SC_PAGESIZE));
  const uint64_t fit = page / 232, runs = fit + 100;
  Availability av;
  auto program = loadProgram(4u << 20, av);
  REQUIRE_BPF(av);
  ASSERT_TRUE(program);
  CaptureProgram &prog = **program;
  RingReader jobs(prog.ringFd());
  ASSERT_TRUE(jobs.ok());
  ASSERT_TRUE(prog.armSlot(0, slotWith(0x77, {.proto = UDP})));
  auto r = prog.armHistory(historyWith(0x4161, 1, page));
  ASSERT_TRUE(r) << r.error().message;
  RingReader history(prog.historyRingFd());
  ASSERT_TRUE(history.ok());
  Bytes pkt = P().eth().ipv4(A4, B4).udp(SP, DP).padTo(600).build();
  ASSERT_TRUE(passes(prog.programFd(), pkt, int(runs)));
  EXPECT_EQ(describe(prog.historyCounters().value()),
            describe(HistoryCounters{runs, fit, fit * 160, runs - fit, 0}));
  EXPECT_EQ(describe(prog.slotCounters(0).value()),
            describe(SlotCounters{runs, runs, 0, runs, runs * 600, 0, 0}));
  EXPECT_EQ(history.take().size(), fit);
  auto recs = jobs.take();
  ASSERT_EQ(recs.size(), runs);
  for (const auto &rec : recs)
    ASSERT_NO_FATAL_FAILURE(expectRecord(rec, 0, 0x77, pkt, 600));
  // Drained, the history takes packets again.
  ASSERT_TRUE(passes(prog.programFd(), pkt, 3));
  EXPECT_EQ(prog.historyCounters().value().emitted, fit + 3);
  EXPECT_EQ(history.take().size(), 3u);
}

TEST(CpuList, ParsesTheKernelsFormat) {
  auto l = parseCpuList("0-3,8,10-11\n");
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(*l, (std::vector<unsigned>{0, 1, 2, 3, 8, 10, 11}));
  auto one = parseCpuList("0");
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(*one, std::vector<unsigned>{0});
  for (const char *bad :
       {"", "\n", "a", "3-1", "0,,1", "1,0", "0-", "0 1", "-1", "0-2,2", "1234567"}) {
    auto r = parseCpuList(bad);
    EXPECT_FALSE(r) << "accepted \"" << bad << "\"";
    if (!r) {
      EXPECT_NE(r.error().message.find("CPU list"), std::string::npos) << r.error().message;
    }
  }
}

TEST(RingLayout, ARingPerOnlineCpuAndOfflineCpusShareThem) {
  // CPUs 0, 2 and 3 online of 6: three rings; 1, 4 and 5 write into online CPUs' rings.
  EXPECT_EQ(ringOfCpu(6, {0, 2, 3}), (std::vector<unsigned>{0, 1, 1, 2, 1, 2}));
  EXPECT_EQ(ringOfCpu(4, {0, 1, 2, 3}), (std::vector<unsigned>{0, 1, 2, 3}));
  // Online CPUs beyond the possible ones are ignored; none known: a ring per possible CPU.
  EXPECT_EQ(ringOfCpu(2, {0, 1, 5}), (std::vector<unsigned>{0, 1}));
  EXPECT_EQ(ringOfCpu(3, {}), (std::vector<unsigned>{0, 1, 2}));
  EXPECT_EQ(ringOfCpu(3, {7}), (std::vector<unsigned>{0, 1, 2}));
}

// The ring memory is split over the CPUs online at load; every possible CPU's entry of the
// array names one of those rings, and the drainer maps each ring once.
TEST(CaptureProgramRing, RingsAreSizedByOnlineCpus) {
  const uint32_t total = 1u << 20;
  Availability av;
  auto program = loadProgram(total, av);
  REQUIRE_BPF(av);
  ASSERT_TRUE(program);
  CaptureProgram &prog = **program;
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  ASSERT_GT(online, 0);
  EXPECT_EQ(prog.rings(), unsigned(online));
  EXPECT_EQ(prog.cpus(), unsigned(libbpf_num_possible_cpus()));
  EXPECT_EQ(prog.ringBytes(), perCpuRingBytes(total, unsigned(online)));
  std::vector<uint32_t> ids;
  for (uint32_t cpu = 0; cpu < prog.cpus(); cpu++) {
    uint32_t id = 0;
    ASSERT_EQ(bpf_map_lookup_elem(prog.ringFd(), &cpu, &id), 0) << "no ring for CPU " << cpu;
    if (std::find(ids.begin(), ids.end(), id) == ids.end())
      ids.push_back(id);
  }
  EXPECT_EQ(ids.size(), size_t(online));
  auto drainer = RingDrainer::create(prog.ringFd());
  ASSERT_TRUE(drainer) << drainer.error().message;
  EXPECT_EQ((*drainer)->rings(), size_t(online));
}

// A ring that several CPUs' entries name (CPUs offline at load) is mapped and drained once.
TEST(CaptureProgramRing, DrainerMapsASharedRingOnce) {
  if (geteuid() != 0)
    RINGCAP_SKIP("\n*** SKIPPING: creating BPF maps needs root ***");
  UniqueFd ring(bpf_map_create(BPF_MAP_TYPE_RINGBUF, nullptr, 0, 0, 1u << 16, nullptr));
  ASSERT_TRUE(ring) << std::strerror(errno);
  LIBBPF_OPTS(bpf_map_create_opts, o, .inner_map_fd = uint32_t(ring.get()));
  UniqueFd outer(bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, nullptr, 4, 4, 3, &o));
  ASSERT_TRUE(outer) << std::strerror(errno);
  for (uint32_t cpu = 0; cpu < 3; cpu++) {
    int fd = ring.get();
    ASSERT_EQ(bpf_map_update_elem(outer.get(), &cpu, &fd, BPF_ANY), 0) << std::strerror(errno);
  }
  auto drainer = RingDrainer::create(outer.get());
  ASSERT_TRUE(drainer) << drainer.error().message;
  EXPECT_EQ((*drainer)->rings(), 1u);
  EXPECT_EQ((*drainer)->ringFds().size(), 1u);
}

} // namespace
