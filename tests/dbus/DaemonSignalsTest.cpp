// Who hears ringcapd's signals: PropertiesChanged of a capture carries its whole record
// (destination, filter, error message), so the shipped policy lets only root and members of
// the group "ringcap" receive what ringcapd sends. Subscribers run as other users in child
// processes, on a real dbus-daemon with the shipped policy.
#include "DaemonFixture.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ringcap::dbustest {
namespace {

std::string idOf(const DictResult &d) { return d.dict.value("id", ""); }

// A child process that switched to `user`, subscribed to every signal from ringcapd's object
// tree, and reports each one as a line "signal <member> <path>" on a pipe; after "ready" it
// listens until told to finish, then makes a round trip to the bus (so that everything routed
// to it before has been read) and reports "done <count>".
class Subscriber {
public:
  Subscriber(const std::string &user, const std::string &address) : user_(user) {
    int out[2], ctl[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(ctl, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe: " << std::strerror(errno);
      return;
    }
    const passwd *pw = getpwnam(user.c_str());
    if (!pw) {
      ADD_FAILURE() << "no user " << user;
      return;
    }
    std::string name = pw->pw_name;
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    pid_ = fork();
    if (pid_ == 0) {
      // Only its own two pipe ends: another subscriber's control pipe must not stay open here.
      for (int fd = 3; fd < 1024; fd++)
        if (fd != out[1] && fd != ctl[0])
          close(fd);
      _exit(child(name, uid, gid, address, out[1], ctl[0]));
    }
    close(out[1]);
    close(ctl[0]);
    out_ = out[0];
    ctl_ = ctl[1];
    if (pid_ < 0)
      ADD_FAILURE() << "fork: " << std::strerror(errno);
  }
  ~Subscriber() {
    if (ctl_ >= 0)
      close(ctl_);
    if (out_ >= 0)
      close(out_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Reads lines until one starts with `prefix` (true) or the deadline passes (false).
  bool waitForLine(const std::string &prefix, Millis timeout = 30s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (size_t nl; (nl = buffer_.find('\n')) != std::string::npos;) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        lines_.push_back(line);
        if (line.rfind(prefix, 0) == 0)
          return true;
      }
      auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || out_ < 0)
        return false;
      pollfd p{out_, POLLIN, 0};
      int n = poll(&p, 1, int(left.count()));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      char buf[4096];
      ssize_t got = read(out_, buf, sizeof buf);
      if (got <= 0)
        return false;
      buffer_.append(buf, size_t(got));
    }
  }
  // Asks the child to finish; the number of signals it received, or -1.
  int finish() {
    if (ctl_ >= 0) {
      close(ctl_);
      ctl_ = -1;
    }
    if (!waitForLine("done "))
      return -1;
    return std::stoi(lines_.back().substr(5));
  }
  std::vector<std::string> signalLines() const {
    std::vector<std::string> s;
    for (const auto &l : lines_)
      if (l.rfind("signal ", 0) == 0)
        s.push_back(l);
    return s;
  }
  const std::string &user() const { return user_; }

private:
  static void say(int fd, const std::string &line) {
    std::string s = line + "\n";
    for (size_t off = 0; off < s.size();) {
      ssize_t w = write(fd, s.data() + off, s.size() - off);
      if (w <= 0)
        return;
      off += size_t(w);
    }
  }
  static int onSignal(sd_bus_message *m, void *userdata, sd_bus_error *) {
    auto *state = static_cast<std::pair<int, int> *>(userdata); // {fd, count}
    state->second++;
    say(state->first, std::string("signal ") + (sd_bus_message_get_member(m) ?: "?") + " " +
                          (sd_bus_message_get_path(m) ?: "?"));
    return 0;
  }
  static int child(const std::string &name, uid_t uid, gid_t gid, const std::string &address,
                   int out, int ctl) {
    if (initgroups(name.c_str(), gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0 ||
        getuid() != uid || geteuid() != uid) {
      say(out, std::string("error setuid: ") + std::strerror(errno));
      return 1;
    }
    sd_bus *bus = nullptr;
    int r = sd_bus_new(&bus);
    if (r >= 0)
      r = sd_bus_set_address(bus, address.c_str());
    if (r >= 0)
      r = sd_bus_set_bus_client(bus, 1);
    if (r >= 0)
      r = sd_bus_start(bus);
    std::pair<int, int> state{out, 0};
    // Every signal of ringcapd's objects, whoever sends it (PropertiesChanged of the
    // captures, the Manager's CaptureFinished).
    if (r >= 0)
      r = sd_bus_add_match(bus, nullptr, "type='signal',path_namespace='/org/ringcap/Ringcap1'",
                           onSignal, &state);
    if (r < 0) {
      say(out, std::string("error bus: ") + std::strerror(-r));
      return 1;
    }
    say(out, "ready");
    for (;;) {
      while ((r = sd_bus_process(bus, nullptr)) > 0) {
      }
      if (r < 0)
        break;
      pollfd fds[2] = {{sd_bus_get_fd(bus), short(sd_bus_get_events(bus)), 0}, {ctl, POLLIN, 0}};
      if (poll(fds, 2, 1000) < 0 && errno != EINTR)
        break;
      if (fds[1].revents)
        break;
    }
    // A round trip: whatever the bus routed to this connection before it is read first.
    sd_bus_error error = SD_BUS_ERROR_NULL;
    r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "GetId", &error, nullptr, "");
    sd_bus_error_free(&error);
    while (sd_bus_process(bus, nullptr) > 0) {
    }
    if (r < 0) {
      say(out, std::string("error GetId: ") + std::strerror(-r));
      return 1;
    }
    say(out, "done " + std::to_string(state.second));
    sd_bus_flush_close_unref(bus);
    return 0;
  }

  std::string user_;
  pid_t pid_ = -1;
  int out_ = -1, ctl_ = -1;
  std::string buffer_;
  std::vector<std::string> lines_;
};

TEST_F(DaemonTest, OnlyRootAndMembersReceiveCaptureSignals) {
  RINGCAP_LAB_UP();
  // "nobody" is the outsider of the issue; ringcap-test-user is the fixture's.
  Subscriber nobody("nobody", lab().busAddress());
  Subscriber outsider(kUnprivilegedUser, lab().busAddress());
  Subscriber member(kMemberUser, lab().busAddress());
  for (Subscriber *s : {&nobody, &outsider, &member})
    ASSERT_TRUE(s->waitForLine("ready", 30s)) << s->user() << " did not subscribe";

  DictResult created = root().create(simpleRequest(60, 5, {{"destination_port", 7100}}));
  ASSERT_TRUE(created.call.ok()) << created.call.describe();
  const std::string id = idOf(created);
  root().watchCapture(capturePath(id));
  root().watchFinished();
  ASSERT_TRUE(lab().sendUdp(7000, 7100, 5, 64));
  // The capture ends at its packet limit; the member's CaptureFinished is the event waited for.
  ASSERT_TRUE(member.waitForLine("signal CaptureFinished", 60s))
      << "the member received no CaptureFinished";
  ASSERT_TRUE(root().waitFor([&] { return root().finishedSignalFor(id); }, 30s))
      << "root received no CaptureFinished";
  EXPECT_FALSE(root().changes(capturePath(id)).empty()) << "root received no PropertiesChanged";

  int memberCount = member.finish();
  bool memberSawChanges = false;
  for (const auto &l : member.signalLines())
    memberSawChanges |= l == "signal PropertiesChanged " + capturePath(id);
  EXPECT_TRUE(memberSawChanges) << "the member received no PropertiesChanged";
  EXPECT_GE(memberCount, 2);
  for (Subscriber *s : {&nobody, &outsider}) {
    int count = s->finish();
    EXPECT_EQ(count, 0) << s->user() << " received ringcapd's signals: "
                        << (s->signalLines().empty() ? "" : s->signalLines().front());
  }
}

} // namespace
} // namespace ringcap::dbustest
