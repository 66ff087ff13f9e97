// ringcap-merge: merges captures (pcap or pcapng, local files or S3 objects) into one pcapng
// file ordered by timestamp, like mergecap.
#include "merge/CaptureMerger.h"
#include "merge/InputSource.h"
#include "merge/MergeOutput.h"

#include <getopt.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace ringcap;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

void usage(FILE *out) {
  std::fprintf(out, R"(Usage: ringcap-merge [options] -w OUTFILE|- INPUT [INPUT ...]

Merges captures (classic pcap or pcapng, any mix) into one pcapng file ordered by timestamp;
packets with equal timestamps keep the order of the inputs. Streams: holds one packet of
each input in memory.

INPUT is a file, or s3://BUCKET/PREFIX?region=R&endpoint=URL for every object below PREFIX
named pcap_*.pcap (as <PREFIX>/<hostname>/pcap_<id>.pcap), in key order, each downloaded
to an unlinked temporary file in $TMPDIR (default /tmp).

Options:
  -w FILE                   output file; - for stdout (required)
  -a                        concatenate the inputs in the order given instead of merging
  -I all|any|none           interfaces shared in the output (default all):
                              all   one list when every input declares the same interfaces
                              any   one output interface per distinct interface
                              none  one output interface per input interface
                            (interfaces are the same if name, link type and snaplen are)
  --strict                  a truncated input is an error (default: a warning, and the
                            rest of that input is ignored)
  --credentials-file FILE   AWS shared-credentials file for s3:// inputs, used when the
                            environment has no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
  -v, --verbose             print what was read from each input
  -h, --help                this text
Exit codes: 0 merged (warnings included), 1 an input is unreadable or corrupt, or the output
failed (the output file is removed), 2 invalid options.
)");
}

struct Options {
  std::string output;
  std::vector<std::string> inputs;
  MergeOptions merge;
  InputSettings settings;
  bool verbose = false;
};

[[noreturn]] void usageError(const std::string &message) {
  std::fprintf(stderr, "ringcap-merge: %s\n", message.c_str());
  std::fprintf(stderr, "Try 'ringcap-merge --help'.\n");
  std::exit(kExitUsage);
}

Options parseOptions(int argc, char **argv) {
  enum { OPT_STRICT = 256, OPT_CREDENTIALS };
  static const option longopts[] = {
      {"write", required_argument, nullptr, 'w'},
      {"strict", no_argument, nullptr, OPT_STRICT},
      {"credentials-file", required_argument, nullptr, OPT_CREDENTIALS},
      {"verbose", no_argument, nullptr, 'v'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  Options o;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":w:aI:vh", longopts, nullptr)) != -1) {
    switch (c) {
    case 'w':
      o.output = optarg;
      break;
    case 'a':
      o.merge.concatenate = true;
      break;
    case 'I':
      if (std::string m = optarg; m == "all")
        o.merge.interfaces = InterfaceMerge::All;
      else if (m == "any")
        o.merge.interfaces = InterfaceMerge::Any;
      else if (m == "none")
        o.merge.interfaces = InterfaceMerge::None;
      else
        usageError("-I: must be all, any or none (got \"" + m + "\")");
      break;
    case OPT_STRICT:
      o.merge.strict = true;
      break;
    case OPT_CREDENTIALS:
      o.settings.credentialsFile = optarg;
      break;
    case 'v':
      o.verbose = true;
      break;
    case 'h':
      usage(stdout);
      std::exit(kExitOk);
    case ':':
      usageError(std::string(argv[optind - 1]) + ": needs an argument");
    default:
      usageError("unknown option " + std::string(argv[optind - 1]));
    }
  }
  if (o.output.empty())
    usageError("-w: an output file is needed");
  for (int i = optind; i < argc; ++i)
    o.inputs.push_back(argv[i]);
  if (o.inputs.empty())
    usageError("at least one input is needed");
  // Truncating an input before reading it would lose it.
  struct stat out {};
  if (o.output != "-" && ::stat(o.output.c_str(), &out) == 0) {
    for (const auto &in : o.inputs) {
      struct stat st {};
      if (::stat(in.c_str(), &st) == 0 && st.st_dev == out.st_dev && st.st_ino == out.st_ino)
        usageError("-w: the output file is also an input (" + in + ")");
    }
  }
  return o;
}

} // namespace

int main(int argc, char **argv) {
  const Options o = parseOptions(argc, argv);
  std::signal(SIGPIPE, SIG_IGN); // a closed pipe is a write error, not a silent death
  // Every input stays open during the merge: allow as many descriptors as the system lets.
  if (rlimit lim{}; ::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &lim);
  }

  std::vector<std::unique_ptr<InputSource>> sources;
  for (const auto &arg : o.inputs) {
    auto expanded = expandInput(arg, o.settings);
    if (!expanded) {
      std::fprintf(stderr, "ringcap-merge: %s\n", expanded.error().message.c_str());
      return kExitFailure;
    }
    if (o.verbose && arg.rfind("s3://", 0) == 0)
      std::fprintf(stderr, "ringcap-merge: %s: %zu objects named pcap_*.pcap\n", arg.c_str(),
                   expanded->size());
    for (auto &s : *expanded)
      sources.push_back(std::move(s));
  }

  MergeOutput out(o.output);
  CaptureMerger merger(std::move(sources), o.merge);
  auto report = merger.run(out);
  Result<void> closed = report ? out.close() : Result<void>(report.error());
  if (!closed) {
    out.discard();
    std::fprintf(stderr, "ringcap-merge: %s\n", closed.error().message.c_str());
    return kExitFailure;
  }
  for (const auto &in : report->inputs) {
    if (!in.warning.empty())
      std::fprintf(stderr, "ringcap-merge: warning: %s\n", in.warning.c_str());
    if (o.verbose && in.opened)
      std::fprintf(stderr, "ringcap-merge: %s: %s, %zu interface%s, %llu packets\n",
                   in.name.c_str(), in.pcapng ? "pcapng" : "pcap", in.interfaces,
                   in.interfaces == 1 ? "" : "s", static_cast<unsigned long long>(in.packets));
  }
  if (o.verbose) {
    if (report->readTwice)
      std::fprintf(stderr, "ringcap-merge: interfaces were declared after packets: read all "
                           "interfaces first, then merged again\n");
    std::fprintf(stderr,
                 "ringcap-merge: %s %llu packets from %zu inputs into %s (%zu interface%s, %zu "
                 "section%s)\n",
                 o.merge.concatenate ? "concatenated" : "merged",
                 static_cast<unsigned long long>(report->packets), report->inputs.size(),
                 out.name().c_str(), report->interfaces, report->interfaces == 1 ? "" : "s",
                 report->sections, report->sections == 1 ? "" : "s");
  }
  return kExitOk;
}
