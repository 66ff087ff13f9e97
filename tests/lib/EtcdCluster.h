// A real etcd cluster on loopback for the fleet tests (docs/fleet.md): members on 127.0.0.1 at
// free ports, data directories in a temporary directory, each member a process this harness
// started and stops by its PID.
#pragma once

#include "util/Result.h"

#include <chrono>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

namespace ringcap::testlib {

// The PEM files of a cluster started with TLS: a CA, the members' certificate (for 127.0.0.1)
// and a client certificate the members require (--client-cert-auth), all signed by the CA.
struct EtcdTlsFiles {
  std::string ca, serverCert, serverKey, clientCert, clientKey;
};

class EtcdCluster {
public:
  // Where the etcd binary is: $RINGCAP_ETCD, else etcd on PATH; empty when there is none.
  static std::string etcdBinary();

  // Starts `members` members as one new cluster and waits (up to `deadline`) until every one
  // answers /health with "true".
  static Result<std::unique_ptr<EtcdCluster>>
  start(size_t members = 3, std::chrono::milliseconds deadline = std::chrono::seconds(60),
        bool tls = false);
  // With tls: the members' client URLs are https:// and need a client certificate
  // (tlsFiles()); the files are made with openssl in the cluster's directory.
  // Stops every running member (SIGTERM, then SIGKILL after 10 s), each by its PID, and
  // removes the temporary directory.
  ~EtcdCluster();
  EtcdCluster(const EtcdCluster &) = delete;
  EtcdCluster &operator=(const EtcdCluster &) = delete;

  size_t size() const { return members_.size(); }
  // http://127.0.0.1:<port> of every member / of member i.
  std::vector<std::string> clientUrls() const;
  std::string clientUrl(size_t i) const;
  bool running(size_t i) const { return members_[i].pid > 0; }
  // Stops member i by its PID and waits until it has exited.
  Result<void> stopMember(size_t i);
  // Starts member i again (its data directory and ports) and waits until it is healthy.
  Result<void> restartMember(size_t i,
                             std::chrono::milliseconds deadline = std::chrono::seconds(60));
  // The index of the member that leads, as the running members report it.
  Result<size_t> leader() const;
  // Member i's log (its standard output and error).
  std::string log(size_t i) const;
  const std::string &directory() const { return dir_; }
  // Empty paths unless the cluster was started with TLS.
  const EtcdTlsFiles &tlsFiles() const { return tls_; }

private:
  struct Member {
    std::string name, dataDir, logFile;
    uint16_t clientPort = 0, peerPort = 0;
    pid_t pid = -1;
  };
  EtcdCluster() = default;
  Result<void> launch(size_t i, bool existing);
  Result<void> waitHealthy(size_t i, std::chrono::steady_clock::time_point deadline);

  std::string binary_, dir_, initialCluster_;
  EtcdTlsFiles tls_;
  std::vector<Member> members_;
};

} // namespace ringcap::testlib
