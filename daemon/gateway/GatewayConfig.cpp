#include "GatewayConfig.h"

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

std::string describe(const toml::node &n) {
  std::ostringstream o;
  if (n.is_string())
    o << '"' << n.as_string()->get() << '"';
  else if (n.is_table())
    o << "a table";
  else if (n.is_array())
    o << "an array";
  else
    n.visit([&](auto &&v) { o << v; });
  return o.str();
}

bool isLowerHex(const std::string &s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
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

  static const std::set<std::string> known{"listen",          "account_id", "tokens_file",
                                           "tls_certificate", "tls_key",    "dashboard_dir",
                                           "threads"};
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
