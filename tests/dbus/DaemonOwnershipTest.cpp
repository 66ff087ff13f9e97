// The ownership challenge on a real bus (docs/destinations.md): the token never reaches the
// state directory, the newest record of a destination is the one that counts (a new challenge
// or a wrong answer revokes an earlier success), and the records are bounded in number and
// in time.
#include "DaemonFixture.h"

#include <csignal>
#include <filesystem>
#include <set>

namespace ringcap::dbustest {
namespace {

std::string idOf(const DictResult &d) { return d.dict.value("id", ""); }

DictResult dictCall(Client &c, const char *member, const Args &args) {
  DictResult d;
  d.call = c.manager(member, args);
  if (d.call.ok())
    d.dict = readReply(d.call.reply.get());
  return d;
}

Args twoStrings(const std::string &a, const std::string &b) {
  return [a, b](sd_bus_message *m) { return sd_bus_message_append(m, "ss", a.c_str(), b.c_str()); };
}

class OwnershipTest : public DaemonTest {
protected:
  // file:// URI of a directory below the lab's destination root.
  std::string destination(const std::string &sub) {
    return "file://" + lab().destinationRoot() + "/" + sub;
  }
  // CreateOwnership; the token read from the challenge file (empty on failure).
  std::string createOwnership(const std::string &dest, std::string *id = nullptr) {
    DictResult r = dictCall(root(), "CreateOwnership", stringArg(dest));
    EXPECT_TRUE(r.call.ok()) << r.call.describe();
    if (!r.call.ok())
      return "";
    EXPECT_EQ(r.dict.value("status", ""), "pending");
    if (id)
      *id = idOf(r);
    std::string dir = dest.substr(std::string("file://").size());
    std::string token = readFile(dir + "/" + r.dict.value("filename", ""));
    while (!token.empty() && token.back() == '\n')
      token.pop_back();
    EXPECT_EQ(token.size(), 64u) << "challenge file of " << dest;
    return token;
  }
  std::string validate(const std::string &dest, const std::string &challenge) {
    DictResult r = dictCall(root(), "ValidateOwnership", twoStrings(dest, challenge));
    EXPECT_TRUE(r.call.ok()) << r.call.describe();
    return r.dict.value("status", "");
  }
  DictResult full(const std::string &dest) {
    return root().create(json{{"system", "magic-transit"},
                              {"type", "full"},
                              {"time_limit", 10},
                              {"colo_name", "lab01"},
                              {"destination_conf", dest}});
  }
  std::vector<json> ownerships() {
    CallResult r = root().manager("ListOwnerships");
    EXPECT_TRUE(r.ok()) << r.describe();
    std::vector<json> out;
    if (r.ok())
      for (const auto &o : readReply(r.reply.get()))
        out.push_back(o);
    return out;
  }
  size_t stateFiles() {
    size_t n = 0;
    for (const auto &e :
         std::filesystem::directory_iterator(lab().stateDirectory() + "/ownerships"))
      n += e.path().extension() == ".json";
    return n;
  }
};

TEST_F(OwnershipTest, StateFilesHoldNoChallengeToken) {
  RINGCAP_LAB_UP();
  const std::string dest = destination("hashed");
  std::string token = createOwnership(dest);
  ASSERT_FALSE(token.empty());
  size_t files = 0;
  for (const auto &e : std::filesystem::recursive_directory_iterator(lab().stateDirectory())) {
    if (!e.is_regular_file())
      continue;
    files++;
    EXPECT_EQ(readFile(e.path()).find(token), std::string::npos)
        << e.path() << " holds the challenge token";
  }
  EXPECT_GE(files, 1u);
  std::string wrong = token;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  EXPECT_EQ(validate(dest, wrong), "failed");
  EXPECT_EQ(validate(dest, token + "\n"), "success");
}

TEST_F(OwnershipTest, TheNewestRecordOfADestinationCounts) {
  RINGCAP_LAB_UP();
  const std::string dest = destination("newest");
  ASSERT_EQ(validate(dest, createOwnership(dest)), "success");

  // A new challenge for the destination revokes the earlier success until it is answered.
  std::string second = createOwnership(dest);
  DictResult refused = full(dest);
  EXPECT_EQ(refused.call.error, kOwnershipRequired)
      << "a full capture was accepted while the newest challenge was pending: "
      << refused.call.describe();
  ASSERT_EQ(validate(dest, second), "success");

  // A wrong answer turns the destination's newest record failed, and nothing older counts.
  ASSERT_EQ(validate(dest, "not-the-token"), "failed");
  refused = full(dest);
  EXPECT_EQ(refused.call.error, kOwnershipRequired)
      << "a full capture was accepted after a failed challenge: " << refused.call.describe();
  std::set<std::string> statuses;
  for (const auto &o : ownerships())
    if (o.value("destination_conf", "") == dest)
      statuses.insert(o.value("status", ""));
  EXPECT_EQ(statuses.count("success"), 0u) << "an older success is still listed";

  // The right answer again makes it usable.
  ASSERT_EQ(validate(dest, second), "success");
  DictResult accepted = full(dest);
  ASSERT_TRUE(accepted.call.ok()) << accepted.call.describe();
  EXPECT_TRUE(root().stop(idOf(accepted)).ok());
}

TEST_F(OwnershipTest, RecordsAreCappedOldestPendingFirst) {
  RINGCAP_LAB_UP(LabOptions{.extraConfig = "[ownership]\nmax_records = 3\n"});
  const std::string validated = destination("kept");
  ASSERT_EQ(validate(validated, createOwnership(validated)), "success");
  std::vector<std::string> ids;
  for (int i = 0; i < 6; i++) {
    std::string id;
    createOwnership(destination("d" + std::to_string(i)), &id);
    ids.push_back(id);
  }
  std::vector<json> list = ownerships();
  std::set<std::string> listed;
  for (const auto &o : list)
    listed.insert(o.value("id", ""));
  EXPECT_EQ(list.size(), 3u);
  EXPECT_EQ(stateFiles(), 3u);
  // The validated destination stays; of the pending ones the newest two.
  EXPECT_EQ(listed.count(ids[5]) + listed.count(ids[4]), 2u);
  DictResult accepted = full(validated);
  ASSERT_TRUE(accepted.call.ok()) << accepted.call.describe();
  EXPECT_TRUE(root().stop(idOf(accepted)).ok());
}

TEST_F(OwnershipTest, PendingRecordsExpire) {
  RINGCAP_LAB_UP(LabOptions{.extraConfig = "[ownership]\npending_expiry_seconds = 1\n"});
  const std::string dest = destination("expiring");
  ASSERT_FALSE(createOwnership(dest).empty());
  // Polled: the record is gone once it is older than a second (not checked in between: a
  // loaded machine may take that long to answer).
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!ownerships().empty() && std::chrono::steady_clock::now() < deadline)
    root().waitFor([] { return false; }, 200ms);
  EXPECT_EQ(ownerships().size(), 0u);
  EXPECT_EQ(stateFiles(), 0u);
  DictResult r = dictCall(root(), "ValidateOwnership", twoStrings(dest, "anything"));
  EXPECT_EQ(r.call.error, kNotFound) << r.call.describe();
}

// ImportOwnership (fleet mode, docs/fleet.md): a fleet's validated ownership recorded without a
// challenge, by root or fleet.agent_user only; it makes exactly that destination usable
// (here a path below another, to show that neither opens the other), nothing above or beside
// it, and survives a restart.
TEST_F(OwnershipTest, ImportOwnershipOnlyByRootAndOnlyForThatDestination) {
  ASSERT_TRUE(ensureTestUsers());
  RINGCAP_LAB_UP();
  const std::string fleetDest = destination("fleet");
  const std::string hostDest = fleetDest + "/h1";

  // A member of the group who is not the agent's user (fleet.agent_user is not set).
  RemoteResult denied = callAs(kMemberUser, lab().busAddress(), kManagerPath, kManager,
                               "ImportOwnership", stringArg(hostDest));
  EXPECT_EQ(denied.error, kAccessDenied) << denied.describe();
  EXPECT_EQ(denied.message.rfind("ImportOwnership: an ownership may be imported only by root "
                                 "(fleet.agent_user is not set)",
                                 0),
            0u)
      << denied.message;
  EXPECT_TRUE(ownerships().empty()) << "a refused import recorded an ownership";
  DictResult refused = full(hostDest);
  EXPECT_EQ(refused.call.error, kOwnershipRequired) << refused.call.describe();

  // Root imports the path: a success without a challenge file.
  DictResult imported = dictCall(root(), "ImportOwnership", stringArg(hostDest));
  ASSERT_TRUE(imported.call.ok()) << imported.call.describe();
  EXPECT_EQ(imported.dict.value("status", ""), "success");
  EXPECT_EQ(imported.dict.value("imported", false), true);
  EXPECT_EQ(imported.dict.value("destination_conf", ""), hostDest);
  EXPECT_FALSE(imported.dict.contains("filename")) << imported.dict.dump();
  EXPECT_TRUE(imported.dict.contains("validated")) << imported.dict.dump();

  // Again: the same record, nothing added.
  DictResult again = dictCall(root(), "ImportOwnership", stringArg(hostDest));
  ASSERT_TRUE(again.call.ok()) << again.call.describe();
  EXPECT_EQ(idOf(again), idOf(imported));
  EXPECT_EQ(ownerships().size(), 1u);

  // Exactly that destination: not the fleet's path above it, not a sibling.
  for (const std::string &other : {fleetDest, fleetDest + "/h2"}) {
    DictResult r = full(other);
    EXPECT_EQ(r.call.error, kOwnershipRequired) << other << ": " << r.call.describe();
  }
  // A destination ringcapd does not allow is refused as for CreateOwnership.
  DictResult outside = dictCall(root(), "ImportOwnership", stringArg("file:///etc/ringcap-x"));
  EXPECT_EQ(outside.call.error, kInvalidRequest) << outside.call.describe();
  EXPECT_EQ(ownerships().size(), 1u);

  // Kept across a restart, and a full capture into it is accepted.
  ASSERT_TRUE(lab().stopDaemon(SIGTERM));
  ASSERT_TRUE(lab().startDaemon());
  std::vector<json> after = ownerships();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].value("imported", false), true);
  EXPECT_EQ(after[0].value("status", ""), "success");
  DictResult accepted = full(hostDest);
  ASSERT_TRUE(accepted.call.ok()) << accepted.call.describe();
  EXPECT_TRUE(root().stop(idOf(accepted)).ok());
}

TEST_F(OwnershipTest, AgentUserImportsAnOwnership) {
  ASSERT_TRUE(ensureTestUsers());
  RINGCAP_LAB_UP(
      LabOptions{.extraConfig = std::string("[fleet]\nagent_user = \"") + kMemberUser + "\"\n"});
  const std::string hostDest = destination("fleet") + "/h1";
  RemoteResult imported = callAs(kMemberUser, lab().busAddress(), kManagerPath, kManager,
                                 "ImportOwnership", stringArg(hostDest));
  ASSERT_TRUE(imported.ok()) << imported.describe();
  EXPECT_EQ(imported.value.value("status", ""), "success");
  EXPECT_EQ(imported.value.value("imported", false), true);
  DictResult accepted = full(hostDest);
  ASSERT_TRUE(accepted.call.ok()) << accepted.call.describe();
  EXPECT_TRUE(root().stop(idOf(accepted)).ok());
}

} // namespace
} // namespace ringcap::dbustest
