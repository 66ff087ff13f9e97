#include "FleetBackend.h"

#include "destination/AwsCredentials.h"
#include "destination/DestinationUri.h"
#include "destination/S3Client.h"
#include "fleet/Keys.h"
#include "merge/CaptureMerger.h"
#include "merge/InputSource.h"
#include "merge/MergeOutput.h"
#include "request/CaptureRequest.h"

#include <algorithm>
#include <ctime>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <optional>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ringcap::gateway {
namespace {

using json = nlohmann::json;
namespace keys = fleet::keys;

using keys::utcNow;

std::string sha256Hex(const std::string &text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; i++) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

bool settled(const json &status) {
  return status.is_object() && status.value("ended", false) &&
         (!status.contains("lost_running") || status["lost_running"].empty());
}

Result<json> parseValue(const fleet::KeyValue &kv) {
  try {
    return json::parse(kv.value);
  } catch (const json::exception &e) {
    return Error{EINVAL, kv.key + ": not JSON (" + std::string(e.what()) + ")"};
  }
}

// An ownership record as the API shows it (no canonical form, no token hash).
json publicOwnership(json r) {
  r.erase("canonical");
  r.erase("token_sha256");
  return r;
}

Error noCapture(const std::string &id) {
  return Error{ErrorKind::NotFound, "no capture with id " + id};
}

// The newest ownership record (by create revision) of a destination in etcd, matched by its
// canonical form: the key (with its mod revision) and the value; nullopt when there is none.
struct OwnershipEntry {
  fleet::KeyValue kv;
  json value;
};
Result<std::optional<OwnershipEntry>> newestOwnership(fleet::EtcdClient &etcd,
                                                      const std::string &destination) {
  auto uri = parseDestinationUri(destination);
  if (!uri)
    return Error{ErrorKind::InvalidRequest, uri.error().message};
  auto range = etcd.getPrefix(keys::ownerships());
  if (!range)
    return range.error();
  std::optional<OwnershipEntry> newest;
  for (const auto &kv : range->kvs) {
    auto v = parseValue(kv);
    if (!v || !v->is_object() || v->value("canonical", "") != uri->canonical())
      continue;
    if (!newest || kv.createRevision > newest->kv.createRevision)
      newest = OwnershipEntry{kv, std::move(*v)};
  }
  return newest;
}

} // namespace

json fleetRestRecord(const json &spec, const json &status, bool downloadable) {
  json r =
      spec.contains("request") && spec["request"].is_object() ? spec["request"] : json::object();
  const std::string id = spec.value("id", "");
  r["id"] = id;
  r["colo_name"] = spec.value("colo_name", "");
  r["status"] = status.value("status", "pending");
  r["submitted"] = spec.value("created", "");
  if (status.contains("error_message"))
    r["error_message"] = status["error_message"];
  const json totals = status.value("totals", json::object());
  for (const char *c : keys::kCounters)
    r[c] = totals.contains(c) && totals[c].is_number_unsigned() ? totals[c].get<uint64_t>() : 0;
  r["colos"] = status.value("colos", spec.value("colos", json::array()));
  json hosts = json::array();
  std::string started, finished;
  for (const auto &h : status.value("hosts", json::array())) {
    if (!h.is_object())
      continue;
    json e = {{"host", h.value("host", "")},
              {"colo", h.value("colo", "")},
              {"status", h.value("status", "pending")}};
    for (const char *c : keys::kCounters)
      e[c] = h.contains(c) && h[c].is_number_unsigned() ? h[c].get<uint64_t>() : 0;
    for (const char *f :
         {"error_message", "started", "finished", "stop_reason", "file_name", "file_size",
          "location", "checksum", "staged_object", "staged_bytes", "reported_status"})
      if (h.contains(f) && !h[f].is_null())
        e[f] = h[f];
    if (h.contains("started") && h["started"].is_string()) {
      const std::string s = h["started"];
      if (started.empty() || s < started)
        started = s;
    }
    if (h.contains("finished") && h["finished"].is_string()) {
      const std::string s = h["finished"];
      if (s > finished)
        finished = s;
    }
    hosts.push_back(std::move(e));
  }
  r["hosts"] = std::move(hosts);
  if (!started.empty())
    r["started"] = started;
  if (status.value("ended", false) && !finished.empty())
    r["finished"] = finished;
  if (downloadable)
    r["file_name"] = "pcap_" + id + ".pcapng";
  return r;
}

Result<std::unique_ptr<FleetBackend>> FleetBackend::create(const fleet::EtcdOptions &etcd,
                                                           FleetSettings settings) {
  auto a = fleet::EtcdClient::create(etcd);
  if (!a)
    return a.error();
  auto b = fleet::EtcdClient::create(etcd);
  if (!b)
    return b.error();
  return std::unique_ptr<FleetBackend>(
      new FleetBackend(std::move(*a), std::move(*b), std::move(settings)));
}

FleetBackend::FleetBackend(std::unique_ptr<fleet::EtcdClient> etcd,
                           std::unique_ptr<fleet::EtcdClient> follow, FleetSettings settings)
    : etcd_(std::move(etcd)), followEtcd_(std::move(follow)), settings_(std::move(settings)),
      coordinator_(*etcd_, settings_.coordinator), follower_(*followEtcd_, settings_.coordinator) {
  follow_ = std::thread([this] { followLoop(); });
}

FleetBackend::~FleetBackend() {
  stop_ = true;
  if (follow_.joinable())
    follow_.join();
}

// Coordinator::follow for the backend's life: it returns on an error (etcd unreachable); the
// loop logs it and starts again a second later, from etcd alone.
void FleetBackend::followLoop() {
  while (!stop_) {
    auto r = follower_.follow(stop_, settings_.followTick);
    if (stop_)
      break;
    if (!r)
      spdlog::warn("fleet: following the captures in etcd: {}; again in 1 s", r.error().message);
    for (int i = 0; i < 10 && !stop_; i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Result<json> FleetBackend::createCapture(const json &body) {
  // A simple capture's colo_name names its location in fleet mode (ringcapd takes colo_name
  // for full captures only): it is taken out before the request is validated as ringcapd
  // validates it, and the hosts' ringcapd never see it.
  json checked = body;
  std::optional<std::string> simpleColo;
  if (checked.is_object() && checked.value("type", json()) == "simple" &&
      checked.contains("colo_name")) {
    if (!checked["colo_name"].is_string() || !keys::isName(checked["colo_name"]))
      return Error{ErrorKind::InvalidRequest,
                   "colo_name: must be a site or group name: 1 to 64 letters, digits, '.', '_' "
                   "or '-', not starting with '.' (got " +
                       checked["colo_name"].dump() + ")"};
    simpleColo = checked["colo_name"].get<std::string>();
    checked.erase("colo_name");
  }
  auto request = validateCaptureRequest(checked, RequestMode::Api);
  if (!request)
    return Error{ErrorKind::InvalidRequest, request.error().message};
  if (request->id)
    return Error{ErrorKind::InvalidRequest,
                 "id: unknown field (the service chooses a capture's id)"};
  const std::string colo =
      simpleColo ? *simpleColo : request->colo_name.value_or(settings_.coloName);
  if (colo.empty())
    return Error{ErrorKind::InvalidRequest,
                 "colo_name: required (the location to capture at: a site or a group; this "
                 "gateway has no gateway.fleet_colo_name)"};
  if (request->destination_conf) {
    auto valid = ownershipValidated(*request->destination_conf);
    if (!valid)
      return valid.error();
    if (!*valid)
      return Error{ErrorKind::OwnershipRequired,
                   "destination_conf: " + *request->destination_conf +
                       " has not passed the ownership challenge of the fleet (POST "
                       "/pcaps/ownership, then /pcaps/ownership/validate with the token from "
                       "the challenge file)"};
  }
  auto first = coordinator_.create(*request, colo);
  if (!first)
    return first.error();
  const std::string id = first->value("id", "");
  auto spec = etcd_->get(keys::spec(id));
  if (!spec)
    return spec.error();
  if (spec->kvs.empty())
    return noCapture(id);
  auto s = parseValue(spec->kvs[0]);
  if (!s)
    return s.error();
  spdlog::info("fleet: capture {} created at {} ({})", id, colo, first->value("type", ""));
  return restRecord(*s, *first);
}

json FleetBackend::restRecord(const json &spec, const json &status) const {
  return fleetRestRecord(spec, status, static_cast<bool>(stagedObjects(status)));
}

Result<json> FleetBackend::getCapture(const std::string &id) {
  if (!keys::isCaptureId(id))
    return noCapture(id);
  auto range = etcd_->get(keys::spec(id));
  if (!range)
    return range.error();
  auto statusKv = etcd_->get(keys::status(id));
  if (!statusKv)
    return statusKv.error();
  if (range->kvs.empty())
    return noCapture(id);
  auto spec = parseValue(range->kvs[0]);
  if (!spec)
    return spec.error();
  json status;
  if (!statusKv->kvs.empty())
    if (auto s = parseValue(statusKv->kvs[0]))
      status = *s;
  // The stored status is current once settled (nothing changes it any more); else it is
  // derived again now (the follow thread may be a tick behind).
  if (!settled(status)) {
    auto fresh = coordinator_.refresh(id);
    if (!fresh)
      return fresh.error();
    status = *fresh;
  }
  return restRecord(*spec, status);
}

Result<json> FleetBackend::listCaptures() {
  auto range = etcd_->getPrefix(std::string(keys::kRoot) + "captures/");
  if (!range)
    return range.error();
  std::map<std::string, std::pair<json, json>> byId; // id -> spec, status
  const size_t idAt = std::string(keys::kRoot).size() + std::string("captures/").size();
  for (const auto &kv : range->kvs) {
    // Exactly captures/<id>/spec and captures/<id>/status (a part of a host named "status"
    // is captures/<id>/parts/status).
    if (kv.key.size() < idAt + 32)
      continue;
    const std::string id = kv.key.substr(idAt, 32);
    if (!keys::isCaptureId(id))
      continue;
    const bool isSpec = kv.key == keys::spec(id), isStatus = kv.key == keys::status(id);
    if (!isSpec && !isStatus)
      continue;
    auto v = parseValue(kv);
    if (!v || !v->is_object())
      continue;
    (isSpec ? byId[id].first : byId[id].second) = std::move(*v);
  }
  std::vector<std::pair<json, json>> captures;
  for (auto &[id, p] : byId)
    if (p.first.is_object())
      captures.push_back(std::move(p));
  std::sort(captures.begin(), captures.end(), [](const auto &a, const auto &b) {
    const std::string ca = a.first.value("created", ""), cb = b.first.value("created", "");
    return ca != cb ? ca > cb : a.first.value("id", "") > b.first.value("id", "");
  });
  if (captures.size() > 50)
    captures.resize(50);
  json out = json::array();
  for (const auto &[spec, status] : captures)
    out.push_back(restRecord(spec, status.is_object() ? status : json::object()));
  return out;
}

Result<void> FleetBackend::stopCapture(const std::string &id) {
  if (!keys::isCaptureId(id))
    return noCapture(id);
  return coordinator_.stop(id);
}

Result<std::vector<std::string>> FleetBackend::stagedObjects(const json &status) const {
  const std::string id = status.value("id", "");
  if (status.value("type", "") != "simple")
    return Error{ErrorKind::NotReady,
                 "a full capture's files are delivered by each host into its bucket "
                 "(<dir>/<host>/pcap_" +
                     id + ".pcap); ringcap-merge joins them"};
  if (settings_.staging.empty())
    return Error{ErrorKind::NotReady, "this gateway has no fleet.staging_destination: the "
                                      "hosts' files of a simple capture cannot be merged"};
  const std::string st = status.value("status", "");
  // A capture turns failed as soon as one host fails, while the others may still run: the
  // merge waits until it has ended and no lost host may still be capturing (settled).
  if ((st != "success" && st != "failed") || !settled(status))
    return Error{ErrorKind::NotReady,
                 "capture " + id + " is " + st +
                     (st == "failed" ? " but other hosts have not ended yet" : "") +
                     ": its merged file can be downloaded once it is success (or failed with "
                     "some hosts' files staged, once every host has ended)"};
  std::vector<std::string> objects;
  for (const auto &h : status.value("hosts", json::array())) {
    const std::string host = h.value("host", "");
    const bool staged = h.contains("staged_object") && h["staged_object"].is_string();
    if (!staged) {
      if (st == "success")
        return Error{ErrorKind::NotReady, "host " + host + " has not staged its file yet"};
      continue;
    }
    const std::string expected = keys::stagedObject(settings_.staging, id, host);
    if (h["staged_object"].get<std::string>() != expected)
      return Error{ErrorKind::Failed, "host " + host + " staged its file at " +
                                          h["staged_object"].get<std::string>() + ", not at " +
                                          expected +
                                          " (fleet.staging_destination differs between the "
                                          "gateway and the agent)"};
    objects.push_back(expected);
  }
  if (objects.empty())
    return Error{ErrorKind::NotReady,
                 "capture " + id + " failed and no host staged a file: " +
                     status.value("error_message", std::string("no error message"))};
  return objects;
}

Result<UniqueFd> FleetBackend::openCaptureFile(const std::string &id) {
  if (!keys::isCaptureId(id))
    return noCapture(id);
  json status;
  {
    auto s = coordinator_.refresh(id);
    if (!s)
      return s.error().kind == ErrorKind::NotFound ? Result<UniqueFd>(noCapture(id))
                                                   : Result<UniqueFd>(s.error());
    status = *s;
  }
  auto objects = stagedObjects(status);
  if (!objects)
    return objects.error();
  // Each object is looked at before the reply starts, so that a missing one is an error
  // status, not a stream cut short.
  const std::string endpoint = settings_.destinations.s3Endpoint.value_or("");
  InputSettings in{settings_.destinations.credentialsFile};
  std::vector<std::unique_ptr<InputSource>> sources;
  for (const auto &uri : *objects) {
    auto parsed = parseDestinationUri(uri);
    if (!parsed)
      return Error{EINVAL, uri + ": " + parsed.error().message};
    auto creds = loadAwsCredentials(settings_.destinations.credentialsFile);
    if (!creds)
      return creds.error();
    S3Client client(S3Location{parsed->bucket, parsed->region,
                               parsed->endpoint.empty() ? endpoint : parsed->endpoint},
                    std::move(*creds));
    if (auto head = client.headObject(parsed->prefix); !head)
      return Error{head.error().code, "the staged file " + uri + ": " + head.error().message};
    auto source = s3ObjectInput(uri, in, endpoint);
    if (!source)
      return source.error();
    sources.push_back(std::move(*source));
  }
  // A socket pair rather than a pipe, so that a merge that fails midway can tell the reader:
  // the reader's end sent one byte at the start; the merge thread reads it back before it
  // closes its end after a complete merge (the reader then sees the end of the stream), and
  // leaves it unread after a failure (the reader then gets ECONNRESET, and the server cuts
  // the reply short instead of ending it as if complete).
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return Error::fromErrno(errno, "socketpair for the merged download");
  UniqueFd reader(sv[0]), writer(sv[1]);
  if (::write(reader.get(), "x", 1) != 1)
    return Error::fromErrno(errno, "socketpair for the merged download");
  ::shutdown(reader.get(), SHUT_WR);
  std::thread([sources = std::move(sources), writer = std::move(writer), id]() mutable {
    const size_t inputs = sources.size();
    MergeOutput out("the download of capture " + id, writer.get());
    CaptureMerger merger(std::move(sources), MergeOptions{});
    auto report = merger.run(out);
    auto closed = out.close();
    if (report && closed) {
      char byte;
      if (::read(writer.get(), &byte, 1) != 1)
        spdlog::warn("fleet: capture {}: the merged download's marker was not there", id);
      spdlog::info("fleet: capture {}: merged download of {} host file(s), {} packets", id, inputs,
                   report->packets);
    } else {
      spdlog::warn("fleet: capture {}: the merged download failed: {}", id,
                   report ? closed.error().message : report.error().message);
    }
  }).detach();
  return reader;
}

Result<bool> FleetBackend::ownershipValidated(const std::string &destination) {
  auto newest = newestOwnership(*etcd_, destination);
  if (!newest)
    return newest.error();
  return *newest && (*newest)->value.value("status", "") == "success";
}

Result<json> FleetBackend::createOwnership(const std::string &destination) {
  auto uri = parseDestinationUri(destination);
  if (!uri)
    return Error{ErrorKind::InvalidRequest, uri.error().message};
  if (auto c = checkDestinationAllowed(*uri, settings_.destinations); !c)
    return Error{ErrorKind::InvalidRequest, c.error().message};
  const std::string id = fleet::newFleetCaptureId();
  const std::string filename =
      "ownership-challenge-" + fleet::newFleetCaptureId().substr(0, 16) + ".txt";
  const std::string token = fleet::newFleetCaptureId() + fleet::newFleetCaptureId();
  {
    auto dest = openDestination(*uri, settings_.destinations);
    auto put = dest ? (*dest)->putObject(filename, token + "\n") : Result<void>(dest.error());
    if (!put)
      return Error{EIO, "writing the ownership challenge: " + put.error().message};
  }
  json record = {{"id", id},
                 {"destination_conf", destination},
                 {"canonical", uri->canonical()},
                 {"filename", filename},
                 {"status", "pending"},
                 {"submitted", utcNow()},
                 {"token_sha256", sha256Hex(token)}};
  // The destination's earlier records go in the same transaction: the newest record counts,
  // and a new challenge revokes an earlier success.
  auto range = etcd_->getPrefix(keys::ownerships());
  if (!range)
    return range.error();
  std::vector<fleet::TxnOp> ops{fleet::TxnOp::put(keys::ownership(id), record.dump())};
  for (const auto &kv : range->kvs)
    if (auto v = parseValue(kv);
        v && v->is_object() && v->value("canonical", "") == uri->canonical())
      ops.push_back(fleet::TxnOp::remove(kv.key));
  auto txn = etcd_->txn({fleet::Compare::absent(keys::ownership(id))}, ops);
  if (!txn)
    return txn.error();
  if (!txn->succeeded)
    return Error{ErrorKind::Failed, "ownership id " + id + " exists already in etcd; try again"};
  spdlog::info("fleet: ownership {} for {}: challenge {} written", id, destination, filename);
  return publicOwnership(record);
}

Result<json> FleetBackend::validateOwnership(const std::string &destination,
                                             const std::string &challenge) {
  auto found = newestOwnership(*etcd_, destination);
  if (!found)
    return found.error();
  if (!*found)
    return Error{ErrorKind::NotFound,
                 "no ownership challenge for " + destination + " (create one first)"};
  const fleet::KeyValue *newest = &(*found)->kv;
  json record = (*found)->value;
  std::string given = challenge;
  while (!given.empty() && (given.back() == '\n' || given.back() == '\r' || given.back() == ' '))
    given.pop_back();
  const std::string want = record.value("token_sha256", ""), got = sha256Hex(given);
  const bool match =
      want.size() == got.size() && CRYPTO_memcmp(want.data(), got.data(), got.size()) == 0;
  record["status"] = match ? "success" : "failed";
  if (match)
    record["validated"] = utcNow();
  else
    record.erase("validated");
  auto txn = etcd_->txn({fleet::Compare{newest->key,
                                        fleet::Compare::Target::ModRevision,
                                        fleet::Compare::Op::Equal,
                                        newest->modRevision,
                                        {}}},
                        {fleet::TxnOp::put(newest->key, record.dump())});
  if (!txn)
    return txn.error();
  if (!txn->succeeded)
    return Error{ErrorKind::Failed,
                 "the ownership record of " + destination + " changed meanwhile; try again"};
  return publicOwnership(record);
}

Result<json> FleetBackend::listOwnerships() {
  auto range = etcd_->getPrefix(keys::ownerships());
  if (!range)
    return range.error();
  json out = json::array();
  for (const auto &kv : range->kvs)
    if (auto v = parseValue(kv); v && v->is_object())
      out.push_back(publicOwnership(*v));
  return out;
}

Result<void> FleetBackend::deleteOwnership(const std::string &id) {
  if (!keys::isCaptureId(id))
    return Error{ErrorKind::NotFound, "no ownership with id " + id};
  auto n = etcd_->remove(keys::ownership(id));
  if (!n)
    return n.error();
  if (*n == 0)
    return Error{ErrorKind::NotFound, "no ownership with id " + id};
  return {};
}

} // namespace ringcap::gateway
