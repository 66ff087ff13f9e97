// ringcapd's configuration: every key checked, a bad file refused naming the key.
#include "Config.h"

#include <gtest/gtest.h>

using namespace ringcap;

namespace {

const char *kMinimal = R"(colo_name = "lab01"
[systems]
magic-transit = ["eth0"]
)";

} // namespace

TEST(DaemonConfig, MinimalFileGetsTheDocumentedDefaults) {
  auto c = parseDaemonConfig(kMinimal, "test");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->colo_name, "lab01");
  EXPECT_EQ(c->state_directory, "/var/lib/ringcap");
  EXPECT_EQ(c->simple_interval_seconds, 60u);
  EXPECT_EQ(c->full_concurrent, 1u);
  EXPECT_EQ(c->simple_sample_rate, 1u);
  EXPECT_EQ(c->ring_size_mib, 32u);
  EXPECT_EQ(c->max_captures, 1000u);
  EXPECT_EQ(c->max_bytes, 10ull << 30);
  EXPECT_EQ(c->spool_max_bytes, 4ull << 30);
  EXPECT_EQ(c->min_free_bytes, 1ull << 30);
  EXPECT_EQ(c->access_group, "ringcap");
  EXPECT_EQ(c->fleet_agent_user, std::nullopt);
  EXPECT_EQ(c->ownership_max_records, 1000u);
  EXPECT_EQ(c->ownership_pending_expiry_seconds, 86400u);
  EXPECT_FALSE(c->skip_missing_interfaces);
  EXPECT_EQ(c->output_format, OutputFormat::Pcap);
  EXPECT_EQ(c->allInterfaces(), std::vector<std::string>{"eth0"});
  // The history is off by default.
  EXPECT_FALSE(c->history.enabled);
  EXPECT_EQ(c->history.path(c->state_directory), "/var/lib/ringcap/history");
  EXPECT_EQ(c->history.max_age_seconds, 86400u);
  EXPECT_EQ(c->history.sample_rate, 100u);
}

TEST(DaemonConfig, HistoryTable) {
  auto c = parseDaemonConfig(std::string(kMinimal) + R"([history]
enabled = true
max_bytes = 10000000
max_age_seconds = 3600
sample_rate = 1
segment_seconds = 10
min_free_bytes = 0
)",
                             "test");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->history.enabled);
  EXPECT_EQ(c->history.max_bytes, 10000000u);
  EXPECT_EQ(c->history.max_age_seconds, 3600u);
  EXPECT_EQ(c->history.sample_rate, 1u);
  EXPECT_EQ(c->history.segment_seconds, 10u);
  EXPECT_EQ(c->history.min_free_bytes, 0u);
  // Without segment_max_bytes, the segments follow a smaller max_bytes.
  EXPECT_EQ(c->history.segment_max_bytes, 5000000u);
  auto d = parseDaemonConfig(std::string(kMinimal) + "[history]\ndirectory = \"/srv/h\"\n", "t");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->history.path(d->state_directory), "/srv/h");
}

TEST(DaemonConfig, FullFileParses) {
  auto c = parseDaemonConfig(R"(colo_name = "ord02"
colo_groups = ["ORD", "US"]
state_directory = "/srv/ringcap"
[systems]
magic-transit = ["eth0", "eth1"]
other = ["eth1", "eth2"]
[capture]
simple_sample_rate = 10
ring_size_mib = 64
missing_interfaces = "skip"
output_format = "pcapng"
spool_max_bytes = 65536
min_free_bytes = 0
[rate_limits]
simple_interval_seconds = 0
full_concurrent = 2
[retention]
max_captures = 5
max_bytes = 1000
[ownership]
max_records = 50
pending_expiry_seconds = 600
[access]
group = "netops"
[fleet]
agent_user = "ringcap-agent"
[destinations]
file_roots = ["/srv/pcaps"]
[s3]
endpoint = "http://127.0.0.1:9000"
allowed_endpoints = ["https://s3.example.net", "http://10.1.2.3:9000"]
credentials_file = "/etc/ringcap/aws-credentials"
)",
                             "test");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->colo_groups, (std::vector<std::string>{"ORD", "US"}));
  EXPECT_EQ(c->allInterfaces(), (std::vector<std::string>{"eth0", "eth1", "eth2"}));
  EXPECT_EQ(c->simple_sample_rate, 10u);
  EXPECT_EQ(c->spool_max_bytes, 65536u);
  EXPECT_EQ(c->min_free_bytes, 0u);
  EXPECT_TRUE(c->skip_missing_interfaces);
  EXPECT_EQ(c->output_format, OutputFormat::Pcapng);
  EXPECT_EQ(c->full_concurrent, 2u);
  EXPECT_EQ(c->max_bytes, 1000u);
  EXPECT_EQ(c->access_group, "netops");
  EXPECT_EQ(c->fleet_agent_user, "ringcap-agent");
  EXPECT_EQ(c->ownership_max_records, 50u);
  EXPECT_EQ(c->ownership_pending_expiry_seconds, 600u);
  EXPECT_EQ(c->s3_endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(c->s3_allowed_endpoints,
            (std::vector<std::string>{"https://s3.example.net", "http://10.1.2.3:9000"}));
}

TEST(DaemonConfig, BadFilesAreRefusedNamingTheKey) {
  std::string systems = "[systems]\nmagic-transit = [\"eth0\"]\n";
  struct Case {
    std::string text, message;
  } cases[] = {
      {"[systems]\nmagic-transit = [\"eth0\"]\n", "colo_name: required"},
      {"colo_name = \"lab 01\"\n" + systems, "colo_name: must be 1 to 64 letters"},
      {"colo_name = 5\n" + systems, "colo_name: must be a string (got 5)"},
      {"colo_name = \"a\"\n", "systems: required"},
      {"colo_name = \"a\"\n[systems]\n", "systems: required"},
      {"colo_name = \"a\"\n[systems]\nmt = []\n", "systems.mt: must list 1 to 8 interfaces"},
      {"colo_name = \"a\"\n[systems]\nmt = [\"a/b\"]\n", "systems.mt: \"a/b\" is not an interface"},
      {"colo_name = \"a\"\n[systems]\nmt = \"eth0\"\n", "systems.mt: must be an array of strings"},
      {"colo_name = \"a\"\ncolor = 1\n" + systems, "color: unknown key"},
      {"colo_name = \"a\"\nstate_directory = \"relative\"\n" + systems,
       "state_directory: must be an absolute path"},
      {"colo_name = \"a\"\n" + systems + "[capture]\nring_size_mib = 3\n",
       "capture.ring_size_mib: must be a power of two"},
      {"colo_name = \"a\"\n" + systems + "[capture]\nsimple_sample_rate = 0\n",
       "capture.simple_sample_rate: must be an integer from 1 to 1000000 (got 0)"},
      {"colo_name = \"a\"\n" + systems + "[capture]\nmissing_interfaces = \"ignore\"\n",
       "capture.missing_interfaces: must be \"fail\" or \"skip\""},
      {"colo_name = \"a\"\n" + systems + "[capture]\noutput_format = \"PCAP\"\n",
       "capture.output_format: must be \"pcap\" or \"pcapng\" (got \"PCAP\")"},
      {"colo_name = \"a\"\n" + systems + "[capture]\noutput_format = 1\n",
       "capture.output_format: must be a string"},
      {"colo_name = \"a\"\n" + systems + "[capture]\nspool_max_bytes = 65535\n",
       "capture.spool_max_bytes: must be an integer from 65536 to 4611686018427387904 (got 65535)"},
      {"colo_name = \"a\"\n" + systems + "[capture]\nmin_free_bytes = -1\n",
       "capture.min_free_bytes: must be an integer from 0 to 4611686018427387904 (got -1)"},
      {"colo_name = \"a\"\n" + systems + "[capture]\nsnaplen = 5\n",
       "capture.snaplen: unknown key"},
      {"colo_name = \"a\"\n" + systems + "[rate_limits]\nsimple_interval_seconds = -1\n",
       "rate_limits.simple_interval_seconds: must be an integer from 0 to 86400 (got -1)"},
      {"colo_name = \"a\"\n" + systems + "[rate_limits]\nfull_concurrent = 9\n",
       "rate_limits.full_concurrent: must be an integer from 1 to 8 (got 9)"},
      {"colo_name = \"a\"\n" + systems + "[rate_limits]\nfull_concurrent = 1.5\n",
       "rate_limits.full_concurrent: must be an integer"},
      {"colo_name = \"a\"\n" + systems + "[retention]\nmax_captures = 0\n",
       "retention.max_captures: must be an integer from 1"},
      {"colo_name = \"a\"\n" + systems + "[ownership]\nmax_records = 10001\n",
       "ownership.max_records: must be an integer from 1 to 10000 (got 10001)"},
      {"colo_name = \"a\"\n" + systems + "[ownership]\npending_expiry_seconds = 0\n",
       "ownership.pending_expiry_seconds: must be an integer from 1 to 2592000 (got 0)"},
      {"colo_name = \"a\"\n" + systems + "[ownership]\nmax = 1\n", "ownership.max: unknown key"},
      {"colo_name = \"a\"\n" + systems + "[access]\ngroup = \"\"\n",
       "access.group: must not be empty"},
      {"colo_name = \"a\"\n" + systems + "[fleet]\nagent_user = \"\"\n",
       "fleet.agent_user: must not be empty"},
      {"colo_name = \"a\"\n" + systems + "[fleet]\nagent_user = 0\n",
       "fleet.agent_user: must be a string"},
      {"colo_name = \"a\"\n" + systems + "[fleet]\netcd = \"x\"\n", "fleet.etcd: unknown key"},
      {"colo_name = \"a\"\n" + systems + "[destinations]\nfile_roots = [\"srv\"]\n",
       "destinations.file_roots: each must be an absolute path"},
      {"colo_name = \"a\"\n" + systems + "[s3]\nendpoint = \"ftp://x\"\n",
       "s3.endpoint: must be an http:// or https:// URL"},
      {"colo_name = \"a\"\n" + systems + "[s3]\nsecret = \"x\"\n", "s3.secret: unknown key"},
      {"colo_name = \"a\"\n" + systems + "[s3]\nallowed_endpoints = [\"ftp://x\"]\n",
       "s3.allowed_endpoints: each must be http://host[:port] or https://host[:port]"},
      {"colo_name = \"a\"\n" + systems + "[s3]\nallowed_endpoints = [\"http://h/x?y\"]\n",
       "s3.allowed_endpoints: each must be"},
      {"colo_name = \"a\"\n" + systems + "[s3]\nallowed_endpoints = \"http://h\"\n",
       "s3.allowed_endpoints"},
      {"colo_name = \"a\"\n" + systems + "[history]\nenabled = 1\n",
       "history.enabled: must be true or false (got 1)"},
      {"colo_name = \"a\"\n" + systems + "[history]\nmax_age_seconds = 86401\n",
       "history.max_age_seconds: must be an integer from 1 to 86400 (got 86401)"},
      {"colo_name = \"a\"\n" + systems + "[history]\nsample_rate = 0\n",
       "history.sample_rate: must be an integer from 1 to 1000000 (got 0)"},
      {"colo_name = \"a\"\n" + systems + "[history]\nsegment_seconds = 3601\n",
       "history.segment_seconds: must be an integer from 1 to 3600 (got 3601)"},
      {"colo_name = \"a\"\n" + systems + "[history]\nsegment_max_bytes = 4095\n",
       "history.segment_max_bytes: must be an integer from 4096"},
      {"colo_name = \"a\"\n" + systems +
           "[history]\nmax_bytes = 100000\nsegment_max_bytes = 60000\n",
       "history.max_bytes: must be at least twice history.segment_max_bytes (60000; got 100000)"},
      {"colo_name = \"a\"\n" + systems + "[history]\ndirectory = \"h\"\n",
       "history.directory: must be an absolute path (got \"h\")"},
      {"colo_name = \"a\"\n" + systems + "[history]\nsnaplen = 200\n",
       "history.snaplen: unknown key"},
      {"colo_name = \"a\"\ncapture = 5\n" + systems, "capture: must be a table"},
      {"colo_name = \"a\n", "line 1"},
  };
  for (const auto &c : cases) {
    auto r = parseDaemonConfig(c.text, "test");
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message.find(c.message), std::string::npos)
        << c.text << "\n-> " << r.error().message;
  }
}
