// The gateway's side of fleet mode (docs/fleet.md, "The coordinator"): creates a capture for
// a site or a group of sites in etcd with the location-wide rate limits, derives the fleet's
// status from the hosts' parts, stops a capture, and follows the unfinished captures (also
// after a restart, from etcd alone). It never talks to a host: only to etcd.
#pragma once

#include "fleet/Etcd.h"
#include "request/CaptureRequest.h"

#include <atomic>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace ringcap::fleet {

struct CoordinatorOptions {
  // One simple capture per site per this interval (the simple-limit key's lease).
  std::chrono::seconds simpleInterval{60};
  // A target host that has not claimed its part this long after the capture was created
  // fails that part.
  std::chrono::seconds claimTimeout{30};
};

// What etcd holds of one capture, and the status derived from it.
struct FleetView {
  nlohmann::json spec;
  int64_t specRevision = 0; // the create txn's revision
  // The parts by host (absent: not claimed yet).
  std::map<std::string, nlohmann::json> parts;
  // The registrations of the target hosts that exist now: host -> create revision.
  std::map<std::string, int64_t> registered;
  // The status key as stored (null: none yet), and its mod revision (0: none).
  nlohmann::json previous;
  int64_t statusModRevision = 0;
};

// The fleet status of a capture (pure): {id, colo_name, colos, type, created, status,
// error_message?, hosts: [{host, colo, status, counters..., error_message?, ...}], totals,
// ended, lost_hosts, lost_running}. `now` (seconds since the epoch) decides the claim timeout.
// lost_running: the lost hosts whose part was last reported unfinished, while their ringcapd
// may still be capturing (until the part is terminal, or the request's time_limit plus the
// claim timeout has passed since the capture's creation); a full capture's site limits stay
// held while it is not empty. A part the coordinator failed itself ("lost": true) is lost.
nlohmann::json deriveFleetStatus(const FleetView &view, const CoordinatorOptions &options,
                                 int64_t now);

class Coordinator {
public:
  Coordinator(EtcdClient &etcd, CoordinatorOptions options = {}) : etcd_(etcd), options_(options) {}

  // The sites `coloName` names: itself when a host is registered there, else the sites
  // whose registrations list it among their colo_groups. InvalidRequest when none.
  Result<std::vector<std::string>> sitesOf(const std::string &coloName);

  // Creates a capture of a validated request at `coloName` (a site or a group): chooses the
  // id; one txn puts the spec (with the hosts registered now), a key per site and the rate
  // limits (RateLimited: a simple capture at a target site within the interval; CaptureBusy:
  // a full capture pending or running at a target site). Two coordinators racing: one wins.
  // The capture's first status.
  Result<nlohmann::json> create(const CaptureRequest &request, const std::string &coloName);

  // Reads the capture's keys, derives its status, fails the part of every host declared lost
  // before it claimed (part absent -> "failed", so that a later claim fails), writes
  // captures/<id>/status when it changed (compared with the status's mod revision read, so an
  // older snapshot never overwrites a newer status) and releases the full-capture limit when
  // the capture ended and no lost host may still be capturing. NotFound: no spec.
  Result<nlohmann::json> refresh(const std::string &id);
  // The same from a snapshot read earlier (snapshot()); Conflict when the stored status or a
  // part changed since (nothing written then).
  Result<nlohmann::json> refreshFrom(const std::string &id, const FleetView &view);
  // One snapshot of the capture's keys.
  Result<FleetView> snapshot(const std::string &id) { return read(id); }

  // Asks every host of the capture to stop (its site keys put again with "stop": true).
  Result<void> stop(const std::string &id);

  // The ids of the captures whose status has not ended (specs without an ended status).
  Result<std::vector<std::string>> unfinished();

  // Keeps the status of every unfinished capture current until `stop` becomes true: reads the
  // unfinished captures from etcd, then watches /ringcap/ (parts, specs, registrations) and
  // refreshes the captures an event concerns, and every `tick` the unfinished ones (the claim
  // timeout, a missed watch). A broken or compacted watch starts again from a fresh range.
  Result<void> follow(const std::atomic<bool> &stop,
                      std::chrono::milliseconds tick = std::chrono::milliseconds(1000));

private:
  Result<FleetView> read(const std::string &id);

  EtcdClient &etcd_;
  CoordinatorOptions options_;
};

// A new capture id: 32 lowercase hex digits from the system's random source.
std::string newFleetCaptureId();

} // namespace ringcap::fleet
