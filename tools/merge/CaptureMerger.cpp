#include "merge/CaptureMerger.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <optional>
#include <queue>

namespace ringcap {
namespace {

constexpr uint16_t kLinktypeEthernet = 1;

// PcapReader's errors for input that ends inside a header or block.
bool isTruncation(const Error &e) {
  return e.code == 0 && e.message.find(": truncated ") != std::string::npos;
}

bool identical(const PcapReaderInterface &a, const PcapReaderInterface &b) {
  return a.name == b.name && a.linkType == b.linkType && a.snaplen == b.snaplen;
}

bool identicalLists(const std::vector<PcapReaderInterface> &a,
                    const std::vector<PcapReaderInterface> &b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), identical);
}

} // namespace

struct CaptureMerger::Input {
  InputSource *source = nullptr;
  std::unique_ptr<PcapReader> reader;
  std::optional<PcapPacket> pending;
  std::vector<uint32_t> outIds; // output interface of each reader interface mapped so far
  InputReport report;
};

struct CaptureMerger::OutputInterface {
  PcapReaderInterface iface;
  size_t owner = 0;    // the input that declared it first
  bool shared = false; // declared by other inputs too
};

CaptureMerger::CaptureMerger(std::vector<std::unique_ptr<InputSource>> sources,
                             MergeOptions options)
    : sources_(std::move(sources)), options_(options) {}

CaptureMerger::~CaptureMerger() = default;

Result<MergeReport> CaptureMerger::run(MergeOutput &out) {
  for (;;) {
    auto end = pass(out);
    if (!end)
      return end.error();
    if (*end == PassEnd::Done)
      break;
    writer_.reset();
    if (auto r = out.rewind(); !r)
      return r.error();
    readAllInterfaces();
  }
  MergeReport report;
  for (auto &in : inputs_)
    report.inputs.push_back(std::move(in.report));
  report.packets = packets_;
  report.interfaces = outIfaces_.size();
  report.sections = sections_;
  report.readTwice = !declared_.empty();
  return report;
}

// One merge from the start of every input. Ends early when an interface is declared after
// packets were written and the output can start over.
Result<CaptureMerger::PassEnd> CaptureMerger::pass(MergeOutput &out) {
  inputs_.clear();
  inputs_.resize(sources_.size());
  outIfaces_.clear();
  sections_ = 0;
  packets_ = 0;
  for (size_t i = 0; i < sources_.size(); ++i) {
    Input &in = inputs_[i];
    in.source = sources_[i].get();
    in.report.name = in.source->name();
    auto reader = in.source->open();
    if (!reader) {
      if (!isTruncation(reader.error()) || options_.strict)
        return reader.error();
      in.report.warning = reader.error().message + "; ignored the input";
      continue;
    }
    in.reader = std::move(*reader);
    in.report.opened = true;
    in.report.pcapng = in.reader->isPcapng();
    if (auto r = advance(in); !r)
      return r.error();
  }
  if (auto r = mapInitialInterfaces(); !r)
    return r.error();

  // Smallest key first: (timestamp, input) to merge, (input, input) to concatenate.
  using Key = std::pair<uint64_t, size_t>;
  std::priority_queue<Key, std::vector<Key>, std::greater<>> queue;
  auto enqueue = [&](size_t i) {
    if (inputs_[i].pending)
      queue.emplace(options_.concatenate ? i : inputs_[i].pending->tsNs, i);
  };
  for (size_t i = 0; i < inputs_.size(); ++i)
    enqueue(i);
  while (!queue.empty()) {
    const size_t i = queue.top().second;
    queue.pop();
    auto started = startSectionIfNeeded(out);
    if (!started)
      return started.error();
    if (!*started)
      return PassEnd::ReadInterfacesFirst;
    Input &in = inputs_[i];
    PcapPacket p = std::move(*in.pending);
    in.pending.reset();
    if (auto r = writePacket(in, std::move(p)); !r)
      return r.error();
    if (auto r = advance(in); !r)
      return r.error();
    if (auto r = mapNewInterfaces(i); !r)
      return r.error();
    enqueue(i);
  }
  auto started = startSectionIfNeeded(out); // interfaces without packets, or no packets at all
  if (!started)
    return started.error();
  if (!*started)
    return PassEnd::ReadInterfacesFirst;
  if (auto r = writer_->flush(); !r)
    return r.error();
  writer_.reset();
  return PassEnd::Done;
}

// Reads the input's next packet; a truncated input ends with a warning (an error if strict).
Result<void> CaptureMerger::advance(Input &in) {
  auto next = in.reader->next();
  if (next) {
    in.pending = std::move(*next);
  } else {
    Error e = in.source->own(next.error());
    if (!isTruncation(e) || options_.strict)
      return e;
    in.report.warning = e.message + "; ignored the rest of the input";
  }
  in.report.interfaces = in.reader->interfaces().size();
  return {};
}

Result<void> CaptureMerger::mapInitialInterfaces() {
  auto declared = [&](size_t i) -> const std::vector<PcapReaderInterface> & {
    static const std::vector<PcapReaderInterface> none;
    if (!declared_.empty())
      return declared_[i];
    return inputs_[i].reader ? inputs_[i].reader->interfaces() : none;
  };
  // InterfaceMerge::All: inputs without interfaces have nothing to share and do not count.
  std::optional<size_t> first;
  bool same = options_.interfaces == InterfaceMerge::All;
  for (size_t i = 0; same && i < inputs_.size(); ++i) {
    if (declared(i).empty())
      continue;
    if (!first)
      first = i;
    else
      same = identicalLists(declared(*first), declared(i));
  }
  for (size_t i = 0; i < inputs_.size(); ++i) {
    for (const auto &iface : declared(i)) {
      const bool positional = same && i != *first;
      auto id = addInterface(i, iface, positional || options_.interfaces == InterfaceMerge::Any);
      if (!id)
        return id.error();
      if (positional)
        outIfaces_[*id].shared = true;
      inputs_[i].outIds.push_back(*id);
    }
  }
  return {};
}

// Maps the interfaces an input declared since the last call.
Result<void> CaptureMerger::mapNewInterfaces(size_t input) {
  Input &in = inputs_[input];
  const auto &ifaces = in.reader->interfaces();
  for (size_t k = in.outIds.size(); k < ifaces.size(); ++k) {
    auto id = addInterface(input, ifaces[k], options_.interfaces == InterfaceMerge::Any);
    if (!id)
      return id.error();
    in.outIds.push_back(*id);
  }
  return {};
}

// The output interface for `iface`: the first identical one when `reuse`, else a new one.
// With `reuse` under InterfaceMerge::All, the n-th interface of every input maps to the n-th
// output interface, which mapInitialInterfaces() checked to be identical.
Result<uint32_t> CaptureMerger::addInterface(size_t input, const PcapReaderInterface &iface,
                                             bool reuse) {
  if (iface.linkType != kLinktypeEthernet)
    return Error{0, inputs_[input].report.name + ": interface \"" + iface.name +
                        "\" has link type " + std::to_string(iface.linkType) +
                        "; the pcapng writer writes Ethernet (link type 1) interfaces only"};
  if (reuse && options_.interfaces == InterfaceMerge::All)
    return static_cast<uint32_t>(inputs_[input].outIds.size());
  for (size_t id = 0; reuse && id < outIfaces_.size(); ++id) {
    if (identical(outIfaces_[id].iface, iface)) {
      outIfaces_[id].shared |= outIfaces_[id].owner != input;
      return static_cast<uint32_t>(id);
    }
  }
  outIfaces_.push_back({iface, input, false});
  return static_cast<uint32_t>(outIfaces_.size() - 1);
}

// Before writing: starts the first section, or a new one when interfaces were added. False
// when the output should start over with every input's interfaces read first.
Result<bool> CaptureMerger::startSectionIfNeeded(MergeOutput &out) {
  if (writer_ && sectionInterfaces_ == outIfaces_.size())
    return true;
  const bool reopenable =
      std::all_of(sources_.begin(), sources_.end(), [](const auto &s) { return s->reopenable(); });
  if (writer_ && declared_.empty() && reopenable && out.rewindable())
    return false;
  if (outIfaces_.empty())
    return Error{0, "no input declares an interface: nothing to write"};
  std::vector<PcapInterface> ifaces;
  for (const auto &o : outIfaces_)
    ifaces.push_back({o.iface.name, o.shared ? "" : inputs_[o.owner].report.name, o.iface.snaplen});
  if (writer_) {
    if (auto r = writer_->flush(); !r)
      return r.error();
    writer_.reset();
  }
  auto fd = out.fd();
  if (!fd)
    return fd.error();
  const int dup = ::fcntl(*fd, F_DUPFD_CLOEXEC, 0); // the writer owns and closes its fd
  if (dup < 0)
    return Error::fromErrno(errno, out.name() + ": cannot duplicate the file descriptor");
  auto writer = PcapngWriter::fromFd(dup, out.name(), ifaces, "ringcap-merge " RINGCAP_VERSION);
  if (!writer)
    return writer.error();
  writer_ = std::move(*writer);
  sectionInterfaces_ = ifaces.size();
  ++sections_;
  return true;
}

Result<void> CaptureMerger::writePacket(Input &in, PcapPacket p) {
  const uint32_t snaplen = in.reader->interfaces()[p.interfaceId].snaplen;
  auto corrupt = [&](const std::string &what) {
    return Error{0, in.report.name + ": packet " + std::to_string(in.report.packets + 1) +
                        ": captured length " + std::to_string(p.data.size()) + " exceeds " + what};
  };
  if (p.data.size() > p.origLen)
    return corrupt("its original length " + std::to_string(p.origLen));
  if (snaplen != 0 && p.data.size() > snaplen)
    return corrupt("the snaplen " + std::to_string(snaplen) + " of its interface");
  if (auto r = writer_->writePacket(in.outIds[p.interfaceId], p.tsNs, p.origLen, p.data); !r)
    return r;
  ++in.report.packets;
  ++packets_;
  return {};
}

// Reads every input to its end for the interfaces it declares. Errors are left to the merge.
void CaptureMerger::readAllInterfaces() {
  declared_.assign(sources_.size(), {});
  for (size_t i = 0; i < sources_.size(); ++i) {
    auto reader = sources_[i]->open();
    if (!reader)
      continue;
    for (auto p = (*reader)->next(); p && *p; p = (*reader)->next()) {
    }
    declared_[i] = (*reader)->interfaces();
  }
}

} // namespace ringcap
