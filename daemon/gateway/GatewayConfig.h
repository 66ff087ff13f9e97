// ringcap-gateway's configuration: the [gateway] table of ringcapd's TOML file (the other
// tables are ringcapd's and are ignored here). docs/configuration.md documents every key.
#pragma once

#include "util/Result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ringcap::gateway {

struct ListenAddress {
  std::string host;  // "127.0.0.1", "::1" (without brackets)
  uint16_t port = 0; // 0: any free port (the log says which)
};

struct GatewayConfig {
  ListenAddress listen{"127.0.0.1", 8787};
  std::string account_id; // 32 lowercase hex digits
  std::string tokens_file;
  std::optional<std::string> tls_certificate;
  std::optional<std::string> tls_key;
  std::string dashboard_dir;
  uint32_t threads = 16; // request threads

  // Fleet mode (docs/fleet.md): set when [fleet] has etcd_endpoints. The gateway then creates
  // captures in etcd for a location instead of calling the local ringcapd.
  struct Fleet {
    std::vector<std::string> etcd_endpoints;                 // fleet.etcd_endpoints
    std::string etcd_ca_file, etcd_cert_file, etcd_key_file; // fleet.etcd_*_file
    std::string staging_destination;     // fleet.staging_destination (s3://...), "" none
    std::string colo_name;               // gateway.fleet_colo_name: the default location
    uint32_t claim_timeout_seconds = 30; // gateway.fleet_claim_timeout_seconds
    // Where ownership challenges are written and staged objects read: ringcapd's
    // [destinations] file_roots and [s3] endpoint, allowed_endpoints, credentials_file.
    std::vector<std::string> file_roots;
    std::optional<std::string> s3_endpoint;
    std::vector<std::string> s3_allowed_endpoints;
    std::optional<std::string> s3_credentials_file;
  };
  std::optional<Fleet> fleet;
};

// "127.0.0.1:8787", "[::1]:8787", "localhost:80". Errors say the rule.
Result<ListenAddress> parseListenAddress(const std::string &text);

// Parses the [gateway] table of a ringcapd configuration file. Errors name the key and the
// rule: "gateway.account_id: must be 32 lowercase hexadecimal digits (got \"ABC\")".
// `defaultDashboardDir` is dashboard_dir when the key is absent.
Result<GatewayConfig> parseGatewayConfig(const std::string &text, const std::string &source,
                                         const std::string &defaultDashboardDir);
Result<GatewayConfig> loadGatewayConfig(const std::string &path,
                                        const std::string &defaultDashboardDir);

} // namespace ringcap::gateway
