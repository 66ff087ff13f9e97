// CaptureMerger: merges captures into one pcapng file by timestamp (a k-way merge that holds
// one pending packet per input) or concatenates them. Ties go to the earlier input.
//
// The writer declares all interfaces when a section starts. Interfaces declared before each
// input's first packet are known at the start. One declared later gets an output interface of
// its own (or an identical one, under InterfaceMerge::Any); when the output is a regular file
// and the inputs can be read again, the merge then reads every input's interfaces first and
// starts over, so that the output keeps one section; else it starts a new section that
// declares all interfaces again.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "merge/InputSource.h"
#include "merge/MergeOutput.h"
#include "pcap/PcapngWriter.h"
#include "util/Result.h"

namespace ringcap {

// Which input interfaces share an output interface; "identical" means the same name, link type
// and snaplen (the output has nanosecond timestamps whatever the input's resolution).
enum class InterfaceMerge {
  None, // every input interface gets its own
  All,  // if all inputs declare identical lists, they share one list; else as None
  Any,  // identical interfaces share one, across inputs and within one
};

struct MergeOptions {
  bool concatenate = false;
  InterfaceMerge interfaces = InterfaceMerge::All;
  bool strict = false; // a truncated input is an error instead of a warning
};

struct InputReport {
  std::string name;
  bool opened = false;
  bool pcapng = false;
  size_t interfaces = 0;
  uint64_t packets = 0;
  std::string warning; // why the rest of the input was ignored
};

struct MergeReport {
  std::vector<InputReport> inputs;
  uint64_t packets = 0;
  size_t interfaces = 0;
  size_t sections = 0;
  bool readTwice = false; // interfaces declared after packets: read all inputs' interfaces first
};

class CaptureMerger {
public:
  CaptureMerger(std::vector<std::unique_ptr<InputSource>> sources, MergeOptions options);
  ~CaptureMerger();
  CaptureMerger(const CaptureMerger &) = delete;
  CaptureMerger &operator=(const CaptureMerger &) = delete;

  // Writes the result to `out` and flushes it; the caller closes (or discards) `out`.
  Result<MergeReport> run(MergeOutput &out);

private:
  struct Input;
  struct OutputInterface;
  enum class PassEnd { Done, ReadInterfacesFirst };

  Result<PassEnd> pass(MergeOutput &out);
  Result<void> advance(Input &in);
  Result<void> mapInitialInterfaces();
  Result<void> mapNewInterfaces(size_t input);
  Result<uint32_t> addInterface(size_t input, const PcapReaderInterface &iface, bool reuse);
  Result<bool> startSectionIfNeeded(MergeOutput &out);
  Result<void> writePacket(Input &in, PcapPacket p);
  void readAllInterfaces();

  std::vector<std::unique_ptr<InputSource>> sources_;
  MergeOptions options_;
  std::vector<Input> inputs_;
  std::vector<OutputInterface> outIfaces_;
  // Every input's interfaces, read ahead; empty until needed.
  std::vector<std::vector<PcapReaderInterface>> declared_;
  std::unique_ptr<PcapngWriter> writer_;
  size_t sectionInterfaces_ = 0;
  size_t sections_ = 0;
  uint64_t packets_ = 0;
};

} // namespace ringcap
