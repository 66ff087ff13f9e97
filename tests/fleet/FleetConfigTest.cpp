// The [fleet] table in the one configuration file of ringcapd and ringcap-gateway
// (docs/configuration.md): ringcapd reads it; the gateway ignores it unless it has
// etcd_endpoints (fleet mode: tests/gateway/GatewayConfigTest.cpp, GatewayConfig.FleetModeKeys).
#include "Config.h"
#include "GatewayConfig.h"

#include <gtest/gtest.h>

namespace ringcap {
namespace {

const char *const kFile = R"(colo_name = "ord02"
[systems]
magic-transit = ["eth0"]
[gateway]
account_id = "0123456789abcdef0123456789abcdef"
tokens_file = "/etc/ringcap/gateway-tokens"
[fleet]
agent_user = "ringcap-agent"
)";

TEST(FleetConfig, RingcapdReadsTheFleetTableAndTheGatewayIgnoresIt) {
  auto daemon = parseDaemonConfig(kFile, "test");
  ASSERT_TRUE(daemon) << daemon.error().message;
  EXPECT_EQ(daemon->fleet_agent_user, "ringcap-agent");
  auto gateway = gateway::parseGatewayConfig(kFile, "test", "/usr/share/ringcap/dashboard");
  ASSERT_TRUE(gateway) << gateway.error().message;
  EXPECT_EQ(gateway->account_id, "0123456789abcdef0123456789abcdef");
  EXPECT_FALSE(gateway->fleet) << "no etcd_endpoints: not fleet mode";
}

TEST(FleetConfig, AnUnknownFleetKeyIsRingcapdsErrorNotTheGateways) {
  const std::string file = std::string(kFile) + "etcd = \"x\"\n";
  auto daemon = parseDaemonConfig(file, "test");
  ASSERT_FALSE(daemon);
  EXPECT_EQ(daemon.error().message, "fleet.etcd: unknown key");
  EXPECT_TRUE(gateway::parseGatewayConfig(file, "test", "/usr/share/ringcap/dashboard"));
}

} // namespace
} // namespace ringcap
