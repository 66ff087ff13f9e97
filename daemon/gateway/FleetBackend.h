// The Backend of ringcap-gateway's fleet mode (docs/fleet.md, "The gateway in fleet mode"):
// captures are created, read, listed and stopped in etcd through fleet::Coordinator, for a
// location (a site or a group of sites) instead of the local ringcapd; a thread runs
// Coordinator::follow for the backend's life; ownership records live in etcd (the gateway is
// their only writer); a simple capture's download is one capture merged by timestamp from the
// files its hosts staged (keys::stagedObject), streamed through a pipe.
#pragma once

#include "Api.h"
#include "destination/Destination.h"
#include "fleet/Coordinator.h"
#include "fleet/Etcd.h"

#include <atomic>
#include <memory>
#include <thread>

namespace ringcap::gateway {

struct FleetSettings {
  std::string coloName; // gateway.fleet_colo_name: a request without colo_name goes there
  std::string staging;  // fleet.staging_destination ("" none: no merged download)
  DestinationSettings destinations;
  fleet::CoordinatorOptions coordinator;
  std::chrono::milliseconds followTick{1000};
};

class FleetBackend : public Backend {
public:
  // Two clients of the cluster: one for the requests, one for the follow thread (its watch
  // and its refreshes), so that neither waits behind the other. Starts the follow thread.
  static Result<std::unique_ptr<FleetBackend>> create(const fleet::EtcdOptions &etcd,
                                                      FleetSettings settings);
  ~FleetBackend() override;

  Result<nlohmann::json> createCapture(const nlohmann::json &request) override;
  Result<nlohmann::json> getCapture(const std::string &id) override;
  Result<nlohmann::json> listCaptures() override;
  Result<void> stopCapture(const std::string &id) override;
  // A pipe whose other end a thread fills with the merged capture (pcapng).
  Result<UniqueFd> openCaptureFile(const std::string &id) override;
  Result<nlohmann::json> createOwnership(const std::string &destination) override;
  Result<nlohmann::json> validateOwnership(const std::string &destination,
                                           const std::string &challenge) override;
  Result<nlohmann::json> listOwnerships() override;
  Result<void> deleteOwnership(const std::string &id) override;

  // Whether the newest ownership record in etcd of the destination (by canonical form) has
  // passed the challenge.
  Result<bool> ownershipValidated(const std::string &destination);

private:
  FleetBackend(std::unique_ptr<fleet::EtcdClient> etcd, std::unique_ptr<fleet::EtcdClient> follow,
               FleetSettings settings);
  void followLoop();
  // The REST record (docs/rest-api.md, "Fleet mode") of a capture: its spec and status.
  nlohmann::json restRecord(const nlohmann::json &spec, const nlohmann::json &status) const;
  // The staged objects of the hosts whose files a download merges; NotReady when none may be
  // merged now.
  Result<std::vector<std::string>> stagedObjects(const nlohmann::json &status) const;

  std::unique_ptr<fleet::EtcdClient> etcd_, followEtcd_;
  FleetSettings settings_;
  fleet::Coordinator coordinator_, follower_;
  std::atomic<bool> stop_{false};
  std::thread follow_;
};

// The REST record of a fleet capture: the request's fields, id, status, submitted (the spec's
// created), error_message, the totals as the record's counters, started (the earliest host's),
// finished (the latest, once ended), colos, hosts (each host's status, counters, error_message,
// started, finished, stop_reason, staged_object) and, for a simple capture that can be
// downloaded, file_name "pcap_<id>.pcapng".
nlohmann::json fleetRestRecord(const nlohmann::json &spec, const nlohmann::json &status,
                               bool downloadable);

} // namespace ringcap::gateway
