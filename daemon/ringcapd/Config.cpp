#include "Config.h"
#include "common/TomlText.h"
#include "request/IpAddress.h"

#include "destination/DestinationUri.h"
#include "fleet/Keys.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace ringcap {
namespace {

bool isSiteName(const std::string &s) {
  if (s.empty() || s.size() > 64)
    return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
      return false;
  return true;
}

using config::describe;

class Reader {
public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  Error error(const std::string &key, const std::string &rule) const {
    return Error{EINVAL, key + ": " + rule};
  }

  // Rejects keys of `table` not in `known` (the prefix names the table in messages).
  std::optional<Error> onlyKeys(const toml::table &table, const std::string &prefix,
                                std::set<std::string> known) const {
    for (const auto &[k, v] : table) {
      std::string key(k.str());
      if (!known.count(key))
        return error(prefix + key, "unknown key");
    }
    return std::nullopt;
  }

  std::optional<Error> integer(const toml::table &t, const std::string &prefix,
                               const std::string &key, int64_t lo, int64_t hi, auto &out) const {
    const toml::node *n = t.get(key);
    if (!n)
      return std::nullopt;
    auto v = n->value_exact<int64_t>();
    if (!v || *v < lo || *v > hi)
      return error(prefix + key, "must be an integer from " + std::to_string(lo) + " to " +
                                     std::to_string(hi) + " (got " + describe(*n) + ")");
    out = static_cast<std::remove_reference_t<decltype(out)>>(*v);
    return std::nullopt;
  }

  std::optional<Error> string(const toml::table &t, const std::string &prefix,
                              const std::string &key, std::string &out) const {
    const toml::node *n = t.get(key);
    if (!n)
      return std::nullopt;
    if (!n->is_string())
      return error(prefix + key, "must be a string (got " + describe(*n) + ")");
    out = n->as_string()->get();
    return std::nullopt;
  }

  std::optional<Error> strings(const toml::table &t, const std::string &prefix,
                               const std::string &key, std::vector<std::string> &out) const {
    const toml::node *n = t.get(key);
    if (!n)
      return std::nullopt;
    const toml::array *a = n->as_array();
    if (!a)
      return error(prefix + key, "must be an array of strings (got " + describe(*n) + ")");
    out.clear();
    for (const auto &item : *a) {
      if (!item.is_string())
        return error(prefix + key,
                     "must be an array of strings (got an element " + describe(item) + ")");
      out.push_back(item.as_string()->get());
    }
    return std::nullopt;
  }

  const toml::table *table(const toml::table &t, const std::string &key,
                           std::optional<Error> &err) const {
    const toml::node *n = t.get(key);
    if (!n)
      return nullptr;
    if (!n->is_table()) {
      err = error(key, "must be a table (got " + describe(*n) + ")");
      return nullptr;
    }
    return n->as_table();
  }

private:
  std::string source_;
};

#define RINGCAP_TRY(expr)                                                                          \
  do {                                                                                             \
    if (auto e_ = (expr))                                                                          \
      return *e_;                                                                                  \
  } while (0)

} // namespace

std::vector<std::string> DaemonConfig::allInterfaces() const {
  std::vector<std::string> out;
  for (const auto &[name, ifaces] : systems)
    for (const auto &i : ifaces)
      if (std::find(out.begin(), out.end(), i) == out.end())
        out.push_back(i);
  return out;
}

Result<DaemonConfig> parseDaemonConfig(const std::string &text, const std::string &source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error &e) {
    return Error{EINVAL, "line " + std::to_string(e.source().begin.line) + ": " +
                             std::string(e.description())};
  }
  Reader r(source);
  DaemonConfig c;
  RINGCAP_TRY(r.onlyKeys(root, "",
                         // gateway: ringcap-gateway's table (daemon/gateway), not read here
                         {"colo_name", "colo_groups", "state_directory", "systems", "capture",
                          "gateway", "rate_limits", "retention", "access", "destinations", "s3",
                          "ownership", "fleet", "history"}));

  if (!root.get("colo_name"))
    return r.error("colo_name", "required (the site this host belongs to)");
  RINGCAP_TRY(r.string(root, "", "colo_name", c.colo_name));
  if (!isSiteName(c.colo_name))
    return r.error("colo_name",
                   "must be 1 to 64 letters, digits, '_' or '-' (got \"" + c.colo_name + "\")");
  RINGCAP_TRY(r.strings(root, "", "colo_groups", c.colo_groups));
  for (const auto &g : c.colo_groups)
    if (!isSiteName(g))
      return r.error("colo_groups",
                     "each must be 1 to 64 letters, digits, '_' or '-' (got \"" + g + "\")");
  RINGCAP_TRY(r.string(root, "", "state_directory", c.state_directory));
  if (c.state_directory.empty() || c.state_directory[0] != '/')
    return r.error("state_directory",
                   "must be an absolute path (got \"" + c.state_directory + "\")");

  std::optional<Error> err;
  const toml::table *systems = r.table(root, "systems", err);
  if (err)
    return *err;
  if (!systems || systems->empty())
    return r.error("systems", "required: at least one system, such as magic-transit = [\"eth0\"]");
  for (const auto &[k, v] : *systems) {
    std::string name(k.str());
    std::vector<std::string> ifaces;
    RINGCAP_TRY(r.strings(*systems, "systems.", name, ifaces));
    if (ifaces.empty() || ifaces.size() > 8)
      return r.error("systems." + name,
                     "must list 1 to 8 interfaces (got " + std::to_string(ifaces.size()) + ")");
    for (const auto &i : ifaces)
      if (i.empty() || i.size() > 15 || i.find('/') != std::string::npos ||
          i.find_first_of(" \t\n") != std::string::npos)
        return r.error("systems." + name, "\"" + i + "\" is not an interface name");
    c.systems[name] = ifaces;
  }
  if (c.allInterfaces().size() > 64)
    return r.error("systems", "at most 64 interfaces in all");

  if (const toml::table *t = r.table(root, "capture", err)) {
    RINGCAP_TRY(r.onlyKeys(*t, "capture.",
                           {"simple_sample_rate", "ring_size_mib", "missing_interfaces",
                            "spool_max_bytes", "min_free_bytes", "output_format"}));
    RINGCAP_TRY(
        r.integer(*t, "capture.", "spool_max_bytes", 65536, int64_t(1) << 62, c.spool_max_bytes));
    RINGCAP_TRY(r.integer(*t, "capture.", "min_free_bytes", 0, int64_t(1) << 62, c.min_free_bytes));
    RINGCAP_TRY(r.integer(*t, "capture.", "simple_sample_rate", 1, 1000000, c.simple_sample_rate));
    RINGCAP_TRY(r.integer(*t, "capture.", "ring_size_mib", 1, 2048, c.ring_size_mib));
    if (c.ring_size_mib & (c.ring_size_mib - 1))
      return r.error("capture.ring_size_mib",
                     "must be a power of two (got " + std::to_string(c.ring_size_mib) + ")");
    std::string missing = "fail";
    RINGCAP_TRY(r.string(*t, "capture.", "missing_interfaces", missing));
    if (missing != "fail" && missing != "skip")
      return r.error("capture.missing_interfaces",
                     "must be \"fail\" or \"skip\" (got \"" + missing + "\")");
    c.skip_missing_interfaces = missing == "skip";
    std::string format = "pcap";
    RINGCAP_TRY(r.string(*t, "capture.", "output_format", format));
    auto parsed = parseOutputFormat(format);
    if (!parsed)
      return r.error("capture.output_format",
                     "must be \"pcap\" or \"pcapng\" (got " + quoteForMessage(format) + ")");
    c.output_format = *parsed;
  }
  if (err)
    return *err;
  if (const toml::table *t = r.table(root, "rate_limits", err)) {
    RINGCAP_TRY(r.onlyKeys(*t, "rate_limits.", {"simple_interval_seconds", "full_concurrent"}));
    RINGCAP_TRY(r.integer(*t, "rate_limits.", "simple_interval_seconds", 0, 86400,
                          c.simple_interval_seconds));
    RINGCAP_TRY(r.integer(*t, "rate_limits.", "full_concurrent", 1, 8, c.full_concurrent));
  }
  if (err)
    return *err;
  if (const toml::table *t = r.table(root, "retention", err)) {
    RINGCAP_TRY(r.onlyKeys(*t, "retention.", {"max_captures", "max_bytes"}));
    RINGCAP_TRY(r.integer(*t, "retention.", "max_captures", 1, 1000000, c.max_captures));
    RINGCAP_TRY(r.integer(*t, "retention.", "max_bytes", 1, int64_t(1) << 62, c.max_bytes));
  }
  if (err)
    return *err;
  if (const toml::table *t = r.table(root, "ownership", err)) {
    RINGCAP_TRY(r.onlyKeys(*t, "ownership.", {"max_records", "pending_expiry_seconds"}));
    RINGCAP_TRY(r.integer(*t, "ownership.", "max_records", 1, 10000, c.ownership_max_records));
    RINGCAP_TRY(r.integer(*t, "ownership.", "pending_expiry_seconds", 1, 2592000,
                          c.ownership_pending_expiry_seconds));
  }
  if (err)
    return *err;
  if (const toml::table *t = r.table(root, "access", err)) {
    RINGCAP_TRY(r.onlyKeys(*t, "access.", {"group"}));
    RINGCAP_TRY(r.string(*t, "access.", "group", c.access_group));
    if (c.access_group.empty())
      return r.error("access.group", "must not be empty");
  }
  if (err)
    return *err;
  if (const toml::table *t = r.table(root, "fleet", err)) {
    RINGCAP_TRY(
        r.onlyKeys(*t, "fleet.",
                   {"agent_user", "etcd_endpoints", "host_name", "etcd_ca_file", "etcd_cert_file",
                    "etcd_key_file", "state_directory", "lease_ttl_seconds",
                    "status_interval_seconds", "staging_destination", "ringcapd_silence_seconds"}));
    std::string user;
    RINGCAP_TRY(r.string(*t, "fleet.", "agent_user", user));
    if (t->get("agent_user")) {
      if (user.empty())
        return r.error("fleet.agent_user", "must not be empty (leave it out for root only)");
      c.fleet_agent_user = user;
    }
    auto &f = c.fleet;
    RINGCAP_TRY(r.strings(*t, "fleet.", "etcd_endpoints", f.etcd_endpoints));
    if (t->get("etcd_endpoints") && f.etcd_endpoints.empty())
      return r.error("fleet.etcd_endpoints", "must list at least one endpoint");
    for (const auto &e : f.etcd_endpoints) {
      const bool http = e.rfind("http://", 0) == 0, https = e.rfind("https://", 0) == 0;
      const std::string rest = e.substr(http ? 7 : https ? 8 : 0);
      if ((!http && !https) || rest.empty() || rest.find_first_of("/?#@ ") != std::string::npos)
        return r.error("fleet.etcd_endpoints",
                       "each must be http://host:port or https://host:port (got " +
                           quoteForMessage(e) + ")");
    }
    RINGCAP_TRY(r.string(*t, "fleet.", "host_name", f.host_name));
    if (t->get("host_name") && !fleet::keys::isName(f.host_name))
      return r.error("fleet.host_name", "must be 1 to 64 letters, digits, '.', '_' or '-', not "
                                        "starting with '.' (got " +
                                            quoteForMessage(f.host_name) + ")");
    for (auto [key, out] : {std::pair{"etcd_ca_file", &f.etcd_ca_file},
                            {"etcd_cert_file", &f.etcd_cert_file},
                            {"etcd_key_file", &f.etcd_key_file},
                            {"state_directory", &f.state_directory}}) {
      RINGCAP_TRY(r.string(*t, "fleet.", key, *out));
      if (t->get(key) && (out->empty() || (*out)[0] != '/'))
        return r.error(std::string("fleet.") + key,
                       "must be an absolute path (got " + quoteForMessage(*out) + ")");
    }
    if (f.etcd_cert_file.empty() != f.etcd_key_file.empty())
      return r.error(
          f.etcd_cert_file.empty() ? "fleet.etcd_cert_file" : "fleet.etcd_key_file",
          "required with fleet." +
              std::string(f.etcd_cert_file.empty() ? "etcd_key_file" : "etcd_cert_file") +
              " (a client certificate and its key, both or neither)");
    const bool tlsFiles = !f.etcd_ca_file.empty() || !f.etcd_cert_file.empty();
    for (const auto &e : f.etcd_endpoints)
      if (tlsFiles && e.rfind("https://", 0) != 0)
        return r.error("fleet.etcd_endpoints",
                       "must all be https:// when etcd_ca_file or etcd_cert_file is set (got " +
                           quoteForMessage(e) + ")");
    RINGCAP_TRY(r.integer(*t, "fleet.", "lease_ttl_seconds", 2, 300, f.lease_ttl_seconds));
    RINGCAP_TRY(
        r.integer(*t, "fleet.", "status_interval_seconds", 1, 3600, f.status_interval_seconds));
    RINGCAP_TRY(
        r.integer(*t, "fleet.", "ringcapd_silence_seconds", 1, 86400, f.ringcapd_silence_seconds));
    RINGCAP_TRY(r.string(*t, "fleet.", "staging_destination", f.staging_destination));
    if (t->get("staging_destination")) {
      auto uri = parseDestinationUri(f.staging_destination);
      std::string why = uri ? "got " + quoteForMessage(f.staging_destination) : "";
      if (!uri) {
        why = uri.error().message;
        if (why.rfind("destination_conf: ", 0) == 0)
          why.erase(0, std::string("destination_conf: ").size());
      }
      if (!uri || uri->kind != DestinationUri::Kind::S3)
        return r.error("fleet.staging_destination",
                       "must be an s3:// URI, s3://bucket[/dir]?region=REGION[&endpoint=URL] (" +
                           why + ")");
      // The gateway's rule too: one spelling of the prefix on every host and the gateway.
      if (f.staging_destination.substr(0, f.staging_destination.find('?')).ends_with("/"))
        return r.error("fleet.staging_destination", "must not end with '/' (got " +
                                                        quoteForMessage(f.staging_destination) +
                                                        ")");
    }
  }
  if (err)
    return *err;
  if (const toml::table *t = r.table(root, "history", err)) {
    RINGCAP_TRY(r.onlyKeys(*t, "history.",
                           {"enabled", "directory", "max_bytes", "max_age_seconds", "sample_rate",
                            "segment_seconds", "segment_max_bytes", "min_free_bytes"}));
    auto &h = c.history;
    if (const toml::node *n = t->get("enabled")) {
      if (!n->is_boolean())
        return r.error("history.enabled", "must be true or false (got " + describe(*n) + ")");
      h.enabled = n->as_boolean()->get();
    }
    RINGCAP_TRY(r.string(*t, "history.", "directory", h.directory));
    if (t->get("directory") && (h.directory.empty() || h.directory[0] != '/'))
      return r.error("history.directory", "must be an absolute path (got \"" + h.directory + "\")");
    RINGCAP_TRY(r.integer(*t, "history.", "max_bytes", 8192, int64_t(1) << 62, h.max_bytes));
    RINGCAP_TRY(r.integer(*t, "history.", "max_age_seconds", 1, 86400, h.max_age_seconds));
    RINGCAP_TRY(r.integer(*t, "history.", "sample_rate", 1, 1000000, h.sample_rate));
    RINGCAP_TRY(r.integer(*t, "history.", "segment_seconds", 1, 3600, h.segment_seconds));
    RINGCAP_TRY(r.integer(*t, "history.", "segment_max_bytes", 4096, int64_t(1) << 62,
                          h.segment_max_bytes));
    RINGCAP_TRY(r.integer(*t, "history.", "min_free_bytes", 0, int64_t(1) << 62, h.min_free_bytes));
    // Without the key, the segments follow a smaller max_bytes.
    if (!t->get("segment_max_bytes"))
      h.segment_max_bytes = std::min(h.segment_max_bytes, h.max_bytes / 2);
    if (h.max_bytes / 2 < h.segment_max_bytes)
      return r.error("history.max_bytes", "must be at least twice history.segment_max_bytes (" +
                                              std::to_string(h.segment_max_bytes) + "; got " +
                                              std::to_string(h.max_bytes) + ")");
  }
  if (err)
    return *err;
  if (const toml::table *t = r.table(root, "destinations", err)) {
    RINGCAP_TRY(r.onlyKeys(*t, "destinations.", {"file_roots"}));
    RINGCAP_TRY(r.strings(*t, "destinations.", "file_roots", c.file_roots));
    for (const auto &p : c.file_roots)
      if (p.empty() || p[0] != '/')
        return r.error("destinations.file_roots",
                       "each must be an absolute path (got \"" + p + "\")");
  }
  if (err)
    return *err;
  if (const toml::table *t = r.table(root, "s3", err)) {
    RINGCAP_TRY(r.onlyKeys(*t, "s3.", {"endpoint", "allowed_endpoints", "credentials_file"}));
    std::string endpoint, creds;
    RINGCAP_TRY(r.string(*t, "s3.", "endpoint", endpoint));
    RINGCAP_TRY(r.string(*t, "s3.", "credentials_file", creds));
    RINGCAP_TRY(r.strings(*t, "s3.", "allowed_endpoints", c.s3_allowed_endpoints));
    for (const auto &e : c.s3_allowed_endpoints) {
      auto uri = parseDestinationUri("s3://bucket?region=us-east-1&endpoint=" + e);
      if (e.find_first_of("&?#") != std::string::npos || !uri)
        return r.error("s3.allowed_endpoints",
                       "each must be http://host[:port] or https://host[:port] (got \"" + e +
                           "\")");
    }
    if (t->get("endpoint")) {
      if (endpoint.rfind("http://", 0) != 0 && endpoint.rfind("https://", 0) != 0)
        return r.error("s3.endpoint",
                       "must be an http:// or https:// URL (got \"" + endpoint + "\")");
      c.s3_endpoint = endpoint;
    }
    if (t->get("credentials_file")) {
      if (creds.empty() || creds[0] != '/')
        return r.error("s3.credentials_file", "must be an absolute path (got \"" + creds + "\")");
      c.s3_credentials_file = creds;
    }
  }
  if (err)
    return *err;
  return c;
}

Result<DaemonConfig> loadDaemonConfig(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    return Error::fromErrno(errno, "cannot read the configuration");
  std::stringstream buf;
  buf << in.rdbuf();
  return parseDaemonConfig(buf.str(), path);
}

} // namespace ringcap
