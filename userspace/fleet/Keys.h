// Fleet mode's key layout in etcd (docs/fleet.md, "The key layout"): every key ringcap writes,
// in one place, and the JSON of the values the agent and the gateway share.
#pragma once

#include "fleet/Etcd.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ringcap::fleet::keys {

// Everything ringcap writes starts with this.
inline constexpr const char *kRoot = "/ringcap/";

// A host or site name as a key segment: 1 to 64 letters, digits, '.', '_' or '-', not
// starting with '.' (so never "." or ".."), never '/'.
bool isName(const std::string &s);
// A capture id: 32 lowercase hex digits.
bool isCaptureId(const std::string &s);

// /ringcap/hosts/<colo>/<host>: the host's registration, under its lease.
std::string host(const std::string &colo, const std::string &host);
// /ringcap/hosts/<colo>/: every host of a site.
std::string hostsOf(const std::string &colo);
// /ringcap/colos/<colo>/captures/<id>: a capture that targets the site (the agent's watch).
std::string coloCapture(const std::string &colo, const std::string &id);
std::string coloCaptures(const std::string &colo);
// The id of a key under coloCaptures(colo); none for any other key.
std::optional<std::string> idOfColoCapture(const std::string &colo, const std::string &key);
// /ringcap/colos/<colo>/limits/simple (under a lease of the interval) and .../limits/full
// (the id of the full capture pending or running): the gateway's rate limits.
std::string simpleLimit(const std::string &colo);
std::string fullLimit(const std::string &colo);
// /ringcap/captures/<id>/spec: the capture as the gateway created it.
std::string spec(const std::string &id);
// /ringcap/captures/<id>/parts/<host>: one host's part (claim, status, counters).
std::string part(const std::string &id, const std::string &host);
std::string partsOf(const std::string &id);
// /ringcap/captures/<id>/status: the fleet status the gateway derives from the parts.
std::string status(const std::string &id);

// /ringcap/ownerships/<id>: a bucket ownership challenge of the fleet, written by the gateway
// only: {"id", "destination_conf", "canonical", "filename", "status":
// "pending"|"success"|"failed", "submitted", "validated"?, "token_sha256"}; "canonical" is
// DestinationUri::canonical() of destination_conf, and a destination has one record (a new
// challenge deletes the older ones). An agent gives a host's ringcapd a full capture into a
// bucket only when a record here with that destination_conf has status "success".
std::string ownership(const std::string &id);
std::string ownerships();

// Where a host's simple-capture file is staged for the gateway's merged download:
// "<staging>/<id>/<host>.pcap", `staging` being [fleet] staging_destination (an s3:// URI,
// without a trailing '/'; any "?query" kept after the path).
std::string stagedObject(const std::string &staging, const std::string &id,
                         const std::string &host);

// The request a host's ringcapd gets for its part of the capture `spec`: its "request", with
// the fleet's id. The destination_conf is the fleet's, unchanged: ringcapd names the object
// <dir>/<host>/pcap_<id>.pcap itself, <host> being [fleet] host_name (the same file's key the
// agent registers with). An error string when the spec is malformed.
struct LocalRequest {
  nlohmann::json request;
  std::string error;
};
LocalRequest localRequest(const nlohmann::json &spec, const std::string &host);

// The form of every time the fleet's values hold: "%Y-%m-%dT%H:%M:%SZ" (RFC 3339, UTC,
// seconds), of a time in seconds since the epoch, or of now.
std::string utcTime(int64_t unixSeconds);
std::string utcNow();

// Whether the spec lists `host` among its target hosts (the hosts registered at the
// capture's site when it was created).
bool targets(const nlohmann::json &spec, const std::string &host);

// A destination_conf with "/<segment>" added to its path (before any "?query").
std::string destinationForHost(const std::string &destination, const std::string &host);

// The counters a part carries, from ringcapd's record (docs/dbus-api.md).
inline constexpr const char *kCounters[] = {
    "packets_seen",       "packets_matched",     "packets_sampled_out",
    "packets_captured",   "bytes_captured",      "packets_lost_ring_full",
    "packets_over_limit", "packets_copy_failed", "packets_lost"};

// A part's value from ringcapd's record of it: host, status, counters, and what the
// record knows of started, finished, stop_reason, error_message, file_name, file_size,
// location.
nlohmann::json partFromRecord(const std::string &host, const nlohmann::json &record);

// Creates a capture the way the gateway does (docs/fleet.md, "Creating a capture"): the
// target hosts are those registered at `colos` now; one transaction puts the spec (with
// "hosts") and the index key of every site, only if the spec does not exist yet. `spec`
// holds "id", "colo_name" (what the user asked for) and "request". The revision it made;
// InvalidRequest when the id exists already.
Result<int64_t> createCapture(EtcdClient &etcd, nlohmann::json spec,
                              const std::vector<std::string> &colos);

} // namespace ringcap::fleet::keys
