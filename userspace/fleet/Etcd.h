// An etcd v3 client over etcd's JSON gateway (HTTP POST /v3/..., keys and values base64 in
// the bodies), for fleet mode's agent and gateway (docs/fleet.md). Several endpoints: a
// request that cannot connect to one is sent to the next.
#pragma once

#include "util/Result.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ringcap::fleet {

struct EtcdOptions {
  // http://host:port of the cluster's members (client URLs), tried in this order.
  std::vector<std::string> endpoints;
  std::chrono::milliseconds connectTimeout{1000};
  // A unary request's whole time (connect included); a watch has no such bound.
  std::chrono::milliseconds requestTimeout{5000};
  // https:// endpoints: the CA bundle that signs the members' certificates (empty: the
  // system's), and this client's certificate and key for etcd's client-certificate
  // authentication (both or neither; PEM files).
  std::string caFile{}, certFile{}, keyFile{};
  // Start at a randomly chosen endpoint instead of the first (then fail over in order, as
  // always): the agents of a site share one list, and would otherwise all talk to its first
  // member.
  bool spreadOverEndpoints = false;
};

struct KeyValue {
  std::string key, value;
  int64_t createRevision = 0, modRevision = 0, version = 0, lease = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t count = 0;    // keys in the range (kvs may hold fewer when limited)
  bool more = false;    // a limit left keys out
  int64_t revision = 0; // the store's revision the answer is from
};

// One comparison of a transaction: key's target <op> the number (or the value).
struct Compare {
  enum class Target { Version, CreateRevision, ModRevision, Value, Lease };
  enum class Op { Equal, Greater, Less, NotEqual };
  std::string key;
  Target target = Target::CreateRevision;
  Op op = Op::Equal;
  int64_t number = 0;
  std::string value; // for Target::Value

  // The key does not exist: create_revision == 0.
  static Compare absent(std::string key) {
    return Compare{std::move(key), Target::CreateRevision, Op::Equal, 0, {}};
  }
};

// One operation of a transaction.
struct TxnOp {
  enum class Kind { Put, Range, DeleteRange };
  Kind kind = Kind::Put;
  std::string key, value;
  std::string rangeEnd; // Range/DeleteRange: empty for the key alone
  int64_t lease = 0;    // Put

  static TxnOp put(std::string key, std::string value, int64_t lease = 0) {
    return TxnOp{Kind::Put, std::move(key), std::move(value), {}, lease};
  }
  static TxnOp get(std::string key) { return TxnOp{Kind::Range, std::move(key), {}, {}, 0}; }
  static TxnOp remove(std::string key) {
    return TxnOp{Kind::DeleteRange, std::move(key), {}, {}, 0};
  }
};

struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;
  // The results of the Range operations of the branch that ran, in order.
  std::vector<RangeResult> ranges;
};

struct Lease {
  int64_t id = 0;
  int64_t ttl = 0; // seconds, as the cluster granted it
};

struct WatchEvent {
  enum class Type { Put, Delete };
  Type type = Type::Put;
  KeyValue kv; // for Delete: the key and mod_revision (the revision of the deletion)
};

// The end of the range of every key that starts with `prefix` ("\0" for an empty prefix: all).
std::string prefixRangeEnd(const std::string &prefix);
std::string base64Encode(const std::string &bytes);
Result<std::string> base64Decode(const std::string &text);

class EtcdClient {
public:
  // Checks the endpoints (at least one, each http://host:port or https://host:port);
  // connects only when a request is made.
  static Result<std::unique_ptr<EtcdClient>> create(EtcdOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient &) = delete;
  EtcdClient &operator=(const EtcdClient &) = delete;

  // One key; kvs empty when it does not exist.
  Result<RangeResult> get(const std::string &key);
  // Every key that starts with `prefix`, in key order; limit 0: all.
  Result<RangeResult> getPrefix(const std::string &prefix, int64_t limit = 0);
  // [key, rangeEnd) at `revision` (0: the newest).
  Result<RangeResult> range(const std::string &key, const std::string &rangeEnd, int64_t limit = 0,
                            int64_t revision = 0);
  // The revision the put made.
  Result<int64_t> put(const std::string &key, const std::string &value, int64_t lease = 0);
  // How many keys were deleted (rangeEnd empty: the key alone).
  Result<int64_t> remove(const std::string &key, const std::string &rangeEnd = {});
  // If every compare holds, the success operations run, else the failure ones; atomically.
  Result<TxnResult> txn(const std::vector<Compare> &compares, const std::vector<TxnOp> &success,
                        const std::vector<TxnOp> &failure = {});

  // Discards the history before `revision` (watches and ranges at older revisions then fail).
  Result<void> compact(int64_t revision);

  Result<Lease> grantLease(int64_t ttlSeconds);
  // Renews the lease once; the TTL it has again. A lease that expired or was revoked is
  // NotFound.
  Result<int64_t> keepAlive(int64_t leaseId);
  Result<void> revokeLease(int64_t leaseId);

  // Called with each batch of events (one revision's or more, in revision order); return
  // false to end the watch.
  using WatchCallback = std::function<bool(const std::vector<WatchEvent> &)>;
  // Watches [key, rangeEnd) (rangeEnd empty: the key alone) from `startRevision` (at least 1:
  // typically a range's revision + 1, so that no write between the two is missed). Blocks until the
  // callback returns false, `stop` becomes true (checked at least once a second) or an error. A
  // broken stream is resumed on the next endpoint from the revision after the last event delivered,
  // so no event is lost or delivered twice. Returns the revision to resume from in a later watch:
  // the last delivered event's revision + 1 (or startRevision when none was delivered). A revision
  // that was compacted is an error that names the oldest revision still available.
  Result<int64_t> watch(const std::string &key, const std::string &rangeEnd, int64_t startRevision,
                        const WatchCallback &callback, const std::atomic<bool> *stop = nullptr);

  // The endpoint the last request went to.
  std::string currentEndpoint() const;
  const EtcdOptions &options() const { return options_; }

private:
  explicit EtcdClient(EtcdOptions options) : options_(std::move(options)) {}
  // POSTs `body` to `path` (such as "/v3/kv/range"), failing over to the next endpoint while
  // the connection cannot be made; the answer's JSON, or an error with etcd's message.
  Result<nlohmann::json> call(const std::string &path, const nlohmann::json &body);

  EtcdOptions options_;
  mutable std::mutex mutex_;
  size_t current_ = 0;   // the endpoint in use
  void *curl_ = nullptr; // CURL *, reused for unary requests (under mutex_)
};

} // namespace ringcap::fleet
