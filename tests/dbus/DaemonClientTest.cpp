// api::Client, the one client ringcapctl, ringcap-gateway and scripts share, against ringcapd
// on a real bus: every manager method, and the kind, message and D-Bus name of its errors.
#include "DaemonFixture.h"

#include "api/Client.h"

#include <fcntl.h>
#include <sys/stat.h>

namespace ringcap::dbustest {
namespace {

class ApiClientTest : public DaemonTest {
protected:
  std::unique_ptr<api::Client> connect() {
    auto c = api::Client::connect(lab().busAddress());
    EXPECT_TRUE(c) << (c ? "" : c.error().message);
    return c ? std::move(*c) : nullptr;
  }
};

TEST_F(ApiClientTest, EveryCaptureMethodAnswersWithItsValue) {
  RINGCAP_LAB_UP();
  auto client = connect();
  ASSERT_TRUE(client);

  auto created = client->createCapture(simpleRequest(1, 5));
  ASSERT_TRUE(created) << created.error().message;
  std::string id = created->record.value("id", "");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(created->path, api::capturePath(id));
  EXPECT_EQ(created->record.value("type", ""), "simple");

  auto got = client->getCapture(id);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->value("id", ""), id);

  auto listed = client->listCaptures();
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_TRUE(listed->is_array());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].value("id", ""), id);

  // Not finished yet: the file is not ready.
  auto early = client->openCaptureFile(id);
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().kind, ErrorKind::NotReady) << early.error().message;
  EXPECT_EQ(early.error().busName, api::dbusErrorName(ErrorKind::NotReady));

  auto stopped = client->stopCapture(id);
  ASSERT_TRUE(stopped) << stopped.error().message;
  ASSERT_TRUE(root().waitFor(
      [&] {
        auto r = client->getCapture(id);
        return r && r->value("status", "") == "success";
      },
      30s));
  auto fd = client->openCaptureFile(id);
  ASSERT_TRUE(fd) << fd.error().message;
  struct stat st {};
  ASSERT_EQ(fstat(fd->get(), &st), 0);
  EXPECT_GT(st.st_size, 0); // at least the file header
  EXPECT_EQ(fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

TEST_F(ApiClientTest, ErrorsCarryTheirKindTheDaemonsMessageAndTheBusName) {
  RINGCAP_LAB_UP();
  auto client = connect();
  ASSERT_TRUE(client);

  auto bad = client->createCapture(simpleRequest(0, 5));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, ErrorKind::InvalidRequest);
  EXPECT_EQ(bad.error().busName, api::dbusErrorName(ErrorKind::InvalidRequest));
  EXPECT_TRUE(bad.error().message.starts_with("time_limit: ")) << bad.error().message;
  EXPECT_EQ(bad.error().message.find("org.ringcap"), std::string::npos)
      << "the message is the daemon's alone: " << bad.error().message;

  // A request that cannot be written as a{sv} is refused before anything is sent.
  auto unsendable = client->createCapture(json{{"type", "simple"}, {"x", json::array({nullptr})}});
  ASSERT_FALSE(unsendable);
  EXPECT_EQ(unsendable.error().kind, ErrorKind::InvalidRequest);
  EXPECT_TRUE(unsendable.error().busName.empty()) << unsendable.error().busName;

  for (auto *method : {"get", "stop", "open", "deleteOwnership"}) {
    Result<void> r = [&]() -> Result<void> {
      std::string m = method;
      if (m == "get") {
        auto g = client->getCapture("0123456789abcdef0123456789abcdef");
        return g ? Result<void>{} : Result<void>{g.error()};
      }
      if (m == "stop")
        return client->stopCapture("0123456789abcdef0123456789abcdef");
      if (m == "open") {
        auto o = client->openCaptureFile("0123456789abcdef0123456789abcdef");
        return o ? Result<void>{} : Result<void>{o.error()};
      }
      return client->deleteOwnership("0123456789abcdef0123456789abcdef");
    }();
    ASSERT_FALSE(r) << method;
    EXPECT_EQ(r.error().kind, ErrorKind::NotFound) << method << ": " << r.error().message;
  }

  ASSERT_TRUE(lab().stopDaemon(SIGTERM));
  auto gone = client->listCaptures();
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind, ErrorKind::Unavailable) << gone.error().message;
  EXPECT_NE(gone.error().message.find("not running"), std::string::npos) << gone.error().message;
}

TEST_F(ApiClientTest, OwnershipMethodsRoundTrip) {
  RINGCAP_LAB_UP();
  auto client = connect();
  ASSERT_TRUE(client);
  std::string dir = lab().destinationRoot() + "/client";
  std::string dest = "file://" + dir;
  auto created = client->createOwnership(dest);
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(created->value("status", ""), "pending");
  std::string token = readFile(dir + "/" + created->value("filename", ""));
  while (!token.empty() && token.back() == '\n')
    token.pop_back();
  auto validated = client->validateOwnership(dest, token);
  ASSERT_TRUE(validated) << validated.error().message;
  EXPECT_EQ(validated->value("status", ""), "success");
  auto listed = client->listOwnerships();
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].value("id", ""), created->value("id", ""));
  auto deleted = client->deleteOwnership(created->value("id", ""));
  ASSERT_TRUE(deleted) << deleted.error().message;
  auto after = client->listOwnerships();
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->empty());
  // ImportOwnership (the client connects as root here).
  auto imported = client->importOwnership(dest + "/h1");
  ASSERT_TRUE(imported) << imported.error().message;
  EXPECT_EQ(imported->value("status", ""), "success");
  EXPECT_EQ(imported->value("imported", false), true);
  auto refused = client->importOwnership("file:///etc/ringcap-not-a-root");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::InvalidRequest) << refused.error().message;
}

TEST(ApiClientConnectTest, AnUnreachableBusIsUnavailable) {
  auto c = api::Client::connect("unix:path=/nonexistent/ringcap-test-bus");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().kind, ErrorKind::Unavailable);
  EXPECT_NE(c.error().message.find("/nonexistent/ringcap-test-bus"), std::string::npos)
      << c.error().message;
}

} // namespace
} // namespace ringcap::dbustest
