#include "engine/CaptureProgram.h"

#include "capture.skel.h"
#include "util/UniqueFd.h"

#include <algorithm>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <fstream>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <xdp/libxdp.h>

namespace ringcap {
namespace {

bool isPowerOfTwo(uint32_t v) { return v && !(v & (v - 1)); }

Result<std::string> readOnlineCpus() {
  std::ifstream in("/sys/devices/system/cpu/online");
  std::string text;
  if (!in || !std::getline(in, text))
    return Error{EIO, "cannot read /sys/devices/system/cpu/online"};
  return text;
}

} // namespace

Result<std::vector<unsigned>> parseCpuList(std::string_view text) {
  auto bad = [&](const std::string &why) {
    return Error{EINVAL, "CPU list \"" + std::string(text.substr(0, 64)) + "\": " + why};
  };
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.remove_suffix(1);
  if (text.empty())
    return bad("empty");
  std::vector<unsigned> cpus;
  auto number = [&](std::string_view &t, unsigned &v) {
    size_t i = 0;
    v = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9' && i < 6)
      v = v * 10 + unsigned(t[i++] - '0');
    if (i == 0 || (i < t.size() && t[i] >= '0' && t[i] <= '9'))
      return false;
    t.remove_prefix(i);
    return true;
  };
  for (;;) {
    unsigned first = 0, last = 0;
    if (!number(text, first))
      return bad("expected a CPU number");
    last = first;
    if (!text.empty() && text.front() == '-') {
      text.remove_prefix(1);
      if (!number(text, last) || last < first)
        return bad("expected a range low-high");
    }
    if (!cpus.empty() && first <= cpus.back())
      return bad("CPUs out of order");
    for (unsigned c = first; c <= last; c++)
      cpus.push_back(c);
    if (text.empty())
      return cpus;
    if (text.front() != ',')
      return bad("expected ','");
    text.remove_prefix(1);
  }
}

std::vector<unsigned> ringOfCpu(unsigned possible, const std::vector<unsigned> &online) {
  std::vector<unsigned> ring(possible, 0);
  std::vector<bool> isOnline(possible, false);
  unsigned rings = 0;
  for (unsigned c : online)
    if (c < possible && !isOnline[c]) {
      isOnline[c] = true;
      ring[c] = rings++;
    }
  for (unsigned c = 0; c < possible; c++) {
    if (!rings)
      ring[c] = c;
    else if (!isOnline[c])
      ring[c] = c % rings;
  }
  return ring;
}

uint32_t perCpuRingBytes(uint32_t ringBytes, unsigned cpus) {
  uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  uint32_t share = ringBytes / std::max(cpus, 1u);
  uint32_t size = page;
  while (size * 2 <= share && size * 2 != 0)
    size *= 2;
  return size;
}

Result<std::unique_ptr<CaptureProgram>> CaptureProgram::open(const CaptureProgramOptions &options) {
  long page = sysconf(_SC_PAGESIZE);
  if (!isPowerOfTwo(options.ringBytes) || options.ringBytes < static_cast<uint32_t>(page))
    return Error{EINVAL, "ring size must be a power of two of at least " + std::to_string(page) +
                             " bytes (got " + std::to_string(options.ringBytes) + ")"};
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0)
    return Error::fromErrno(cpus, "counting possible CPUs");
  // One ring per online CPU; a CPU offline now shares an online CPU's ring if it comes up.
  std::vector<unsigned> online;
  if (auto text = readOnlineCpus(); !text) {
    spdlog::warn("{}: a ring for every possible CPU", text.error().message);
  } else if (auto list = parseCpuList(*text); !list) {
    spdlog::warn("{}: a ring for every possible CPU", list.error().message);
  } else {
    online = std::move(list).value();
  }
  std::vector<unsigned> ringOf = ringOfCpu(static_cast<unsigned>(cpus), online);
  const unsigned rings = *std::max_element(ringOf.begin(), ringOf.end()) + 1;
  uint32_t perCpu = perCpuRingBytes(options.ringBytes, rings);
  if (perCpu < 4u * (RINGCAP_RECORD_MAX_HDR_LEN + RINGCAP_MAX_SNAPLEN + 1 + 8))
    spdlog::debug("rings of {} bytes per CPU hold fewer than four maximum-size records", perCpu);

  std::unique_ptr<CaptureProgram> p(new CaptureProgram());
  p->skel_ = capture__open();
  if (!p->skel_)
    return Error::fromErrno(errno, "opening the capture program");
  uint32_t wakeup = options.wakeupBytes;
  if (!wakeup)
    wakeup = std::clamp<uint32_t>(perCpu / 16, 64u << 10, 1u << 20);
  wakeup = std::min(wakeup, perCpu / 2);
  p->skel_->rodata->wakeup_bytes = wakeup;
  p->skel_->rodata->wake_first = options.wakeOnFirstRecord ? 1 : 0;
  p->wakeupBytes_ = wakeup;
  p->wakeOnFirstRecord_ = options.wakeOnFirstRecord;
  p->skel_->rodata->nr_cpus = static_cast<uint32_t>(cpus);
  if (int err = bpf_map__set_max_entries(p->skel_->maps.rings, static_cast<uint32_t>(cpus)))
    return Error::fromErrno(err, "sizing the array of rings");
  // The rings are created here; the first is also the template of the array's values.
  for (unsigned ring = 0; ring < rings; ring++) {
    UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_RINGBUF, nullptr, 0, 0, perCpu, nullptr));
    if (!fd)
      return Error::fromErrno(errno, "creating ring buffer " + std::to_string(ring));
    p->ringFds_.push_back(std::move(fd));
  }
  if (int err = bpf_map__set_inner_map_fd(p->skel_->maps.rings, p->ringFds_[0].get()))
    return Error::fromErrno(err, "setting the ring buffers' template");
  // The history ring is created when the history is armed, of the size it asks for; a
  // one-page ring is the template of its array until then.
  p->historyTemplate_ =
      UniqueFd(bpf_map_create(BPF_MAP_TYPE_RINGBUF, nullptr, 0, 0, uint32_t(page), nullptr));
  if (!p->historyTemplate_)
    return Error::fromErrno(errno, "creating the history ring's template");
  if (int err = bpf_map__set_inner_map_fd(p->skel_->maps.history_ring, p->historyTemplate_.get()))
    return Error::fromErrno(err, "setting the history ring's template");
  if (int err = bpf_map__set_max_entries(p->skel_->maps.leases,
                                         RINGCAP_MAX_SLOTS * static_cast<uint32_t>(cpus)))
    return Error::fromErrno(err, "sizing the budget leases");
  p->ringBytes_ = perCpu;
  p->cpus_ = static_cast<unsigned>(cpus);
  p->rings_ = rings;
  p->ringOfCpu_ = std::move(ringOf);
  return p;
}

Result<void> CaptureProgram::createRings() {
  int outer = bpf_map__fd(skel_->maps.rings);
  for (unsigned cpu = 0; cpu < cpus_; cpu++) {
    uint32_t key = cpu;
    int fd = ringFds_[ringOfCpu_[cpu]].get();
    if (bpf_map_update_elem(outer, &key, &fd, BPF_ANY))
      return Error::fromErrno(errno, "adding the ring buffer of CPU " + std::to_string(cpu));
  }
  ringFds_.clear(); // the array holds them now
  historyTemplate_.reset();
  return {};
}

Result<void> CaptureProgram::afterLoad() {
  loaded_ = true;
  if (ringsCreated_)
    return {};
  if (auto r = createRings(); !r)
    return r;
  ringsCreated_ = true;
  return {};
}

Result<void> CaptureProgram::loadUnattached() {
  if (loaded_)
    return {};
  if (int err = capture__load(skel_))
    return Error::fromErrno(err, "loading the capture program");
  standalone_ = true;
  return afterLoad();
}

CaptureProgram::~CaptureProgram() {
  detachAll();
  if (prog_)
    xdp_program__close(prog_);
  capture__destroy(skel_);
}

namespace {

// Why an attachment failed, in the terms an operator can act on.
Error attachError(int ifindex, const std::string &name, int err) {
  char buf[256];
  libxdp_strerror(err, buf, sizeof buf);
  std::string prefix = "attaching the XDP program to \"" + name + "\": ";
  xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
  if ((err == -EBUSY || err == -EEXIST) && !libxdp_get_error(mp) && mp &&
      xdp_multiprog__is_legacy(mp)) {
    xdp_program *other = xdp_multiprog__main_prog(mp);
    std::string what = other ? std::string(xdp_program__name(other)) + " (id " +
                                   std::to_string(xdp_program__id(other)) + ")"
                             : std::string("another program");
    xdp_multiprog__close(mp);
    return Error{EBUSY, prefix + "the interface already runs the XDP program " + what +
                            " directly, not through libxdp's multi-program dispatcher, so no "
                            "second program can join it; ringcap never replaces another XDP "
                            "program (detach it, or load it through libxdp on a kernel where "
                            "the dispatcher works)"};
  }
  if (!libxdp_get_error(mp))
    xdp_multiprog__close(mp);
  return Error{err < 0 ? -err : err, prefix + buf};
}

} // namespace

Result<void> CaptureProgram::attach(const std::vector<std::string> &ifnames) {
  if (standalone_)
    return Error{EINVAL, "the capture program was loaded for test runs and cannot be attached"};
  if (!prog_) {
    DECLARE_LIBXDP_OPTS(xdp_program_opts, opts, .obj = skel_->obj, .prog_name = "ringcap_xdp");
    prog_ = xdp_program__create(&opts);
    if (long err = libxdp_get_error(prog_)) {
      prog_ = nullptr;
      return Error::fromErrno(static_cast<int>(err), "preparing the capture program for libxdp");
    }
  }
  std::vector<int> added;
  for (const auto &name : ifnames) {
    unsigned ifindex = if_nametoindex(name.c_str());
    if (!ifindex) {
      int err = errno;
      for (int i : added)
        (void)detach(i);
      return Error::fromErrno(err, "interface \"" + name + "\"");
    }
    bool already = false;
    for (const auto &a : attachments_)
      already |= a.ifindex == static_cast<int>(ifindex);
    if (already)
      continue;
    int err = xdp_program__attach(prog_, static_cast<int>(ifindex), XDP_MODE_UNSPEC, 0);
    if (err) {
      Error e = attachError(static_cast<int>(ifindex), name, err);
      for (int i : added)
        (void)detach(i);
      return e;
    }
    if (auto r = afterLoad(); !r) {
      (void)xdp_program__detach(prog_, static_cast<int>(ifindex), XDP_MODE_UNSPEC, 0);
      for (int i : added)
        (void)detach(i);
      return r;
    }
    attachments_.push_back({static_cast<int>(ifindex), name});
    added.push_back(static_cast<int>(ifindex));
    spdlog::info("attached to {} (ifindex {})", name, ifindex);
  }
  return {};
}

Result<void> CaptureProgram::detach(int ifindex) {
  auto it = std::find_if(attachments_.begin(), attachments_.end(),
                         [&](const Attachment &a) { return a.ifindex == ifindex; });
  if (it == attachments_.end())
    return Error{ENOENT, "not attached to ifindex " + std::to_string(ifindex)};
  Attachment a = *it;
  attachments_.erase(it);
  int err = xdp_program__detach(prog_, ifindex, XDP_MODE_UNSPEC, 0);
  // The program is gone with its interface; ENOENT for an interface that still exists means
  // libxdp could not find the program, and it may still be attached.
  char name[IF_NAMESIZE];
  bool interfaceGone = err == -ENODEV || (err == -ENOENT && !if_indextoname(ifindex, name));
  if (err && !interfaceGone) {
    char buf[256];
    libxdp_strerror(err, buf, sizeof buf);
    spdlog::warn("detaching from {}: {}", a.ifname, buf);
    return Error{-err, "detaching from \"" + a.ifname + "\": " + buf};
  }
  spdlog::info("detached from {}", a.ifname);
  return {};
}

void CaptureProgram::detachAll() {
  while (!attachments_.empty())
    (void)detach(attachments_.back().ifindex);
}

uint32_t CaptureProgram::programId() const { return prog_ ? xdp_program__id(prog_) : 0; }

Result<bool> CaptureProgram::detachProgramById(int ifindex, uint32_t programId) {
  xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
  if (long err = libxdp_get_error(mp))
    return Error::fromErrno(static_cast<int>(err),
                            "reading the XDP programs of ifindex " + std::to_string(ifindex));
  if (!mp)
    return false;
  int err = 0;
  bool found = false;
  if (xdp_multiprog__is_legacy(mp)) {
    xdp_program *main = xdp_multiprog__main_prog(mp);
    if (main && xdp_program__id(main) == programId) {
      found = true;
      err = xdp_multiprog__detach(mp);
    }
  } else {
    for (xdp_program *p = xdp_multiprog__next_prog(nullptr, mp); p && !found;
         p = xdp_multiprog__next_prog(p, mp))
      if (xdp_program__id(p) == programId) {
        found = true;
        err = xdp_program__detach(p, ifindex, xdp_multiprog__attach_mode(mp), 0);
      }
  }
  xdp_multiprog__close(mp);
  if (err)
    return Error::fromErrno(err, "detaching program " + std::to_string(programId));
  return found;
}

int CaptureProgram::programFd() const { return bpf_program__fd(skel_->progs.ringcap_xdp); }
int CaptureProgram::ringFd() const { return bpf_map__fd(skel_->maps.rings); }

std::optional<unsigned> CaptureProgram::freeSlot() const {
  for (unsigned i = 0; i < RINGCAP_MAX_SLOTS; i++)
    if (!slotArmed(i) && !(held_ & (1u << i)))
      return i;
  return std::nullopt;
}

Result<void> CaptureProgram::writeConfig(const ringcap_config &config) {
  if (!loaded_)
    return Error{EINVAL, "the capture program is not loaded (attach it first)"};
  if (bpf_map__value_size(skel_->maps.bss) != sizeof config)
    return Error{EPROTO, "the capture program's configuration has an unexpected size"};
  uint32_t key = 0;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.bss), &key, &config, BPF_ANY))
    return Error::fromErrno(errno, "writing the slot configuration");
  config_ = config;
  return {};
}

Result<void> CaptureProgram::armSlot(unsigned slot, const SlotSettings &s) {
  if (slot >= RINGCAP_MAX_SLOTS)
    return Error{EINVAL, "slot " + std::to_string(slot) + " out of range"};
  if (!loaded_)
    return Error{EINVAL, "the capture program is not loaded (attach it first)"};
  if (slotArmed(slot))
    return Error{EBUSY, "slot " + std::to_string(slot) + " is in use"};
  if (s.snaplen == 0 || s.snaplen > RINGCAP_MAX_SNAPLEN)
    return Error{EINVAL, "snaplen must be from 1 to " + std::to_string(RINGCAP_MAX_SNAPLEN)};
  if (s.sampleRate == 0 || s.sampleRate > RINGCAP_MAX_SAMPLE_RATE)
    return Error{EINVAL,
                 "sample rate must be from 1 to " + std::to_string(RINGCAP_MAX_SAMPLE_RATE)};
  if (s.ifindexes.size() > RINGCAP_MAX_SLOT_IFACES)
    return Error{EINVAL, "a capture can use at most " + std::to_string(RINGCAP_MAX_SLOT_IFACES) +
                             " interfaces"};

  ringcap_config next = config_;
  ringcap_slot_config &cfg = next.slot[slot];
  cfg = {};
  cfg.cookie = s.cookie;
  cfg.sample_rate = s.sampleRate;
  cfg.snaplen = s.snaplen;
  for (size_t i = 0; i < s.ifindexes.size(); i++)
    cfg.ifindex[i] = s.ifindexes[i];
  cfg.filter = s.filter;
  auto clampBudget = [](std::optional<uint64_t> v) -> int64_t {
    if (!v || *v >= static_cast<uint64_t>(RINGCAP_BUDGET_UNLIMITED))
      return RINGCAP_BUDGET_UNLIMITED;
    return static_cast<int64_t>(*v);
  };
  ringcap_slot_budget budget{};
  budget.packets_left = clampBudget(s.packetLimit);
  budget.bytes_left = clampBudget(s.byteLimit);

  // The slot's bit is still clear: write its config first, then arm it with a second write.
  if (auto r = writeConfig(next); !r)
    return r;
  // Every CPU's lease of the slot starts empty; then the shared budget.
  const ringcap_slot_lease empty{};
  for (unsigned cpu = 0; cpu < cpus_; cpu++) {
    uint32_t leaseKey = cpu * RINGCAP_MAX_SLOTS + slot;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.leases), &leaseKey, &empty, BPF_ANY))
      return Error::fromErrno(errno, "clearing the budget leases of slot " + std::to_string(slot));
  }
  uint32_t key = slot;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.budgets), &key, &budget, BPF_ANY))
    return Error::fromErrno(errno, "writing the budget of slot " + std::to_string(slot));
  // Counters are cumulative per CPU; a job's counters start from this baseline.
  auto base = sumSlot(slot);
  if (!base)
    return base.error();
  baseline_[slot] = *base;
  next.active_mask |= 1u << slot;
  return writeConfig(next);
}

Result<void> CaptureProgram::disarmSlot(unsigned slot) {
  if (slot >= RINGCAP_MAX_SLOTS)
    return Error{EINVAL, "slot " + std::to_string(slot) + " out of range"};
  ringcap_config next = config_;
  next.active_mask &= ~(1u << slot);
  return writeConfig(next);
}

Result<void> CaptureProgram::armHistory(const HistorySettings &s) {
  if (!loaded_)
    return Error{EINVAL, "the capture program is not loaded (attach it first)"};
  if (s.sampleRate == 0 || s.sampleRate > RINGCAP_MAX_SAMPLE_RATE)
    return Error{EINVAL, "history sample rate must be from 1 to " +
                             std::to_string(RINGCAP_MAX_SAMPLE_RATE) + " (got " +
                             std::to_string(s.sampleRate) + ")"};
  if (s.snaplen == 0 || s.snaplen > RINGCAP_MAX_SNAPLEN)
    return Error{EINVAL, "history snaplen must be from 1 to " +
                             std::to_string(RINGCAP_MAX_SNAPLEN) + " (got " +
                             std::to_string(s.snaplen) + ")"};
  if (s.ifindexes.size() > RINGCAP_MAX_SLOT_IFACES)
    return Error{EINVAL, "the history can use at most " + std::to_string(RINGCAP_MAX_SLOT_IFACES) +
                             " interfaces (got " + std::to_string(s.ifindexes.size()) + ")"};
  for (uint32_t i : s.ifindexes)
    if (i == 0)
      return Error{EINVAL, "history interfaces: ifindex 0 is not an interface"};
  const uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  if (!isPowerOfTwo(s.ringBytes) || s.ringBytes < page)
    return Error{EINVAL, "history ring size must be a power of two of at least " +
                             std::to_string(page) + " bytes (got " + std::to_string(s.ringBytes) +
                             ")"};
  if (s.wakeupBytes > s.ringBytes / 2)
    return Error{EINVAL, "history wake-up bytes must be at most half the ring (" +
                             std::to_string(s.ringBytes / 2) + ", got " +
                             std::to_string(s.wakeupBytes) + ")"};

  // Disarmed while the ring, the countdowns and the baseline are set up.
  if (historyArmed())
    if (auto r = disarmHistory(); !r)
      return r;
  if (!historyRing_ || historyRingBytes_ != s.ringBytes) {
    UniqueFd ring(bpf_map_create(BPF_MAP_TYPE_RINGBUF, nullptr, 0, 0, s.ringBytes, nullptr));
    if (!ring)
      return Error::fromErrno(errno, "creating the history ring");
    uint32_t key = 0;
    int fd = ring.get();
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.history_ring), &key, &fd, BPF_ANY))
      return Error::fromErrno(errno, "installing the history ring");
    historyRing_ = std::move(ring);
    historyRingBytes_ = s.ringBytes;
  }
  // Every CPU samples anew: a countdown left by a larger rate would delay the first sample.
  auto state = readHistoryState();
  if (!state)
    return state.error();
  for (auto &st : *state)
    st.countdown = 0;
  uint32_t key = 0;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.history_state), &key, state->data(), BPF_ANY))
    return Error::fromErrno(errno, "resetting the history's sampling");
  auto base = sumHistory();
  if (!base)
    return base.error();
  historyBaseline_ = *base;

  ringcap_config next = config_;
  ringcap_history_config &h = next.history;
  h = {};
  h.cookie = s.cookie;
  h.sample_rate = s.sampleRate;
  h.snaplen = s.snaplen;
  h.wakeup_bytes =
      s.wakeupBytes
          ? s.wakeupBytes
          : std::min(std::clamp<uint32_t>(s.ringBytes / 16, 64u << 10, 1u << 20), s.ringBytes / 2);
  for (size_t i = 0; i < s.ifindexes.size(); i++)
    h.ifindex[i] = s.ifindexes[i];
  h.wake_first = s.wakeOnFirstRecord.value_or(wakeOnFirstRecord_) ? 1 : 0;
  // The config first, then the armed flag with a second write.
  if (auto r = writeConfig(next); !r)
    return r;
  next.history_armed = 1;
  return writeConfig(next);
}

Result<void> CaptureProgram::disarmHistory() {
  if (!loaded_)
    return Error{EINVAL, "the capture program is not loaded (attach it first)"};
  ringcap_config next = config_;
  next.history_armed = 0;
  return writeConfig(next);
}

Result<std::vector<ringcap_history_state>> CaptureProgram::readHistoryState() const {
  std::vector<ringcap_history_state> values(cpus_);
  uint32_t key = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.history_state), &key, values.data()))
    return Error::fromErrno(errno, "reading the history's counters");
  return values;
}

Result<HistoryCounters> CaptureProgram::sumHistory() const {
  auto all = readHistoryState();
  if (!all)
    return all.error();
  HistoryCounters sum;
  for (const auto &c : *all) {
#define RINGCAP_X(field, member, description) sum.member += c.field;
    RINGCAP_HISTORY_COUNTERS(RINGCAP_X)
#undef RINGCAP_X
  }
  return sum;
}

Result<HistoryCounters> CaptureProgram::historyCounters() const {
  if (!loaded_)
    return Error{EINVAL, "the capture program is not loaded (attach it first)"};
  auto sum = sumHistory();
  if (!sum)
    return sum.error();
  HistoryCounters d;
#define RINGCAP_X(field, member, description) d.member = sum->member - historyBaseline_.member;
  RINGCAP_HISTORY_COUNTERS(RINGCAP_X)
#undef RINGCAP_X
  return d;
}

Result<std::vector<ringcap_counters>> CaptureProgram::readCounters() const {
  int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0)
    return Error::fromErrno(ncpus, "counting possible CPUs");
  std::vector<ringcap_counters> values(static_cast<size_t>(ncpus));
  uint32_t key = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.counters), &key, values.data()))
    return Error::fromErrno(errno, "reading counters");
  return values;
}

Result<SlotCounters> CaptureProgram::slotCounters(unsigned slot) const {
  if (slot >= RINGCAP_MAX_SLOTS)
    return Error{EINVAL, "slot " + std::to_string(slot) + " out of range"};
  auto sum = sumSlot(slot);
  if (!sum)
    return sum.error();
  return minus(*sum, baseline_[slot]);
}

Result<SlotCounters> CaptureProgram::sumSlot(unsigned slot) const {
  auto all = readCounters();
  if (!all)
    return all.error();
  SlotCounters sum;
  for (const auto &c : *all)
    addKernel(sum, c.slot[slot]);
  return sum;
}

Result<SlotBudget> CaptureProgram::slotBudget(unsigned slot) const {
  if (slot >= RINGCAP_MAX_SLOTS)
    return Error{EINVAL, "slot " + std::to_string(slot) + " out of range"};
  // The shared budget plus every CPU's lease. An amount on its way from the shared budget to
  // a lease (between two atomic operations of the program) is missed by this reading; the
  // limit checks therefore use the counters (CaptureJob::check), not this sum.
  uint32_t key = slot;
  ringcap_slot_budget b{};
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.budgets), &key, &b))
    return Error::fromErrno(errno, "reading the budget of slot " + std::to_string(slot));
  SlotBudget left{std::max<int64_t>(b.packets_left, 0), std::max<int64_t>(b.bytes_left, 0)};
  auto sat = [](int64_t a, int64_t x) {
    return a > RINGCAP_BUDGET_UNLIMITED - x ? RINGCAP_BUDGET_UNLIMITED : a + x;
  };
  for (unsigned cpu = 0; cpu < cpus_; cpu++) {
    uint32_t leaseKey = cpu * RINGCAP_MAX_SLOTS + slot;
    ringcap_slot_lease l{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.leases), &leaseKey, &l))
      return Error::fromErrno(errno, "reading the budget leases of slot " + std::to_string(slot));
    left.packetsLeft = sat(left.packetsLeft, std::max<int64_t>(l.packets, 0));
    left.bytesLeft = sat(left.bytesLeft, std::max<int64_t>(l.bytes, 0));
  }
  return left;
}

Result<GlobalCounters> CaptureProgram::globalCounters() const {
  auto all = readCounters();
  if (!all)
    return all.error();
  GlobalCounters g;
  for (const auto &c : *all) {
    g.packets += c.packets, g.nonIp += c.non_ip, g.malformed += c.malformed;
    g.noPorts += c.no_ports;
  }
  return g;
}

} // namespace ringcap
