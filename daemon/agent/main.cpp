// ringcap-agent --config FILE: fleet mode's agent on one host (docs/fleet.md). It reads
// colo_name, colo_groups, the systems and the [fleet] table of ringcapd's configuration.
#include "Agent.h"
#include "Config.h"

#include <atomic>
#include <csignal>
#include <cstring>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <string>
#include <systemd/sd-daemon.h>

namespace {
std::atomic<bool> stopRequested{false};
void onSignal(int) { stopRequested = true; }
} // namespace

int main(int argc, char **argv) {
  auto logger = spdlog::stderr_logger_mt("ringcap-agent");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern(getenv("INVOCATION_ID") ? "[%l] %v" : "%Y-%m-%dT%H:%M:%S.%e [%l] %v");
  spdlog::flush_on(spdlog::level::info);

  std::string config = RINGCAP_DEFAULT_CONFIG;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config = argv[++i];
    } else if (a == "--help" || a == "-h") {
      printf("usage: ringcap-agent [--config FILE]   (default %s)\n", RINGCAP_DEFAULT_CONFIG);
      return 0;
    } else {
      fprintf(stderr, "ringcap-agent: unknown argument %s (usage: ringcap-agent [--config FILE])\n",
              a.c_str());
      return 2;
    }
  }
  auto parsed = ringcap::loadDaemonConfig(config);
  if (!parsed) {
    spdlog::error("{}: {}", config, parsed.error().message);
    return 1;
  }
  auto settings = ringcap::agent::settingsFromConfig(*parsed);
  if (!settings) {
    spdlog::error("{}: {}", config, settings.error().message);
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  spdlog::info("ringcap-agent {}: host {} of site {}, etcd {}", RINGCAP_VERSION, settings->host,
               settings->colo, settings->etcd.endpoints.front());
  sd_notify(0, "READY=1");
  ringcap::agent::Agent agent(std::move(*settings));
  auto r = agent.run(stopRequested);
  if (!r) {
    spdlog::error("{}", r.error().message);
    return 1;
  }
  return 0;
}
