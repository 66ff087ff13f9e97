// ringcap-agent: this host's part of fleet mode (docs/fleet.md). It registers the host in etcd
// under a lease, watches the captures of its site, claims its part of each capture that
// targets it with a transaction (so that no capture runs twice, also across restarts), runs it
// on the local ringcapd with the fleet's id, and writes the part's status and counters back.
#pragma once

#include "Config.h"
#include "LocalCapture.h"
#include "destination/Destination.h"
#include "fleet/Etcd.h"
#include "util/Result.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ringcap::agent {

struct AgentSettings {
  std::string host, colo;
  std::vector<std::string> coloGroups, systems;
  fleet::EtcdOptions etcd;
  std::string stateDirectory;
  int64_t leaseTtlSeconds = 10;
  int64_t statusIntervalSeconds = 5;
  // A part whose capture ringcapd has not answered about for this long is failed.
  int64_t ringcapdSilenceSeconds = 60;
  // The bus of ringcapd (the default LocalCapture's); empty: the system bus
  // (DBUS_SYSTEM_BUS_ADDRESS when set).
  std::string busAddress;
  // [fleet] staging_destination: where a simple capture's file is uploaded for the gateway
  // (keys::stagedObject); empty: not set (a simple capture's part then fails at its claim,
  // when the LocalCapture has files).
  std::string stagingDestination;
  // [destinations] and [s3] of the file, as ringcapd uses them; the credentials file is
  // $CREDENTIALS_DIRECTORY/aws-credentials when systemd's LoadCredential= provides it.
  DestinationSettings destinations;
  // Uploads of a staged file tried at most this often, waiting stagingRetryDelay, doubled
  // each time, between two.
  int stagingAttempts = 3;
  std::chrono::milliseconds stagingRetryDelay{1000};
};

// The agent's settings from ringcapd's configuration: colo_name, colo_groups, the systems'
// names and the [fleet] table. Errors name the key and the rule.
Result<AgentSettings> settingsFromConfig(const DaemonConfig &config);

// What the agent keeps across restarts, in <state_directory>/agent-state.json.
struct AgentState {
  int64_t revision = 0;        // the watch resumes here (0: none yet)
  std::set<std::string> parts; // ids of the parts claimed and not finished
};
Result<AgentState> loadAgentState(const std::string &path);
Result<void> saveAgentState(const std::string &path, const AgentState &state);

class Agent {
public:
  // `local`: the capture service of this host; none: ringcapd on s_.busAddress
  // (RingcapdCapture).
  explicit Agent(AgentSettings settings, std::unique_ptr<LocalCapture> local = nullptr);
  // Runs until `stop` becomes true (the signal handler's flag); an error when it cannot go on
  // (etcd or the state directory unusable at the start). Transient faults are logged and
  // retried.
  Result<void> run(const std::atomic<bool> &stop);

private:
  // Registers the host (a new lease) with `etcd`; records the registration's create revision.
  Result<void> registerHost(fleet::EtcdClient &etcd);
  // Keeps the lease alive on its own thread and etcd client, so that a slow ringcapd or etcd
  // call of the other threads never makes it miss the TTL.
  void keepAliveLoop(const std::atomic<bool> &stop);
  void watchLoop(const std::atomic<bool> &stop);
  // One put of a site's capture key: claim the part and run it, or leave it. False when etcd
  // could not be asked (the event is to be handled again).
  bool handleCapture(const std::string &id, const nlohmann::json &value);
  bool handleCaptureLocked(const std::string &id, const nlohmann::json &value);
  // The part exists already: adopt it when it is this host's unfinished one (spec: the
  // capture's, when known).
  void adoptPart(const std::string &id, const nlohmann::json &part, const nlohmann::json *spec);
  // After a claim: the capture on ringcapd, and the part's first status.
  void startPart(const std::string &id, const nlohmann::json &spec);
  // CreateCapture of a claimed part: a refusal fails the part; an error without an answer
  // (timeout, ringcapd off the bus) asks GetCapture, and when that cannot tell either keeps
  // the part as uncertain (reportParts settles it: found, reported; NotFound, created again).
  void createOnRingcapd(const std::string &id, const nlohmann::json &spec);
  void reportParts(bool force);
  // Why this host must not run the capture `spec` (a full capture without a fleet ownership
  // "success" of its destination_conf in etcd; a simple one without staging_destination),
  // or nullopt when it may; an error when etcd could not be read.
  Result<std::optional<std::string>> refusalOf(const nlohmann::json &spec);
  // Uploads a succeeded simple capture's file to its staged object and adds staged_object
  // and staged_bytes to `part`; a failure (after the bounded retries) turns `part` failed.
  void stagePart(const std::string &id, nlohmann::json &part);
  Result<void> putPart(const std::string &id, const nlohmann::json &part);
  void failPart(const std::string &id, const std::string &message,
                const nlohmann::json *last = nullptr);
  void saveState();
  std::string statePath() const { return s_.stateDirectory + "/agent-state.json"; }

  AgentSettings s_;
  std::unique_ptr<fleet::EtcdClient> etcd_;
  std::unique_ptr<fleet::EtcdClient> leaseEtcd_; // the keepalive thread's
  fleet::Lease lease_;                           // the keepalive thread's after the start
  // The create revision of this host's registration key: a spec created before it names a
  // registration of this host that has since ended (then this is not the host it names).
  std::atomic<int64_t> registrationRevision_{0};
  std::mutex mutex_; // state_, reported_, local_
  AgentState state_;
  std::map<std::string, std::string> reported_; // id -> the part's last value written
  std::unique_ptr<LocalCapture> local_;         // used under mutex_ (after run's start)
  // Claims whose transaction failed without an answer (it may have been made).
  std::set<std::string> uncertainClaims_;
  // Parts whose CreateCapture got no answer: id -> the spec (to create it when ringcapd says
  // it does not have it).
  std::map<std::string, nlohmann::json> uncertainCreates_;
  // id -> the last part read from ringcapd's record (a terminal one is written again when the
  // record is gone, instead of failing the part).
  std::map<std::string, nlohmann::json> lastPart_;
  // The parts whose GetCapture has failed without an answer since: id -> the first failure.
  std::map<std::string, std::chrono::steady_clock::time_point> unanswered_;
  // The parts failed for ringcapd's silence, whose captures are stopped once it answers.
  std::set<std::string> abandoned_;
  // id -> the staged object and its size, once uploaded (a part put that failed after it
  // does not upload again).
  std::map<std::string, std::pair<std::string, uint64_t>> staged_;
};

// Whether a bus error is ringcapd's answer refusing the request (as opposed to no answer: a
// timeout, ringcapd off the bus, a fault of the call).
bool isRefusal(ErrorKind kind);
// A string member of a JSON object; "" when absent or of another type (never throws).
std::string stringOf(const nlohmann::json &object, const char *key);

} // namespace ringcap::agent
