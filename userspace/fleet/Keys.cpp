#include "fleet/Keys.h"

#include <ctime>

namespace ringcap::fleet::keys {
using namespace service_error;

bool isName(const std::string &s) {
  if (s.empty() || s.size() > 64 || s[0] == '.')
    return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return false;
  return true;
}

bool isCaptureId(const std::string &s) {
  if (s.size() != 32)
    return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}

std::string host(const std::string &colo, const std::string &h) { return hostsOf(colo) + h; }
std::string hostsOf(const std::string &colo) { return std::string(kRoot) + "hosts/" + colo + "/"; }
std::string coloCaptures(const std::string &colo) {
  return std::string(kRoot) + "colos/" + colo + "/captures/";
}
std::string coloCapture(const std::string &colo, const std::string &id) {
  return coloCaptures(colo) + id;
}
std::optional<std::string> idOfColoCapture(const std::string &colo, const std::string &key) {
  const std::string prefix = coloCaptures(colo);
  if (key.size() <= prefix.size() || key.compare(0, prefix.size(), prefix) != 0)
    return std::nullopt;
  std::string id = key.substr(prefix.size());
  if (!isCaptureId(id))
    return std::nullopt;
  return id;
}
std::string simpleLimit(const std::string &colo) {
  return std::string(kRoot) + "colos/" + colo + "/limits/simple";
}
std::string fullLimit(const std::string &colo) {
  return std::string(kRoot) + "colos/" + colo + "/limits/full";
}
std::string spec(const std::string &id) { return std::string(kRoot) + "captures/" + id + "/spec"; }
std::string partsOf(const std::string &id) {
  return std::string(kRoot) + "captures/" + id + "/parts/";
}
std::string part(const std::string &id, const std::string &h) { return partsOf(id) + h; }
std::string status(const std::string &id) {
  return std::string(kRoot) + "captures/" + id + "/status";
}

std::string utcTime(int64_t unixSeconds) {
  char buf[32];
  const time_t t = static_cast<time_t>(unixSeconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}
std::string utcNow() { return utcTime(static_cast<int64_t>(time(nullptr))); }

std::string ownerships() { return std::string(kRoot) + "ownerships/"; }
std::string ownership(const std::string &id) { return ownerships() + id; }

std::string stagedObject(const std::string &staging, const std::string &id, const std::string &h) {
  return destinationForHost(destinationForHost(staging, id), h + ".pcap");
}

std::string destinationForHost(const std::string &destination, const std::string &h) {
  const size_t q = destination.find('?');
  std::string path = destination.substr(0, q);
  const std::string query = q == std::string::npos ? "" : destination.substr(q);
  while (path.size() > 1 && path.back() == '/' && path[path.size() - 2] != '/')
    path.pop_back();
  if (path.empty() || path.back() != '/')
    path += '/';
  return path + h + query;
}

bool targets(const nlohmann::json &spec, const std::string &h) {
  auto it = spec.find("hosts");
  if (it == spec.end() || !it->is_array())
    return false;
  for (const auto &e : *it)
    if (e.is_string() && e.get<std::string>() == h)
      return true;
  return false;
}

LocalRequest localRequest(const nlohmann::json &spec, const std::string &h) {
  LocalRequest out;
  if (!spec.is_object()) {
    out.error = "spec: must be a JSON object";
    return out;
  }
  auto id = spec.find("id");
  if (id == spec.end() || !id->is_string() || !isCaptureId(id->get<std::string>())) {
    out.error = "spec.id: must be 32 lowercase hexadecimal digits";
    return out;
  }
  auto request = spec.find("request");
  if (request == spec.end() || !request->is_object()) {
    out.error = "spec.request: must be a JSON object (the CreateCapture request)";
    return out;
  }
  out.request = *request;
  out.request["id"] = *id;
  return out;
}

nlohmann::json partFromRecord(const std::string &h, const nlohmann::json &record) {
  nlohmann::json part = {{"host", h}, {"status", record.value("status", "unknown")}};
  for (const char *c : kCounters)
    part[c] = record.value(c, uint64_t(0));
  for (const char *k : {"started", "finished", "stop_reason", "error_message", "file_name",
                        "file_size", "location", "checksum"})
    if (record.contains(k))
      part[k] = record[k];
  return part;
}

Result<int64_t> createCapture(EtcdClient &etcd, nlohmann::json spec,
                              const std::vector<std::string> &colos) {
  const std::string id = spec.value("id", "");
  if (!isCaptureId(id))
    return Error{kInvalidRequest, "id: must be 32 lowercase hexadecimal digits"};
  nlohmann::json hosts = nlohmann::json::array();
  for (const auto &colo : colos) {
    if (!isName(colo))
      return Error{kInvalidRequest, "colo_name: not a site name (got \"" + colo + "\")"};
    auto registered = etcd.getPrefix(hostsOf(colo));
    if (!registered)
      return registered.error();
    for (const auto &kv : registered->kvs)
      hosts.push_back(kv.key.substr(hostsOf(colo).size()));
  }
  spec["hosts"] = hosts;
  spec["colos"] = colos;
  if (!spec.contains("created"))
    spec["created"] = utcNow();
  std::vector<TxnOp> ops{TxnOp::put(keys::spec(id), spec.dump())};
  for (const auto &colo : colos)
    ops.push_back(TxnOp::put(coloCapture(colo, id), nlohmann::json{{"id", id}}.dump()));
  auto txn = etcd.txn({Compare::absent(keys::spec(id))}, ops);
  if (!txn)
    return txn.error();
  if (!txn->succeeded)
    return Error{kInvalidRequest, "id: a fleet capture with id " + id + " exists already"};
  return txn->revision;
}

} // namespace ringcap::fleet::keys
