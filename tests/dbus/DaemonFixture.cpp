#include "DaemonFixture.h"
#include "../lib/Skip.h"

#include "dbus/Variant.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <grp.h>
#include <iostream>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <sstream>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace ringcap::dbustest {
namespace {

using Clock = std::chrono::steady_clock;

int msLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return left < 0 ? 0 : int(left);
}

std::string describeWaitStatus(int ws) {
  if (WIFEXITED(ws))
    return "exit code " + std::to_string(WEXITSTATUS(ws));
  if (WIFSIGNALED(ws))
    return std::string("signal ") + strsignal(WTERMSIG(ws));
  return "wait status " + std::to_string(ws);
}

// Starts argv[0] (searched in PATH) with stdout and stderr on the given fds and stdin on
// /dev/null; the child gets SIGKILL if the test process dies first.
pid_t spawn(const std::vector<std::string> &argv, const std::vector<std::string> &extraEnv, int out,
            int err) {
  std::vector<std::string> env;
  for (char **e = environ; *e; ++e) {
    std::string entry(*e);
    std::string key = entry.substr(0, entry.find('=') + 1);
    bool replaced = false;
    for (const auto &x : extraEnv)
      replaced = replaced || x.rfind(key, 0) == 0;
    if (!replaced)
      env.push_back(entry);
  }
  env.insert(env.end(), extraEnv.begin(), extraEnv.end());
  std::vector<char *> a, e;
  for (const auto &s : argv)
    a.push_back(const_cast<char *>(s.c_str()));
  a.push_back(nullptr);
  for (const auto &s : env)
    e.push_back(const_cast<char *>(s.c_str()));
  e.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execvpe(a[0], a.data(), e.data());
    _exit(127);
  }
  return pid;
}

UniqueFd pidfdOpen(pid_t pid) { return UniqueFd(int(syscall(SYS_pidfd_open, pid, 0))); }

bool inGroup(const passwd &pw, gid_t gid) {
  int n = 256;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  if (getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0)
    return false;
  groups.resize(size_t(n));
  return std::find(groups.begin(), groups.end(), gid) != groups.end();
}

testing::AssertionResult runOk(const std::vector<std::string> &argv) {
  RunResult r = run(argv);
  if (r.status == 0)
    return testing::AssertionSuccess();
  std::string cmd;
  for (const auto &a : argv)
    cmd += (cmd.empty() ? "" : " ") + a;
  return testing::AssertionFailure() << cmd << ": exit " << r.status << ": " << r.err << r.out;
}

std::string prerequisites() {
  if (geteuid() != 0)
    return "needs root (network namespaces, XDP, a private bus, other users)";
  bpf_map_create_opts opts{};
  opts.sz = sizeof opts;
  int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "rc_probe", 4, 4, 1, &opts);
  if (fd < 0)
    return std::string("needs BPF: creating a map failed: ") + std::strerror(errno);
  close(fd);
  for (const char *tool : {"ip", "dbus-daemon", "tshark", "groupadd", "useradd", "usermod"})
    if (run({"sh", "-c", std::string("command -v ") + tool}).status != 0)
      return std::string("needs ") + tool;
  return "";
}

} // namespace

UniqueFd &UniqueFd::operator=(UniqueFd &&o) noexcept {
  if (this != &o) {
    if (fd_ >= 0)
      close(fd_);
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0)
    close(fd_);
}

RunResult run(const std::vector<std::string> &argv, Millis timeout,
              const std::vector<std::string> &env) {
  RunResult result;
  int po[2], pe[2];
  if (pipe2(po, O_CLOEXEC) != 0)
    return result;
  if (pipe2(pe, O_CLOEXEC) != 0) {
    close(po[0]);
    close(po[1]);
    return result;
  }
  pid_t pid = spawn(argv, env, po[1], pe[1]);
  close(po[1]);
  close(pe[1]);
  UniqueFd out(po[0]), err(pe[0]);
  auto deadline = Clock::now() + timeout;
  bool outOpen = true, errOpen = true, killed = false;
  char buf[65536];
  while ((outOpen || errOpen) && pid > 0) {
    pollfd fds[2] = {{outOpen ? out.get() : -1, POLLIN, 0}, {errOpen ? err.get() : -1, POLLIN, 0}};
    int n = poll(fds, 2, msLeft(deadline));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      kill(pid, SIGKILL);
      killed = true;
      break;
    }
    for (int i = 0; i < 2; i++) {
      if (!fds[i].revents)
        continue;
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0)
        (i == 0 ? result.out : result.err).append(buf, size_t(got));
      else
        (i == 0 ? outOpen : errOpen) = false;
    }
  }
  int ws = 0;
  if (pid > 0 && waitpid(pid, &ws, 0) == pid)
    result.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  if (killed)
    result.err += "\n(killed after " + std::to_string(timeout.count()) + " ms)";
  return result;
}

std::string readFile(const std::string &path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

json readReply(sd_bus_message *m) {
  char type;
  const char *contents = nullptr;
  if (sd_bus_message_peek_type(m, &type, &contents) <= 0)
    return nullptr;
  if (type == 's') {
    const char *s;
    return sd_bus_message_read(m, "s", &s) >= 0 ? json(s) : json();
  }
  if (type == 'a' && contents && std::string(contents) == "{sv}") {
    auto d = readVariantDict(m);
    return d ? *d : json();
  }
  if (type == 'a' && contents && std::string(contents) == "a{sv}") {
    json out = json::array();
    if (sd_bus_message_enter_container(m, 'a', "a{sv}") < 0)
      return nullptr;
    while (sd_bus_message_at_end(m, false) == 0) {
      auto d = readVariantDict(m);
      if (!d)
        return nullptr;
      out.push_back(*d);
    }
    sd_bus_message_exit_container(m);
    return out;
  }
  return nullptr;
}

std::vector<std::string> lines(const std::string &text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty())
      out.push_back(line);
  return out;
}

// ---- Arguments ----

Field intField(std::string key, char type, int64_t value) {
  return {std::move(key), [type, value](sd_bus_message *m) {
            const char sig[2] = {type, 0};
            int r = sd_bus_message_open_container(m, 'v', sig);
            if (r < 0)
              return r;
            uint8_t y = uint8_t(value);
            int16_t n = int16_t(value);
            uint16_t q = uint16_t(value);
            int32_t i = int32_t(value);
            uint32_t u = uint32_t(value);
            uint64_t t = uint64_t(value);
            const void *p = type == 'y'   ? (const void *)&y
                            : type == 'n' ? (const void *)&n
                            : type == 'q' ? (const void *)&q
                            : type == 'i' ? (const void *)&i
                            : type == 'u' ? (const void *)&u
                            : type == 't' ? (const void *)&t
                                          : (const void *)&value;
            r = sd_bus_message_append_basic(m, type, p);
            return r < 0 ? r : sd_bus_message_close_container(m);
          }};
}

Field stringField(std::string key, std::string value) {
  return {std::move(key),
          [value](sd_bus_message *m) { return sd_bus_message_append(m, "v", "s", value.c_str()); }};
}

Field boolField(std::string key, bool value) {
  return {std::move(key),
          [value](sd_bus_message *m) { return sd_bus_message_append(m, "v", "b", int(value)); }};
}

Field doubleField(std::string key, double value) {
  return {std::move(key),
          [value](sd_bus_message *m) { return sd_bus_message_append(m, "v", "d", value); }};
}

Field dictField(std::string key, Fields value) {
  return {std::move(key), [value](sd_bus_message *m) {
            int r = sd_bus_message_open_container(m, 'v', "a{sv}");
            if (r >= 0)
              r = dictArgs(value)(m);
            return r < 0 ? r : sd_bus_message_close_container(m);
          }};
}

Field pairField(std::string key, int32_t a, int32_t b) {
  return {std::move(key),
          [a, b](sd_bus_message *m) { return sd_bus_message_append(m, "v", "(ii)", a, b); }};
}

Args dictArgs(const Fields &fields) {
  return [fields](sd_bus_message *m) {
    int r = sd_bus_message_open_container(m, 'a', "{sv}");
    for (const auto &f : fields) {
      if (r >= 0)
        r = sd_bus_message_open_container(m, 'e', "sv");
      if (r >= 0)
        r = sd_bus_message_append(m, "s", f.key.c_str());
      if (r >= 0)
        r = f.appendVariant(m);
      if (r >= 0)
        r = sd_bus_message_close_container(m);
    }
    return r < 0 ? r : sd_bus_message_close_container(m);
  };
}

Args jsonArgs(const json &object) {
  return [object](sd_bus_message *m) { return appendVariantDict(m, object); };
}

Args stringArg(const std::string &s) {
  return [s](sd_bus_message *m) { return sd_bus_message_append(m, "s", s.c_str()); };
}

json simpleRequest(uint32_t timeLimit, uint32_t packetLimit, const json &filter) {
  json j = {{"system", "magic-transit"},
            {"type", "simple"},
            {"time_limit", timeLimit},
            {"packet_limit", packetLimit}};
  if (!filter.empty())
    j["filter_v1"] = filter;
  return j;
}

// ---- Client ----

std::unique_ptr<Client> Client::connect(const std::string &address, int *error) {
  std::unique_ptr<Client> c(new Client);
  int r = sd_bus_new(&c->bus_);
  if (r >= 0)
    r = sd_bus_set_address(c->bus_, address.c_str());
  if (r >= 0)
    r = sd_bus_set_bus_client(c->bus_, 1);
  if (r >= 0)
    r = sd_bus_start(c->bus_);
  if (r < 0) {
    if (error)
      *error = r;
    return nullptr;
  }
  return c;
}

Client::~Client() {
  for (auto *slot : slots_)
    sd_bus_slot_unref(slot);
  sd_bus_flush_close_unref(bus_);
}

CallResult Client::call(const std::string &path, const char *interface, const char *member,
                        const Args &args, Millis timeout) {
  CallResult result;
  sd_bus_message *m = nullptr;
  int r = sd_bus_message_new_method_call(bus_, &m, kBusName, path.c_str(), interface, member);
  if (r >= 0 && args)
    r = args(m);
  Message call(m);
  if (r < 0) {
    result.error = "test.BuildFailed";
    result.message = std::string("building the call: ") + std::strerror(-r);
    return result;
  }
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message *reply = nullptr;
  r = sd_bus_call(bus_, m, uint64_t(timeout.count()) * 1000, &error, &reply);
  if (r < 0) {
    result.error = error.name ? error.name : "test.CallFailed";
    result.message = error.message ? error.message : std::strerror(-r);
  } else {
    result.reply.reset(reply);
  }
  sd_bus_error_free(&error);
  return result;
}

DictResult Client::create(const Args &request) {
  DictResult d{manager("CreateCapture", request), nullptr, ""};
  if (!d.call.ok())
    return d;
  const char *path = nullptr;
  if (sd_bus_message_read(d.call.reply.get(), "o", &path) >= 0)
    d.path = path;
  d.dict = readReply(d.call.reply.get());
  return d;
}

DictResult Client::get(const std::string &id) {
  DictResult d{manager("GetCapture", stringArg(id)), nullptr, ""};
  if (d.call.ok())
    d.dict = readReply(d.call.reply.get());
  return d;
}

std::vector<json> Client::list() {
  CallResult r = manager("ListCaptures");
  if (!r.ok()) {
    ADD_FAILURE() << "ListCaptures: " << r.describe();
    return {};
  }
  json records = readReply(r.reply.get());
  if (!records.is_array()) {
    ADD_FAILURE() << "ListCaptures: unreadable reply";
    return {};
  }
  return records.get<std::vector<json>>();
}

CallResult Client::openFile(const std::string &id, UniqueFd &fd) {
  CallResult r = manager("OpenCaptureFile", stringArg(id));
  if (!r.ok())
    return r;
  int received = -1;
  if (sd_bus_message_read(r.reply.get(), "h", &received) < 0 || received < 0) {
    r.error = "test.NoFd";
    r.message = "the reply holds no fd";
    return r;
  }
  fd = UniqueFd(fcntl(received, F_DUPFD_CLOEXEC, 3));
  return r;
}

bool Client::waitFor(const std::function<bool()> &done, Millis timeout, int watchFd,
                     bool *fdReady) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (done())
      return true;
    int r = sd_bus_process(bus_, nullptr);
    if (r < 0)
      return done();
    if (r > 0)
      continue;
    int ms = msLeft(deadline);
    if (ms == 0)
      return done();
    uint64_t until = 0;
    if (sd_bus_get_timeout(bus_, &until) >= 0 && until != UINT64_MAX) {
      timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      uint64_t now = uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000;
      ms = std::min<int64_t>(ms, until <= now ? 0 : int64_t((until - now + 999) / 1000));
    }
    pollfd fds[2] = {{sd_bus_get_fd(bus_), short(sd_bus_get_events(bus_)), 0},
                     {watchFd, POLLIN, 0}};
    int n = poll(fds, watchFd >= 0 ? 2 : 1, ms);
    if (n < 0 && errno != EINTR)
      return done();
    if (watchFd >= 0 && fds[1].revents) {
      if (fdReady)
        *fdReady = true;
      while (sd_bus_process(bus_, nullptr) > 0) {
      }
      return done();
    }
  }
}

int Client::onPropertiesChanged(sd_bus_message *m, void *userdata, sd_bus_error *) {
  auto *self = static_cast<Client *>(userdata);
  const char *interface = nullptr;
  if (sd_bus_message_read(m, "s", &interface) < 0 || std::string(interface) != kCaptureInterface)
    return 0;
  auto changed = readVariantDict(m);
  self->changes_[sd_bus_message_get_path(m)].push_back(
      changed ? *changed : json{{"unreadable", changed.error().message}});
  return 0;
}

int Client::onCaptureFinished(sd_bus_message *m, void *userdata, sd_bus_error *) {
  auto *self = static_cast<Client *>(userdata);
  const char *path, *id, *status;
  if (sd_bus_message_read(m, "oss", &path, &id, &status) >= 0)
    self->finished_.push_back({path, id, status});
  return 0;
}

int Client::onNameOwnerChanged(sd_bus_message *m, void *userdata, sd_bus_error *) {
  auto *self = static_cast<Client *>(userdata);
  const char *name, *oldOwner, *newOwner;
  if (sd_bus_message_read(m, "sss", &name, &oldOwner, &newOwner) >= 0 &&
      std::string(name) == kBusName)
    self->nameOwned_ = *newOwner != 0;
  return 0;
}

void Client::watchCapture(const std::string &path) {
  sd_bus_slot *slot = nullptr;
  int r = sd_bus_match_signal(bus_, &slot, nullptr, path.c_str(), "org.freedesktop.DBus.Properties",
                              "PropertiesChanged", onPropertiesChanged, this);
  if (r < 0)
    ADD_FAILURE() << "matching PropertiesChanged: " << std::strerror(-r);
  else
    keep(slot);
}

void Client::watchFinished() {
  sd_bus_slot *slot = nullptr;
  int r = sd_bus_match_signal(bus_, &slot, nullptr, kManagerPath, kManager, "CaptureFinished",
                              onCaptureFinished, this);
  if (r < 0)
    ADD_FAILURE() << "matching CaptureFinished: " << std::strerror(-r);
  else
    keep(slot);
}

bool Client::finishedSignalFor(const std::string &id) const {
  return std::any_of(finished_.begin(), finished_.end(),
                     [&](const CaptureFinished &f) { return f.id == id; });
}

void Client::trackServiceName() {
  sd_bus_slot *slot = nullptr;
  std::string match = std::string("type='signal',sender='org.freedesktop.DBus',interface='org."
                                  "freedesktop.DBus',member='NameOwnerChanged',arg0='") +
                      kBusName + "'";
  int r = sd_bus_add_match(bus_, &slot, match.c_str(), onNameOwnerChanged, this);
  if (r < 0) {
    ADD_FAILURE() << "matching NameOwnerChanged: " << std::strerror(-r);
    return;
  }
  keep(slot);
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message *reply = nullptr;
  r = sd_bus_call_method(bus_, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                         "org.freedesktop.DBus", "NameHasOwner", &error, &reply, "s", kBusName);
  int owned = 0;
  if (r >= 0 && sd_bus_message_read(reply, "b", &owned) >= 0)
    nameOwned_ = owned;
  else
    ADD_FAILURE() << "NameHasOwner: " << (error.message ? error.message : std::strerror(-r));
  sd_bus_message_unref(reply);
  sd_bus_error_free(&error);
}

// ---- Other users ----

RemoteResult callAs(const std::string &user, const std::string &address, const std::string &path,
                    const char *interface, const char *member, const Args &args) {
  RemoteResult result;
  const passwd *pw = getpwnam(user.c_str());
  if (!pw) {
    result.error = "test.NoSuchUser";
    result.message = user;
    return result;
  }
  std::string name = pw->pw_name;
  uid_t uid = pw->pw_uid;
  gid_t gid = pw->pw_gid;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    result.error = "test.PipeFailed";
    return result;
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    json out;
    if (initgroups(name.c_str(), gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0 ||
        geteuid() != uid || getuid() != uid) {
      out = {{"error", "test.SetUidFailed"}, {"message", std::strerror(errno)}};
    } else {
      int err = 0;
      auto c = Client::connect(address, &err);
      if (!c) {
        out = {{"error", "test.ConnectFailed"}, {"message", std::strerror(-err)}};
      } else {
        CallResult r = c->call(path, interface, member, args);
        out = {{"error", r.error}, {"message", r.message}};
        if (r.ok())
          out["value"] = readReply(r.reply.get());
      }
    }
    std::string s = out.dump(-1, ' ', false, json::error_handler_t::replace);
    for (size_t off = 0; off < s.size();) {
      ssize_t w = write(p[1], s.data() + off, s.size() - off);
      if (w <= 0)
        break;
      off += size_t(w);
    }
    _exit(0);
  }
  close(p[1]);
  UniqueFd in(p[0]);
  if (pid < 0) {
    result.error = "test.ForkFailed";
    return result;
  }
  std::string data;
  auto deadline = Clock::now() + 60s;
  char buf[4096];
  for (;;) {
    pollfd fd{in.get(), POLLIN, 0};
    int n = poll(&fd, 1, msLeft(deadline));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      kill(pid, SIGKILL);
      break;
    }
    ssize_t got = read(in.get(), buf, sizeof buf);
    if (got <= 0)
      break;
    data.append(buf, size_t(got));
  }
  waitpid(pid, nullptr, 0);
  json parsed = json::parse(data, nullptr, false);
  if (!parsed.is_object()) {
    result.error = "test.NoAnswer";
    result.message = "the child process answered \"" + data + "\"";
    return result;
  }
  result.error = parsed.value("error", "");
  result.message = parsed.value("message", "");
  if (parsed.contains("value"))
    result.value = parsed["value"];
  return result;
}

testing::AssertionResult ensureTestUsers() {
  const char *nologin = "/usr/sbin/nologin";
  if (!getgrnam(kGroup))
    if (auto r = runOk({"groupadd", "--system", kGroup}); !r)
      return r;
  if (!getpwnam(kUnprivilegedUser))
    if (auto r = runOk(
            {"useradd", "--system", "--no-create-home", "--shell", nologin, kUnprivilegedUser});
        !r)
      return r;
  if (!getpwnam(kMemberUser))
    if (auto r = runOk({"useradd", "--system", "--no-create-home", "--shell", nologin, "--groups",
                        kGroup, kMemberUser});
        !r)
      return r;
  const group *g = getgrnam(kGroup);
  const passwd *member = getpwnam(kMemberUser);
  if (!g || !member)
    return testing::AssertionFailure() << "the group or the member user is still missing";
  gid_t gid = g->gr_gid;
  if (!inGroup(*member, gid))
    if (auto r = runOk({"usermod", "--append", "--groups", kGroup, kMemberUser}); !r)
      return r;
  const passwd *outsider = getpwnam(kUnprivilegedUser);
  if (!outsider || outsider->pw_uid == 0 || inGroup(*outsider, gid))
    return testing::AssertionFailure()
           << kUnprivilegedUser << " must exist, not be root and not be in the group " << kGroup;
  return testing::AssertionSuccess();
}

// ---- Lab ----

Lab::Lab(LabOptions options) : options_(options) {}

Lab::~Lab() {
  terminate(daemon_);
  root_.reset();
  terminate(bus_);
  if (nsCapMade_)
    run({"ip", "netns", "del", nsCap_});
  if (nsGenMade_)
    run({"ip", "netns", "del", nsGen_});
  if (bpffsMounted_)
    umount2(bpffs_.c_str(), MNT_DETACH);
  if (!tmp_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(tmp_, ec);
  }
}

void Lab::terminate(pid_t &pid) {
  if (pid <= 0)
    return;
  // ringcapd's end is checked by shutdown() before this runs; what is left (the bus, or a
  // ringcapd of a lab that failed earlier) must still end within the deadline.
  kill(pid, SIGTERM);
  if (auto exited = waitForExit(pid, 20s, nullptr); !exited)
    ADD_FAILURE() << exited.message();
  pid = -1;
}

testing::AssertionResult Lab::waitForExit(pid_t pid, Millis timeout, int *waitStatus) {
  UniqueFd pidfd = pidfdOpen(pid);
  pollfd fd{pidfd.get(), POLLIN, 0};
  bool exited = pidfd.get() >= 0 && poll(&fd, 1, int(timeout.count())) > 0;
  if (!exited)
    kill(pid, SIGKILL);
  int ws = 0;
  waitpid(pid, &ws, 0);
  if (waitStatus)
    *waitStatus = ws;
  if (!exited)
    return testing::AssertionFailure()
           << "process " << pid << " did not exit within " << timeout.count() << " ms (killed)";
  return testing::AssertionSuccess();
}

testing::AssertionResult Lab::up() {
  static int labs = 0;
  std::string tag = "d" + std::to_string(getpid()) + "-" + std::to_string(++labs);
  nsCap_ = "ringcap-" + tag + "-cap";
  nsGen_ = "ringcap-" + tag + "-gen";
  ifCap_ = "rcd" + std::to_string(getpid()) + "c";
  ifGen_ = "rcd" + std::to_string(getpid()) + "g";
  char dir[] = "/tmp/ringcap-dbus.XXXXXX";
  if (!mkdtemp(dir))
    return testing::AssertionFailure() << "mkdtemp: " << std::strerror(errno);
  tmp_ = dir;
  // The bus socket lies here and the test users connect to it.
  if (chmod(tmp_.c_str(), 0755) != 0)
    return testing::AssertionFailure() << "chmod " << tmp_ << ": " << std::strerror(errno);
  // ip netns exec gives each command a fresh /sys; libxdp keeps its state in this bpffs.
  bpffs_ = tmp_ + "/bpffs";
  if (mkdir(bpffs_.c_str(), 0700) != 0 || mount("bpf", bpffs_.c_str(), "bpf", 0, nullptr) != 0)
    return testing::AssertionFailure() << "mounting a bpffs: " << std::strerror(errno);
  bpffsMounted_ = true;

  if (auto r = runOk({"ip", "netns", "add", nsCap_}); !r)
    return r;
  nsCapMade_ = true;
  if (auto r = runOk({"ip", "netns", "add", nsGen_}); !r)
    return r;
  nsGenMade_ = true;
  const char *macCap = "02:52:43:91:00:01", *macGen = "02:52:43:91:00:02";
  if (auto r = runOk({"ip", "link", "add", ifCap_, "address", macCap, "netns", nsCap_, "type",
                      "veth", "peer", "name", ifGen_, "address", macGen, "netns", nsGen_});
      !r)
    return r;
  struct Side {
    std::string ns, ifname, addr, peerAddr, peerMac;
  };
  for (const Side &s : {Side{nsCap_, ifCap_, kCaptureAddress, kGeneratorAddress, macGen},
                        Side{nsGen_, ifGen_, kGeneratorAddress, kCaptureAddress, macCap}}) {
    for (const auto &cmd : std::vector<std::vector<std::string>>{
             {"ip", "-n", s.ns, "link", "set", "lo", "up"},
             {"ip", "-n", s.ns, "addr", "add", s.addr + "/24", "dev", s.ifname},
             {"ip", "-n", s.ns, "link", "set", s.ifname, "up"},
             // Static neighbours: no ARP in the middle of a test's traffic.
             {"ip", "-n", s.ns, "neigh", "replace", s.peerAddr, "lladdr", s.peerMac, "dev",
              s.ifname, "nud", "permanent"}})
      if (auto r = runOk(cmd); !r)
        return r;
  }

  // The group must exist before the bus reads its policy.
  if (auto r = ensureTestUsers(); !r)
    return r;
  if (auto r = startBus(); !r)
    return r;

  if (mkdir(destinationRoot().c_str(), 0700) != 0)
    return testing::AssertionFailure()
           << "mkdir " << destinationRoot() << ": " << std::strerror(errno);
  config_ = tmp_ + "/ringcapd.toml";
  std::ofstream(config_) << "colo_name = \"lab01\"\n"
                         << "state_directory = \"" << stateDirectory() << "\"\n\n"
                         << "[destinations]\nfile_roots = [\"" << destinationRoot() << "\"]\n\n"
                         << "[systems]\nmagic-transit = [\"" << ifCap_ << "\"]\n\n"
                         << "[capture]\nring_size_mib = 8\n"
                         << options_.captureConfig << "\n\n"
                         << "[rate_limits]\nsimple_interval_seconds = "
                         << options_.simpleIntervalSeconds << "\n\n"
                         << options_.extraConfig;
  return startDaemon();
}

testing::AssertionResult Lab::startBus() {
  const std::string source = RINGCAP_SOURCE_DIR;
  std::string conf = readFile(source + "/tests/systemd/dbus-system-test.conf.in");
  const std::string placeholder = "@RINGCAP_DBUS_POLICY@";
  const std::string include = "<include>" + placeholder + "</include>";
  size_t at = conf.find(include);
  if (at == std::string::npos)
    return testing::AssertionFailure()
           << "tests/systemd/dbus-system-test.conf.in has no " << include;
  std::string policy = source + "/systemd/" + kBusName + ".conf";
  if (access(policy.c_str(), R_OK) != 0)
    return testing::AssertionFailure() << policy << ": " << std::strerror(errno);
  const std::string name = kBusName;
  conf.replace(at, include.size(),
               options_.shippedPolicy ? "<include>" + policy + "</include>"
                                      : "<policy context=\"default\">\n"
                                        "    <allow own=\"" +
                                            name +
                                            "\"/>\n"
                                            "    <allow send_destination=\"" +
                                            name +
                                            "\"/>\n"
                                            "    <allow receive_sender=\"" +
                                            name +
                                            "\"/>\n"
                                            "  </policy>");
  std::string confPath = tmp_ + "/dbus-system.conf";
  std::ofstream(confPath) << conf;

  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0)
    return testing::AssertionFailure() << "pipe: " << std::strerror(errno);
  UniqueFd pidOut(p[0]);
  UniqueFd log(
      open((tmp_ + "/dbus-daemon.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  bus_ = spawn({"dbus-daemon", "--config-file=" + confPath, "--address=" + busAddress(), "--nofork",
                "--print-pid"},
               {}, p[1], log.get());
  close(p[1]);
  // dbus-daemon prints its pid once it listens.
  std::string printed;
  auto deadline = Clock::now() + 20s;
  while (printed.find('\n') == std::string::npos) {
    pollfd fd{pidOut.get(), POLLIN, 0};
    if (poll(&fd, 1, msLeft(deadline)) <= 0)
      return testing::AssertionFailure() << "dbus-daemon printed no pid within 20 s:\n" << busLog();
    char buf[64];
    ssize_t got = read(pidOut.get(), buf, sizeof buf);
    if (got <= 0)
      return testing::AssertionFailure() << "dbus-daemon exited:\n" << busLog();
    printed.append(buf, size_t(got));
  }
  if (std::stol(printed) != bus_)
    return testing::AssertionFailure() << "dbus-daemon printed pid " << printed;
  int err = 0;
  root_ = Client::connect(busAddress(), &err);
  if (!root_)
    return testing::AssertionFailure() << "connecting to the test bus: " << std::strerror(-err);
  root_->trackServiceName();
  return testing::AssertionSuccess();
}

testing::AssertionResult Lab::startDaemon() {
  if (daemon_ > 0)
    return testing::AssertionFailure() << "ringcapd is already running";
  UniqueFd log(
      open((tmp_ + "/ringcapd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  std::vector<std::string> env = {"DBUS_SYSTEM_BUS_ADDRESS=" + busAddress(),
                                  "LIBXDP_BPFFS=" + bpffs_};
  struct stat st {};
  if (options_.journalStream && fstat(log.get(), &st) == 0)
    env.push_back("JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino));
  daemon_ = spawn({"ip", "netns", "exec", nsCap_, RINGCAPD_PATH, "--config", config_}, env,
                  log.get(), log.get());
  UniqueFd pidfd = pidfdOpen(daemon_);
  bool exited = false;
  if (root_->waitFor([&] { return root_->serviceNameOwned(); }, 30s, pidfd.get(), &exited))
    return testing::AssertionSuccess();
  if (exited) {
    int ws = 0;
    waitpid(daemon_, &ws, 0);
    daemon_ = -1;
    return testing::AssertionFailure() << "ringcapd exited (" << describeWaitStatus(ws)
                                       << ") before it owned its bus name; its log:\n"
                                       << daemonLog();
  }
  return testing::AssertionFailure() << "ringcapd did not own its bus name within 30 s; its log:\n"
                                     << daemonLog();
}

testing::AssertionResult Lab::stopDaemon(int signal, int *waitStatus) {
  if (daemon_ <= 0)
    return testing::AssertionFailure() << "ringcapd is not running";
  kill(daemon_, signal);
  auto exited = waitForExit(daemon_, 30s, waitStatus);
  daemon_ = -1;
  if (!exited)
    return exited;
  if (!root_->waitFor([&] { return !root_->serviceNameOwned(); }, 10s))
    return testing::AssertionFailure() << kBusName << " still has an owner after ringcapd exited";
  return testing::AssertionSuccess();
}

// The lines of a sanitizer report (UBSan, ASan, LSan) in a process's output.
static std::string sanitizerLines(const std::string &log) {
  std::string found;
  for (const auto &line : lines(log))
    if (line.find("runtime error:") != std::string::npos ||
        line.find("AddressSanitizer") != std::string::npos ||
        line.find("LeakSanitizer") != std::string::npos ||
        line.find("UndefinedBehaviorSanitizer") != std::string::npos)
      found += line + "\n";
  return found;
}

testing::AssertionResult Lab::shutdown() {
  if (daemon_ > 0) {
    int ws = 0;
    if (auto stopped = stopDaemon(SIGTERM, &ws); !stopped)
      return stopped << " (stopping ringcapd with SIGTERM at the end of the test)";
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
      return testing::AssertionFailure()
             << "ringcapd ended with " << describeWaitStatus(ws)
             << " after SIGTERM at the end of the test (exit code 0 expected)";
  }
  if (std::string found = sanitizerLines(daemonLog()); !found.empty())
    return testing::AssertionFailure() << "a sanitizer report in ringcapd's log:\n" << found;
  return testing::AssertionSuccess();
}

testing::AssertionResult Lab::sendUdp(uint16_t sourcePort, uint16_t destinationPort, int count,
                                      int size) {
  std::string nsPath = "/run/netns/" + nsGen_;
  pid_t pid = fork();
  if (pid == 0) {
    // A child of its own, so that only it enters the generator namespace.
    int ns = open(nsPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0)
      _exit(2);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in src{}, dst{};
    src.sin_family = dst.sin_family = AF_INET;
    src.sin_port = htons(sourcePort);
    dst.sin_port = htons(destinationPort);
    inet_pton(AF_INET, kCaptureAddress, &dst.sin_addr);
    if (s < 0 || bind(s, reinterpret_cast<sockaddr *>(&src), sizeof src) != 0)
      _exit(3);
    std::vector<char> payload(static_cast<size_t>(size));
    for (size_t i = 0; i < payload.size(); i++)
      payload[i] = char(i % 251);
    int sent = 0;
    for (int tries = 0; sent < count && tries < 10 * count; tries++) {
      if (sendto(s, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr *>(&dst),
                 sizeof dst) == ssize_t(payload.size()))
        ++sent;
      else if (errno != ECONNREFUSED) // an ICMP port unreachable from an earlier datagram
        _exit(4);
    }
    _exit(sent == count ? 0 : 5);
  }
  if (pid < 0)
    return testing::AssertionFailure() << "fork: " << std::strerror(errno);
  int ws = 0;
  if (auto r = waitForExit(pid, 20s, &ws); !r)
    return r;
  if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
    return testing::AssertionFailure() << "sending " << count << " datagrams from " << nsGen_
                                       << " failed: " << describeWaitStatus(ws);
  return testing::AssertionSuccess();
}

std::string Lab::linkDetails() {
  return run({"ip", "-n", nsCap_, "-d", "link", "show", "dev", ifCap_}).out;
}

int Lab::xdpProgramsAttached() {
  std::string text = linkDetails();
  int n = 0;
  for (size_t at = text.find("prog/xdp"); at != std::string::npos;
       at = text.find("prog/xdp", at + 1))
    ++n;
  return n;
}

// ---- Fixture ----

void DaemonTest::SetUp() {
  std::string missing = prerequisites();
  if (missing.empty())
    return;
  RINGCAP_SKIP("ringcapd D-Bus test: " + missing);
}

void DaemonTest::TearDown() {
  if (lab_) {
    EXPECT_TRUE(lab_->shutdown());
  }
  if (lab_ && HasFailure())
    std::cerr << "---- ringcapd log ----\n"
              << lab_->daemonLog() << "---- dbus-daemon log ----\n"
              << lab_->busLog() << "----\n";
  lab_.reset();
}

testing::AssertionResult DaemonTest::up(LabOptions options) {
  lab_ = std::make_unique<Lab>(options);
  return lab_->up();
}

int64_t copyToFile(int fd, const std::string &path) {
  UniqueFd out(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (out.get() < 0)
    return -1;
  char buf[65536];
  int64_t total = 0;
  for (;;) {
    ssize_t got = pread(fd, buf, sizeof buf, total);
    if (got < 0)
      return -1;
    if (got == 0)
      return total;
    if (write(out.get(), buf, size_t(got)) != got)
      return -1;
    total += got;
  }
}

RunResult tsharkFields(const std::string &file, const std::vector<std::string> &fields) {
  std::vector<std::string> argv = {"tshark", "-r", file, "-T", "fields", "-E", "separator= "};
  for (const auto &f : fields) {
    argv.push_back("-e");
    argv.push_back(f);
  }
  return run(argv);
}

std::string captureFileType(const std::string &file) {
  RunResult r = run({"capinfos", "-t", "-M", file});
  if (r.status != 0)
    return "";
  for (const auto &line : lines(r.out))
    if (line.rfind("File type:", 0) == 0)
      return line.substr(line.find_first_not_of(' ', sizeof "File type:" - 1));
  return "";
}

} // namespace ringcap::dbustest
