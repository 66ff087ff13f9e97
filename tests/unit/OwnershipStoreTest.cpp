// OwnershipStore: only the token's hash is kept, records of the first format are rewritten,
// the newest record of a destination counts, and records are bounded in number and in time.
#include "OwnershipStore.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>

using namespace ringcap;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kSecond = 1000000000;
constexpr int64_t kNow = 1'800'000'000 * kSecond;

std::string slurp(const std::string &path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class OwnershipStoreTest : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ringcap-ownershipstore.XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<OwnershipStore> open(OwnershipLimits limits = {}, int64_t now = kNow) {
    auto s = OwnershipStore::open(dir_, gid_t(-1), limits, now);
    EXPECT_TRUE(s) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }
  // Adds a pending record for `dest` submitted at `at`; its token.
  std::string add(OwnershipStore &s, const std::string &dest, int64_t at,
                  std::string *id = nullptr) {
    NewOwnership n = OwnershipStore::make(dest, dest, at);
    auto r = s.add(n.record, at);
    EXPECT_TRUE(r) << r.error().message;
    if (id)
      *id = n.record.id;
    return n.token;
  }
  // What OwnershipService::validate does: the newest record of the destination is compared.
  OwnershipStatus answer(OwnershipStore &s, const std::string &dest, const std::string &token) {
    OwnershipRecord r = *s.findByDestination(dest);
    r.status = r.matches(token) ? OwnershipStatus::Success : OwnershipStatus::Failed;
    EXPECT_TRUE(s.update(r));
    return r.status;
  }
  std::string stateDir() const { return dir_ + "/ownerships"; }
  size_t stateFiles() const {
    size_t n = 0;
    for (const auto &e : fs::directory_iterator(stateDir()))
      n += e.path().extension() == ".json";
    return n;
  }
  std::string dir_;
};

TEST_F(OwnershipStoreTest, OnlyTheTokensHashIsStored) {
  std::string token, id;
  {
    auto s = open();
    token = add(*s, "file:///srv/a", kNow, &id);
    ASSERT_EQ(token.size(), 64u);
    EXPECT_TRUE(s->find(id)->matches(token));
    EXPECT_FALSE(s->find(id)->matches(token.substr(1)));
    EXPECT_FALSE(s->find(id)->matches(""));
    EXPECT_EQ(s->find(id)->tokenSha256, sha256Hex(token));
  }
  std::string state = slurp(stateDir() + "/" + id + ".json");
  EXPECT_EQ(state.find(token), std::string::npos) << state;
  EXPECT_NE(state.find(sha256Hex(token)), std::string::npos) << state;
  EXPECT_NE(state.find("\"version\": 2"), std::string::npos) << state;
  // The hash alone answers after a reopen.
  auto s = open();
  EXPECT_EQ(answer(*s, "file:///srv/a", token), OwnershipStatus::Success);
}

TEST_F(OwnershipStoreTest, Sha256IsTheStandardOne) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(OwnershipStoreTest, FirstFormatRecordsAreRewrittenWithoutTheToken) {
  fs::create_directories(stateDir());
  const std::string id = "0123456789abcdef0123456789abcdef";
  const std::string token(64, 'c');
  std::ofstream(stateDir() + "/" + id + ".json")
      << R"({"version": 1, "id": ")" << id
      << R"(", "destination_conf": "file:///srv/old", "canonical": "file:///srv/old",)"
      << R"( "filename": "ownership-challenge-0011223344556677.txt", "token": ")" << token
      << R"(", "status": "success", "submitted_ns": )" << kNow - 10 * kSecond
      << R"(, "validated_ns": )" << kNow - 5 * kSecond << "}\n";
  auto s = open();
  ASSERT_NE(s->find(id), nullptr);
  EXPECT_EQ(s->find(id)->status, OwnershipStatus::Success);
  EXPECT_TRUE(s->validated("file:///srv/old"));
  EXPECT_TRUE(s->find(id)->matches(token));
  std::string state = slurp(stateDir() + "/" + id + ".json");
  EXPECT_EQ(state.find(token), std::string::npos) << "still in plain text: " << state;
  EXPECT_EQ(state.find("\"token\""), std::string::npos) << state;
}

TEST_F(OwnershipStoreTest, AFirstFormatRecordThatCannotBeRewrittenFailsTheOpenByName) {
  fs::create_directories(stateDir());
  const std::string id = "0123456789abcdef0123456789abcdef";
  const std::string legacy =
      std::string(R"({"version": 1, "id": ")") + id +
      R"(", "destination_conf": "file:///x", "canonical": "file:///x", "filename": "f",)" +
      R"( "token": "the-token", "status": "pending", "submitted_ns": 1, "validated_ns": 0})";
  std::ofstream(stateDir() + "/" + id + ".json") << legacy;
  // A directory where the rewrite's temporary file goes: creating it fails, also for root.
  fs::create_directory(stateDir() + "/." + id + ".json.tmp");
  auto s = OwnershipStore::open(dir_, gid_t(-1), {}, kNow);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find(id + ".json: rewriting without the challenge token"),
            std::string::npos)
      << s.error().message;
  EXPECT_EQ(slurp(stateDir() + "/" + id + ".json"), legacy) << "the record was changed";
}

TEST_F(OwnershipStoreTest, TheNewestRecordOfADestinationCounts) {
  auto s = open();
  const std::string dest = "s3://bucket/dir?region=us-east-1";
  std::string first = add(*s, dest, kNow);
  EXPECT_FALSE(s->validated(dest)) << "pending";
  ASSERT_EQ(answer(*s, dest, first), OwnershipStatus::Success);
  EXPECT_TRUE(s->validated(dest));

  // A new challenge revokes the success until it is answered; the old success is gone, so
  // deleting the new record cannot bring it back.
  std::string secondId;
  std::string second = add(*s, dest, kNow + kSecond, &secondId);
  EXPECT_FALSE(s->validated(dest)) << "a repeated challenge must revoke";
  EXPECT_EQ(s->size(), 1u);
  ASSERT_EQ(answer(*s, dest, first), OwnershipStatus::Failed) << "the old token no longer counts";
  EXPECT_FALSE(s->validated(dest));
  ASSERT_EQ(answer(*s, dest, second), OwnershipStatus::Success);
  EXPECT_TRUE(s->validated(dest));
  // A wrong answer revokes too.
  ASSERT_EQ(answer(*s, dest, "wrong"), OwnershipStatus::Failed);
  EXPECT_FALSE(s->validated(dest));
  ASSERT_TRUE(s->remove(secondId));
  EXPECT_FALSE(s->validated(dest));
  EXPECT_EQ(s->size(), 0u);
  EXPECT_EQ(stateFiles(), 0u);
}

TEST_F(OwnershipStoreTest, PendingRecordsOfADestinationStayUntilTheyExpire) {
  OwnershipLimits limits;
  limits.pendingExpirySeconds = 60;
  auto s = open(limits);
  add(*s, "file:///srv/a", kNow);
  add(*s, "file:///srv/a", kNow + 30 * kSecond);
  std::string validatedToken = add(*s, "file:///srv/b", kNow);
  ASSERT_EQ(answer(*s, "file:///srv/b", validatedToken), OwnershipStatus::Success);
  EXPECT_EQ(s->size(), 3u);
  s->expire(kNow + 60 * kSecond);
  EXPECT_EQ(s->size(), 3u) << "not older than the expiry yet";
  s->expire(kNow + 61 * kSecond);
  EXPECT_EQ(s->size(), 2u);
  s->expire(kNow + 91 * kSecond);
  EXPECT_EQ(s->size(), 1u) << "only the validated record stays";
  EXPECT_TRUE(s->validated("file:///srv/b"));
  EXPECT_EQ(stateFiles(), 1u);
  // A reopen expires too.
  add(*s, "file:///srv/c", kNow + 100 * kSecond);
  s.reset();
  EXPECT_EQ(open(limits, kNow + 200 * kSecond)->size(), 1u);
}

TEST_F(OwnershipStoreTest, RecordsAreCappedOldestPendingOrFailedFirst) {
  OwnershipLimits limits;
  limits.maxRecords = 3;
  auto s = open(limits);
  std::string kept = add(*s, "file:///srv/kept", kNow);
  ASSERT_EQ(answer(*s, "file:///srv/kept", kept), OwnershipStatus::Success);
  std::vector<std::string> ids(5);
  for (int i = 0; i < 5; i++)
    add(*s, "file:///srv/d" + std::to_string(i), kNow + (i + 1) * kSecond, &ids[size_t(i)]);
  EXPECT_EQ(s->size(), 3u);
  EXPECT_EQ(stateFiles(), 3u);
  EXPECT_TRUE(s->validated("file:///srv/kept"));
  EXPECT_NE(s->find(ids[4]), nullptr);
  EXPECT_NE(s->find(ids[3]), nullptr);
  EXPECT_EQ(s->find(ids[2]), nullptr);

  // When every record is validated, a new one is refused and nothing changes.
  for (const auto &d : {"file:///srv/d3", "file:///srv/d4"}) {
    OwnershipRecord r = *s->findByDestination(d);
    r.status = OwnershipStatus::Success;
    ASSERT_TRUE(s->update(r));
  }
  EXPECT_FALSE(s->checkRoom("file:///srv/new", kNow + 10 * kSecond));
  NewOwnership n = OwnershipStore::make("file:///srv/new", "file:///srv/new", kNow + 10 * kSecond);
  auto refused = s->add(n.record, kNow + 10 * kSecond);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("ownership.max_records"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(s->size(), 3u);
  EXPECT_EQ(stateFiles(), 3u);
  // A new challenge for a validated destination replaces its record, so it has room.
  std::string again;
  add(*s, "file:///srv/kept", kNow + 11 * kSecond, &again);
  EXPECT_EQ(s->size(), 3u);
  EXPECT_EQ(stateFiles(), 3u);
  EXPECT_FALSE(s->validated("file:///srv/kept"));
  EXPECT_EQ(s->findByDestination("file:///srv/kept")->id, again);
}

} // namespace
