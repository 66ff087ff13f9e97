#include "EtcdCluster.h"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <curl/curl.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace ringcap::testlib {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

size_t append(char *data, size_t size, size_t n, void *out) {
  static_cast<std::string *>(out)->append(data, size * n);
  return size * n;
}

// A GET or POST to a member; the body, or nullopt when it could not be reached or answered
// with another status than 200.
std::optional<std::string> request(const std::string &url, const std::string *postBody,
                                   const EtcdTlsFiles &tls) {
  CURL *curl = curl_easy_init();
  if (!curl)
    return std::nullopt;
  if (!tls.ca.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, tls.ca.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLCERT, tls.clientCert.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLKEY, tls.clientKey.c_str());
  }
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  if (postBody) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, postBody->c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, long(postBody->size()));
  }
  CURLcode code = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  if (code != CURLE_OK || status != 200)
    return std::nullopt;
  return body;
}

// `count` distinct free TCP ports on 127.0.0.1 (all held open until every one is chosen).
Result<std::vector<uint16_t>> freePorts(size_t count) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  Result<std::vector<uint16_t>> out = ports;
  for (size_t i = 0; i < count; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) != 0) {
      out = Error::fromErrno(errno, "choosing a free port");
      if (fd >= 0)
        close(fd);
      break;
    }
    fds.push_back(fd);
    ports.push_back(ntohs(a.sin_port));
  }
  for (int fd : fds)
    close(fd);
  if (!out)
    return out;
  return ports;
}

// Waits up to `timeout` for `pid` to exit (through a pidfd: no polling); true when it did.
bool waitExit(pid_t pid, std::chrono::milliseconds timeout) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    poll(&p, 1, static_cast<int>(timeout.count()));
    close(pidfd);
  }
  int status;
  return waitpid(pid, &status, pidfd >= 0 ? WNOHANG : 0) == pid;
}

} // namespace

std::string EtcdCluster::etcdBinary() {
  if (const char *env = getenv("RINGCAP_ETCD"); env && *env)
    return env;
  for (const char *dir : {"/usr/bin", "/usr/local/bin", "/usr/sbin"}) {
    std::string p = std::string(dir) + "/etcd";
    if (access(p.c_str(), X_OK) == 0)
      return p;
  }
  return {};
}

// Runs a command (no shell); an error with its output when it fails.
static Result<void> runTool(const std::vector<std::string> &args, const std::string &log) {
  pid_t pid = fork();
  if (pid < 0)
    return Error::fromErrno(errno, "fork");
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    std::vector<char *> argv;
    for (auto &a : args)
      argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    return Error{EIO, args[0] + " " + args[1] + " failed (status " + std::to_string(status) +
                          "): " + text.str()};
  }
  return {};
}

// A CA, and a server (127.0.0.1) and a client certificate it signs, in `dir`.
static Result<EtcdTlsFiles> makeTlsFiles(const std::string &dir) {
  EtcdTlsFiles f{dir + "/ca.pem", dir + "/server.pem", dir + "/server.key", dir + "/client.pem",
                 dir + "/client.key"};
  const std::string log = dir + "/openssl.log", caKey = dir + "/ca.key";
  std::ofstream(dir + "/server.ext") << "subjectAltName=IP:127.0.0.1\n"
                                        "extendedKeyUsage=serverAuth,clientAuth\n";
  std::ofstream(dir + "/client.ext") << "extendedKeyUsage=clientAuth\n";
  const std::vector<std::vector<std::string>> steps = {
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", caKey, "-out", f.ca, "-days", "2", "-subj", "/CN=ringcap test CA"},
      {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", f.serverKey, "-out", dir + "/server.csr", "-subj", "/CN=127.0.0.1"},
      {"openssl", "x509", "-req", "-in", dir + "/server.csr", "-CA", f.ca, "-CAkey", caKey,
       "-CAcreateserial", "-out", f.serverCert, "-days", "2", "-extfile", dir + "/server.ext"},
      {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", f.clientKey, "-out", dir + "/client.csr", "-subj", "/CN=ringcap-agent"},
      {"openssl", "x509", "-req", "-in", dir + "/client.csr", "-CA", f.ca, "-CAkey", caKey,
       "-CAcreateserial", "-out", f.clientCert, "-days", "2", "-extfile", dir + "/client.ext"},
  };
  for (const auto &step : steps)
    if (auto r = runTool(step, log); !r)
      return r.error();
  return f;
}

Result<std::unique_ptr<EtcdCluster>>
EtcdCluster::start(size_t members, std::chrono::milliseconds deadline, bool tls) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::unique_ptr<EtcdCluster> c(new EtcdCluster());
  c->binary_ = etcdBinary();
  if (c->binary_.empty())
    return Error{ENOENT, "etcd not found (apt-get install etcd-server, or set RINGCAP_ETCD)"};
  char tmpl[] = "/tmp/ringcap-etcd-XXXXXX";
  if (!mkdtemp(tmpl))
    return Error::fromErrno(errno, "creating the cluster's directory");
  c->dir_ = tmpl;
  if (tls) {
    auto files = makeTlsFiles(c->dir_);
    if (!files)
      return files.error();
    c->tls_ = *files;
  }
  auto ports = freePorts(2 * members);
  if (!ports)
    return ports.error();
  for (size_t i = 0; i < members; i++) {
    Member m;
    m.name = "m" + std::to_string(i);
    m.dataDir = c->dir_ + "/" + m.name + ".etcd";
    m.logFile = c->dir_ + "/" + m.name + ".log";
    m.clientPort = (*ports)[2 * i];
    m.peerPort = (*ports)[2 * i + 1];
    c->initialCluster_ +=
        (i ? "," : "") + m.name + "=http://127.0.0.1:" + std::to_string(m.peerPort);
    c->members_.push_back(m);
  }
  for (size_t i = 0; i < members; i++)
    if (auto r = c->launch(i, false); !r)
      return r.error();
  const auto until = Clock::now() + deadline;
  for (size_t i = 0; i < members; i++)
    if (auto r = c->waitHealthy(i, until); !r)
      return r.error();
  return c;
}

EtcdCluster::~EtcdCluster() {
  for (size_t i = 0; i < members_.size(); i++)
    if (running(i))
      (void)stopMember(i);
  if (!dir_.empty() && getenv("RINGCAP_KEEP_ETCD") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

Result<void> EtcdCluster::launch(size_t i, bool existing) {
  Member &m = members_[i];
  const std::string client = clientUrl(i);
  const std::string peer = "http://127.0.0.1:" + std::to_string(m.peerPort);
  std::vector<std::string> args = {
      binary_,
      "--name=" + m.name,
      "--data-dir=" + m.dataDir,
      "--listen-client-urls=" + client,
      "--advertise-client-urls=" + client,
      "--listen-peer-urls=" + peer,
      "--initial-advertise-peer-urls=" + peer,
      "--initial-cluster=" + initialCluster_,
      "--initial-cluster-token=ringcap-test-" + std::to_string(getpid()),
      std::string("--initial-cluster-state=") + (existing ? "existing" : "new")};
  if (!tls_.ca.empty())
    for (std::string a : {"--cert-file=" + tls_.serverCert, "--key-file=" + tls_.serverKey,
                          "--trusted-ca-file=" + tls_.ca, std::string("--client-cert-auth")})
      args.push_back(a);
  int log = open(m.logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0)
    return Error::fromErrno(errno, "opening " + m.logFile);
  pid_t pid = fork();
  if (pid < 0) {
    close(log);
    return Error::fromErrno(errno, "starting etcd member " + m.name);
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlives the test
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      dup2(devnull, STDIN_FILENO);
    std::vector<char *> argv;
    for (auto &a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary_.c_str(), argv.data());
    _exit(127);
  }
  close(log);
  m.pid = pid;
  return {};
}

Result<void> EtcdCluster::waitHealthy(size_t i, Clock::time_point deadline) {
  const std::string url = clientUrl(i) + "/health";
  while (Clock::now() < deadline) {
    int status;
    if (waitpid(members_[i].pid, &status, WNOHANG) == members_[i].pid) {
      members_[i].pid = -1;
      return Error{ECHILD, "etcd member " + members_[i].name + " exited (status " +
                               std::to_string(status) + "); its log:\n" + log(i)};
    }
    if (auto body = request(url, nullptr, tls_)) {
      try {
        if (nlohmann::json::parse(*body).value("health", "") == "true")
          return {};
      } catch (...) {
      }
    }
    std::this_thread::sleep_for(50ms); // a poll with a deadline
  }
  return Error{ETIMEDOUT, "etcd member " + members_[i].name + " is not healthy at " + url +
                              " in time; its log:\n" + log(i)};
}

std::vector<std::string> EtcdCluster::clientUrls() const {
  std::vector<std::string> urls;
  for (size_t i = 0; i < members_.size(); i++)
    urls.push_back(clientUrl(i));
  return urls;
}

std::string EtcdCluster::clientUrl(size_t i) const {
  return (tls_.ca.empty() ? "http://127.0.0.1:" : "https://127.0.0.1:") +
         std::to_string(members_[i].clientPort);
}

Result<void> EtcdCluster::stopMember(size_t i) {
  Member &m = members_[i];
  if (m.pid <= 0)
    return Error{ESRCH, "etcd member " + m.name + " is not running"};
  kill(m.pid, SIGTERM);
  if (!waitExit(m.pid, 10s)) {
    kill(m.pid, SIGKILL);
    if (!waitExit(m.pid, 10s))
      return Error{ETIMEDOUT, "etcd member " + m.name + " (pid " + std::to_string(m.pid) +
                                  ") did not exit after SIGKILL"};
  }
  m.pid = -1;
  return {};
}

Result<void> EtcdCluster::restartMember(size_t i, std::chrono::milliseconds deadline) {
  if (running(i))
    return Error{EBUSY, "etcd member " + members_[i].name + " is running"};
  if (auto r = launch(i, true); !r)
    return r;
  return waitHealthy(i, Clock::now() + deadline);
}

Result<size_t> EtcdCluster::leader() const {
  const std::string empty = "{}";
  std::vector<std::string> ids(members_.size());
  std::string leaderId;
  for (size_t i = 0; i < members_.size(); i++) {
    if (!running(i))
      continue;
    auto body = request(clientUrl(i) + "/v3/maintenance/status", &empty, tls_);
    if (!body)
      continue;
    try {
      auto j = nlohmann::json::parse(*body);
      ids[i] = j.at("header").value("member_id", "");
      if (leaderId.empty())
        leaderId = j.value("leader", "");
    } catch (...) {
    }
  }
  for (size_t i = 0; i < members_.size(); i++)
    if (!ids[i].empty() && ids[i] == leaderId)
      return i;
  return Error{ENOENT, "no running member reports a leader that runs"};
}

std::string EtcdCluster::log(size_t i) const {
  std::ifstream in(members_[i].logFile);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

} // namespace ringcap::testlib
