// ringcap-fleet-lab-tool: the gateway's side of a fleet capture (fleet::Coordinator) from the
// command line, for the three-host lab (tests/fleet/lab/lib.sh) where a test drives etcd
// directly rather than through ringcap-gateway's REST API.
//
//   ringcap-fleet-lab-tool --etcd URL[,URL...] [--simple-interval S] [--claim-timeout S] CMD
//     create COLO REQUEST-JSON   validates the request (as the API does), creates the capture
//                                at COLO; prints its first status (JSON, with "id")
//     status ID                  refreshes the capture's status; prints it (JSON)
//     stop ID                    asks every host of the capture to stop
//     get KEY                    prints the value of an etcd key (exit code 3 when absent)
//     put KEY VALUE              puts an etcd key (no lease)
//
// An error is printed on stderr as "<kind>: <message>" with exit code 1 (2 for usage).
#include "api/ServiceApi.h"
#include "fleet/Coordinator.h"
#include "fleet/Etcd.h"
#include "request/CaptureRequest.h"

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sstream>
#include <string>
#include <vector>

using namespace ringcap;
using nlohmann::json;

namespace {

int usage(const std::string &why) {
  std::cerr << "ringcap-fleet-lab-tool: " << why << "\n"
            << "usage: ringcap-fleet-lab-tool --etcd URL[,URL...] [--simple-interval S] "
               "[--claim-timeout S] create COLO REQUEST-JSON | status ID | stop ID | get KEY | "
               "put KEY VALUE\n";
  return 2;
}

int failed(const Error &e) {
  std::cerr << api::toString(e.kind) << ": " << e.message << "\n";
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  // The library's log lines on stderr: stdout is the JSON answer.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("ringcap-fleet-lab-tool"));
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> endpoints;
  fleet::CoordinatorOptions options;
  size_t i = 0;
  for (; i < args.size() && args[i].rfind("--", 0) == 0; i += 2) {
    if (i + 1 >= args.size())
      return usage(args[i] + " needs a value");
    const std::string &v = args[i + 1];
    if (args[i] == "--etcd") {
      std::stringstream in(v);
      for (std::string e; std::getline(in, e, ',');)
        endpoints.push_back(e);
    } else if (args[i] == "--simple-interval") {
      options.simpleInterval = std::chrono::seconds(std::atoi(v.c_str()));
    } else if (args[i] == "--claim-timeout") {
      options.claimTimeout = std::chrono::seconds(std::atoi(v.c_str()));
    } else {
      return usage("unknown option " + args[i]);
    }
  }
  if (endpoints.empty())
    return usage("--etcd is required");
  if (i >= args.size())
    return usage("no command");
  const std::string cmd = args[i];
  const std::vector<std::string> rest(args.begin() + long(i) + 1, args.end());
  auto etcd = fleet::EtcdClient::create({endpoints});
  if (!etcd)
    return failed(etcd.error());
  fleet::Coordinator coordinator(**etcd, options);

  if (cmd == "create" && rest.size() == 2) {
    json body = json::parse(rest[1], nullptr, false);
    if (body.is_discarded())
      return usage("REQUEST-JSON is not JSON");
    auto request = validateCaptureRequest(body, RequestMode::Api);
    if (!request)
      return failed(request.error());
    auto made = coordinator.create(*request, rest[0]);
    if (!made)
      return failed(made.error());
    std::cout << made->dump() << "\n";
    return 0;
  }
  if (cmd == "status" && rest.size() == 1) {
    auto status = coordinator.refresh(rest[0]);
    if (!status)
      return failed(status.error());
    std::cout << status->dump() << "\n";
    return 0;
  }
  if (cmd == "stop" && rest.size() == 1) {
    auto stopped = coordinator.stop(rest[0]);
    if (!stopped)
      return failed(stopped.error());
    return 0;
  }
  if (cmd == "get" && rest.size() == 1) {
    auto got = (*etcd)->get(rest[0]);
    if (!got)
      return failed(got.error());
    if (got->kvs.empty())
      return 3;
    std::cout << got->kvs[0].value << "\n";
    return 0;
  }
  if (cmd == "put" && rest.size() == 2) {
    auto put = (*etcd)->put(rest[0], rest[1]);
    if (!put)
      return failed(put.error());
    return 0;
  }
  return usage("unknown command or wrong arguments: " + cmd);
}
