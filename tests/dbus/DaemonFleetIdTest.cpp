// CreateCapture with a caller-supplied `id` (fleet mode, docs/fleet.md): root and the user of
// [fleet] agent_user may name the capture; anyone else is refused; a malformed or known id is
// refused and nothing changes.
#include "DaemonFixture.h"

#include <csignal>

namespace ringcap::dbustest {
namespace {

constexpr const char *kFleetId = "00112233445566778899aabbccddeeff";
constexpr const char *kOtherId = "ffeeddccbbaa99887766554433221100";

json withId(json request, const std::string &id) {
  request["id"] = id;
  return request;
}

TEST_F(DaemonTest, RootSuppliesTheCaptureId) {
  RINGCAP_LAB_UP();
  DictResult r = root().create(withId(simpleRequest(300, 100), kFleetId));
  ASSERT_TRUE(r.call.ok()) << r.call.describe();
  EXPECT_EQ(r.dict.value("id", ""), kFleetId);
  EXPECT_EQ(r.path, capturePath(kFleetId));
  DictResult got = root().get(kFleetId);
  ASSERT_TRUE(got.call.ok()) << got.call.describe();
  EXPECT_EQ(got.dict.value("id", ""), kFleetId);
  EXPECT_EQ(got.dict.value("status", ""), "running");
  ASSERT_TRUE(root().stop(kFleetId).ok());
}

TEST_F(DaemonTest, SuppliedIdMustHaveTheIdForm) {
  RINGCAP_LAB_UP();
  for (std::string bad : {"00112233445566778899AABBCCDDEEFF", "0011", "", "../../etc/passwd",
                          "00112233445566778899aabbccddeeff0"}) {
    SCOPED_TRACE(bad);
    DictResult r = root().create(withId(simpleRequest(10, 10), bad));
    EXPECT_EQ(r.call.error, kInvalidRequest) << r.call.describe();
    EXPECT_EQ(r.call.message.rfind("id: must be 32 lowercase hexadecimal digits", 0), 0u)
        << r.call.message;
  }
  EXPECT_TRUE(root().list().empty()) << "a refused request created a capture";
}

TEST_F(DaemonTest, KnownIdIsRefusedWhateverItsStatusAndNothingChanges) {
  RINGCAP_LAB_UP();
  DictResult first = root().create(withId(simpleRequest(300, 100), kFleetId));
  ASSERT_TRUE(first.call.ok()) << first.call.describe();

  // Running: refused, the running capture untouched.
  DictResult again = root().create(withId(simpleRequest(10, 10), kFleetId));
  EXPECT_EQ(again.call.error, kInvalidRequest) << again.call.describe();
  EXPECT_NE(again.call.message.find("id: a capture with id " + std::string(kFleetId) +
                                    " exists already (running)"),
            std::string::npos)
      << again.call.message;
  DictResult got = root().get(kFleetId);
  ASSERT_TRUE(got.call.ok()) << got.call.describe();
  EXPECT_EQ(got.dict.value("status", ""), "running");
  EXPECT_EQ(got.dict.value("time_limit", 0), 300);
  EXPECT_EQ(root().list().size(), 1u);

  // Finished, and after a restart (the id comes from the job store on disk): still refused.
  ASSERT_TRUE(root().stop(kFleetId).ok());
  ASSERT_TRUE(lab().stopDaemon(SIGTERM));
  ASSERT_TRUE(lab().startDaemon());
  DictResult afterRestart = root().create(withId(simpleRequest(10, 10), kFleetId));
  EXPECT_EQ(afterRestart.call.error, kInvalidRequest) << afterRestart.call.describe();
  EXPECT_NE(afterRestart.call.message.find("exists already (success)"), std::string::npos)
      << afterRestart.call.message;
  DictResult finished = root().get(kFleetId);
  ASSERT_TRUE(finished.call.ok()) << finished.call.describe();
  EXPECT_EQ(finished.dict.value("status", ""), "success");
  EXPECT_EQ(finished.dict.value("time_limit", 0), 300);
  EXPECT_EQ(root().list().size(), 1u);

  // Another id is fine.
  DictResult other = root().create(withId(simpleRequest(10, 10), kOtherId));
  ASSERT_TRUE(other.call.ok()) << other.call.describe();
  EXPECT_EQ(other.dict.value("id", ""), kOtherId);
}

TEST_F(DaemonTest, GroupMemberWhoIsNotTheAgentUserCannotSupplyAnId) {
  ASSERT_TRUE(ensureTestUsers());
  // Without [fleet] agent_user only root may; with it naming someone else, still refused.
  for (std::string extra :
       {std::string(), "[fleet]\nagent_user = \"" + std::string(kUnprivilegedUser) + "\"\n"}) {
    SCOPED_TRACE(extra);
    RINGCAP_LAB_UP(LabOptions{.extraConfig = extra});
    RemoteResult denied =
        callAs(kMemberUser, lab().busAddress(), kManagerPath, kManager, "CreateCapture",
               jsonArgs(withId(simpleRequest(10, 10), kFleetId)));
    EXPECT_EQ(denied.error, kAccessDenied) << denied.describe();
    EXPECT_EQ(denied.message.rfind("id: a capture id may be supplied only by root", 0), 0u)
        << denied.message;
    EXPECT_NE(denied.message.find(extra.empty() ? "(fleet.agent_user is not set)"
                                                : "fleet agent's user \"" +
                                                      std::string(kUnprivilegedUser) + "\""),
              std::string::npos)
        << denied.message;
    EXPECT_TRUE(root().list().empty()) << "the refused request created a capture";
    // The member may still create a capture with ringcapd's own id.
    RemoteResult plain = callAs(kMemberUser, lab().busAddress(), kManagerPath, kManager,
                                "CreateCapture", jsonArgs(simpleRequest(10, 10)));
    EXPECT_TRUE(plain.ok()) << plain.describe();
    ASSERT_EQ(root().list().size(), 1u);
    EXPECT_NE(root().list()[0].value("id", ""), kFleetId);
    ASSERT_TRUE(lab_->shutdown());
    lab_.reset();
  }
}

TEST_F(DaemonTest, AgentUserSuppliesTheCaptureId) {
  ASSERT_TRUE(ensureTestUsers());
  RINGCAP_LAB_UP(
      LabOptions{.extraConfig = std::string("[fleet]\nagent_user = \"") + kMemberUser + "\"\n"});
  RemoteResult created =
      callAs(kMemberUser, lab().busAddress(), kManagerPath, kManager, "CreateCapture",
             jsonArgs(withId(simpleRequest(300, 10), kFleetId)));
  ASSERT_TRUE(created.ok()) << created.describe();
  DictResult got = root().get(kFleetId);
  ASSERT_TRUE(got.call.ok()) << got.call.describe();
  EXPECT_EQ(got.dict.value("id", ""), kFleetId);
  // Its duplicate is refused for the agent user too.
  RemoteResult again = callAs(kMemberUser, lab().busAddress(), kManagerPath, kManager,
                              "CreateCapture", jsonArgs(withId(simpleRequest(10, 10), kFleetId)));
  EXPECT_EQ(again.error, kInvalidRequest) << again.describe();
  EXPECT_EQ(root().list().size(), 1u);
  ASSERT_TRUE(root().stop(kFleetId).ok());
}

} // namespace
} // namespace ringcap::dbustest
