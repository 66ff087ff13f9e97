// ringcap-gateway's configuration ([gateway] table) and its tokens file: every key and line
// rule, and ringcapd accepting a file that holds a [gateway] table.
#include "GatewayConfig.h"
#include "Config.h"
#include "TokenStore.h"

#include <gtest/gtest.h>

using namespace ringcap;
using namespace ringcap::gateway;

namespace {

const std::string kAccount = "0123456789abcdef0123456789abcdef";

std::string withGateway(const std::string &lines) {
  return "colo_name = \"lab01\"\n[systems]\nmagic-transit = [\"eth0\"]\n[gateway]\n" + lines;
}

Result<GatewayConfig> parse(const std::string &lines) {
  return parseGatewayConfig(withGateway(lines), "test", "/usr/share/ringcap/dashboard");
}

const std::string kMinimal =
    "account_id = \"" + kAccount + "\"\ntokens_file = \"/etc/ringcap/gateway-tokens\"\n";

} // namespace

TEST(GatewayConfig, MinimalTableGetsTheDocumentedDefaults) {
  auto c = parse(kMinimal);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->listen.host, "127.0.0.1");
  EXPECT_EQ(c->listen.port, 8787);
  EXPECT_EQ(c->account_id, kAccount);
  EXPECT_EQ(c->tokens_file, "/etc/ringcap/gateway-tokens");
  EXPECT_FALSE(c->tls_certificate);
  EXPECT_FALSE(c->tls_key);
  EXPECT_EQ(c->dashboard_dir, "/usr/share/ringcap/dashboard");
  EXPECT_EQ(c->threads, 16u);
}

TEST(GatewayConfig, EveryKeySet) {
  auto c =
      parse(kMinimal + "listen = \"[::1]:443\"\ntls_certificate = \"/etc/c.pem\"\n"
                       "tls_key = \"/etc/k.pem\"\ndashboard_dir = \"/srv/dash\"\nthreads = 4\n");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->listen.host, "::1");
  EXPECT_EQ(c->listen.port, 443);
  EXPECT_EQ(*c->tls_certificate, "/etc/c.pem");
  EXPECT_EQ(*c->tls_key, "/etc/k.pem");
  EXPECT_EQ(c->dashboard_dir, "/srv/dash");
  EXPECT_EQ(c->threads, 4u);
}

TEST(GatewayConfig, BadValuesNameTheKeyAndTheRule) {
  struct Row {
    std::string lines;
    std::string message;
  } rows[] = {
      {"tokens_file = \"/t\"\n", "gateway.account_id: required"},
      {"account_id = \"0123456789ABCDEF0123456789ABCDEF\"\ntokens_file = \"/t\"\n",
       "gateway.account_id: must be 32 lowercase hexadecimal digits"},
      {"account_id = \"0123\"\ntokens_file = \"/t\"\n",
       "gateway.account_id: must be 32 lowercase hexadecimal digits (got \"0123\")"},
      {"account_id = 5\ntokens_file = \"/t\"\n", "gateway.account_id: must be a string (got 5)"},
      {"account_id = \"" + kAccount + "\"\n", "gateway.tokens_file: required"},
      {"account_id = \"" + kAccount + "\"\ntokens_file = \"tokens\"\n",
       "gateway.tokens_file: must be an absolute path"},
      {kMinimal + "listen = \"8787\"\n", "gateway.listen: must be host:port"},
      {kMinimal + "listen = \"::1:8787\"\n", "gateway.listen: an IPv6 address goes in brackets"},
      {kMinimal + "listen = \"[::1]8787\"\n", "gateway.listen: must be host:port"},
      {kMinimal + "listen = \"127.0.0.1:65536\"\n",
       "gateway.listen: the port must be a number from 0 to 65535"},
      {kMinimal + "listen = \"127.0.0.1:\"\n", "gateway.listen: the port must be a number"},
      {kMinimal + "listen = \":80\"\n", "gateway.listen: must name a host"},
      {kMinimal + "listen = \"[127.0.0.1]:80\"\n",
       "gateway.listen: brackets are for IPv6 addresses"},
      {kMinimal + "tls_certificate = \"/c.pem\"\n",
       "gateway.tls_key: tls_certificate and tls_key go together"},
      {kMinimal + "tls_key = \"/k.pem\"\n",
       "gateway.tls_certificate: tls_certificate and tls_key go together"},
      {kMinimal + "threads = 0\n", "gateway.threads: must be an integer from 1 to 256 (got 0)"},
      {kMinimal + "dashboard_dir = \"\"\n", "gateway.dashboard_dir: must not be empty"},
      {kMinimal + "port = 1\n", "gateway.port: unknown key"},
  };
  for (const auto &row : rows) {
    auto c = parse(row.lines);
    ASSERT_FALSE(c) << row.lines;
    EXPECT_NE(c.error().message.find(row.message), std::string::npos)
        << "got: " << c.error().message << "\nwanted: " << row.message;
  }
}

TEST(GatewayConfig, NoGatewayTableIsAnError) {
  auto c = parseGatewayConfig("colo_name = \"x\"\n", "test", "/d");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("gateway: required"), std::string::npos);
  c = parseGatewayConfig("gateway = 5\n", "test", "/d");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("gateway: must be a table"), std::string::npos);
}

// ringcapd reads the same file: it must accept the [gateway] table and leave it alone, and
// the gateway must ignore ringcapd's tables (withGateway() has some).
TEST(GatewayConfig, RingcapdAcceptsTheGatewayTable) {
  auto d = parseDaemonConfig(withGateway(kMinimal), "test");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->colo_name, "lab01");
}

TEST(GatewayListen, Addresses) {
  auto a = parseListenAddress("0.0.0.0:0");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "0.0.0.0");
  EXPECT_EQ(a->port, 0);
  a = parseListenAddress("[::]:8443");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::");
  EXPECT_EQ(a->port, 8443);
  a = parseListenAddress("localhost:80");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "localhost");
  EXPECT_FALSE(parseListenAddress("host name:80"));
  EXPECT_FALSE(parseListenAddress("h:+80"));
  EXPECT_FALSE(parseListenAddress("h:123456"));
}

TEST(TokenStore, TokensNamesAndHashes) {
  const std::string hash = toHex(sha256("the-third-token-0123").data(), 32);
  auto t = TokenStore::parse("# tokens\n\nthe-first-token-0123\r\n"
                             "ci the-second-token-012\n"
                             "ops sha256:" +
                                 hash + "\n",
                             "tokens");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->size(), 3u);
  EXPECT_EQ(t->check("the-first-token-0123"), TokenStore::hashLabel("the-first-token-0123"));
  EXPECT_EQ(t->check("the-second-token-012"), "ci");
  EXPECT_EQ(t->check("the-third-token-0123"), "ops");
  EXPECT_EQ(t->check("the-first-token-012"), std::nullopt);
  EXPECT_EQ(t->check(""), std::nullopt);
  EXPECT_EQ(t->check("sha256:" + hash), std::nullopt) << "a hash is not a token";
  auto label = TokenStore::hashLabel("x");
  EXPECT_EQ(label, "sha256:" + toHex(sha256("x").data(), 4));
  EXPECT_EQ(label.size(), 7u + 8u);
}

TEST(TokenStore, BadLinesNameTheLineAndTheRule) {
  struct Row {
    std::string text;
    std::string message;
  } rows[] = {
      {"", "tokens: no token"},
      {"# only a comment\n", "tokens: no token"},
      {"short\n", "tokens:1: a token must be 16 to 512 visible ASCII characters"},
      {"ok-token-0123456789\na b c\n", "tokens:2: a line is a token, or a name and a token"},
      {"bad/name token-0123456789ab\n", "tokens:1: a name must be 1 to 64 of"},
      {"sha256:abc\n", "tokens:1: sha256: must be followed by 64 lowercase hex digits"},
      {"sha256:" + std::string(64, 'G') + "\n", "tokens:1: sha256: must be followed by 64"},
      {"tok\x01"
       "en-0123456789ab\n",
       "tokens:1: a token must be 16 to 512 visible ASCII"},
  };
  for (const auto &row : rows) {
    auto t = TokenStore::parse(row.text, "tokens");
    ASSERT_FALSE(t) << row.text;
    EXPECT_NE(t.error().message.find(row.message), std::string::npos)
        << "got: " << t.error().message << "\nwanted: " << row.message;
  }
}
