#include "fleet/Etcd.h"

#include <curl/curl.h>
#include <mutex>
#include <openssl/evp.h>
#include <optional>
#include <random>

namespace ringcap::fleet {
namespace {

using nlohmann::json;
using namespace service_error;

std::once_flag curlInitOnce;

void initCurl() {
  std::call_once(curlInitOnce, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// The JSON gateway writes int64 fields as strings ("revision":"7"), omits zero ones.
int64_t number(const json &j, const char *key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return 0;
  if (it->is_number_integer())
    return it->get<int64_t>();
  if (it->is_string()) {
    try {
      return std::stoll(it->get<std::string>());
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

std::string bytes(const json &j, const char *key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string())
    return {};
  auto decoded = base64Decode(it->get<std::string>());
  return decoded ? *decoded : std::string();
}

KeyValue toKeyValue(const json &j) {
  KeyValue kv;
  kv.key = bytes(j, "key");
  kv.value = bytes(j, "value");
  kv.createRevision = number(j, "create_revision");
  kv.modRevision = number(j, "mod_revision");
  kv.version = number(j, "version");
  kv.lease = number(j, "lease");
  return kv;
}

RangeResult toRange(const json &j) {
  RangeResult r;
  if (auto it = j.find("kvs"); it != j.end() && it->is_array())
    for (const auto &kv : *it)
      r.kvs.push_back(toKeyValue(kv));
  r.count = number(j, "count");
  r.more = j.value("more", false);
  if (auto h = j.find("header"); h != j.end())
    r.revision = number(*h, "revision");
  return r;
}

int64_t headerRevision(const json &j) {
  auto h = j.find("header");
  return h == j.end() ? 0 : number(*h, "revision");
}

json rangeBody(const std::string &key, const std::string &rangeEnd, int64_t limit,
               int64_t revision) {
  json body = {{"key", base64Encode(key)}};
  if (!rangeEnd.empty())
    body["range_end"] = base64Encode(rangeEnd);
  if (limit > 0)
    body["limit"] = std::to_string(limit);
  if (revision > 0)
    body["revision"] = std::to_string(revision);
  return body;
}

json opBody(const TxnOp &op) {
  switch (op.kind) {
  case TxnOp::Kind::Put: {
    json put = {{"key", base64Encode(op.key)}, {"value", base64Encode(op.value)}};
    if (op.lease)
      put["lease"] = std::to_string(op.lease);
    return {{"request_put", put}};
  }
  case TxnOp::Kind::Range:
    return {{"request_range", rangeBody(op.key, op.rangeEnd, 0, 0)}};
  case TxnOp::Kind::DeleteRange: {
    json del = {{"key", base64Encode(op.key)}};
    if (!op.rangeEnd.empty())
      del["range_end"] = base64Encode(op.rangeEnd);
    return {{"request_delete_range", del}};
  }
  }
  return {};
}

json compareBody(const Compare &c) {
  static const char *const targets[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
  static const char *const fields[] = {"version", "create_revision", "mod_revision", "value",
                                       "lease"};
  static const char *const ops[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
  const auto t = static_cast<size_t>(c.target);
  json j = {{"key", base64Encode(c.key)},
            {"target", targets[t]},
            {"result", ops[static_cast<size_t>(c.op)]}};
  if (c.target == Compare::Target::Value)
    j[fields[t]] = base64Encode(c.value);
  else
    j[fields[t]] = std::to_string(c.number);
  return j;
}

size_t appendBody(char *data, size_t size, size_t n, void *userdata) {
  static_cast<std::string *>(userdata)->append(data, size * n);
  return size * n;
}

// Errors of the connection itself: the request never reached a member, so it may be sent to
// the next one without running twice.
bool connectFailed(CURL *curl, CURLcode code) {
  if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
      code == CURLE_COULDNT_RESOLVE_PROXY)
    return true;
  if (code == CURLE_OPERATION_TIMEDOUT) {
    curl_off_t connected = 0;
    curl_easy_getinfo(curl, CURLINFO_CONNECT_TIME_T, &connected);
    return connected == 0;
  }
  return false;
}

// etcd's error answer: {"error": "...", "message": "...", "code": <gRPC code>}.
Error etcdError(const std::string &where, long status, const std::string &body) {
  std::string message;
  int64_t code = 0;
  try {
    json j = json::parse(body);
    message = j.value("message", j.value("error", std::string()));
    code = number(j, "code");
  } catch (...) {
  }
  if (message.empty())
    message = "HTTP " + std::to_string(status) + ": " + body.substr(0, 200);
  // gRPC NOT_FOUND (5): a lease that does not exist.
  ErrorKind kind = code == 5 ? kNotFound : kFailed;
  return Error{kind, where + ": " + message + " (gRPC code " + std::to_string(code) + ")"};
}

void setCommon(CURL *curl, const EtcdOptions &o) {
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, long(o.connectTimeout.count()));
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  // A member that vanishes without closing the connection (a partition, a power loss) is
  // noticed by TCP keepalive, also under a quiet watch: after 10 s of silence, then every 5 s
  // for the kernel's tcp_keepalive_probes (9 by default: about 55 s in all).
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPIDLE, 10L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPINTVL, 5L);
  if (!o.caFile.empty())
    curl_easy_setopt(curl, CURLOPT_CAINFO, o.caFile.c_str());
  if (!o.certFile.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, o.certFile.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLKEY, o.keyFile.c_str());
  }
}

} // namespace

std::string prefixRangeEnd(const std::string &prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto &last = reinterpret_cast<unsigned char &>(end.back());
    if (last < 0xff) {
      last++;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

std::string base64Encode(const std::string &bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                          reinterpret_cast<const unsigned char *>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> base64Decode(const std::string &text) {
  if (text.size() % 4 != 0)
    return Error{EINVAL,
                 "base64: the length is not a multiple of 4 (" + std::to_string(text.size()) + ")"};
  std::string out(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                          reinterpret_cast<const unsigned char *>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0)
    return Error{EINVAL, "base64: not base64"};
  size_t pad = 0;
  if (!text.empty() && text.back() == '=')
    pad = text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

Result<std::unique_ptr<EtcdClient>> EtcdClient::create(EtcdOptions options) {
  if (options.endpoints.empty())
    return Error{kInvalidRequest, "etcd_endpoints: at least one endpoint is needed"};
  for (auto &e : options.endpoints) {
    const bool http = e.rfind("http://", 0) == 0, https = e.rfind("https://", 0) == 0;
    const std::string rest = e.substr(http ? 7 : https ? 8 : 0);
    if ((!http && !https) || rest.empty() || rest.find_first_of("/?#@ ") != std::string::npos)
      return Error{kInvalidRequest,
                   "etcd_endpoints: each must be http://host:port or https://host:port (got \"" +
                       e + "\")"};
  }
  if (options.certFile.empty() != options.keyFile.empty())
    return Error{kInvalidRequest, "etcd_cert_file, etcd_key_file: both or neither"};
  initCurl();
  const size_t n = options.endpoints.size();
  const bool spread = options.spreadOverEndpoints;
  std::unique_ptr<EtcdClient> client(new EtcdClient(std::move(options)));
  if (spread && n > 1)
    client->current_ = std::random_device{}() % n;
  return client;
}

EtcdClient::~EtcdClient() {
  if (curl_)
    curl_easy_cleanup(static_cast<CURL *>(curl_));
}

std::string EtcdClient::currentEndpoint() const {
  std::lock_guard lock(mutex_);
  return options_.endpoints[current_];
}

Result<json> EtcdClient::call(const std::string &path, const json &body) {
  std::lock_guard lock(mutex_);
  if (!curl_)
    curl_ = curl_easy_init();
  CURL *curl = static_cast<CURL *>(curl_);
  if (!curl)
    return Error{ENOMEM, "etcd: curl_easy_init failed"};
  const std::string payload = body.dump();
  std::string failures;
  const size_t n = options_.endpoints.size();
  for (size_t tried = 0; tried < n; tried++) {
    const std::string &endpoint = options_.endpoints[current_];
    const std::string url = endpoint + path;
    std::string answer;
    char detail[CURL_ERROR_SIZE] = "";
    curl_easy_reset(curl);
    setCommon(curl, options_);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, long(options_.requestTimeout.count()));
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, long(payload.size()));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, appendBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, detail);
    CURLcode code = curl_easy_perform(curl);
    if (code != CURLE_OK) {
      std::string what = url + ": " + (detail[0] ? detail : curl_easy_strerror(code));
      if (connectFailed(curl, code)) {
        failures += (failures.empty() ? "" : "; ") + what;
        current_ = (current_ + 1) % n;
        continue;
      }
      // The request may have reached the member: it is not sent again (a put or a txn could
      // run twice).
      return Error{EIO, "etcd " + what + " (not retried: the request may have been applied)"};
    }
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
      return etcdError("etcd " + url, status, answer);
    try {
      return json::parse(answer);
    } catch (const json::exception &e) {
      return Error{EPROTO, "etcd " + url + ": the answer is not JSON: " + e.what()};
    }
  }
  return Error{ECONNREFUSED, "etcd: no endpoint could be reached: " + failures};
}

Result<RangeResult> EtcdClient::range(const std::string &key, const std::string &rangeEnd,
                                      int64_t limit, int64_t revision) {
  auto r = call("/v3/kv/range", rangeBody(key, rangeEnd, limit, revision));
  if (!r)
    return r.error();
  return toRange(*r);
}

Result<RangeResult> EtcdClient::get(const std::string &key) { return range(key, {}); }

Result<RangeResult> EtcdClient::getPrefix(const std::string &prefix, int64_t limit) {
  return range(prefix, prefixRangeEnd(prefix), limit);
}

Result<int64_t> EtcdClient::put(const std::string &key, const std::string &value, int64_t lease) {
  json body = {{"key", base64Encode(key)}, {"value", base64Encode(value)}};
  if (lease)
    body["lease"] = std::to_string(lease);
  auto r = call("/v3/kv/put", body);
  if (!r)
    return r.error();
  return headerRevision(*r);
}

Result<int64_t> EtcdClient::remove(const std::string &key, const std::string &rangeEnd) {
  json body = {{"key", base64Encode(key)}};
  if (!rangeEnd.empty())
    body["range_end"] = base64Encode(rangeEnd);
  auto r = call("/v3/kv/deleterange", body);
  if (!r)
    return r.error();
  return number(*r, "deleted");
}

Result<TxnResult> EtcdClient::txn(const std::vector<Compare> &compares,
                                  const std::vector<TxnOp> &success,
                                  const std::vector<TxnOp> &failure) {
  json body = {{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto &c : compares)
    body["compare"].push_back(compareBody(c));
  for (const auto &op : success)
    body["success"].push_back(opBody(op));
  for (const auto &op : failure)
    body["failure"].push_back(opBody(op));
  auto r = call("/v3/kv/txn", body);
  if (!r)
    return r.error();
  TxnResult t;
  t.succeeded = r->value("succeeded", false);
  t.revision = headerRevision(*r);
  if (auto it = r->find("responses"); it != r->end() && it->is_array())
    for (const auto &resp : *it)
      if (auto range = resp.find("response_range"); range != resp.end())
        t.ranges.push_back(toRange(*range));
  return t;
}

Result<void> EtcdClient::compact(int64_t revision) {
  auto r = call("/v3/kv/compaction", {{"revision", std::to_string(revision)}, {"physical", true}});
  if (!r)
    return r.error();
  return {};
}

Result<Lease> EtcdClient::grantLease(int64_t ttlSeconds) {
  if (ttlSeconds < 1)
    return Error{kInvalidRequest,
                 "ttl: must be at least 1 second (got " + std::to_string(ttlSeconds) + ")"};
  auto r = call("/v3/lease/grant", {{"TTL", std::to_string(ttlSeconds)}});
  if (!r)
    return r.error();
  if (auto e = r->value("error", std::string()); !e.empty())
    return Error{EIO, "etcd: granting a lease: " + e};
  Lease lease{number(*r, "ID"), number(*r, "TTL")};
  if (lease.id == 0)
    return Error{EPROTO, "etcd: granting a lease: the answer has no lease ID: " + r->dump()};
  return lease;
}

Result<int64_t> EtcdClient::keepAlive(int64_t leaseId) {
  // A stream in gRPC; through the gateway one request gets one answer.
  auto r = call("/v3/lease/keepalive", {{"ID", std::to_string(leaseId)}});
  if (!r)
    return r.error();
  const json result = r->value("result", json::object());
  int64_t ttl = number(result, "TTL");
  if (ttl <= 0)
    return Error{kNotFound,
                 "etcd: lease " + std::to_string(leaseId) + " has expired or was revoked"};
  return ttl;
}

Result<void> EtcdClient::revokeLease(int64_t leaseId) {
  auto r = call("/v3/lease/revoke", {{"ID", std::to_string(leaseId)}});
  if (!r)
    return r.error();
  return {};
}

namespace {

// One watch stream's state, shared with curl's callbacks.
struct WatchStream {
  const EtcdClient::WatchCallback *callback = nullptr;
  const std::atomic<bool> *stop = nullptr;
  std::string buffer;
  int64_t next = 0;     // the revision to resume from
  bool created = false; // the stream was set up by the member
  bool ended = false;   // the callback asked to end
  std::optional<Error> error;

  // Handles one line of the stream; false to abort the transfer.
  bool onMessage(const std::string &line) {
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception &e) {
      error = Error{EPROTO, std::string("etcd watch: a message is not JSON: ") + e.what()};
      return false;
    }
    if (auto e = j.find("error"); e != j.end()) {
      error = Error{EIO,
                    "etcd watch: " + (e->is_object() ? e->value("message", e->dump()) : e->dump())};
      return false;
    }
    const json result = j.value("result", json::object());
    if (result.value("created", false))
      created = true;
    if (result.value("canceled", false)) {
      int64_t compacted = number(result, "compact_revision");
      error = compacted > 0 ? Error{ERANGE, "etcd watch: revision " + std::to_string(next) +
                                                " was compacted; the oldest available is " +
                                                std::to_string(compacted)}
                            : Error{EIO, "etcd watch: canceled by the cluster: " +
                                             result.value("cancel_reason", std::string("?"))};
      return false;
    }
    auto events = result.find("events");
    if (events == result.end() || !events->is_array() || events->empty())
      return true;
    std::vector<WatchEvent> batch;
    for (const auto &e : *events) {
      WatchEvent ev;
      ev.type = e.value("type", std::string("PUT")) == "DELETE" ? WatchEvent::Type::Delete
                                                                : WatchEvent::Type::Put;
      ev.kv = toKeyValue(e.value("kv", json::object()));
      batch.push_back(std::move(ev));
    }
    next = batch.back().kv.modRevision + 1;
    if (!(*callback)(batch)) {
      ended = true;
      return false;
    }
    return true;
  }

  static size_t onData(char *data, size_t size, size_t n, void *userdata) {
    auto *self = static_cast<WatchStream *>(userdata);
    self->buffer.append(data, size * n);
    size_t start = 0, eol;
    while ((eol = self->buffer.find('\n', start)) != std::string::npos) {
      std::string line = self->buffer.substr(start, eol - start);
      start = eol + 1;
      if (!line.empty() && !self->onMessage(line))
        return 0; // aborts the transfer
    }
    self->buffer.erase(0, start);
    return size * n;
  }

  static int onProgress(void *userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto *self = static_cast<WatchStream *>(userdata);
    return self->stop && self->stop->load() ? 1 : 0;
  }
};

} // namespace

Result<int64_t> EtcdClient::watch(const std::string &key, const std::string &rangeEnd,
                                  int64_t startRevision, const WatchCallback &callback,
                                  const std::atomic<bool> *stop) {
  if (startRevision < 1)
    return Error{kInvalidRequest, "startRevision: must be at least 1 (a range's revision + 1), "
                                  "got " +
                                      std::to_string(startRevision)};
  CURL *curl = curl_easy_init();
  if (!curl)
    return Error{ENOMEM, "etcd: curl_easy_init failed"};
  std::unique_ptr<CURL, void (*)(CURL *)> guard(curl, curl_easy_cleanup);
  WatchStream stream;
  stream.callback = &callback;
  stream.stop = stop;
  stream.next = startRevision;
  size_t endpoint;
  {
    std::lock_guard lock(mutex_);
    endpoint = current_;
  }
  const size_t n = options_.endpoints.size();
  // Endpoints tried in a row without a stream being set up; all of them: give up.
  size_t failedInARow = 0;
  std::string failures;
  while (true) {
    if (stop && stop->load())
      return stream.next;
    json create = {{"key", base64Encode(key)}};
    if (!rangeEnd.empty())
      create["range_end"] = base64Encode(rangeEnd);
    create["start_revision"] = std::to_string(stream.next);
    const std::string payload = json{{"create_request", create}}.dump();
    const std::string url = options_.endpoints[endpoint] + "/v3/watch";
    char detail[CURL_ERROR_SIZE] = "";
    stream.buffer.clear();
    stream.created = false;
    curl_easy_reset(curl);
    setCommon(curl, options_);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, long(payload.size()));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WatchStream::onData);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &stream);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, WatchStream::onProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &stream);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, detail);
    CURLcode code = curl_easy_perform(curl);
    if (stream.ended || (stop && stop->load()))
      return stream.next;
    if (stream.error)
      return *stream.error;
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (code == CURLE_OK && status != 0 && status != 200)
      return etcdError("etcd " + url, status, stream.buffer);
    // The stream could not be set up or broke: resume on the next endpoint.
    std::string what =
        url + ": " +
        (code != CURLE_OK ? (detail[0] ? detail : curl_easy_strerror(code)) : "the stream ended");
    if (stream.created) {
      failedInARow = 0;
      failures.clear();
    }
    failures += (failures.empty() ? "" : "; ") + what;
    if (++failedInARow >= n)
      return Error{ECONNREFUSED, "etcd watch: no endpoint could be reached: " + failures};
    endpoint = (endpoint + 1) % n;
  }
}

} // namespace ringcap::fleet
