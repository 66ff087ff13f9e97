// fleet::EtcdClient (userspace/fleet/Etcd.h) against a real 3-member etcd cluster on loopback
// (tests/lib/EtcdCluster.h): key-value, transactions, leases, watches and failover.
#include "../lib/EtcdCluster.h"
#include "../lib/EtcdClusterTest.h"
#include "../lib/Skip.h"
#include "fleet/Etcd.h"

#include <condition_variable>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <thread>

namespace ringcap::fleet {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testlib::EtcdCluster;

std::unique_ptr<EtcdClient> client(std::vector<std::string> endpoints) {
  return testlib::etcdClient(std::move(endpoints));
}

// Events a background watch delivered, and a way to wait for them with a deadline.
class WatchRecorder {
public:
  WatchRecorder(EtcdClient &c, std::string prefix, int64_t from) {
    thread_ = std::thread([this, &c, prefix, from] {
      auto r = c.watch(
          prefix, prefixRangeEnd(prefix), from,
          [this](const std::vector<WatchEvent> &batch) {
            std::lock_guard lock(mutex_);
            events_.insert(events_.end(), batch.begin(), batch.end());
            cv_.notify_all();
            return true;
          },
          &stop_);
      std::lock_guard lock(mutex_);
      result_ = r ? std::string() : r.error().message;
      done_ = true;
      cv_.notify_all();
    });
  }
  ~WatchRecorder() { finish(); }
  // Waits until `n` events arrived (or the watch ended); what arrived.
  std::vector<WatchEvent> waitFor(size_t n, std::chrono::milliseconds timeout = 20s) {
    std::unique_lock lock(mutex_);
    cv_.wait_until(lock, Clock::now() + timeout, [&] { return events_.size() >= n || done_; });
    return events_;
  }
  // Stops the watch; its error message (empty: it ended without one).
  std::string finish() {
    stop_ = true;
    if (thread_.joinable())
      thread_.join();
    return result_;
  }

private:
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<WatchEvent> events_;
  bool done_ = false;
  std::string result_;
  std::thread thread_;
};

class EtcdClientTest : public testlib::EtcdClusterTest<EtcdClientTest> {
protected:
  void SetUp() override {
    EtcdClusterTest::SetUp();
    if (IsSkipped() || HasFatalFailure())
      return;
    // Each test's keys under its own prefix.
    prefix_ =
        std::string("/test/") + testing::UnitTest::GetInstance()->current_test_info()->name() + "/";
  }

  std::string prefix_;
};

TEST(EtcdCodec, Base64AndPrefixEnd) {
  for (std::string s :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    auto back = base64Decode(base64Encode(s));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(base64Encode("abc"), "YWJj");
  EXPECT_FALSE(base64Decode("YWJ"));
  EXPECT_EQ(prefixRangeEnd("/a/"), "/a0");
  EXPECT_EQ(prefixRangeEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefixRangeEnd(""), std::string(1, '\0'));
}

TEST(EtcdCodec, EndpointsAreChecked) {
  EXPECT_FALSE(EtcdClient::create(EtcdOptions{}));
  for (std::string bad : {"127.0.0.1:2379", "ftp://h:1", "http://", "http://h:1/v3"}) {
    auto c = EtcdClient::create(EtcdOptions{{bad}});
    ASSERT_FALSE(c) << bad;
    EXPECT_NE(c.error().message.find("etcd_endpoints: each must be http://host:port"),
              std::string::npos)
        << c.error().message;
  }
}

// A site's agents share one endpoint list: with spreadOverEndpoints each client starts at a
// random member (without it, at the first). 96 clients miss one of 3 members with probability
// 3 * (2/3)^96, about 1e-16.
TEST(EtcdCodec, SpreadOverEndpointsStartsClientsAtEveryMember) {
  const std::vector<std::string> urls{"http://127.0.0.1:1", "http://127.0.0.1:2",
                                      "http://127.0.0.1:3"};
  std::map<std::string, int> first, spread;
  for (int i = 0; i < 96; ++i) {
    auto a = EtcdClient::create(EtcdOptions{urls});
    auto b = EtcdClient::create(EtcdOptions{.endpoints = urls, .spreadOverEndpoints = true});
    ASSERT_TRUE(a && b);
    first[(*a)->currentEndpoint()]++;
    spread[(*b)->currentEndpoint()]++;
  }
  EXPECT_EQ(first, (std::map<std::string, int>{{urls[0], 96}}));
  EXPECT_EQ(spread.size(), 3u);
}

TEST_F(EtcdClientTest, PutRangeAndPrefixRange) {
  auto r1 = etcd_->put(prefix_ + "b", "2");
  auto r0 = etcd_->put(prefix_ + "a", std::string("one\0\xff", 5));
  ASSERT_TRUE(r1 && r0);
  EXPECT_GT(*r0, *r1);
  ASSERT_TRUE(etcd_->put(prefix_ + "c/x", "3"));
  ASSERT_TRUE(etcd_->put(prefix_ + "d", "outside").ok());
  ASSERT_TRUE(etcd_->put(prefix_.substr(0, prefix_.size() - 1) + "0", "not in prefix").ok());

  auto one = etcd_->get(prefix_ + "a");
  ASSERT_TRUE(one) << one.error().message;
  ASSERT_EQ(one->kvs.size(), 1u);
  EXPECT_EQ(one->kvs[0].value, std::string("one\0\xff", 5));
  EXPECT_EQ(one->kvs[0].createRevision, *r0);
  EXPECT_EQ(one->kvs[0].version, 1);
  EXPECT_GE(one->revision, *r0);

  auto missing = etcd_->get(prefix_ + "nope");
  ASSERT_TRUE(missing) << missing.error().message;
  EXPECT_TRUE(missing->kvs.empty());
  EXPECT_EQ(missing->count, 0);

  auto all = etcd_->getPrefix(prefix_);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->kvs.size(), 4u);
  EXPECT_EQ(all->count, 4);
  EXPECT_EQ(all->kvs[0].key, prefix_ + "a");
  EXPECT_EQ(all->kvs[1].key, prefix_ + "b");
  EXPECT_EQ(all->kvs[2].key, prefix_ + "c/x");
  EXPECT_EQ(all->kvs[3].key, prefix_ + "d");

  auto limited = etcd_->getPrefix(prefix_, 2);
  ASSERT_TRUE(limited) << limited.error().message;
  EXPECT_EQ(limited->kvs.size(), 2u);
  EXPECT_TRUE(limited->more);
  EXPECT_EQ(limited->count, 4);

  // An older revision still shows the value before an overwrite.
  auto again = etcd_->put(prefix_ + "b", "22");
  ASSERT_TRUE(again);
  auto old = etcd_->range(prefix_ + "b", {}, 0, *r1);
  ASSERT_TRUE(old) << old.error().message;
  ASSERT_EQ(old->kvs.size(), 1u);
  EXPECT_EQ(old->kvs[0].value, "2");

  auto deleted = etcd_->remove(prefix_, prefixRangeEnd(prefix_));
  ASSERT_TRUE(deleted) << deleted.error().message;
  EXPECT_EQ(*deleted, 4);
  auto none = etcd_->getPrefix(prefix_);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->kvs.empty());
}

TEST_F(EtcdClientTest, TxnLetsOnlyTheFirstCreatorWin) {
  const std::string key = prefix_ + "owner";
  auto first =
      etcd_->txn({Compare::absent(key)}, {TxnOp::put(key, "gateway-1")}, {TxnOp::get(key)});
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_TRUE(first->succeeded);
  auto second =
      etcd_->txn({Compare::absent(key)}, {TxnOp::put(key, "gateway-2")}, {TxnOp::get(key)});
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_FALSE(second->succeeded);
  ASSERT_EQ(second->ranges.size(), 1u);
  ASSERT_EQ(second->ranges[0].kvs.size(), 1u);
  EXPECT_EQ(second->ranges[0].kvs[0].value, "gateway-1");
  auto now = etcd_->get(key);
  ASSERT_TRUE(now && now->kvs.size() == 1);
  EXPECT_EQ(now->kvs[0].value, "gateway-1");

  // Two creators at once, each through its own client and member: exactly one wins.
  const std::string race = prefix_ + "race";
  auto a = client({cluster_->clientUrl(0)}), b = client({cluster_->clientUrl(1)});
  ASSERT_TRUE(a && b);
  Result<TxnResult> ra = Error{}, rb = Error{};
  std::thread ta([&] { ra = a->txn({Compare::absent(race)}, {TxnOp::put(race, "a")}); });
  std::thread tb([&] { rb = b->txn({Compare::absent(race)}, {TxnOp::put(race, "b")}); });
  ta.join();
  tb.join();
  ASSERT_TRUE(ra) << ra.error().message;
  ASSERT_TRUE(rb) << rb.error().message;
  EXPECT_NE(ra->succeeded, rb->succeeded);
  auto winner = etcd_->get(race);
  ASSERT_TRUE(winner && winner->kvs.size() == 1);
  EXPECT_EQ(winner->kvs[0].value, ra->succeeded ? "a" : "b");
}

TEST_F(EtcdClientTest, LeaseThatExpiresTakesItsKey) {
  auto lease = etcd_->grantLease(1);
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_GE(lease->ttl, 1);
  const std::string key = prefix_ + "host";
  auto rev = etcd_->put(key, "alive", lease->id);
  ASSERT_TRUE(rev) << rev.error().message;
  auto kv = etcd_->get(key);
  ASSERT_TRUE(kv && kv->kvs.size() == 1);
  EXPECT_EQ(kv->kvs[0].lease, lease->id);

  // The expiry is an event: the key's deletion, seen by a watch from after the put.
  WatchRecorder watch(*etcd_, key, *rev + 1);
  const auto started = Clock::now();
  auto events = watch.waitFor(1, std::chrono::seconds(lease->ttl * 5 + 10));
  const auto took = Clock::now() - started;
  ASSERT_EQ(events.size(), 1u) << "the leased key was not deleted in time";
  EXPECT_EQ(events[0].type, WatchEvent::Type::Delete);
  EXPECT_EQ(events[0].kv.key, key);
  EXPECT_EQ(watch.finish(), "");
  std::cerr << "lease of " << lease->ttl << " s: its key was deleted after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  auto gone = etcd_->get(key);
  ASSERT_TRUE(gone);
  EXPECT_TRUE(gone->kvs.empty());
  auto renewed = etcd_->keepAlive(lease->id);
  ASSERT_FALSE(renewed);
  EXPECT_EQ(renewed.error().kind, ErrorKind::NotFound) << renewed.error().message;
}

TEST_F(EtcdClientTest, KeepAliveKeepsTheLease) {
  auto lease = etcd_->grantLease(2);
  ASSERT_TRUE(lease) << lease.error().message;
  const std::string key = prefix_ + "host";
  ASSERT_TRUE(etcd_->put(key, "alive", lease->id));
  // Renewed every third of its TTL for three TTLs: it must outlive them.
  const auto ttl = std::chrono::seconds(lease->ttl);
  const auto until = Clock::now() + 3 * ttl;
  int renewals = 0;
  while (Clock::now() < until) {
    std::this_thread::sleep_for(ttl / 3); // the keepalive's own period, what is under test
    auto r = etcd_->keepAlive(lease->id);
    ASSERT_TRUE(r) << "renewal " << renewals << ": " << r.error().message;
    EXPECT_EQ(*r, lease->ttl);
    renewals++;
  }
  auto kv = etcd_->get(key);
  ASSERT_TRUE(kv);
  ASSERT_EQ(kv->kvs.size(), 1u) << "the key was lost although its lease was kept alive";
  EXPECT_EQ(kv->kvs[0].value, "alive");

  // Revoking takes the key at once; a second revoke finds no lease.
  ASSERT_TRUE(etcd_->revokeLease(lease->id));
  auto gone = etcd_->get(key);
  ASSERT_TRUE(gone);
  EXPECT_TRUE(gone->kvs.empty());
  auto again = etcd_->revokeLease(lease->id);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::NotFound) << again.error().message;
  EXPECT_NE(again.error().message.find("lease not found"), std::string::npos)
      << again.error().message;
}

TEST_F(EtcdClientTest, WatchFromARevisionSeesTheEventsAfterItAndResumes) {
  const std::string key = prefix_ + "capture";
  auto r1 = etcd_->put(key, "1");
  auto r2 = etcd_->put(key, "2");
  auto r3 = etcd_->remove(key);
  ASSERT_TRUE(r1 && r2 && r3);
  ASSERT_TRUE(etcd_->put(prefix_ + "other", "x")); // outside the watched key

  std::vector<WatchEvent> seen;
  auto next = etcd_->watch(key, {}, *r1 + 1, [&](const std::vector<WatchEvent> &batch) {
    seen.insert(seen.end(), batch.begin(), batch.end());
    return seen.size() < 2;
  });
  ASSERT_TRUE(next) << next.error().message;
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].type, WatchEvent::Type::Put);
  EXPECT_EQ(seen[0].kv.value, "2");
  EXPECT_EQ(seen[0].kv.modRevision, *r2);
  EXPECT_EQ(seen[1].type, WatchEvent::Type::Delete);
  const int64_t deletedAt = seen[1].kv.modRevision;
  EXPECT_EQ(*next, deletedAt + 1);

  // A new watch (a new connection) from the returned revision sees what came after, once.
  auto r4 = etcd_->put(key, "4");
  ASSERT_TRUE(r4);
  std::vector<WatchEvent> resumed;
  auto after = etcd_->watch(key, {}, *next, [&](const std::vector<WatchEvent> &batch) {
    resumed.insert(resumed.end(), batch.begin(), batch.end());
    return false;
  });
  ASSERT_TRUE(after) << after.error().message;
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].kv.value, "4");
  EXPECT_EQ(resumed[0].kv.modRevision, *r4);
  EXPECT_EQ(*after, *r4 + 1);

  // A watch must start from a known revision (a range's revision + 1): "from now" would race
  // with the writes it should see.
  auto fromNow = etcd_->watch(key, {}, 0, [](const std::vector<WatchEvent> &) { return false; });
  ASSERT_FALSE(fromNow);
  EXPECT_EQ(fromNow.error().kind, ErrorKind::InvalidRequest);
  EXPECT_NE(fromNow.error().message.find("startRevision: must be at least 1"), std::string::npos)
      << fromNow.error().message;
}

TEST_F(EtcdClientTest, WatchFromACompactedRevisionIsAClearError) {
  const std::string key = prefix_ + "k";
  auto r1 = etcd_->put(key, "1");
  auto r2 = etcd_->put(key, "2");
  ASSERT_TRUE(r1 && r2);
  ASSERT_TRUE(etcd_->compact(*r2));
  bool called = false;
  auto w = etcd_->watch(key, {}, *r1, [&](const std::vector<WatchEvent> &) {
    called = true;
    return false;
  });
  ASSERT_FALSE(w);
  EXPECT_FALSE(called);
  EXPECT_EQ(w.error().message, "etcd watch: revision " + std::to_string(*r1) +
                                   " was compacted; the oldest available is " +
                                   std::to_string(*r2));
  // From the compaction's revision on, it works.
  std::vector<WatchEvent> seen;
  auto ok = etcd_->watch(key, {}, *r2, [&](const std::vector<WatchEvent> &batch) {
    seen = batch;
    return false;
  });
  ASSERT_TRUE(ok) << ok.error().message;
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].kv.value, "2");
  // A range at a compacted revision: etcd's message.
  auto old = etcd_->range(key, {}, 0, *r1);
  ASSERT_FALSE(old);
  EXPECT_NE(old.error().message.find("required revision has been compacted"), std::string::npos)
      << old.error().message;
}

TEST_F(EtcdClientTest, StopAMemberAndTheClientWorksThroughTheOthers) {
  auto leader = cluster_->leader();
  ASSERT_TRUE(leader) << leader.error().message;
  // A follower first in the client's list, so that the client talks to it until it stops
  // (stopping the leader would test an election as well).
  const size_t victim = (*leader + 1) % cluster_->size();
  std::vector<std::string> endpoints{cluster_->clientUrl(victim)};
  for (size_t i = 0; i < cluster_->size(); i++)
    if (i != victim)
      endpoints.push_back(cluster_->clientUrl(i));
  auto c = client(endpoints);
  ASSERT_TRUE(c);
  auto start = c->put(prefix_ + "e0", "0");
  ASSERT_TRUE(start) << start.error().message;
  EXPECT_EQ(c->currentEndpoint(), cluster_->clientUrl(victim));

  WatchRecorder watch(*c, prefix_, *start + 1);
  ASSERT_TRUE(c->put(prefix_ + "e1", "1"));
  ASSERT_EQ(watch.waitFor(1).size(), 1u) << "the watch did not see e1";

  ASSERT_TRUE(cluster_->stopMember(victim));
  auto r2 = c->put(prefix_ + "e2", "2");
  ASSERT_TRUE(r2) << r2.error().message;
  EXPECT_NE(c->currentEndpoint(), cluster_->clientUrl(victim));
  auto r3 = c->txn({Compare::absent(prefix_ + "e3")}, {TxnOp::put(prefix_ + "e3", "3")});
  ASSERT_TRUE(r3) << r3.error().message;
  EXPECT_TRUE(r3->succeeded);
  auto all = c->getPrefix(prefix_);
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(all->kvs.size(), 4u);

  // The watch lost its member: it resumed on another from after e1, so e2 and e3 each come
  // once, in order.
  auto events = watch.waitFor(3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kv.key, prefix_ + "e1");
  EXPECT_EQ(events[1].kv.key, prefix_ + "e2");
  EXPECT_EQ(events[2].kv.key, prefix_ + "e3");
  EXPECT_EQ(watch.finish(), "");

  // Only the stopped member: a clear error.
  auto alone = client({cluster_->clientUrl(victim)});
  ASSERT_TRUE(alone);
  auto refused = alone->get(prefix_ + "e0");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("no endpoint could be reached"), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find(cluster_->clientUrl(victim)), std::string::npos)
      << refused.error().message;

  // Back again, it has caught up.
  ASSERT_TRUE(cluster_->restartMember(victim));
  auto back = alone->get(prefix_ + "e3");
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->kvs.size(), 1u);
  EXPECT_EQ(back->kvs[0].value, "3");
}

} // namespace
} // namespace ringcap::fleet
