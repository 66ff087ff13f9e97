#include "GatewayConfig.h"
#include "common/TomlText.h"
#include "destination/DestinationUri.h"
#include "fleet/Keys.h"

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace ringcap::gateway {
namespace {

Error bad(const std::string &key, const std::string &rule) {
  return Error{ErrorKind::InvalidRequest, "gateway." + key + ": " + rule, EINVAL};
}

using config::describe;

bool isLowerHex(const std::string &s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}

Error badKey(const std::string &key, const std::string &rule) {
  return Error{ErrorKind::InvalidRequest, key + ": " + rule, EINVAL};
}

// A string of `t` (absent: `out` unchanged). `prefix` names the table in errors.
std::optional<Error> stringOf(const toml::table &t, const std::string &prefix, const char *key,
                              std::string &out) {
  const toml::node *n = t.get(key);
  if (!n)
    return std::nullopt;
  if (!n->is_string())
    return badKey(prefix + key, "must be a string (got " + describe(*n) + ")");
  out = n->as_string()->get();
  if (out.empty())
    return badKey(prefix + key, "must not be empty");
  return std::nullopt;
}

std::optional<Error> stringsOf(const toml::table &t, const std::string &prefix, const char *key,
                               std::vector<std::string> &out) {
  const toml::node *n = t.get(key);
  if (!n)
    return std::nullopt;
  const toml::array *a = n->as_array();
  if (!a)
    return badKey(prefix + key, "must be an array of strings (got " + describe(*n) + ")");
  out.clear();
  for (const auto &v : *a) {
    if (!v.is_string())
      return badKey(prefix + key, "must be an array of strings (got " + describe(v) + " in it)");
    out.push_back(v.as_string()->get());
  }
  return std::nullopt;
}

const toml::table *tableOf(const toml::table &root, const char *name) {
  const toml::node *n = root.get(name);
  return n ? n->as_table() : nullptr;
}

// Fleet mode: the [fleet] keys the gateway reads (the agent's other keys are ringcapd's
// parser's business, and ignored here), gateway.fleet_*, and the [s3] and [destinations] keys
// of ringcapd that the gateway needs to write ownership challenges and read staged objects.
std::optional<Error> parseFleet(const toml::table &root, const toml::table &gw, GatewayConfig &c) {
  const toml::node *fn = root.get("fleet");
  const toml::table *f = fn ? fn->as_table() : nullptr;
  if (fn && !f)
    return badKey("fleet", "must be a table (got " + describe(*fn) + ")");
  const bool fleetMode = f && f->get("etcd_endpoints");
  for (const char *k : {"fleet_colo_name", "fleet_claim_timeout_seconds"})
    if (!fleetMode && gw.get(k))
      return bad(k, "needs fleet mode ([fleet] etcd_endpoints)");
  if (!fleetMode)
    return std::nullopt;
  GatewayConfig::Fleet fl;
  if (auto e = stringsOf(*f, "fleet.", "etcd_endpoints", fl.etcd_endpoints))
    return e;
  if (fl.etcd_endpoints.empty())
    return badKey("fleet.etcd_endpoints", "must list at least one endpoint");
  for (const auto &e : fl.etcd_endpoints) {
    const bool http = e.rfind("http://", 0) == 0, https = e.rfind("https://", 0) == 0;
    const std::string rest = e.substr(http ? 7 : https ? 8 : 0);
    if ((!http && !https) || rest.empty() || rest.find_first_of("/?#@ ") != std::string::npos)
      return badKey("fleet.etcd_endpoints",
                    "each must be http://host:port or https://host:port (got \"" + e + "\")");
  }
  for (auto [key, out] : {std::pair{"etcd_ca_file", &fl.etcd_ca_file},
                          {"etcd_cert_file", &fl.etcd_cert_file},
                          {"etcd_key_file", &fl.etcd_key_file}}) {
    if (auto e = stringOf(*f, "fleet.", key, *out))
      return e;
    if (f->get(key) && (*out)[0] != '/')
      return badKey(std::string("fleet.") + key, "must be an absolute path (got \"" + *out + "\")");
  }
  if (fl.etcd_cert_file.empty() != fl.etcd_key_file.empty())
    return badKey(fl.etcd_cert_file.empty() ? "fleet.etcd_cert_file" : "fleet.etcd_key_file",
                  "etcd_cert_file and etcd_key_file go together (both or neither)");
  if (!fl.etcd_ca_file.empty() || !fl.etcd_cert_file.empty())
    for (const auto &e : fl.etcd_endpoints)
      if (e.rfind("https://", 0) != 0)
        return badKey("fleet.etcd_endpoints",
                      "must all be https:// when etcd_ca_file or etcd_cert_file is set (got \"" +
                          e + "\")");
  if (auto e = stringOf(*f, "fleet.", "staging_destination", fl.staging_destination))
    return e;
  if (!fl.staging_destination.empty()) {
    auto uri = parseDestinationUri(fl.staging_destination);
    const std::string path = fl.staging_destination.substr(0, fl.staging_destination.find('?'));
    if (!uri || uri->kind != DestinationUri::Kind::S3 || path.ends_with("/"))
      return badKey("fleet.staging_destination",
                    "must be an s3://bucket[/dir][?region=R&endpoint=URL] URI without a "
                    "trailing '/' (got \"" +
                        fl.staging_destination + "\")" + (uri ? "" : ": " + uri.error().message));
  }
  if (auto e = stringOf(gw, "gateway.", "fleet_colo_name", fl.colo_name))
    return e;
  if (!fl.colo_name.empty() && !fleet::keys::isName(fl.colo_name))
    return bad("fleet_colo_name", "must be 1 to 64 letters, digits, '.', '_' or '-', not "
                                  "starting with '.' (got \"" +
                                      fl.colo_name + "\")");
  if (const toml::node *n = gw.get("fleet_claim_timeout_seconds")) {
    auto v = n->value_exact<int64_t>();
    if (!v || *v < 1 || *v > 3600)
      return bad("fleet_claim_timeout_seconds",
                 "must be an integer from 1 to 3600 (got " + describe(*n) + ")");
    fl.claim_timeout_seconds = static_cast<uint32_t>(*v);
  }
  if (const toml::table *d = tableOf(root, "destinations"))
    if (auto e = stringsOf(*d, "destinations.", "file_roots", fl.file_roots))
      return e;
  if (const toml::table *s = tableOf(root, "s3")) {
    std::string endpoint, creds;
    if (auto e = stringOf(*s, "s3.", "endpoint", endpoint))
      return e;
    if (!endpoint.empty())
      fl.s3_endpoint = endpoint;
    if (auto e = stringsOf(*s, "s3.", "allowed_endpoints", fl.s3_allowed_endpoints))
      return e;
    if (auto e = stringOf(*s, "s3.", "credentials_file", creds))
      return e;
    if (!creds.empty())
      fl.s3_credentials_file = creds;
  }
  c.fleet = std::move(fl);
  return std::nullopt;
}

} // namespace

Result<ListenAddress> parseListenAddress(const std::string &text) {
  ListenAddress a;
  std::string port;
  if (text.starts_with("[")) {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return Error{EINVAL, "must be host:port, an IPv6 address in brackets ([::1]:8787)"};
    a.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (a.host.find(':') == std::string::npos)
      return Error{EINVAL, "brackets are for IPv6 addresses ([::1]:8787)"};
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos)
      return Error{EINVAL, "must be host:port (127.0.0.1:8787)"};
    a.host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (a.host.find(':') != std::string::npos)
      return Error{EINVAL, "an IPv6 address goes in brackets ([::1]:8787)"};
  }
  if (a.host.empty())
    return Error{EINVAL, "must name a host (127.0.0.1:8787, [::]:8787 for every address)"};
  for (char c : a.host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == ':' || c == '-' ||
          c == '%' || c == '_'))
      return Error{EINVAL, "the host has a character that no address or name has"};
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535)
    return Error{EINVAL, "the port must be a number from 0 to 65535"};
  a.port = static_cast<uint16_t>(std::stoul(port));
  return a;
}

Result<GatewayConfig> parseGatewayConfig(const std::string &text, const std::string &source,
                                         const std::string &defaultDashboardDir) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error &e) {
    return Error{EINVAL, "line " + std::to_string(e.source().begin.line) + ": " +
                             std::string(e.description())};
  }
  const toml::node *node = root.get("gateway");
  if (!node)
    return Error{EINVAL, "gateway: required, a table ([gateway] with account_id and tokens_file)"};
  const toml::table *t = node->as_table();
  if (!t)
    return Error{EINVAL, "gateway: must be a table (got " + describe(*node) + ")"};

  static const std::set<std::string> known{
      "listen",          "account_id",      "tokens_file",
      "tls_certificate", "tls_key",         "dashboard_dir",
      "threads",         "fleet_colo_name", "fleet_claim_timeout_seconds"};
  for (const auto &[k, v] : *t)
    if (!known.count(std::string(k.str())))
      return bad(std::string(k.str()), "unknown key");

  auto str = [&](const char *key, std::string &out) -> std::optional<Error> {
    const toml::node *n = t->get(key);
    if (!n)
      return std::nullopt;
    if (!n->is_string())
      return bad(key, "must be a string (got " + describe(*n) + ")");
    out = n->as_string()->get();
    if (out.empty())
      return bad(key, "must not be empty");
    return std::nullopt;
  };

  GatewayConfig c;
  c.dashboard_dir = defaultDashboardDir;
  std::string listen;
  if (auto e = str("listen", listen))
    return *e;
  if (!listen.empty()) {
    auto a = parseListenAddress(listen);
    if (!a)
      return bad("listen", a.error().message + " (got \"" + listen + "\")");
    c.listen = *a;
  }
  if (!t->get("account_id"))
    return bad("account_id", "required (32 lowercase hexadecimal digits, the account of the "
                             "/client/v4/accounts/{account_id}/pcaps routes)");
  if (auto e = str("account_id", c.account_id))
    return *e;
  if (c.account_id.size() != 32 || !isLowerHex(c.account_id))
    return bad("account_id",
               "must be 32 lowercase hexadecimal digits (got \"" + c.account_id + "\")");
  if (!t->get("tokens_file"))
    return bad("tokens_file", "required (the file of API tokens, one a line)");
  if (auto e = str("tokens_file", c.tokens_file))
    return *e;
  if (!c.tokens_file.starts_with("/"))
    return bad("tokens_file", "must be an absolute path (got \"" + c.tokens_file + "\")");
  std::string cert, key;
  if (auto e = str("tls_certificate", cert))
    return *e;
  if (auto e = str("tls_key", key))
    return *e;
  if (cert.empty() != key.empty())
    return bad(cert.empty() ? "tls_certificate" : "tls_key",
               "tls_certificate and tls_key go together (both or neither)");
  if (!cert.empty()) {
    c.tls_certificate = cert;
    c.tls_key = key;
  }
  if (auto e = str("dashboard_dir", c.dashboard_dir))
    return *e;
  if (const toml::node *n = t->get("threads")) {
    auto v = n->value_exact<int64_t>();
    if (!v || *v < 1 || *v > 256)
      return bad("threads", "must be an integer from 1 to 256 (got " + describe(*n) + ")");
    c.threads = static_cast<uint32_t>(*v);
  }
  if (auto e = parseFleet(root, *t, c))
    return *e;
  return c;
}

Result<GatewayConfig> loadGatewayConfig(const std::string &path,
                                        const std::string &defaultDashboardDir) {
  std::ifstream in(path);
  if (!in)
    return Error::fromErrno(errno, path);
  std::ostringstream s;
  s << in.rdbuf();
  auto c = parseGatewayConfig(s.str(), path, defaultDashboardDir);
  if (!c)
    return Error{c.error().kind, path + ": " + c.error().message, c.error().code};
  return c;
}

} // namespace ringcap::gateway
