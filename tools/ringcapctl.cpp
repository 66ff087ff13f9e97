// ringcapctl: the command-line client of ringcapd, over D-Bus.
#include "dbus/Variant.h"
#include "request/CaptureRequest.h"
#include "request/OptionNames.h"
#include "ringcapctl/Bus.h"
#include "ringcapctl/Output.h"
#include "ringcapctl/Watch.h"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <getopt.h>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <time.h>
#include <unistd.h>
#include <vector>

using namespace ringcap::ctl;
using nlohmann::json;

namespace {

constexpr char kUsage[] = R"(Usage: ringcapctl [--json] COMMAND [ARGS...]

Asks ringcapd, the packet-capture service, for captures over the system bus
(org.ringcap.Ringcap1; DBUS_SYSTEM_BUS_ADDRESS names another bus). Requests and
records are those of Cloudflare's PCAPs API.

Commands:
  create [REQUEST OPTIONS] [--wait]  request a capture (or -f FILE: a JSON request body)
  get ID                             show a capture's record
  list                               list the 50 newest captures
  stop ID                            stop a capture
  download ID [-o FILE] [--force]    copy a finished capture's file (default pcap_ID.pcap or
                                     pcap_ID.pcapng, as the record's file_name says)
  watch ID                           follow a capture until it ends
  ownership create DEST              start the ownership challenge of a bucket
  ownership validate DEST CHALLENGE  pass it with the challenge file's contents
  ownership list                     list the ownership challenges
  ownership delete ID                delete an ownership challenge
Options:
  --json                             print records as JSON (also accepted after COMMAND)
  -h, --help                         this text; 'ringcapctl COMMAND --help' describes COMMAND
  --version                          print the version
Exit codes: 0 success, 1 ringcapd or the bus refused or failed (or a watched capture
failed), 2 invalid usage, 3 ringcapd is not running.
)";
static_assert(std::string_view(kUsage).find(ringcap::api::kBusName) != std::string_view::npos,
              "the usage names the bus name of api/ServiceApi.h");

const char kCreateUsage[] = R"(Usage: ringcapctl create [REQUEST OPTIONS] [--wait] [--json]
       ringcapctl create -f FILE|- [--wait] [--json]

Requests a capture and prints its record and object path. ringcapd checks the request
and names the field that breaks a rule.

Request fields (ranges are ringcapd's):
  --system NAME               a set of interfaces in ringcapd's config (default magic-transit)
  --type simple|full          simple: sampled packets, first 160 bytes; full: whole packets,
                              delivered to a bucket; sample is an alias of simple (required)
  --time-limit S              seconds (1..300, required)
  --packet-limit N            packets (1..10000; required for simple, optional for full)
  --byte-limit N              bytes (1..1000000000; full only)
  --source-address A          IPv4 or IPv6 source address
  --destination-address A     IPv4 or IPv6 destination address
  --source-port P             TCP/UDP/SCTP/DCCP/UDP-Lite source port (0..65535)
  --destination-port P        ... destination port (0..65535)
  --protocol N                IP protocol number (0..255), e.g. 6 TCP, 17 UDP
  --colo-name NAME            this host's site or a site group with it (full only, required)
  --destination-conf URI      s3://bucket/dir?region=... or file:///dir, with a passed
                              ownership challenge (full only, required)
  --offset-time T             look back: the window [T - time-limit, T] of the host's
                              sampled history (simple only); T is RFC 3339 or a time ago
                              such as -10m, -90s, -2h, -1h30m
  --output-format pcap|pcapng the file's format (ringcap's own field; default: ringcapd's
                              [capture] output_format, normally pcap)
Other options:
  -f, --file FILE             send the JSON request body in FILE ('-': standard input) as it
                              is, instead of request options, e.g. {"system":"magic-transit",
                              "type":"simple","time_limit":10,"packet_limit":100}
  --wait                      then follow the capture like 'watch' until it ends
  --json                      print the record as JSON (with --wait: one record per line)
  -h, --help                  this text
)";

const char kGetUsage[] = R"(Usage: ringcapctl get [--json] ID

Prints the record of capture ID: its request, status, times and counters.
)";

const char kListUsage[] = R"(Usage: ringcapctl list [--json]

Lists the 50 newest captures, newest first: id, type, status, submitted, packets captured
(and the packet limit), bytes captured and the error of a failed capture.
)";

const char kStopUsage[] = R"(Usage: ringcapctl stop ID

Stops capture ID. A capture that has ended stays as it is.
)";

const char kDownloadUsage[] = R"(Usage: ringcapctl download ID [-o FILE] [--force]

Copies the file of capture ID, once the capture has ended, to FILE (created with mode 0640):
classic PCAP, or pcapng for captures requested with output_format pcapng.
  -o, --output FILE           the file to write; '-' writes to standard output (not a
                              terminal); default: the record's file_name in the current
                              directory (pcap_ID.pcap or pcap_ID.pcapng)
  --force                     replace FILE if it exists
  -h, --help                  this text
)";

const char kWatchUsage[] = R"(Usage: ringcapctl watch [--json] ID

Follows capture ID until it ends: prints a line whenever its status or counters change
(status, packets captured / packet limit, bytes, time left); with --json, the record, one
per line. Exits 0 when the capture ends success, 1 when it ends failed.
)";

const char kOwnershipUsage[] = R"(Usage: ringcapctl ownership create DEST
       ringcapctl ownership validate DEST CHALLENGE
       ringcapctl ownership list
       ringcapctl ownership delete ID

Full captures deliver to a bucket (DEST: s3://bucket/dir?region=... or file:///dir) that
has passed the ownership challenge. 'create' makes ringcapd write a challenge file,
ownership-challenge-<hex>.txt, into the bucket; 'validate' passes the challenge with that
file's contents as CHALLENGE. Exits 1 when the challenge fails.
  --json                      print the record(s) as JSON
  -h, --help                  this text
)";

constexpr int kOptJson = 1000;

[[noreturn]] void usageError(const std::string &message, const std::string &command = "") {
  throw Failure(kExitUsage, message + "\nTry 'ringcapctl " +
                                (command.empty() ? "" : command + " ") + "--help'.");
}

// Parses the options of a command (argv[0] is its name); handle gets every option other
// than --json and --help. Returns the arguments that are not options.
std::vector<std::string> parseCommand(int argc, char **argv, const char *usage, bool &asJson,
                                      const char *shortopts = "", std::vector<option> longopts = {},
                                      const std::function<void(int, const char *)> &handle = {}) {
  longopts.push_back({"json", no_argument, nullptr, kOptJson});
  longopts.push_back({"help", no_argument, nullptr, 'h'});
  longopts.push_back({nullptr, 0, nullptr, 0});
  std::string shorts = std::string(":h") + shortopts;
  optind = 0;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, shorts.c_str(), longopts.data(), nullptr)) != -1) {
    switch (c) {
    case kOptJson:
      asJson = true;
      break;
    case 'h':
      std::fputs(usage, stdout);
      throw Failure(kExitOk, "");
    case ':':
      usageError(std::string(argv[optind - 1]) + ": needs a value", argv[0]);
    case '?':
      usageError(std::string("unknown option ") + argv[optind - 1], argv[0]);
    default:
      handle(c, optarg);
    }
  }
  return {argv + optind, argv + argc};
}

void expectArguments(const std::vector<std::string> &args, size_t n, const char *command,
                     const char *what) {
  if (args.size() < n)
    usageError(std::string(what) + " needed", command);
  if (args.size() > n)
    usageError("unexpected argument \"" + args[n] + "\"", command);
}

void printJson(const json &v) { std::printf("%s\n", v.dump(2).c_str()); }

std::string recordId(const json &record) {
  auto it = record.find("id");
  return it != record.end() && it->is_string() ? it->get<std::string>() : "";
}

json parseInteger(const std::string &option, const char *text) {
  std::string_view s(text);
  const char *end = s.data() + s.size();
  int64_t v;
  auto parsed = std::from_chars(s.data(), end, v);
  if (!s.empty() && parsed.ec == std::errc() && parsed.ptr == end)
    return v;
  uint64_t u;
  if (auto p = std::from_chars(s.data(), end, u); !s.empty() && p.ec == std::errc() && p.ptr == end)
    return u;
  if (parsed.ec == std::errc::result_out_of_range && parsed.ptr == end)
    usageError(option + ": out of the 64-bit integer range (got " + std::string(s) + ")", "create");
  usageError(option + ": must be an integer (got \"" + std::string(s) + "\")", "create");
}

json readRequestFile(const std::string &name) {
  std::string text;
  if (name == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream in(name, std::ios::binary);
    if (!in)
      usageError("-f " + name + ": " + std::strerror(errno), "create");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  json body;
  try {
    body = json::parse(text);
  } catch (const json::parse_error &e) {
    std::string why = e.what(); // "[json.exception.parse_error.101] parse error at ..."
    usageError("-f " + name + ": not valid JSON: " + why.substr(why.find(']') + 2), "create");
  }
  if (!body.is_object())
    usageError("-f " + name + ": the request must be a JSON object", "create");
  return body;
}

int64_t realtimeNowNs() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}

int cmdCreate(int argc, char **argv, bool &asJson) {
  enum { OPT_WAIT = 256, OPT_FIELD };
  // Request options: the field each sets, and whether it is in filter_v1.
  struct Field {
    const char *option, *key;
    bool integer, filter;
  };
  static const Field fields[] = {
      {"system", "system", false, false},
      {"type", "type", false, false},
      {"time-limit", "time_limit", true, false},
      {"packet-limit", "packet_limit", true, false},
      {"byte-limit", "byte_limit", true, false},
      {"source-address", "source_address", false, true},
      {"destination-address", "destination_address", false, true},
      {"source-port", "source_port", true, true},
      {"destination-port", "destination_port", true, true},
      {"protocol", "protocol", true, true},
      {"colo-name", "colo_name", false, false},
      {"destination-conf", "destination_conf", false, false},
      {"offset-time", "offset_time", false, false},
      {"output-format", "output_format", false, false},
  };
  std::vector<option> longopts{{"file", required_argument, nullptr, 'f'},
                               {"wait", no_argument, nullptr, OPT_WAIT}};
  for (size_t i = 0; i < std::size(fields); i++)
    longopts.push_back({fields[i].option, required_argument, nullptr, OPT_FIELD + int(i)});
  json request = json::object(), filter = json::object();
  std::optional<std::string> file;
  std::string firstOption;
  bool wait = false;
  auto args =
      parseCommand(argc, argv, kCreateUsage, asJson, "f:", longopts, [&](int c, const char *arg) {
        if (c == 'f') {
          file = arg;
        } else if (c == OPT_WAIT) {
          wait = true;
        } else {
          const Field &f = fields[c - OPT_FIELD];
          std::string option = std::string("--") + f.option;
          if (firstOption.empty())
            firstOption = option;
          json value = f.integer ? parseInteger(option, arg) : json(arg);
          if (std::string_view(f.key) == "offset_time") {
            auto resolved = ringcap::resolveOffsetTime(arg, realtimeNowNs());
            if (!resolved)
              usageError(option + ": " + resolved.error().message, "create");
            value = *resolved;
          }
          (f.filter ? filter : request)[f.key] = value;
        }
      });
  expectArguments(args, 0, "create", "");
  if (file && !firstOption.empty())
    usageError("-f: cannot be combined with request options (got " + firstOption + ")", "create");
  if (file) {
    request = readRequestFile(*file);
  } else {
    if (!request.contains("system"))
      request["system"] = "magic-transit";
    if (!filter.empty())
      request["filter_v1"] = filter;
  }

  Bus bus;
  auto created = bus->createCapture(request);
  if (!created) {
    const ringcap::Error &e = created.error();
    if (e.busName.empty() && e.kind == ringcap::ErrorKind::InvalidRequest) // never sent
      usageError((file ? "-f " + *file + ": " : "") + e.message, "create");
    Failure f = failureFrom(e);
    if (file || f.exitCode != kExitFailure)
      throw f;
    throw Failure(f.exitCode, ringcap::fieldMessageToOptions(f.what()));
  }
  std::string objectPath = created->path;
  json record = std::move(created->record);
  std::string id = recordId(record);
  if (id.empty())
    id = objectPath.substr(objectPath.rfind('/') + 1);
  if (asJson && !wait) { // with --wait, watch prints the record first
    printJson(record);
  } else if (!asJson) {
    std::printf("Created capture %s (%s)\n%s", id.c_str(), objectPath.c_str(),
                formatRecord(record).c_str());
    if (wait)
      std::printf("\n");
  }
  std::fflush(stdout);
  return wait ? watchCapture(bus, id, asJson) : kExitOk;
}

int cmdGet(int argc, char **argv, bool &asJson) {
  auto args = parseCommand(argc, argv, kGetUsage, asJson);
  expectArguments(args, 1, "get", "a capture ID is");
  Bus bus;
  json record = unwrap(bus->getCapture(args[0]));
  if (asJson)
    printJson(record);
  else
    std::fputs(formatRecord(record).c_str(), stdout);
  return kExitOk;
}

int cmdList(int argc, char **argv, bool &asJson) {
  auto args = parseCommand(argc, argv, kListUsage, asJson);
  expectArguments(args, 0, "list", "");
  Bus bus;
  json records = unwrap(bus->listCaptures());
  if (asJson)
    printJson(records);
  else if (records.empty())
    std::printf("No captures.\n");
  else
    std::fputs(formatCaptureTable(records).c_str(), stdout);
  return kExitOk;
}

int cmdStop(int argc, char **argv, bool &asJson) {
  auto args = parseCommand(argc, argv, kStopUsage, asJson);
  expectArguments(args, 1, "stop", "a capture ID is");
  Bus bus;
  unwrap(bus->stopCapture(args[0]));
  if (!asJson)
    std::printf("Stop requested for capture %s.\n", args[0].c_str());
  return kExitOk;
}

// Copies in to out; false with errno set when reading or writing fails.
bool copyFile(int in, int out, uint64_t &bytes, bool &readError) {
  std::vector<char> buffer(1 << 17);
  for (;;) {
    ssize_t n = read(in, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return readError = n < 0, n == 0;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(out, buffer.data() + done, n - done);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return false;
      done += w;
    }
    bytes += n;
  }
}

int cmdDownload(int argc, char **argv, bool &asJson) {
  enum { OPT_FORCE = 256 };
  std::string output;
  bool force = false;
  auto args = parseCommand(
      argc, argv, kDownloadUsage, asJson, "o:",
      {{"output", required_argument, nullptr, 'o'}, {"force", no_argument, nullptr, OPT_FORCE}},
      [&](int c, const char *arg) {
        if (c == 'o')
          output = arg;
        else
          force = true;
      });
  expectArguments(args, 1, "download", "a capture ID is");
  bool toStdout = output == "-";
  if (toStdout && isatty(STDOUT_FILENO))
    usageError("-o -: standard output is a terminal; redirect it or name a file", "download");

  Bus bus;
  int in = unwrap(bus->openCaptureFile(args[0])).release();
  if (output.empty()) {
    // The name the record gives the file: its extension says the format.
    json record = unwrap(bus->getCapture(args[0]));
    auto name = record.find("file_name");
    if (name == record.end() || !name->is_string()) {
      close(in);
      throw Failure(kExitFailure, "capture " + args[0] + " has no file_name; name a file with -o");
    }
    output = name->get<std::string>();
    if (output.find('/') != std::string::npos || output.rfind("pcap_", 0) != 0) {
      close(in);
      throw Failure(kExitFailure, "unexpected file_name from ringcapd: " + output);
    }
  }

  int out = STDOUT_FILENO;
  if (!toStdout) {
    out = open(output.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), 0640);
    if (out < 0) {
      int err = errno;
      close(in);
      throw Failure(kExitFailure, output + ": " + std::strerror(err) +
                                      (err == EEXIST ? " (--force replaces it)" : ""));
    }
  }
  uint64_t bytes = 0;
  bool readError = false;
  bool ok = copyFile(in, out, bytes, readError);
  int err = errno;
  close(in);
  if (!toStdout && close(out) < 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    if (!toStdout)
      unlink(output.c_str());
    throw Failure(kExitFailure,
                  (readError ? "reading the capture file" : output) + ": " + std::strerror(err));
  }
  if (!asJson && !toStdout)
    std::printf("Wrote %llu bytes to %s.\n", (unsigned long long)bytes, output.c_str());
  return kExitOk;
}

int cmdWatch(int argc, char **argv, bool &asJson) {
  auto args = parseCommand(argc, argv, kWatchUsage, asJson);
  expectArguments(args, 1, "watch", "a capture ID is");
  Bus bus;
  return watchCapture(bus, args[0], asJson);
}

int cmdOwnership(int argc, char **argv, bool &asJson) {
  auto args = parseCommand(argc, argv, kOwnershipUsage, asJson);
  if (args.empty())
    usageError("a subcommand is needed: create, validate, list or delete", "ownership");
  std::string sub = args[0];
  args.erase(args.begin());
  if (sub == "create") {
    expectArguments(args, 1, "ownership", "a destination (DEST) is");
    Bus bus;
    json ownership = unwrap(bus->createOwnership(args[0]));
    if (asJson) {
      printJson(ownership);
    } else {
      std::printf("%sringcapd wrote %s into the bucket; pass the challenge with:\n"
                  "  ringcapctl ownership validate '%s' \"<contents of %s>\"\n",
                  formatRecord(ownership).c_str(), ownership.value("filename", "a file").c_str(),
                  args[0].c_str(), ownership.value("filename", "the file").c_str());
    }
  } else if (sub == "validate") {
    expectArguments(args, 2, "ownership", "a destination (DEST) and the CHALLENGE are");
    Bus bus;
    json ownership = unwrap(bus->validateOwnership(args[0], args[1]));
    if (asJson)
      printJson(ownership);
    else
      std::fputs(formatRecord(ownership).c_str(), stdout);
    if (ownership.value("status", "") == "failed") {
      std::string why = ownership.value("error_message", "");
      std::fprintf(stderr, "ringcapctl: the ownership challenge of %s failed%s%s\n",
                   args[0].c_str(), why.empty() ? "" : ": ", why.c_str());
      return kExitFailure;
    }
  } else if (sub == "list") {
    expectArguments(args, 0, "ownership", "");
    Bus bus;
    json ownerships = unwrap(bus->listOwnerships());
    if (asJson)
      printJson(ownerships);
    else if (ownerships.empty())
      std::printf("No ownership challenges.\n");
    else
      std::fputs(formatOwnershipTable(ownerships).c_str(), stdout);
  } else if (sub == "delete") {
    expectArguments(args, 1, "ownership", "an ownership ID is");
    Bus bus;
    unwrap(bus->deleteOwnership(args[0]));
    if (!asJson)
      std::printf("Deleted ownership %s.\n", args[0].c_str());
  } else {
    usageError("unknown subcommand \"" + sub + "\" (create, validate, list or delete)",
               "ownership");
  }
  return kExitOk;
}

int run(int argc, char **argv) {
  enum { OPT_VERSION = 256 };
  static const option longopts[] = {
      {"json", no_argument, nullptr, kOptJson},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, OPT_VERSION},
      {nullptr, 0, nullptr, 0},
  };
  bool asJson = false;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "+:h", longopts, nullptr)) != -1) {
    switch (c) {
    case kOptJson:
      asJson = true;
      break;
    case 'h':
      std::fputs(kUsage, stdout);
      return kExitOk;
    case OPT_VERSION:
      std::printf("ringcapctl %s\n", RINGCAP_VERSION);
      return kExitOk;
    default:
      usageError(std::string("unknown option ") + argv[optind - 1]);
    }
  }
  if (optind >= argc)
    usageError("a command is needed: create, get, list, stop, download, watch or ownership");
  static const std::pair<const char *, int (*)(int, char **, bool &)> commands[] = {
      {"create", cmdCreate},       {"get", cmdGet},           {"list", cmdList},
      {"stop", cmdStop},           {"download", cmdDownload}, {"watch", cmdWatch},
      {"ownership", cmdOwnership},
  };
  for (const auto &[name, command] : commands)
    if (std::strcmp(argv[optind], name) == 0)
      return command(argc - optind, argv + optind, asJson);
  usageError(std::string("unknown command \"") + argv[optind] + "\"");
}

} // namespace

int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (const Failure &f) {
    if (*f.what())
      std::fprintf(stderr, "ringcapctl: %s\n", f.what());
    return f.exitCode;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "ringcapctl: %s\n", e.what());
    return kExitFailure;
  }
}
