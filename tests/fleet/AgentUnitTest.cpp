// ringcap-agent without etcd or a bus: its configuration ([fleet] in ringcapd's file), the
// key layout of docs/fleet.md, the request a host's ringcapd gets, and the agent's state file.
#include "Agent.h"
#include "Config.h"
#include "fleet/Keys.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <unistd.h>

namespace ringcap {
namespace {
namespace keys = fleet::keys;
using nlohmann::json;

const std::string kBase = "colo_name = \"ord02\"\ncolo_groups = [\"ORD\"]\n"
                          "[systems]\nmagic-transit = [\"eth0\"]\n";

Result<DaemonConfig> parseFleet(const std::string &fleetTable) {
  return parseDaemonConfig(kBase + "[fleet]\n" + fleetTable, "test");
}

TEST(AgentConfig, EveryFleetKeyIsReadAndTheAgentTakesTheSiteFromTheFile) {
  auto c = parseFleet(R"(agent_user = "ringcap-agent"
etcd_endpoints = ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
host_name = "ord02-host7.example"
etcd_ca_file = "/etc/ringcap/etcd-ca.pem"
etcd_cert_file = "/etc/ringcap/agent.pem"
etcd_key_file = "/etc/ringcap/agent.key"
state_directory = "/var/lib/ringcap-agent2"
lease_ttl_seconds = 15
status_interval_seconds = 2
staging_destination = "s3://stage/ringcap?region=us-east-1"
)");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->fleet.staging_destination, "s3://stage/ringcap?region=us-east-1");
  auto s = agent::settingsFromConfig(*c);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->host, "ord02-host7.example");
  EXPECT_EQ(s->colo, "ord02");
  EXPECT_EQ(s->coloGroups, std::vector<std::string>{"ORD"});
  EXPECT_EQ(s->systems, std::vector<std::string>{"magic-transit"});
  EXPECT_EQ(s->etcd.endpoints.size(), 2u);
  EXPECT_EQ(s->etcd.caFile, "/etc/ringcap/etcd-ca.pem");
  EXPECT_EQ(s->etcd.certFile, "/etc/ringcap/agent.pem");
  EXPECT_EQ(s->etcd.keyFile, "/etc/ringcap/agent.key");
  EXPECT_TRUE(s->etcd.spreadOverEndpoints) << "a site's agents would all use the first member";
  EXPECT_EQ(s->stateDirectory, "/var/lib/ringcap-agent2");
  EXPECT_EQ(s->leaseTtlSeconds, 15);
  EXPECT_EQ(s->statusIntervalSeconds, 2);
}

TEST(AgentConfig, DefaultsAndTheHostnameWhenHostNameIsLeftOut) {
  auto c = parseFleet("etcd_endpoints = [\"http://127.0.0.1:2379\"]\n");
  ASSERT_TRUE(c) << c.error().message;
  auto s = agent::settingsFromConfig(*c);
  char name[256] = {};
  ASSERT_EQ(gethostname(name, sizeof name - 1), 0);
  if (keys::isName(name)) {
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->host, name);
  } else {
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message.rfind("fleet.host_name: not set, and the hostname", 0), 0u);
  }
  EXPECT_EQ(c->fleet.state_directory, "/var/lib/ringcap-agent");
  EXPECT_EQ(c->fleet.lease_ttl_seconds, 10u);
  EXPECT_EQ(c->fleet.status_interval_seconds, 5u);
}

// The staging destination and the S3 settings ringcapd uses; the agent's own credentials
// from systemd's LoadCredential= (CREDENTIALS_DIRECTORY) before s3.credentials_file.
TEST(AgentConfig, StagingTakesTheS3SettingsAndTheCredentialsDirectoryFirst) {
  const std::string text = kBase +
                           "[fleet]\netcd_endpoints = [\"http://127.0.0.1:2379\"]\nhost_name = "
                           "\"h1\"\nstaging_destination = \"s3://stage/x?region=eu-west-1\"\n"
                           "[s3]\nendpoint = \"http://127.0.0.1:9000\"\ncredentials_file = "
                           "\"/etc/ringcap/aws-credentials\"\n";
  auto c = parseDaemonConfig(text, "test");
  ASSERT_TRUE(c) << c.error().message;
  unsetenv("CREDENTIALS_DIRECTORY");
  auto s = agent::settingsFromConfig(*c);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->stagingDestination, "s3://stage/x?region=eu-west-1");
  EXPECT_EQ(s->destinations.s3Endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(s->destinations.credentialsFile, "/etc/ringcap/aws-credentials");

  char dir[] = "/tmp/ringcap-agent-creds-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  setenv("CREDENTIALS_DIRECTORY", dir, 1);
  auto without = agent::settingsFromConfig(*c); // no aws-credentials there: the file's key
  ASSERT_TRUE(without);
  EXPECT_EQ(without->destinations.credentialsFile, "/etc/ringcap/aws-credentials");
  const std::string creds = std::string(dir) + "/aws-credentials";
  std::ofstream(creds) << "[default]\n";
  auto with = agent::settingsFromConfig(*c);
  unsetenv("CREDENTIALS_DIRECTORY");
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(with);
  EXPECT_EQ(with->destinations.credentialsFile, creds);
}

TEST(AgentConfig, TheAgentNeedsEtcdEndpointsButRingcapdDoesNot) {
  auto c = parseFleet("agent_user = \"ringcap-agent\"\n");
  ASSERT_TRUE(c) << c.error().message;
  auto s = agent::settingsFromConfig(*c);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message.rfind("fleet.etcd_endpoints: required by ringcap-agent", 0), 0u)
      << s.error().message;
}

TEST(AgentConfig, BadValuesNameTheKeyAndTheRule) {
  struct Case {
    std::string table, message;
  };
  const std::vector<Case> cases = {
      {"etcd_endpoints = []", "fleet.etcd_endpoints: must list at least one endpoint"},
      {"etcd_endpoints = \"http://a:1\"",
       "fleet.etcd_endpoints: must be an array of strings (got \"http://a:1\")"},
      {"etcd_endpoints = [\"a:2379\"]",
       "fleet.etcd_endpoints: each must be http://host:port or https://host:port (got \"a:2379\")"},
      {"etcd_endpoints = [\"http://a:1/v3\"]",
       "fleet.etcd_endpoints: each must be http://host:port or https://host:port (got "
       "\"http://a:1/v3\")"},
      {"host_name = \"a/b\"", "fleet.host_name: must be 1 to 64 letters, digits, '.', '_' or "
                              "'-', not starting with '.' (got \"a/b\")"},
      {"host_name = \"..\"", "fleet.host_name: must be 1 to 64 letters, digits, '.', '_' or "
                             "'-', not starting with '.' (got \"..\")"},
      {"host_name = \"\"", "fleet.host_name: must be 1 to 64 letters, digits, '.', '_' or "
                           "'-', not starting with '.' (got \"\")"},
      {"state_directory = \"rel\"",
       "fleet.state_directory: must be an absolute path (got \"rel\")"},
      {"etcd_ca_file = \"ca.pem\"",
       "fleet.etcd_ca_file: must be an absolute path (got \"ca.pem\")"},
      {"etcd_cert_file = \"/c.pem\"",
       "fleet.etcd_key_file: required with fleet.etcd_cert_file (a client certificate and its "
       "key, both or neither)"},
      {"etcd_key_file = \"/k.pem\"",
       "fleet.etcd_cert_file: required with fleet.etcd_key_file (a client certificate and its "
       "key, both or neither)"},
      {"etcd_endpoints = [\"http://a:1\"]\netcd_ca_file = \"/ca.pem\"",
       "fleet.etcd_endpoints: must all be https:// when etcd_ca_file or etcd_cert_file is set "
       "(got \"http://a:1\")"},
      {"lease_ttl_seconds = 1",
       "fleet.lease_ttl_seconds: must be an integer from 2 to 300 (got 1)"},
      {"status_interval_seconds = 0",
       "fleet.status_interval_seconds: must be an integer from 1 to 3600 (got 0)"},
      {"colo = \"x\"", "fleet.colo: unknown key"},
      {"staging_destination = \"file:///var/lib/x\"",
       "fleet.staging_destination: must be an s3:// URI, "
       "s3://bucket[/dir]?region=REGION[&endpoint=URL] (got \"file:///var/lib/x\")"},
      {"staging_destination = \"s3://b/dir\"",
       "fleet.staging_destination: must be an s3:// URI, "
       "s3://bucket[/dir]?region=REGION[&endpoint=URL] (\"b\" is not a bucket name (3 to 63 "
       "lowercase letters, digits, '.' and '-'))"},
      {"staging_destination = 3", "fleet.staging_destination: must be a string (got 3)"},
      {"staging_destination = \"s3://stage/dir/?region=us-east-1\"",
       "fleet.staging_destination: must not end with '/' (got "
       "\"s3://stage/dir/?region=us-east-1\")"},
  };
  for (const auto &c : cases) {
    SCOPED_TRACE(c.table);
    auto r = parseFleet(c.table + "\n");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, c.message);
  }
}

TEST(FleetKeys, TheLayout) {
  const std::string id = "00112233445566778899aabbccddeeff";
  EXPECT_EQ(keys::host("ord02", "h1"), "/ringcap/hosts/ord02/h1");
  EXPECT_EQ(keys::hostsOf("ord02"), "/ringcap/hosts/ord02/");
  EXPECT_EQ(keys::coloCapture("ord02", id), "/ringcap/colos/ord02/captures/" + id);
  EXPECT_EQ(keys::simpleLimit("ord02"), "/ringcap/colos/ord02/limits/simple");
  EXPECT_EQ(keys::fullLimit("ord02"), "/ringcap/colos/ord02/limits/full");
  EXPECT_EQ(keys::spec(id), "/ringcap/captures/" + id + "/spec");
  EXPECT_EQ(keys::part(id, "h1"), "/ringcap/captures/" + id + "/parts/h1");
  EXPECT_EQ(keys::status(id), "/ringcap/captures/" + id + "/status");
  EXPECT_EQ(keys::idOfColoCapture("ord02", keys::coloCapture("ord02", id)), id);
  // Another site's key (a prefix of this one's name), a malformed id, a deeper key: none.
  EXPECT_FALSE(keys::idOfColoCapture("ord0", keys::coloCapture("ord02", id)));
  EXPECT_FALSE(keys::idOfColoCapture("ord02", keys::coloCapture("ord02", "ABC")));
  EXPECT_FALSE(keys::idOfColoCapture("ord02", keys::coloCapture("ord02", id) + "/x"));
  EXPECT_FALSE(keys::idOfColoCapture("ord02", keys::coloCaptures("ord02")));
}

TEST(FleetKeys, NamesAreOneKeySegment) {
  for (std::string ok :
       std::vector<std::string>{"h1", "ord02-host7.example", "a_b", std::string(64, 'x')})
    EXPECT_TRUE(keys::isName(ok)) << ok;
  for (std::string bad :
       std::vector<std::string>{"", ".", "..", ".hidden", "a/b", "a b", std::string(65, 'x'), "é"})
    EXPECT_FALSE(keys::isName(bad)) << bad;
}

TEST(FleetKeys, TheLocalRequestCarriesTheFleetIdAndAPerHostDestination) {
  const std::string id = "00112233445566778899aabbccddeeff";
  json spec = {{"id", id},
               {"hosts", {"h1", "h2"}},
               {"request",
                {{"system", "magic-transit"},
                 {"type", "full"},
                 {"time_limit", 10},
                 {"colo_name", "ORD"},
                 {"destination_conf", "s3://bucket/dir/?region=us-east-1"}}}};
  auto local = keys::localRequest(spec, "h2");
  ASSERT_EQ(local.error, "");
  EXPECT_EQ(local.request["id"], id);
  // The fleet's destination unchanged: ringcapd adds the host's directory ([fleet] host_name).
  EXPECT_EQ(local.request["destination_conf"], "s3://bucket/dir/?region=us-east-1");
  EXPECT_EQ(local.request["time_limit"], 10);
  EXPECT_TRUE(keys::targets(spec, "h2"));
  EXPECT_FALSE(keys::targets(spec, "h3"));
  EXPECT_FALSE(keys::targets(json{{"id", id}}, "h1"));

  EXPECT_EQ(keys::destinationForHost("file:///srv/pcaps", "h1"), "file:///srv/pcaps/h1");
  EXPECT_EQ(keys::destinationForHost("file:///", "h1"), "file:///h1");
  EXPECT_EQ(keys::destinationForHost("s3://bucket?region=x", "h1"), "s3://bucket/h1?region=x");
  EXPECT_EQ(keys::stagedObject("s3://stage/fleet/", id, "h1"),
            "s3://stage/fleet/" + id + "/h1.pcap");
  EXPECT_EQ(keys::stagedObject("s3://stage?region=x", id, "h1"),
            "s3://stage/" + id + "/h1.pcap?region=x");
  EXPECT_EQ(keys::ownership("ab"), "/ringcap/ownerships/ab");
  EXPECT_EQ(keys::utcTime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(keys::utcTime(1795687200), "2026-11-26T10:00:00Z");

  EXPECT_EQ(keys::localRequest(json{{"id", "x"}, {"request", json::object()}}, "h1").error,
            "spec.id: must be 32 lowercase hexadecimal digits");
  EXPECT_EQ(keys::localRequest(json{{"id", id}}, "h1").error,
            "spec.request: must be a JSON object (the CreateCapture request)");
}

TEST(FleetKeys, APartFromARecordHasTheStatusAndEveryCounter) {
  json record = {{"id", "x"},
                 {"status", "success"},
                 {"packets_captured", 7},
                 {"bytes_captured", 700},
                 {"file_name", "pcap_x.pcap"},
                 {"system", "magic-transit"}};
  json part = keys::partFromRecord("h1", record);
  EXPECT_EQ(part["host"], "h1");
  EXPECT_EQ(part["status"], "success");
  EXPECT_EQ(part["packets_captured"], 7);
  EXPECT_EQ(part["bytes_captured"], 700);
  EXPECT_EQ(part["packets_lost"], 0);
  EXPECT_EQ(part["file_name"], "pcap_x.pcap");
  EXPECT_FALSE(part.contains("system"));
  for (const char *c : keys::kCounters)
    EXPECT_TRUE(part.contains(c)) << c;
}

TEST(AgentState, SavedAndLoadedAndAMissingFileIsAFreshStart) {
  char tmpl[] = "/tmp/ringcap-agent-state-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, path = dir + "/agent-state.json";
  auto fresh = agent::loadAgentState(path);
  ASSERT_TRUE(fresh) << fresh.error().message;
  EXPECT_EQ(fresh->revision, 0);
  agent::AgentState s;
  s.revision = 42;
  s.parts = {"00112233445566778899aabbccddeeff"};
  ASSERT_TRUE(agent::saveAgentState(path, s));
  auto back = agent::loadAgentState(path);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->revision, 42);
  EXPECT_EQ(back->parts, s.parts);
  std::ofstream(path) << "{\"rev\":1}";
  auto bad = agent::loadAgentState(path);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("not an agent state"), std::string::npos);
  std::filesystem::remove_all(dir);
}

} // namespace
} // namespace ringcap
