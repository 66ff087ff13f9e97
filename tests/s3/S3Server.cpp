#include "S3Server.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#ifndef RINGCAP_S3_TEST_DIR
#error "RINGCAP_S3_TEST_DIR must name tests/s3"
#endif

namespace ringcap::test {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kStartDeadline = std::chrono::seconds(30);
constexpr auto kStopDeadline = std::chrono::seconds(5);

std::string launcher() { return std::string(RINGCAP_S3_TEST_DIR) + "/s3rver.js"; }
std::string moduleDir() {
  return std::string(RINGCAP_S3_TEST_DIR) + "/node_modules/@20minutes/s3rver";
}

std::string findInPath(const std::string &program) {
  const char *path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0)
      return dir + "/" + program;
  return {};
}

std::string tail(const std::string &file, size_t max = 2000) {
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > max ? "..." + text.substr(text.size() - max) : text;
}

int remainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// Waits for the child to exit until the deadline; true when it was reaped.
bool waitExit(pid_t pid, Clock::time_point deadline) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      if (pidfd >= 0)
        ::close(pidfd);
      return true;
    }
    int ms = remainingMs(deadline);
    if (ms == 0) {
      if (pidfd >= 0)
        ::close(pidfd);
      return false;
    }
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      ::poll(&p, 1, ms); // readable when the process has exited
    } else {
      ::poll(nullptr, 0, std::min(ms, 10)); // kernels without pidfd: poll the status
    }
  }
}

} // namespace

std::string S3Server::unavailableReason() {
  if (findInPath("node").empty())
    return "node is not installed (Debian package nodejs; scripts/setup.sh installs it)";
  if (!std::filesystem::exists(moduleDir() + "/package.json"))
    return "@20minutes/s3rver is not installed in " + std::string(RINGCAP_S3_TEST_DIR) +
           "/node_modules (scripts/setup.sh runs `npm ci --prefix tests/s3`)";
  return {};
}

S3Server::S3Server(std::string workDir) : workDir_(std::move(workDir)) {}

S3Server::~S3Server() { stop(); }

std::string S3Server::endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

Result<void> S3Server::start(uint16_t port) {
  stop();
  std::error_code ec;
  std::filesystem::create_directories(dataDirectory(), ec);
  if (ec)
    return Error{ec.value(), "cannot create " + dataDirectory() + ": " + ec.message()};

  std::string node = findInPath("node");
  if (node.empty())
    return Error{ENOENT, unavailableReason()};
  // --openssl-legacy-provider: s3rver builds ListObjectsV2 continuation tokens with DES, which
  // OpenSSL 3 (Node 17 and later) only has in its legacy provider.
  std::vector<std::string> args = {node,
                                   "--openssl-legacy-provider",
                                   launcher(),
                                   "--port",
                                   std::to_string(port),
                                   "--directory",
                                   dataDirectory(),
                                   "--bucket",
                                   kBucket,
                                   "--access-key",
                                   kAccessKey,
                                   "--secret-key",
                                   kSecretKey};
  std::vector<char *> argv;
  for (auto &a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log = logFile();

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0)
    return Error::fromErrno(errno, "pipe2");
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(out[0]);
    ::close(out[1]);
    return Error::fromErrno(err, "fork");
  }
  if (pid == 0) {                       // child: only async-signal-safe calls until exec
    ::prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive a crashed test
    if (::getppid() != parent)
      ::_exit(127);
    int logFd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ::dup2(out[1], STDOUT_FILENO);
    if (logFd >= 0)
      ::dup2(logFd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0)
      ::dup2(devnull, STDIN_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  pid_ = pid;
  stdoutFd_ = out[0];

  // Wait for "ready 127.0.0.1:<port>\n".
  auto deadline = Clock::now() + kStartDeadline;
  std::string got;
  for (;;) {
    size_t nl = got.find('\n');
    if (nl != std::string::npos) {
      std::string line = got.substr(0, nl);
      size_t colon = line.rfind(':');
      if (line.rfind("ready ", 0) == 0 && colon != std::string::npos) {
        port_ = static_cast<uint16_t>(std::atoi(line.c_str() + colon + 1));
        if (port_ != 0 && (port == 0 || port == port_))
          return {};
      }
      stop();
      return Error{EPROTO, "s3rver printed \"" + line +
                               "\" instead of \"ready <address>:<port>\"; log: " + tail(log)};
    }
    pollfd p{stdoutFd_, POLLIN, 0};
    int ms = remainingMs(deadline);
    if (ms == 0 || ::poll(&p, 1, ms) == 0) {
      stop();
      return Error{ETIMEDOUT, "s3rver did not say \"ready\" within " +
                                  std::to_string(kStartDeadline.count()) + " s; log: " + tail(log)};
    }
    char buf[256];
    ssize_t n = ::read(stdoutFd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
      ::close(stdoutFd_);
      stdoutFd_ = -1;
      return Error{ECHILD, "s3rver exited (status " + std::to_string(status) +
                               ") before it was ready; log: " + tail(log)};
    }
    got.append(buf, static_cast<size_t>(n));
  }
}

void S3Server::stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    if (!waitExit(pid_, Clock::now() + kStopDeadline)) {
      ::kill(pid_, SIGKILL);
      waitExit(pid_, Clock::now() + kStopDeadline);
    }
    pid_ = -1;
  }
  if (stdoutFd_ >= 0) {
    ::close(stdoutFd_);
    stdoutFd_ = -1;
  }
}

} // namespace ringcap::test
