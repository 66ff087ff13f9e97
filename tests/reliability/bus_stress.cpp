// ringcap-bus-stress: D-Bus clients that load ringcapd or misbehave, for the reliability tests
// (tests/reliability). Every mode connects to the bus named by --address (default: the
// system bus, or DBUS_SYSTEM_BUS_ADDRESS) and prints one JSON object on stdout.
//
//   load --capture ID [--clients N] [--calls-per-client M] [--window W]
//       N threads, each on a connection of its own, send M calls each, at most W outstanding
//       per connection: CreateCapture with bad input (a rotating table of invalid requests),
//       GetCapture(ID) and ListCaptures in turn. Every reply is counted by method and by
//       outcome (success, or the error name); a call that gets no answer within --timeout-ms
//       counts under the error sd-bus reports (org.freedesktop.DBus.Error.NoReply), and not
//       in "answered".
//   hangup --call KIND [--count N] [--confirm]
//       N times: connect, send one call that expects a reply, and close the connection
//       without reading the reply. KIND: list, get:ID, bad-create, create:JSON,
//       ownership:DEST, open:ID. Without --confirm the connection closes at once, so ringcapd
//       may find the caller gone before it checks who called (it then refuses the call);
//       with --confirm a Peer.Ping to ringcapd is answered first: ringcapd handles messages
//       in order, so the call was checked and handled (or, for CreateOwnership, handed to
//       its worker thread) before the client disappears.
//   hold-fd --capture ID
//       OpenCaptureFile(ID), then keep the fd and the connection open, reading neither,
//       until standard input reaches end of file. Prints {"holding": true, ...} at once.
//   no-read [--calls N]
//       sends N ListCaptures and never reads the connection, until standard input reaches
//       end of file.
#include "api/ServiceApi.h"
#include "dbus/Variant.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <string>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

using ringcap::api::kBusName;
using ringcap::api::kManagerPath;
constexpr const char *kManager = ringcap::api::kManagerInterface;

struct Options {
  std::string mode, address, capture, call;
  int clients = 8, callsPerClient = 1250, window = 16, count = 1, timeoutMs = 30000;
  bool confirm = false;
};

[[noreturn]] void usage(const std::string &why) {
  std::fprintf(
      stderr,
      "ringcap-bus-stress: %s\n"
      "usage: ringcap-bus-stress load|hangup|hold-fd|no-read [--address A] [--capture ID]\n"
      "       [--clients N] [--calls-per-client M] [--window W] [--timeout-ms T]\n"
      "       [--call KIND] [--count N] [--confirm] [--calls N]\n",
      why.c_str());
  std::exit(2);
}

Options parse(int argc, char **argv) {
  if (argc < 2)
    usage("a mode is required");
  Options o;
  o.mode = argv[1];
  if (const char *a = getenv("DBUS_SYSTEM_BUS_ADDRESS"))
    o.address = a;
  for (int i = 2; i < argc; i++) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        usage(arg + " needs a value");
      return argv[++i];
    };
    auto number = [&]() {
      std::string v = value();
      char *end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < 1 || n > 10'000'000)
        usage(arg + ": not a positive number: " + v);
      return int(n);
    };
    if (arg == "--address")
      o.address = value();
    else if (arg == "--capture")
      o.capture = value();
    else if (arg == "--clients")
      o.clients = number();
    else if (arg == "--calls-per-client")
      o.callsPerClient = number();
    else if (arg == "--window")
      o.window = number();
    else if (arg == "--timeout-ms")
      o.timeoutMs = number();
    else if (arg == "--call")
      o.call = value();
    else if (arg == "--count" || arg == "--calls")
      o.count = number();
    else if (arg == "--confirm")
      o.confirm = true;
    else
      usage("unknown argument " + arg);
  }
  return o;
}

// A connection as a bus client (Hello sent); null with a message on stderr on failure.
sd_bus *connectBus(const std::string &address) {
  sd_bus *bus = nullptr;
  int r = sd_bus_new(&bus);
  if (r >= 0)
    r = address.empty() ? 0 : sd_bus_set_address(bus, address.c_str());
  if (r >= 0 && address.empty()) {
    sd_bus_unref(bus);
    bus = nullptr;
    r = sd_bus_open_system(&bus);
  } else {
    if (r >= 0)
      r = sd_bus_set_bus_client(bus, 1);
    if (r >= 0)
      r = sd_bus_start(bus);
  }
  if (r < 0) {
    std::fprintf(stderr, "ringcap-bus-stress: connecting to %s: %s\n",
                 address.empty() ? "the system bus" : address.c_str(), std::strerror(-r));
    sd_bus_unref(bus);
    return nullptr;
  }
  return bus;
}

// Requests that break exactly one rule of docs/dbus-api.md each: every one must be refused
// with InvalidRequest before any job exists.
const std::vector<json> &badRequests() {
  static const std::vector<json> table = [] {
    json ok = {
        {"system", "magic-transit"}, {"type", "simple"}, {"time_limit", 10}, {"packet_limit", 10}};
    std::vector<json> t;
    auto with = [&](const char *key, json value) {
      json j = ok;
      j[key] = std::move(value);
      return j;
    };
    auto without = [&](const char *key) {
      json j = ok;
      j.erase(key);
      return j;
    };
    t.push_back(json::object());              // nothing at all
    t.push_back(without("system"));           // system missing
    t.push_back(without("time_limit"));       // time_limit missing
    t.push_back(with("time_limit", 0));       // below 1
    t.push_back(with("time_limit", 301));     // above 300
    t.push_back(with("packet_limit", 10001)); // above 10000
    t.push_back(with("type", "bogus"));       // no such type
    t.push_back(with("system", "no-such-system"));
    t.push_back(with("no_such_key", 1));   // unknown key
    t.push_back(with("time_limit", "10")); // a string for an integer
    t.push_back(with("byte_limit", 1000)); // full-only field on a simple capture
    t.push_back(with("filter_v1", {{"source_address", "999.1.1.1"}}));
    t.push_back(with("filter_v1", {{"source_address", "10.0.0.1"},
                                   {"destination_address", "fd00::1"}})); // two families
    t.push_back(with("offset_time", "yesterday"));
    return t;
  }();
  return table;
}

enum Kind { kBadCreate, kGet, kList, kKinds };
const char *kindName(int k) {
  return k == kBadCreate ? "CreateCapture(bad)" : k == kGet ? "GetCapture" : "ListCaptures";
}

struct Tally {
  uint64_t sent[kKinds] = {};
  uint64_t success[kKinds] = {};
  std::map<std::string, uint64_t> errors[kKinds];
  std::map<std::string, uint64_t> getStatus; // status field of GetCapture replies
  uint64_t unreadable = 0;                   // replies that did not parse
  uint64_t sendFailures = 0;
  double maxLatencyMs = 0;
  std::vector<double> latencies;
};

// Reads the string entry `key` of the a{sv} at the read position; "" when absent.
std::string dictString(sd_bus_message *m, const char *key, bool *ok) {
  std::string found;
  *ok = false;
  if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
    return found;
  for (;;) {
    int r = sd_bus_message_enter_container(m, 'e', "sv");
    if (r < 0)
      return found;
    if (r == 0)
      break;
    const char *k = nullptr;
    if (sd_bus_message_read(m, "s", &k) < 0)
      return found;
    if (std::strcmp(k, key) == 0) {
      const char *v = nullptr;
      if (sd_bus_message_read(m, "v", "s", &v) < 0)
        return found;
      found = v;
    } else if (sd_bus_message_skip(m, "v") < 0) {
      return found;
    }
    if (sd_bus_message_exit_container(m) < 0)
      return found;
  }
  *ok = sd_bus_message_exit_container(m) >= 0;
  return found;
}

struct Pending {
  Tally *tally;
  int kind;
  Clock::time_point sent;
  int *outstanding;
};

int onReply(sd_bus_message *m, void *userdata, sd_bus_error *) {
  auto *p = static_cast<Pending *>(userdata);
  Tally &t = *p->tally;
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - p->sent).count();
  t.latencies.push_back(ms);
  if (ms > t.maxLatencyMs)
    t.maxLatencyMs = ms;
  if (sd_bus_message_is_method_error(m, nullptr)) {
    const sd_bus_error *e = sd_bus_message_get_error(m);
    t.errors[p->kind][e && e->name ? e->name : "?"]++;
  } else {
    t.success[p->kind]++;
    if (p->kind == kGet) {
      bool ok = false;
      std::string status = dictString(m, "status", &ok);
      if (ok)
        t.getStatus[status]++;
      else
        t.unreadable++;
    } else if (p->kind == kList) {
      if (sd_bus_message_skip(m, "aa{sv}") < 0)
        t.unreadable++;
    }
  }
  --*p->outstanding;
  delete p;
  return 1;
}

// One client: its own connection, `calls` calls with at most `window` outstanding.
void runClient(const Options &o, int index, Tally &t) {
  sd_bus *bus = connectBus(o.address);
  if (!bus) {
    t.sendFailures += uint64_t(o.callsPerClient);
    return;
  }
  const auto &bad = badRequests();
  int outstanding = 0, next = 0;
  uint64_t timeout = uint64_t(o.timeoutMs) * 1000;
  while (next < o.callsPerClient || outstanding > 0) {
    while (next < o.callsPerClient && outstanding < o.window) {
      int kind = (next + index) % kKinds;
      sd_bus_message *m = nullptr;
      const char *member = kind == kBadCreate ? "CreateCapture"
                           : kind == kGet     ? "GetCapture"
                                              : "ListCaptures";
      int r = sd_bus_message_new_method_call(bus, &m, kBusName, kManagerPath, kManager, member);
      if (r >= 0 && kind == kBadCreate) {
        r = ringcap::appendVariantDict(m, bad[size_t(next / kKinds + index) % bad.size()]);
      } else if (r >= 0 && kind == kGet) {
        r = sd_bus_message_append(m, "s", o.capture.c_str());
      }
      auto *p = new Pending{&t, kind, Clock::now(), &outstanding};
      if (r >= 0)
        r = sd_bus_call_async(bus, nullptr, m, onReply, p, timeout);
      sd_bus_message_unref(m);
      ++next;
      t.sent[kind]++;
      if (r < 0) {
        delete p;
        t.sendFailures++;
        continue;
      }
      ++outstanding;
    }
    int r = sd_bus_process(bus, nullptr);
    if (r < 0) {
      std::fprintf(stderr, "ringcap-bus-stress: client %d: %s\n", index, std::strerror(-r));
      break;
    }
    if (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0)
      break;
  }
  sd_bus_flush_close_unref(bus);
}

int load(const Options &o) {
  if (o.capture.empty())
    usage("load needs --capture ID");
  std::vector<Tally> tallies(size_t(o.clients));
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int i = 0; i < o.clients; i++)
    threads.emplace_back([&, i] { runClient(o, i, tallies[size_t(i)]); });
  for (auto &th : threads)
    th.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  Tally all;
  std::vector<double> latencies;
  for (const auto &t : tallies) {
    for (int k = 0; k < kKinds; k++) {
      all.sent[k] += t.sent[k];
      all.success[k] += t.success[k];
      for (const auto &[name, n] : t.errors[k])
        all.errors[k][name] += n;
    }
    for (const auto &[s, n] : t.getStatus)
      all.getStatus[s] += n;
    all.unreadable += t.unreadable;
    all.sendFailures += t.sendFailures;
    all.maxLatencyMs = std::max(all.maxLatencyMs, t.maxLatencyMs);
    latencies.insert(latencies.end(), t.latencies.begin(), t.latencies.end());
  }
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double q) {
    return latencies.empty() ? 0.0 : latencies[size_t(q * double(latencies.size() - 1))];
  };
  json out = {{"clients", o.clients},
              {"seconds", seconds},
              {"send_failures", all.sendFailures},
              {"unreadable_replies", all.unreadable},
              {"get_status", all.getStatus},
              {"latency_ms", {{"p50", pct(0.5)}, {"p99", pct(0.99)}, {"max", all.maxLatencyMs}}}};
  // NoReply and Timeout come from sd-bus or the bus, not from ringcapd: not answers.
  auto notAnAnswer = [](const std::string &name) {
    return name == "org.freedesktop.DBus.Error.NoReply" ||
           name == "org.freedesktop.DBus.Error.Timeout";
  };
  uint64_t sent = 0, answered = 0;
  for (int k = 0; k < kKinds; k++) {
    uint64_t errors = 0;
    for (const auto &[name, n] : all.errors[k])
      errors += notAnAnswer(name) ? 0 : n;
    out["methods"][kindName(k)] = {
        {"sent", all.sent[k]}, {"success", all.success[k]}, {"errors", all.errors[k]}};
    sent += all.sent[k];
    answered += all.success[k] + errors;
  }
  out["sent"] = sent;
  out["answered"] = answered;
  out["calls_per_second"] = seconds > 0 ? double(answered) / seconds : 0.0;
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// Builds the call of `kind` (see the usage text) on `bus`.
int buildCall(sd_bus *bus, const std::string &kind, sd_bus_message **m) {
  auto arg = [&](const std::string &prefix) { return kind.substr(prefix.size()); };
  auto starts = [&](const std::string &prefix) { return kind.rfind(prefix, 0) == 0; };
  const char *member = kind == "list"                              ? "ListCaptures"
                       : starts("get:")                            ? "GetCapture"
                       : starts("open:")                           ? "OpenCaptureFile"
                       : starts("ownership:")                      ? "CreateOwnership"
                       : kind == "bad-create" || starts("create:") ? "CreateCapture"
                                                                   : nullptr;
  if (!member)
    usage("unknown --call " + kind);
  int r = sd_bus_message_new_method_call(bus, m, kBusName, kManagerPath, kManager, member);
  if (r < 0)
    return r;
  if (starts("get:") || starts("open:"))
    return sd_bus_message_append(*m, "s", arg(starts("get:") ? "get:" : "open:").c_str());
  if (starts("ownership:"))
    return sd_bus_message_append(*m, "s", arg("ownership:").c_str());
  if (kind == "bad-create")
    return ringcap::appendVariantDict(*m, badRequests()[3]);
  if (starts("create:")) {
    json body = json::parse(arg("create:"), nullptr, false);
    if (!body.is_object())
      usage("--call create:JSON needs a JSON object");
    return ringcap::appendVariantDict(*m, body);
  }
  return 0;
}

int hangup(const Options &o) {
  if (o.call.empty())
    usage("hangup needs --call KIND");
  int sent = 0;
  for (int i = 0; i < o.count; i++) {
    sd_bus *bus = connectBus(o.address);
    if (!bus)
      return 1;
    sd_bus_message *m = nullptr;
    int r = buildCall(bus, o.call, &m);
    if (r >= 0)
      r = sd_bus_send(bus, m, nullptr); // a reply is expected; nobody will be there to read it
    if (r >= 0)
      r = sd_bus_flush(bus);
    sd_bus_message_unref(m);
    if (r >= 0 && o.confirm) {
      sd_bus_error error = SD_BUS_ERROR_NULL;
      r = sd_bus_call_method(bus, kBusName, "/", "org.freedesktop.DBus.Peer", "Ping", &error,
                             nullptr, "");
      sd_bus_error_free(&error);
    }
    sd_bus_close(bus); // the call's reply is not read (or not even sent yet)
    sd_bus_unref(bus);
    if (r < 0) {
      std::fprintf(stderr, "ringcap-bus-stress: sending %s: %s\n", o.call.c_str(),
                   std::strerror(-r));
      return 1;
    }
    ++sent;
  }
  std::printf("%s\n", json({{"sent_and_hung_up", sent}, {"call", o.call}, {"confirmed", o.confirm}})
                          .dump()
                          .c_str());
  return 0;
}

// Blocks until standard input reaches end of file (the test closes it to release us).
void waitForStdinEof() {
  char buf[256];
  while (true) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EINTR))
      return;
  }
}

int holdFd(const Options &o) {
  if (o.capture.empty())
    usage("hold-fd needs --capture ID");
  sd_bus *bus = connectBus(o.address);
  if (!bus)
    return 1;
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message *reply = nullptr;
  int r = sd_bus_call_method(bus, kBusName, kManagerPath, kManager, "OpenCaptureFile", &error,
                             &reply, "s", o.capture.c_str());
  int fd = -1;
  if (r >= 0)
    r = sd_bus_message_read(reply, "h", &fd);
  if (r < 0) {
    std::printf("%s\n",
                json({{"holding", false}, {"error", error.name ? error.name : std::strerror(-r)}})
                    .dump()
                    .c_str());
    return 1;
  }
  struct stat st {};
  fstat(fd, &st);
  std::printf("%s\n", json({{"holding", true}, {"size", st.st_size}}).dump().c_str());
  std::fflush(stdout);
  waitForStdinEof(); // the fd (owned by `reply`) stays open and unread until then
  sd_bus_message_unref(reply);
  sd_bus_flush_close_unref(bus);
  return 0;
}

int noRead(const Options &o) {
  sd_bus *bus = connectBus(o.address);
  if (!bus)
    return 1;
  int sent = 0;
  for (int i = 0; i < o.count; i++) {
    sd_bus_message *m = nullptr;
    int r =
        sd_bus_message_new_method_call(bus, &m, kBusName, kManagerPath, kManager, "ListCaptures");
    if (r >= 0)
      r = sd_bus_send(bus, m, nullptr);
    sd_bus_message_unref(m);
    if (r < 0)
      break;
    ++sent;
  }
  int r = sd_bus_flush(bus);
  std::printf("%s\n", json({{"sent_without_reading", sent}, {"flushed", r >= 0}}).dump().c_str());
  std::fflush(stdout);
  waitForStdinEof(); // never sd_bus_process: the replies pile up unread
  sd_bus_close(bus);
  sd_bus_unref(bus);
  return sent == o.count ? 0 : 1;
}

} // namespace

int main(int argc, char **argv) {
  Options o = parse(argc, argv);
  if (o.mode == "load")
    return load(o);
  if (o.mode == "hangup")
    return hangup(o);
  if (o.mode == "hold-fd")
    return holdFd(o);
  if (o.mode == "no-read")
    return noRead(o);
  usage("unknown mode " + o.mode);
}
