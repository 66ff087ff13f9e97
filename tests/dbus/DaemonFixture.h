// A lab for ringcapd's D-Bus tests: two network namespaces joined by a veth pair, a private
// bpffs, a system-bus-like dbus-daemon with the shipped policy, and ringcapd on that bus;
// plus sd-bus clients that call it as root or as another user.
#pragma once

#include "api/ServiceApi.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <vector>

namespace ringcap::dbustest {

using namespace std::chrono_literals;
using nlohmann::json;
using Millis = std::chrono::milliseconds;

using api::kBusName;
using api::kCaptureInterface;
using api::kCapturePrefix;
using api::kManagerPath;
inline constexpr const char *kManager = api::kManagerInterface;
// The D-Bus error names the tests expect, from the service's table.
inline constexpr const char *kFailed = api::dbusErrorName(ErrorKind::Failed);
inline constexpr const char *kInvalidRequest = api::dbusErrorName(ErrorKind::InvalidRequest);
inline constexpr const char *kRateLimited = api::dbusErrorName(ErrorKind::RateLimited);
inline constexpr const char *kCaptureBusy = api::dbusErrorName(ErrorKind::CaptureBusy);
inline constexpr const char *kNotFound = api::dbusErrorName(ErrorKind::NotFound);
inline constexpr const char *kNotReady = api::dbusErrorName(ErrorKind::NotReady);
inline constexpr const char *kOwnershipRequired = api::dbusErrorName(ErrorKind::OwnershipRequired);
inline constexpr const char *kAccessDenied = api::dbusErrorName(ErrorKind::AccessDenied);
inline constexpr const char *kUnprivilegedUser = "ringcap-test-user";
inline constexpr const char *kMemberUser = "ringcap-test-member";
inline constexpr const char *kGroup = "ringcap";

inline std::string capturePath(const std::string &id) { return api::capturePath(id); }

class UniqueFd {
public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(UniqueFd &&o) noexcept : fd_(o.release()) {}
  UniqueFd &operator=(UniqueFd &&o) noexcept;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

private:
  int fd_;
};

struct RunResult {
  int status = -1; // exit code; 128 + signal when killed; -1 when it could not run
  std::string out, err;
};
// Runs a command (PATH is searched) with extra environment entries, killing it at the deadline.
RunResult run(const std::vector<std::string> &argv, Millis timeout = 60s,
              const std::vector<std::string> &env = {});
std::string readFile(const std::string &path);

// ---- Building method arguments ----

// Appends a method call's arguments.
using Args = std::function<int(sd_bus_message *)>;

// One a{sv} entry with an explicit D-Bus type, for requests ringcapctl would never send.
struct Field {
  std::string key;
  std::function<int(sd_bus_message *)> appendVariant;
};
using Fields = std::vector<Field>;
Field intField(std::string key, char type, int64_t value); // y n q i u x t
Field stringField(std::string key, std::string value);
Field boolField(std::string key, bool value);
Field doubleField(std::string key, double value);
Field dictField(std::string key, Fields value);
Field pairField(std::string key, int32_t a, int32_t b); // "(ii)": a type requests never hold

// An a{sv} argument written entry by entry (a key may repeat).
Args dictArgs(const Fields &fields);
// An a{sv} argument from JSON, with the request field types of docs/dbus-api.md.
Args jsonArgs(const json &object);
Args stringArg(const std::string &s);

// A valid simple capture request.
json simpleRequest(uint32_t timeLimit = 60, uint32_t packetLimit = 100,
                   const json &filter = json::object());

// ---- Clients ----

struct MessageUnref {
  void operator()(sd_bus_message *m) const { sd_bus_message_unref(m); }
};
using Message = std::unique_ptr<sd_bus_message, MessageUnref>;

struct CallResult {
  Message reply; // null when the call failed
  std::string error, message;
  bool ok() const { return error.empty(); }
  std::string describe() const { return ok() ? "success" : error + ": " + message; }
};

// The next argument of a message as JSON: a{sv}, aa{sv} (an array) or s; null otherwise.
json readReply(sd_bus_message *m);

// What a method that returns a dictionary (and CreateCapture's object path) answered.
struct DictResult {
  CallResult call;
  json dict;
  std::string path;
};

struct CaptureFinished {
  std::string path, id, status;
};

class Client {
public:
  // Connects to the bus at `address` as this process's user; null (and *error = -errno) on
  // failure.
  static std::unique_ptr<Client> connect(const std::string &address, int *error = nullptr);
  ~Client();
  Client(const Client &) = delete;
  Client &operator=(const Client &) = delete;

  sd_bus *bus() const { return bus_; }
  CallResult call(const std::string &path, const char *interface, const char *member,
                  const Args &args = {}, Millis timeout = 30s);
  CallResult manager(const char *member, const Args &args = {}) {
    return call(kManagerPath, kManager, member, args);
  }

  DictResult create(const Args &request);
  DictResult create(const json &request) { return create(jsonArgs(request)); }
  DictResult get(const std::string &id);
  CallResult stop(const std::string &id) { return manager("StopCapture", stringArg(id)); }
  // ListCaptures; records a test failure and returns {} when the call fails.
  std::vector<json> list();
  // OpenCaptureFile; `fd` is valid when the call succeeded.
  CallResult openFile(const std::string &id, UniqueFd &fd);

  // Processes the bus (dispatching signals) until done() holds; false at the deadline. Returns
  // early when `watchFd` becomes readable (a pidfd: the process exited), setting *fdReady.
  bool waitFor(const std::function<bool()> &done, Millis timeout, int watchFd = -1,
               bool *fdReady = nullptr);

  // Records PropertiesChanged of org.ringcap.Ringcap1.Capture on `path` (the changed
  // properties of each signal, as JSON) from now on.
  void watchCapture(const std::string &path);
  const std::vector<json> &changes(const std::string &path) { return changes_[path]; }
  // Records the Manager's CaptureFinished signals from now on.
  void watchFinished();
  const std::vector<CaptureFinished> &finished() const { return finished_; }
  bool finishedSignalFor(const std::string &id) const;
  // Tracks whether org.ringcap.Ringcap1 has an owner (NameOwnerChanged, then NameHasOwner).
  void trackServiceName();
  bool serviceNameOwned() const { return nameOwned_; }

private:
  Client() = default;
  static int onPropertiesChanged(sd_bus_message *m, void *userdata, sd_bus_error *);
  static int onCaptureFinished(sd_bus_message *m, void *userdata, sd_bus_error *);
  static int onNameOwnerChanged(sd_bus_message *m, void *userdata, sd_bus_error *);
  void keep(sd_bus_slot *slot) { slots_.push_back(slot); }

  sd_bus *bus_ = nullptr;
  std::vector<sd_bus_slot *> slots_;
  std::map<std::string, std::vector<json>> changes_;
  std::vector<CaptureFinished> finished_;
  bool nameOwned_ = false;
};

// What a call made by another user returned: the error, or the reply's dictionary (a{sv}) or
// list of dictionaries (aa{sv}) as JSON.
struct RemoteResult {
  std::string error, message;
  json value;
  bool ok() const { return error.empty(); }
  std::string describe() const { return ok() ? "success" : error + ": " + message; }
};
// Calls a method of ringcapd in a child process that switched to `user` (its groups, gid and
// uid) and connected to the bus at `address`.
RemoteResult callAs(const std::string &user, const std::string &address, const std::string &path,
                    const char *interface, const char *member, const Args &args = {});

// Makes sure the group "ringcap", an unprivileged user and a member of the group exist
// (creating what is missing; they are left in place afterwards).
testing::AssertionResult ensureTestUsers();

// ---- The lab ----

struct LabOptions {
  uint32_t simpleIntervalSeconds = 0;
  // false: the bus lets everyone talk to ringcapd (a permissive policy replaces
  // systemd/org.ringcap.Ringcap1.conf), so only the daemon's own check stands.
  bool shippedPolicy = true;
  // Appended to ringcapd's configuration file (whole TOML tables, such as "[ownership]\n...").
  std::string extraConfig{};
  // ringcapd's standard error is the journal's stream: JOURNAL_STREAM names its log file.
  bool journalStream = false;
  // TOML lines added to the [capture] table of ringcapd's configuration.
  std::string captureConfig;
};

class Lab {
public:
  explicit Lab(LabOptions options);
  // Stops the processes it started (by pid), deletes the namespaces, the bpffs and the files.
  ~Lab();
  Lab(const Lab &) = delete;
  Lab &operator=(const Lab &) = delete;

  // Namespaces, veth pair, bpffs, the bus and ringcapd.
  testing::AssertionResult up();
  // Starts ringcapd in the capture namespace and waits until it owns its bus name.
  testing::AssertionResult startDaemon();
  // Sends `signal` to ringcapd, waits for it to exit and for its bus name to be released.
  testing::AssertionResult stopDaemon(int signal, int *waitStatus = nullptr);
  // The end of every test: stops a running ringcapd with SIGTERM, which must end it with exit
  // code 0, and fails when its log (every run of the lab) holds a sanitizer report, so that
  // a crash or a UBSan/ASan report at shutdown does not pass.
  testing::AssertionResult shutdown();

  Client &root() { return *root_; }
  std::string busAddress() const { return "unix:path=" + tmp_ + "/system_bus_socket"; }
  const std::string &tmp() const { return tmp_; }
  std::string stateDirectory() const { return tmp_ + "/state"; }
  // The one directory file:// destinations may name (destinations.file_roots).
  std::string destinationRoot() const { return tmp_ + "/destinations"; }
  std::string daemonLog() const { return readFile(tmp_ + "/ringcapd.log"); }
  std::string busLog() const { return readFile(tmp_ + "/dbus-daemon.log"); }
  pid_t daemonPid() const { return daemon_; }

  const std::string &captureInterface() const { return ifCap_; }
  const std::string &captureNamespace() const { return nsCap_; }
  static constexpr const char *kCaptureAddress = "10.91.0.1";
  static constexpr const char *kGeneratorAddress = "10.91.0.2";

  // Sends `count` UDP datagrams of `size` payload bytes from the generator namespace to the
  // capture side's address.
  testing::AssertionResult sendUdp(uint16_t sourcePort, uint16_t destinationPort, int count,
                                   int size);
  // `ip -d link show` of the capture interface, and how many XDP programs it names.
  std::string linkDetails();
  int xdpProgramsAttached();

private:
  testing::AssertionResult startBus();
  testing::AssertionResult waitForExit(pid_t pid, Millis timeout, int *waitStatus);
  void terminate(pid_t &pid);

  LabOptions options_;
  std::string tmp_, bpffs_, nsCap_, nsGen_, ifCap_, ifGen_, config_;
  bool bpffsMounted_ = false, nsCapMade_ = false, nsGenMade_ = false;
  pid_t bus_ = -1, daemon_ = -1;
  std::unique_ptr<Client> root_;
};

// The fixture: skips (fails under CI=true) unless it runs as root with BPF and the tools it
// needs; each test makes its own lab, and TearDown checks how ringcapd ended (Lab::shutdown).
class DaemonTest : public testing::Test {
protected:
  void SetUp() override;
  void TearDown() override;
  testing::AssertionResult up(LabOptions options = {});
  Lab &lab() { return *lab_; }
  Client &root() { return lab_->root(); }

  std::unique_ptr<Lab> lab_;
};

#define RINGCAP_LAB_UP(...) ASSERT_TRUE(up(__VA_ARGS__))

// Copies a capture file fd into `path`; the number of bytes, or -1.
int64_t copyToFile(int fd, const std::string &path);
// One line per packet of `file`, fields separated by spaces, read by tshark.
RunResult tsharkFields(const std::string &file, const std::vector<std::string> &fields);
std::vector<std::string> lines(const std::string &text);
// capinfos -t -M's name of the file's type: "nsecpcap" (classic PCAP, nanoseconds), "pcapng";
// empty when capinfos fails.
std::string captureFileType(const std::string &file);

} // namespace ringcap::dbustest
