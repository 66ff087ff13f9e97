// S3Server: a real S3-compatible server for the tests, @20minutes/s3rver 4.x from
// tests/s3/node_modules (scripts/setup.sh installs it), started as a child process on a
// loopback port and stopped by its PID. It checks SigV4 signatures.
#pragma once

#include "util/Result.h"

#include <cstdint>
#include <string>
#include <sys/types.h>

namespace ringcap::test {

class S3Server {
public:
  static constexpr const char *kBucket = "ringcap-test";
  static constexpr const char *kRegion = "us-east-1";
  static constexpr const char *kAccessKey = "AKIDRINGCAPTEST0001";
  static constexpr const char *kSecretKey = "ringcapTestSecret/0123456789+abcdefghijKLMN";

  // "" when the server can be started here, else what is missing and how to install it.
  static std::string unavailableReason();

  // `workDir` holds the server's data (kept across restarts, so a restarted server sees what
  // the stopped one stored) and its log.
  explicit S3Server(std::string workDir);
  ~S3Server();
  S3Server(const S3Server &) = delete;
  S3Server &operator=(const S3Server &) = delete;

  // Starts the server and waits (with a deadline) for its "ready" line. Port 0: the kernel
  // picks a free port; a restart may pass the previous port() to keep the endpoint.
  Result<void> start(uint16_t port = 0);
  // SIGTERM by PID, then SIGKILL if it has not exited within 5 s. Idempotent.
  void stop();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  std::string endpoint() const; // http://127.0.0.1:<port>
  std::string dataDirectory() const { return workDir_ + "/data"; }
  std::string logFile() const { return workDir_ + "/s3rver.log"; }

private:
  std::string workDir_;
  pid_t pid_ = -1;
  int stdoutFd_ = -1; // kept open while the server runs, so that it never writes to a closed pipe
  uint16_t port_ = 0;
};

} // namespace ringcap::test
