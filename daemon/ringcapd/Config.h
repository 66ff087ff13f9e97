// ringcapd's configuration file (TOML); docs/configuration.md documents every key.
#pragma once

#include "request/CaptureRequest.h"
#include "util/Result.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ringcap {

struct DaemonConfig {
  std::string colo_name;
  std::vector<std::string> colo_groups;
  std::string state_directory = "/var/lib/ringcap";
  std::map<std::string, std::vector<std::string>> systems; // system name -> interfaces

  uint32_t simple_sample_rate = 1;
  uint32_t ring_size_mib = 32;
  bool skip_missing_interfaces = false;
  // What captures deliver unless their request says (a request's output_format).
  OutputFormat output_format = OutputFormat::Pcap;
  uint64_t spool_max_bytes = 4ull << 30; // one capture's file
  uint64_t min_free_bytes = 1ull << 30;  // free space kept on the state directory's filesystem

  uint32_t simple_interval_seconds = 60;
  uint32_t full_concurrent = 1;

  uint64_t max_captures = 1000;
  uint64_t max_bytes = 10ull << 30;

  std::string access_group = "ringcap";
  // [fleet] agent_user: the user (besides root) whose CreateCapture may carry an `id`;
  // absent: root only.
  std::optional<std::string> fleet_agent_user;
  // The rest of [fleet] is ringcap-agent's (daemon/agent); ringcapd checks it and ignores it.
  struct Fleet {
    std::vector<std::string> etcd_endpoints; // empty: not given (the agent requires it)
    std::string host_name;                   // empty: not given (the agent uses the hostname)
    std::string etcd_ca_file, etcd_cert_file, etcd_key_file;
    std::string state_directory = "/var/lib/ringcap-agent";
    uint32_t lease_ttl_seconds = 10;
    uint32_t status_interval_seconds = 5;
    // Where the agent stages a host's simple-capture file for the gateway (an s3:// URI);
    // empty: not given (a simple capture's part then fails).
    std::string staging_destination;
  } fleet;

  uint32_t ownership_max_records = 1000;
  uint32_t ownership_pending_expiry_seconds = 86400;

  std::vector<std::string> file_roots;
  std::optional<std::string> s3_endpoint;
  std::vector<std::string> s3_allowed_endpoints; // endpoints a request's endpoint= may name
  std::optional<std::string> s3_credentials_file;

  // Every interface of every system, each once, in configuration order.
  std::vector<std::string> allInterfaces() const;
};

// Parses and checks a configuration. Errors name the key and the rule:
// "rate_limits.full_concurrent: must be an integer from 1 to 8 (got 0)".
Result<DaemonConfig> parseDaemonConfig(const std::string &text, const std::string &source);
Result<DaemonConfig> loadDaemonConfig(const std::string &path);

} // namespace ringcap
