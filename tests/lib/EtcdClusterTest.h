// A GoogleTest fixture for tests against a 3-member etcd cluster on loopback: one cluster per
// test suite (Suite: the derived fixture), started once, and a fresh client for every test.
#pragma once

#include "EtcdCluster.h"
#include "Skip.h"
#include "fleet/Etcd.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace ringcap::testlib {

// A client of `endpoints`; a failure is a test failure and gives nullptr.
inline std::unique_ptr<ringcap::fleet::EtcdClient> etcdClient(std::vector<std::string> endpoints) {
  auto c = ringcap::fleet::EtcdClient::create(ringcap::fleet::EtcdOptions{std::move(endpoints)});
  EXPECT_TRUE(c) << c.error().message;
  return c ? std::move(*c) : nullptr;
}

template <class Suite> class EtcdClusterTest : public testing::Test {
protected:
  static void SetUpTestSuite() {
    if (EtcdCluster::etcdBinary().empty())
      return;
    auto c = EtcdCluster::start(3);
    if (!c)
      startError_ = c.error().message;
    else
      cluster_ = std::move(*c);
  }
  static void TearDownTestSuite() { cluster_.reset(); }
  // Skips without etcd (fails under CI), then connects etcd_.
  void SetUp() override {
    if (EtcdCluster::etcdBinary().empty())
      RINGCAP_SKIP("etcd is not installed (apt-get install etcd-server etcd-client)");
    ASSERT_TRUE(cluster_) << "the etcd cluster did not start: " << startError_;
    etcd_ = etcdClient(cluster_->clientUrls());
    ASSERT_TRUE(etcd_);
  }

  static inline std::unique_ptr<EtcdCluster> cluster_;
  static inline std::string startError_;
  std::unique_ptr<ringcap::fleet::EtcdClient> etcd_;
};

} // namespace ringcap::testlib
