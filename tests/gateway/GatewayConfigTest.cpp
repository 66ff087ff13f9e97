// ringcap-gateway's configuration ([gateway] table) and its tokens file: every key and line
// rule, and ringcapd accepting a file that holds a [gateway] table.
#include "GatewayConfig.h"
#include "Config.h"
#include "TokenStore.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

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

namespace {

// A tokens file of the given mode in a fresh directory; removed with the fixture.
struct TokensFile {
  std::string dir, path;
  explicit TokensFile(mode_t mode, const std::string &text = "ci a-token-for-the-tests-0\n") {
    char tmpl[] = "/tmp/ringcap-tokens-XXXXXX";
    dir = mkdtemp(tmpl);
    path = dir + "/tokens";
    FILE *f = fopen(path.c_str(), "w");
    fputs(text.c_str(), f);
    fclose(f);
    chmod(path.c_str(), mode);
  }
  ~TokensFile() {
    unlink(path.c_str());
    rmdir(dir.c_str());
  }
};

} // namespace

TEST(TokenStore, AFileOthersMayReadOrWriteIsRefused) {
  for (mode_t ok : {0600, 0640, 0400, 0440}) {
    TokensFile f(ok);
    auto t = TokenStore::load(f.path);
    EXPECT_TRUE(t) << std::oct << ok << ": " << t.error().message;
  }
  struct Row {
    mode_t mode;
    std::string rule;
  } rows[] = {
      {0644, "readable by other users (mode 644)"},
      {0604, "readable by other users (mode 604)"},
      {0660, "writable by its group (mode 660)"},
      {0642, "writable by other users (mode 642)"},
  };
  for (const auto &row : rows) {
    TokensFile f(row.mode);
    auto t = TokenStore::load(f.path);
    ASSERT_FALSE(t) << std::oct << row.mode;
    EXPECT_EQ(t.error().message, f.path + ": " + row.rule +
                                     "; make it 0640, owner root, group ringcap-gateway (chmod "
                                     "0640)")
        << std::oct << row.mode;
  }
}

TEST(TokenStore, OnlyARegularFileOfAtMostOneMebibyteIsRead) {
  char tmpl[] = "/tmp/ringcap-tokens-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string fifo = dir + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto t = TokenStore::load(fifo); // must not wait for a writer
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().message, fifo + ": not a regular file");
  unlink(fifo.c_str());
  t = TokenStore::load(dir);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().message, dir + ": not a regular file");
  rmdir(dir.c_str());
  TokensFile big(0600, std::string((1 << 20) + 1, '#'));
  t = TokenStore::load(big.path);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().message, big.path + ": larger than 1048576 bytes");
}

// Fleet mode: [fleet] etcd_endpoints turns it on; the gateway reads its [fleet] keys, its own
// fleet_* keys of [gateway], and ringcapd's [s3] and [destinations] keys it needs.
TEST(GatewayConfig, FleetModeKeys) {
  auto off = parse(kMinimal);
  ASSERT_TRUE(off) << off.error().message;
  EXPECT_FALSE(off->fleet);
  // The agent's keys ([fleet] without etcd_endpoints) do not turn it on.
  off = parseGatewayConfig(withGateway(kMinimal) + "[fleet]\nagent_user = \"ringcap-agent\"\n",
                           "test", "/d");
  ASSERT_TRUE(off) << off.error().message;
  EXPECT_FALSE(off->fleet);

  const std::string full =
      withGateway(kMinimal + "fleet_colo_name = \"ord02\"\nfleet_claim_timeout_seconds = 45\n") +
      "[fleet]\netcd_endpoints = [\"https://10.0.0.1:2379\", \"https://10.0.0.2:2379\"]\n"
      "etcd_ca_file = \"/etc/ringcap/ca.pem\"\netcd_cert_file = \"/etc/ringcap/gw.pem\"\n"
      "etcd_key_file = \"/etc/ringcap/gw.key\"\nhost_name = \"h1\"\n"
      "staging_destination = \"s3://stage/fleet?region=us-east-1\"\n"
      "[s3]\nendpoint = \"http://127.0.0.1:9000\"\ncredentials_file = \"/etc/ringcap/aws\"\n"
      "allowed_endpoints = [\"http://127.0.0.1:9001\"]\n"
      "[destinations]\nfile_roots = [\"/srv/pcaps\"]\n";
  auto c = parseGatewayConfig(full, "test", "/d");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(c->fleet);
  EXPECT_EQ(c->fleet->etcd_endpoints.size(), 2u);
  EXPECT_EQ(c->fleet->etcd_ca_file, "/etc/ringcap/ca.pem");
  EXPECT_EQ(c->fleet->etcd_cert_file, "/etc/ringcap/gw.pem");
  EXPECT_EQ(c->fleet->etcd_key_file, "/etc/ringcap/gw.key");
  EXPECT_EQ(c->fleet->staging_destination, "s3://stage/fleet?region=us-east-1");
  EXPECT_EQ(c->fleet->colo_name, "ord02");
  EXPECT_EQ(c->fleet->claim_timeout_seconds, 45u);
  EXPECT_EQ(c->fleet->s3_endpoint.value_or(""), "http://127.0.0.1:9000");
  EXPECT_EQ(c->fleet->s3_credentials_file.value_or(""), "/etc/ringcap/aws");
  EXPECT_EQ(c->fleet->s3_allowed_endpoints.size(), 1u);
  EXPECT_EQ(c->fleet->file_roots.size(), 1u);

  // ringcapd reads the same file: the gateway's own keys are in [gateway], which it ignores
  // (its [fleet] refuses keys it does not know; staging_destination is the agent's too).
  std::string forRingcapd = full;
  forRingcapd.erase(forRingcapd.find("staging_destination"),
                    forRingcapd.find("[s3]") - forRingcapd.find("staging_destination"));
  auto d = parseDaemonConfig(forRingcapd, "test");
  EXPECT_TRUE(d) << d.error().message;

  const std::string ep = "[fleet]\netcd_endpoints = [\"http://10.0.0.1:2379\"]\n";
  struct Case {
    std::string gateway, rest, error;
  };
  for (const auto &k : std::vector<Case>{
           {"", "[fleet]\netcd_endpoints = []\n",
            "fleet.etcd_endpoints: must list at least one endpoint"},
           {"", "[fleet]\netcd_endpoints = [\"10.0.0.1:2379\"]\n",
            "fleet.etcd_endpoints: each must be http://host:port or https://host:port"},
           {"", "[fleet]\netcd_endpoints = \"http://a:1\"\n",
            "fleet.etcd_endpoints: must be an array of strings"},
           {"", ep + "etcd_ca_file = \"/ca.pem\"\n",
            "fleet.etcd_endpoints: must all be https:// when etcd_ca_file or etcd_cert_file is "
            "set"},
           {"", ep + "etcd_cert_file = \"/c.pem\"\n",
            "fleet.etcd_key_file: etcd_cert_file and etcd_key_file go together"},
           {"", ep + "etcd_key_file = \"k.pem\"\n",
            "fleet.etcd_key_file: must be an absolute path"},
           {"", ep + "staging_destination = \"file:///srv/stage\"\n",
            "fleet.staging_destination: must be an s3://bucket"},
           {"", ep + "staging_destination = \"s3://stage/dir/\"\n",
            "fleet.staging_destination: must be an s3://bucket"},
           {"fleet_colo_name = \"../x\"\n", ep, "gateway.fleet_colo_name: must be 1 to 64"},
           {"fleet_claim_timeout_seconds = 0\n", ep,
            "gateway.fleet_claim_timeout_seconds: must be an integer from 1 to 3600 (got 0)"},
           {"fleet_colo_name = \"ord02\"\n", "",
            "gateway.fleet_colo_name: needs fleet mode ([fleet] etcd_endpoints)"},
           {"", ep + "[s3]\nendpoint = 5\n", "s3.endpoint: must be a string (got 5)"},
       }) {
    auto r = parseGatewayConfig(withGateway(kMinimal + k.gateway) + k.rest, "test", "/d");
    ASSERT_FALSE(r) << k.rest;
    EXPECT_EQ(r.error().message.rfind(k.error, 0), 0u) << r.error().message;
  }
}
