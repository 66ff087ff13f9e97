// The etcd client over TLS with a client certificate ([fleet] etcd_ca_file, etcd_cert_file,
// etcd_key_file): a one-member cluster whose client URL is https:// and requires a
// certificate its CA signed (--client-cert-auth).
#include "../lib/EtcdCluster.h"
#include "../lib/Skip.h"
#include "fleet/Etcd.h"

#include <gtest/gtest.h>

namespace ringcap::fleet {
namespace {
using testlib::EtcdCluster;

TEST(EtcdTls, TheClientCertificateAndTheCaAreUsedAndRequired) {
  if (EtcdCluster::etcdBinary().empty())
    RINGCAP_SKIP("needs etcd (Debian's etcd-server, or $RINGCAP_ETCD)");
  if (system("command -v openssl >/dev/null") != 0)
    RINGCAP_SKIP("needs openssl");
  auto cluster = EtcdCluster::start(1, std::chrono::seconds(60), true);
  ASSERT_TRUE(cluster) << cluster.error().message;
  const auto &tls = (*cluster)->tlsFiles();
  ASSERT_EQ((*cluster)->clientUrl(0).rfind("https://", 0), 0u);

  EtcdOptions options{(*cluster)->clientUrls()};
  options.caFile = tls.ca;
  options.certFile = tls.clientCert;
  options.keyFile = tls.clientKey;
  auto client = EtcdClient::create(options);
  ASSERT_TRUE(client) << client.error().message;
  auto put = (*client)->put("/ringcap/tls", "yes");
  ASSERT_TRUE(put) << put.error().message;
  auto got = (*client)->get("/ringcap/tls");
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "yes");

  // Without the client certificate: the member refuses the handshake.
  EtcdOptions noCert{(*cluster)->clientUrls()};
  noCert.caFile = tls.ca;
  auto anonymous = EtcdClient::create(noCert);
  ASSERT_TRUE(anonymous);
  auto refused = (*anonymous)->get("/ringcap/tls");
  ASSERT_FALSE(refused) << "a client without a certificate was served";
  EXPECT_NE(refused.error().message.find((*cluster)->clientUrl(0)), std::string::npos)
      << refused.error().message;

  // Without the CA: the member's certificate is not trusted.
  EtcdOptions noCa = options;
  noCa.caFile.clear();
  auto untrusting = EtcdClient::create(noCa);
  ASSERT_TRUE(untrusting);
  auto untrusted = (*untrusting)->get("/ringcap/tls");
  ASSERT_FALSE(untrusted) << "a member whose CA is unknown was trusted";

  // A certificate without its key is refused before any request.
  EtcdOptions half = options;
  half.keyFile.clear();
  auto refusedOptions = EtcdClient::create(half);
  ASSERT_FALSE(refusedOptions);
  EXPECT_EQ(refusedOptions.error().message, "etcd_cert_file, etcd_key_file: both or neither");
}

} // namespace
} // namespace ringcap::fleet
