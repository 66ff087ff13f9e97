// destination_conf parsing and the confinement of file:// destinations.
#include "destination/DestinationUri.h"
#include "destination/Destination.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <iterator>
#include <unistd.h>

using namespace ringcap;
namespace fs = std::filesystem;

TEST(DestinationUri, ParsesS3) {
  auto u = parseDestinationUri("s3://my-bucket/pcaps/ord?region=us-east-1");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->kind, DestinationUri::Kind::S3);
  EXPECT_EQ(u->bucket, "my-bucket");
  EXPECT_EQ(u->prefix, "pcaps/ord");
  EXPECT_EQ(u->region, "us-east-1");
  EXPECT_EQ(u->endpoint, "");
  EXPECT_EQ(u->keyFor("h/pcap_x.pcap"), "pcaps/ord/h/pcap_x.pcap");
  EXPECT_EQ(u->canonical(), "s3://my-bucket/pcaps/ord?region=us-east-1");

  auto e = parseDestinationUri("s3://b12/?endpoint=http://127.0.0.1:9000/&region=eu-west-2");
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->prefix, "");
  EXPECT_EQ(e->endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(e->canonical(), "s3://b12?region=eu-west-2&endpoint=http://127.0.0.1:9000");
  EXPECT_EQ(e->keyFor("x"), "x");
}

TEST(DestinationUri, ParsesFile) {
  auto u = parseDestinationUri("file:///srv/pcaps/lab/");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->kind, DestinationUri::Kind::File);
  EXPECT_EQ(u->directory, "/srv/pcaps/lab");
  EXPECT_EQ(u->canonical(), "file:///srv/pcaps/lab");
  EXPECT_EQ(u->describe("h/pcap_1.pcap"), "/srv/pcaps/lab/h/pcap_1.pcap");
}

TEST(DestinationUri, RejectsMalformed) {
  struct Case {
    const char *uri, *message;
  } cases[] = {
      {"", "must not be empty"},
      {"http://bucket/x", "must start with s3:// or file://"},
      {"s3://Bucket/x?region=us-east-1", "is not a bucket name"},
      {"s3://ab/x?region=us-east-1", "is not a bucket name"},
      {"s3://bucket/x", "needs ?region=REGION"},
      {"s3://bucket/x?region=US EAST", "region must be like us-east-1"},
      {"s3://bucket/x?region=us-east-1&region=us-west-1", "region given twice"},
      {"s3://bucket/x?region=us-east-1&acl=public", "unknown parameter \"acl\""},
      {"s3://bucket/x?region=us-east-1&endpoint=ftp://h", "endpoint must be http://"},
      {"s3://bucket/a//b?region=us-east-1", "empty segments"},
      {"s3://bucket/a/../b?region=us-east-1", "\".\" or \"..\" segments"},
      {"file://relative/dir", "file:///absolute/directory"},
      {"file:///", "must name a directory below /"},
      {"file:///srv/../etc", "\".\" or \"..\" segments"},
      {"file:///srv/./x", "\".\" or \"..\" segments"},
      {"file:///srv//x", "empty segments"},
      {"file:///srv/%2e%2e/etc", "must not contain '?', '#', '%'"},
      {"file:///srv/x?y", "must not contain '?', '#', '%'"},
      {"file:///srv/a\nb", "control characters"},
  };
  for (const auto &c : cases) {
    auto u = parseDestinationUri(c.uri);
    ASSERT_FALSE(u) << c.uri;
    EXPECT_NE(u.error().message.find(c.message), std::string::npos)
        << c.uri << " -> " << u.error().message;
    EXPECT_EQ(u.error().message.rfind("destination_conf: ", 0), 0u) << u.error().message;
  }
}

class Confinement : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ringcap-confine.XXXXXX";
    base_ = mkdtemp(tmpl);
    root_ = base_ + "/root";
    fs::create_directories(root_ + "/ok/deeper");
    fs::create_directories(base_ + "/outside");
    fs::create_symlink(base_ + "/outside", root_ + "/escape");
    fs::create_symlink("/etc", root_ + "/etc-link");
    fs::create_symlink(root_ + "/ok", root_ + "/inside-link");
  }
  void TearDown() override { fs::remove_all(base_); }
  Result<void> check(const std::string &dir) {
    auto u = parseDestinationUri("file://" + dir);
    if (!u)
      return u.error();
    return checkFileConfinement(*u, {root_ + "/"});
  }
  std::string base_, root_;
};

TEST_F(Confinement, AllowsDirectoriesBelowARoot) {
  EXPECT_TRUE(check(root_));
  EXPECT_TRUE(check(root_ + "/ok"));
  EXPECT_TRUE(check(root_ + "/ok/deeper"));
  EXPECT_TRUE(check(root_ + "/not/yet/created"));
  EXPECT_TRUE(check(root_ + "/inside-link/x")); // a link that stays inside
}

TEST_F(Confinement, RefusesHostilePaths) {
  struct Case {
    std::string dir;
    const char *message;
  } cases[] = {
      {"/etc", "is not below an allowed directory"},
      {base_, "is not below an allowed directory"},
      {root_ + "-sibling", "is not below an allowed directory"},
      {base_ + "/outside", "is not below an allowed directory"},
      {root_ + "/escape", "leads out of the allowed directory"},
      {root_ + "/escape/new/dir", "leads out of the allowed directory"},
      {root_ + "/etc-link", "leads out of the allowed directory"},
      {root_ + "/etc-link/systemd", "leads out of the allowed directory"},
  };
  for (const auto &c : cases) {
    auto r = check(c.dir);
    ASSERT_FALSE(r) << c.dir;
    EXPECT_NE(r.error().message.find(c.message), std::string::npos)
        << c.dir << " -> " << r.error().message;
  }
  auto u = parseDestinationUri("file://" + root_);
  auto none = checkFileConfinement(*u, {});
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("not allowed on this host"), std::string::npos);
}

TEST_F(Confinement, DeliveryNeverFollowsALinkSwappedInLater) {
  // The check passes while "later" is a directory; then it becomes a link out of the root.
  fs::create_directories(root_ + "/later");
  auto u = parseDestinationUri("file://" + root_ + "/later");
  ASSERT_TRUE(u);
  DestinationSettings settings;
  settings.fileRoots = {root_};
  auto dest = openDestination(*u, settings);
  ASSERT_TRUE(dest) << dest.error().message;
  fs::remove(root_ + "/later");
  fs::create_symlink(base_ + "/outside", root_ + "/later");
  auto r = (*dest)->putObject("challenge.txt", "token\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("symbolic link"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(base_ + "/outside/challenge.txt"));
}

TEST_F(Confinement, DeliversAndVerifiesAFile) {
  std::string src = base_ + "/capture.pcapng";
  {
    std::ofstream out(src, std::ios::binary);
    for (int i = 0; i < 100000; i++)
      out.put(char(i % 251));
  }
  auto u = parseDestinationUri("file://" + root_ + "/ok");
  DestinationSettings settings;
  settings.fileRoots = {root_};
  auto dest = openDestination(*u, settings);
  ASSERT_TRUE(dest) << dest.error().message;
  // The oracle is not the code under test: the SHA-256 of these 100000 bytes as sha256sum
  // (and Python's hashlib) compute it, and the delivered bytes compared one by one.
  const std::string kExpectedSum =
      "sha256:cd2df694e424bc7968cc37f47751019e5ca0cd1bdf2e479ea537c3a1c32ee1aa";
  auto bytesOf = [](const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string content = bytesOf(src);
  ASSERT_EQ(content.size(), 100000u);
  auto sum = (*dest)->uploadFile("host1/pcap_abc.pcap", src);
  ASSERT_TRUE(sum) << sum.error().message;
  EXPECT_EQ(*sum, kExpectedSum);
  EXPECT_TRUE(bytesOf(root_ + "/ok/host1/pcap_abc.pcap") == content)
      << "the delivered file differs from the source";
  EXPECT_EQ(*sha256OfFile(root_ + "/ok/host1/pcap_abc.pcap"), kExpectedSum);
  EXPECT_EQ(fs::status(root_ + "/ok/host1/pcap_abc.pcap").permissions() & fs::perms::others_all,
            fs::perms::none);
  // The root itself is a destination too.
  auto rootUri = parseDestinationUri("file://" + root_);
  auto atRoot = openDestination(*rootUri, settings);
  ASSERT_TRUE(atRoot) << atRoot.error().message;
  auto again = (*atRoot)->uploadFile("host2/pcap_def.pcap", src);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, kExpectedSum);
  EXPECT_TRUE(bytesOf(root_ + "/host2/pcap_def.pcap") == content)
      << "the file delivered at the root differs from the source";
  // No temporary files stay behind.
  for (const auto &e : fs::directory_iterator(root_ + "/ok/host1"))
    EXPECT_EQ(e.path().filename(), "pcap_abc.pcap");
}

// endpoint= in a request: only an endpoint the operator configured, so that a caller cannot
// have ringcapd send signed requests to a server of its choice, or over plain http.
TEST(S3Endpoint, OnlyTheOperatorsEndpointsMayBeNamed) {
  DestinationSettings none;
  DestinationSettings one;
  one.s3Endpoint = "https://s3.example.net";
  DestinationSettings list = one;
  list.s3AllowedEndpoints = {"http://10.1.2.3:9000", "https://minio.example.net:9443/"};
  struct Row {
    const DestinationSettings &settings;
    std::string conf;
    std::string endpoint; // "" with `error`: refused
    std::string error;
  } rows[] = {
      {none, "s3://bkt/d?region=us-east-1", "", ""}, // AWS
      {one, "s3://bkt/d?region=us-east-1", "https://s3.example.net", ""},
      {one, "s3://bkt/d?region=us-east-1&endpoint=https://S3.Example.net/",
       "https://s3.example.net", ""},
      {list, "s3://bkt/d?region=us-east-1&endpoint=http://10.1.2.3:9000", "http://10.1.2.3:9000",
       ""},
      {list, "s3://bkt/d?region=us-east-1&endpoint=https://minio.example.net:9443",
       "https://minio.example.net:9443/", ""},
      // Refused: any other host, the right host over plain http, another port, and any
      // endpoint at all where the operator configured none.
      {one, "s3://bkt/d?region=us-east-1&endpoint=https://evil.example.com", "",
       "allowed here: https://s3.example.net"},
      {one, "s3://bkt/d?region=us-east-1&endpoint=http://s3.example.net", "", "is not allowed"},
      {list, "s3://bkt/d?region=us-east-1&endpoint=http://10.1.2.3:9001", "",
       "allowed here: https://s3.example.net, http://10.1.2.3:9000, "
       "https://minio.example.net:9443/"},
      {none, "s3://bkt/d?region=us-east-1&endpoint=http://127.0.0.1:9000", "",
       "none is configured, so leave endpoint= out"},
  };
  for (const auto &r : rows) {
    auto uri = parseDestinationUri(r.conf);
    ASSERT_TRUE(uri) << r.conf;
    auto e = s3EndpointFor(*uri, r.settings);
    auto allowed = checkDestinationAllowed(*uri, r.settings);
    if (r.error.empty()) {
      ASSERT_TRUE(e) << r.conf << ": " << e.error().message;
      EXPECT_EQ(*e, r.endpoint) << r.conf;
      EXPECT_TRUE(allowed) << r.conf;
      continue;
    }
    ASSERT_FALSE(e) << r.conf;
    EXPECT_EQ(e.error().code, EINVAL);
    EXPECT_EQ(e.error().message.rfind("destination_conf: endpoint \"", 0), 0u) << e.error().message;
    EXPECT_NE(e.error().message.find("s3.allowed_endpoints"), std::string::npos);
    EXPECT_NE(e.error().message.find(r.error), std::string::npos) << e.error().message;
    ASSERT_FALSE(allowed) << r.conf;
    EXPECT_EQ(allowed.error().message, e.error().message);
    // openDestination refuses it as well (a record from before the rule, resumed).
    auto dest = openDestination(*uri, r.settings);
    ASSERT_FALSE(dest) << r.conf;
    EXPECT_EQ(dest.error().message, e.error().message);
  }
}
