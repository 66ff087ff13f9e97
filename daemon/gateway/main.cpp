// ringcap-gateway: Cloudflare's PCAPs REST API and the dashboard over HTTP(S), in front of
// ringcapd on the system bus. docs/rest-api.md describes the API, docs/configuration.md the
// [gateway] table of its configuration.
#include "Api.h"
#include "FleetBackend.h"
#include "GatewayConfig.h"
#include "Server.h"
#include "TokenStore.h"

#include <csignal>
#include <cstring>
#include <filesystem>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#ifndef RINGCAP_DASHBOARD_DIR
#define RINGCAP_DASHBOARD_DIR "/usr/local/share/ringcap/dashboard"
#endif
#ifndef RINGCAP_DASHBOARD_RELDIR
#define RINGCAP_DASHBOARD_RELDIR "../share/ringcap/dashboard"
#endif
#ifndef RINGCAP_DEFAULT_CONFIG
#define RINGCAP_DEFAULT_CONFIG "/etc/ringcap/ringcapd.toml"
#endif

using namespace ringcap;

namespace {

void usage(FILE *out) {
  std::fprintf(out, "usage: ringcap-gateway [--config FILE]\n"
                    "Serves the PCAPs REST API and the dashboard over ringcapd (the [gateway] "
                    "table of FILE, default " RINGCAP_DEFAULT_CONFIG ").\n");
}

// dashboard_dir when the configuration has none: the installed dashboard beside the binary
// (<prefix>/sbin/ringcap-gateway, <prefix>/share/ringcap/dashboard), whatever prefix it was
// installed with; else the one of the prefix the build was configured for.
std::string defaultDashboardDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto dir = (exe.parent_path() / RINGCAP_DASHBOARD_RELDIR).lexically_normal();
    if (std::filesystem::is_directory(dir, ec))
      return dir.string();
  }
  return RINGCAP_DASHBOARD_DIR;
}

// SIGHUP: reads tokens_file again. A file that cannot be read or parsed leaves the tokens as
// they were (logged); the gateway keeps serving either way.
void reloadTokens(gateway::Api &api, const std::string &path) {
  sd_notify(0, "RELOADING=1\nSTATUS=Reloading the tokens");
  auto tokens = gateway::TokenStore::load(path);
  if (!tokens) {
    spdlog::error("gateway.tokens_file: {}; keeping the {} token(s) read before",
                  tokens.error().message, api.tokens()->size());
  } else {
    spdlog::info("reloaded {} API token(s) from {}", tokens->size(), path);
    api.setTokens(std::move(*tokens));
  }
  sd_notify(0, "READY=1\nSTATUS=Listening");
}

} // namespace

int main(int argc, char **argv) {
  auto logger = spdlog::stderr_logger_mt("ringcap-gateway");
  spdlog::set_default_logger(logger);
  // Under systemd the journal adds the time; the level is enough.
  spdlog::set_pattern(getenv("INVOCATION_ID") ? "[%l] %v" : "%Y-%m-%dT%H:%M:%S.%e [%l] %v");
  spdlog::flush_on(spdlog::level::info);

  std::string configPath = RINGCAP_DEFAULT_CONFIG;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      configPath = argv[++i];
    } else if (a.starts_with("--config=")) {
      configPath = a.substr(9);
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }

  auto config = gateway::loadGatewayConfig(configPath, defaultDashboardDir());
  if (!config) {
    spdlog::error("configuration: {}", config.error().message);
    sd_notifyf(0, "STATUS=Failed: %s", config.error().message.c_str());
    return 1;
  }
  auto tokens = gateway::TokenStore::load(config->tokens_file);
  if (!tokens) {
    spdlog::error("gateway.tokens_file: {}", tokens.error().message);
    sd_notifyf(0, "STATUS=Failed: %s", tokens.error().message.c_str());
    return 1;
  }
  spdlog::info("{} API token(s) from {}, account {}", tokens->size(), config->tokens_file,
               config->account_id);
  // SIGTERM and SIGINT are taken by sigwait on the main thread only: block them before any
  // thread starts, so that every thread inherits the mask.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Fleet mode: captures go to etcd for a location; the follow thread starts here.
  std::unique_ptr<gateway::FleetBackend> fleet;
  if (config->fleet) {
    const auto &f = *config->fleet;
    fleet::EtcdOptions etcd;
    etcd.endpoints = f.etcd_endpoints;
    etcd.caFile = f.etcd_ca_file;
    etcd.certFile = f.etcd_cert_file;
    etcd.keyFile = f.etcd_key_file;
    gateway::FleetSettings settings;
    settings.coloName = f.colo_name;
    settings.staging = f.staging_destination;
    settings.destinations.fileRoots = f.file_roots;
    settings.destinations.s3Endpoint = f.s3_endpoint;
    settings.destinations.s3AllowedEndpoints = f.s3_allowed_endpoints;
    settings.destinations.credentialsFile = f.s3_credentials_file;
    settings.coordinator.claimTimeout = std::chrono::seconds(f.claim_timeout_seconds);
    auto b = gateway::FleetBackend::create(etcd, std::move(settings));
    if (!b) {
      spdlog::error("fleet.etcd_endpoints: {}", b.error().message);
      sd_notifyf(0, "STATUS=Failed: %s", b.error().message.c_str());
      return 1;
    }
    fleet = std::move(*b);
    spdlog::info("fleet mode: etcd {}, default location {}, staging {}", f.etcd_endpoints.front(),
                 f.colo_name.empty() ? "(none)" : f.colo_name,
                 f.staging_destination.empty() ? "(none)" : f.staging_destination);
  }

  gateway::Api api(config->account_id, std::move(*tokens), config->dashboard_dir);
  int rc = gateway::serve(
      *config, api,
      [&](const std::string &url) {
        spdlog::info("listening on {} (dashboard: {}/, API: {}/client/v4)", url, url, url);
        sd_notifyf(0, "READY=1\nSTATUS=Listening on %s", url.c_str());
      },
      [&] {
        for (;;) {
          int sig = 0;
          sigwait(&mask, &sig);
          if (sig == SIGHUP) {
            reloadTokens(api, config->tokens_file);
            continue;
          }
          spdlog::info("signal {}: stopping", sig);
          sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
          return;
        }
      },
      fleet.get());
  if (rc == 0)
    spdlog::info("stopped");
  return rc;
}
