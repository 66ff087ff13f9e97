// JobStore: atomic records, reading them back, interrupted captures, retention.
#include "JobStore.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace ringcap;
namespace fs = std::filesystem;

class JobStoreTest : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ringcap-jobstore.XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }

  CaptureRecord record(int64_t submitted, CaptureStatus status, uint64_t fileBytes) {
    CaptureRecord r;
    r.id = newCaptureId();
    r.request = *validateCaptureRequest(
        {{"system", "magic-transit"}, {"type", "simple"}, {"time_limit", 5}, {"packet_limit", 9}},
        RequestMode::Api);
    r.status = status;
    r.submittedNs = submitted;
    r.fileName = r.id + ".pcapng";
    std::ofstream(dir_ + "/captures/" + r.fileName) << std::string(fileBytes, 'x');
    r.fileSize = fileBytes;
    return r;
  }
  std::string dir_;
};

TEST_F(JobStoreTest, RecordsSurviveAReopenAndInterruptedOnesFail) {
  std::string running, done;
  {
    auto s = JobStore::open(dir_, gid_t(-1));
    ASSERT_TRUE(s) << s.error().message;
    auto a = record(1, CaptureStatus::Running, 10);
    auto b = record(2, CaptureStatus::Success, 20);
    running = a.id, done = b.id;
    ASSERT_TRUE((*s)->add(a));
    ASSERT_TRUE((*s)->add(b));
  }
  struct stat st {};
  ASSERT_EQ(stat((dir_ + "/captures/" + running + ".json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0007, 0u) << "records must not be world-readable";
  ASSERT_EQ(stat((dir_ + "/captures").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u);

  auto s = JobStore::open(dir_, gid_t(-1));
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)->size(), 2u);
  auto failed = (*s)->failInterrupted("restarted");
  ASSERT_EQ(failed, std::vector<std::string>{running});
  EXPECT_EQ((*s)->find(running)->status, CaptureStatus::Failed);
  EXPECT_EQ((*s)->find(running)->errorMessage, "restarted");
  EXPECT_EQ((*s)->find(running)->stopReason, "restart");
  EXPECT_EQ((*s)->find(done)->status, CaptureStatus::Success);
  // The change was saved.
  auto again = JobStore::open(dir_, gid_t(-1));
  EXPECT_EQ((*again)->find(running)->status, CaptureStatus::Failed);
}

TEST_F(JobStoreTest, NewestFirstAndAnUnreadableRecordIsLeftAlone) {
  auto s = JobStore::open(dir_, gid_t(-1));
  ASSERT_TRUE(s);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; i++) {
    auto r = record(100 + i, CaptureStatus::Success, 1);
    ids.push_back(r.id);
    ASSERT_TRUE((*s)->add(r));
  }
  auto newest = (*s)->newest(3);
  ASSERT_EQ(newest.size(), 3u);
  EXPECT_EQ(newest[0]->id, ids[4]);
  EXPECT_EQ(newest[2]->id, ids[2]);
  std::string junk = dir_ + "/captures/" + std::string(32, 'a') + ".json";
  std::ofstream(junk) << "{not json";
  auto reopened = JobStore::open(dir_, gid_t(-1));
  ASSERT_TRUE(reopened);
  EXPECT_EQ((*reopened)->size(), 5u);
  EXPECT_TRUE(fs::exists(junk)) << "an unreadable record is never deleted";
}

TEST_F(JobStoreTest, RetentionRemovesTheOldestFinishedCapturesFirst) {
  auto s = JobStore::open(dir_, gid_t(-1));
  ASSERT_TRUE(s);
  auto oldRunning = record(1, CaptureStatus::Running, 1000);
  auto a = record(2, CaptureStatus::Success, 100);
  auto b = record(3, CaptureStatus::Failed, 100);
  auto c = record(4, CaptureStatus::Success, 100);
  for (auto *r : {&oldRunning, &a, &b, &c})
    ASSERT_TRUE((*s)->add(*r));

  // Count: 3 finished, at most 2 kept -> the oldest finished one (a) goes; running stays.
  auto removed = (*s)->enforceRetention(2, 1u << 30);
  EXPECT_EQ(removed, std::vector<std::string>{a.id});
  EXPECT_FALSE(fs::exists(dir_ + "/captures/" + a.fileName));
  EXPECT_FALSE(fs::exists(dir_ + "/captures/" + a.id + ".json"));
  EXPECT_TRUE((*s)->find(oldRunning.id));

  // Bytes: 200 bytes of finished files, at most 150 -> b goes.
  removed = (*s)->enforceRetention(100, 150);
  EXPECT_EQ(removed, std::vector<std::string>{b.id});
  EXPECT_TRUE((*s)->find(c.id));
  EXPECT_TRUE(fs::exists(dir_ + "/captures/" + c.fileName));
}

TEST_F(JobStoreTest, OutputFormatAndTheConvertedFileSurviveAReopen) {
  std::string converted, spooled;
  {
    auto s = JobStore::open(dir_, gid_t(-1));
    ASSERT_TRUE(s);
    auto a = record(1, CaptureStatus::Success, 10);
    a.fileName = a.id + ".pcap"; // converted
    std::ofstream(dir_ + "/captures/" + a.fileName) << "pcap";
    auto b = record(2, CaptureStatus::Success, 10);
    b.outputFormat = OutputFormat::Pcapng;
    converted = a.id, spooled = b.id;
    ASSERT_TRUE((*s)->add(a));
    ASSERT_TRUE((*s)->add(b));
  }
  auto s = JobStore::open(dir_, gid_t(-1));
  ASSERT_TRUE(s);
  const CaptureRecord *a = (*s)->find(converted), *b = (*s)->find(spooled);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->outputFormat, OutputFormat::Pcap);
  EXPECT_EQ(a->fileName, converted + ".pcap");
  EXPECT_FALSE(a->needsConversion());
  EXPECT_EQ(a->toJson().value("file_name", ""), "pcap_" + converted + ".pcap");
  EXPECT_EQ(a->toJson().value("output_format", ""), "pcap");
  EXPECT_EQ(b->outputFormat, OutputFormat::Pcapng);
  EXPECT_FALSE(b->needsConversion());
  EXPECT_EQ(b->toJson().value("file_name", ""), "pcap_" + spooled + ".pcapng");

  // A pcap capture whose spool is not converted yet (a delivery to resume).
  CaptureRecord pending = *a;
  pending.fileName = pending.spoolName();
  pending.status = CaptureStatus::ConversionPending;
  EXPECT_TRUE(pending.needsConversion());
  EXPECT_FALSE(pending.toJson().contains("file_name")) << "no file to download yet";

  // A record names only its spool or its output.
  nlohmann::json state = b->toStateJson();
  state["file_name"] = spooled + ".pcap"; // pcapng captures have no .pcap file
  EXPECT_FALSE(CaptureRecord::fromStateJson(state).ok());
  state = b->toStateJson();
  state["output_format"] = "pcap2";
  EXPECT_FALSE(CaptureRecord::fromStateJson(state).ok());
  // Records written before output_format existed load with the default, pcap.
  state = b->toStateJson();
  state.erase("output_format");
  auto legacy = CaptureRecord::fromStateJson(state);
  ASSERT_TRUE(legacy.ok()) << legacy.error().message;
  EXPECT_EQ(legacy->outputFormat, OutputFormat::Pcap);
}

TEST_F(JobStoreTest, RetentionAlsoRemovesASpoolLeftBesideItsPcapFile) {
  auto s = JobStore::open(dir_, gid_t(-1));
  ASSERT_TRUE(s);
  auto a = record(1, CaptureStatus::Success, 10); // writes <id>.pcapng: the leftover spool
  a.fileName = a.id + ".pcap";
  std::ofstream(dir_ + "/captures/" + a.fileName) << std::string(10, 'p');
  auto b = record(2, CaptureStatus::Success, 10);
  ASSERT_TRUE((*s)->add(a));
  ASSERT_TRUE((*s)->add(b));
  EXPECT_EQ((*s)->enforceRetention(1, 1u << 30), std::vector<std::string>{a.id});
  EXPECT_FALSE(fs::exists(dir_ + "/captures/" + a.id + ".pcap"));
  EXPECT_FALSE(fs::exists(dir_ + "/captures/" + a.id + ".pcapng"));
  EXPECT_TRUE(fs::exists(dir_ + "/captures/" + b.id + ".pcapng"));
}

// A record's text is made valid UTF-8 where it comes in; should invalid bytes reach save()
// anyway, they are replaced: save() neither throws nor writes invalid JSON.
TEST_F(JobStoreTest, SaveNeverThrowsOnInvalidUtf8) {
  auto s = JobStore::open(dir_, gid_t(-1));
  ASSERT_TRUE(s);
  auto r = record(1, CaptureStatus::Failed, 0);
  r.errorMessage = "server said: Acc\xe8s refus\xe9 \xff cut \xe2\x82";
  Result<void> saved;
  EXPECT_NO_THROW(saved = (*s)->save(r));
  ASSERT_TRUE(saved) << saved.error().message;
  auto again = JobStore::open(dir_, gid_t(-1));
  ASSERT_TRUE(again);
  const CaptureRecord *back = (*again)->find(r.id);
  ASSERT_NE(back, nullptr) << "the record written was not readable JSON";
  EXPECT_EQ(back->status, CaptureStatus::Failed);
  EXPECT_EQ(back->errorMessage.rfind("server said: Acc", 0), 0u) << back->errorMessage;
}

// Records saved before offset_time was refused (it was accepted and did nothing) and before
// stop_requested existed are still read.
TEST_F(JobStoreTest, OlderRecordsWithOffsetTimeAndWithoutStopRequestedAreRead) {
  std::string id;
  {
    auto s = JobStore::open(dir_, gid_t(-1));
    ASSERT_TRUE(s);
    auto r = record(1, CaptureStatus::Success, 10);
    id = r.id;
    nlohmann::json j = r.toStateJson();
    j["request"]["offset_time"] = "2026-11-26T10:00:00Z";
    j.erase("stop_requested_ns");
    std::ofstream(dir_ + "/captures/" + id + ".json") << j.dump();
  }
  auto s = JobStore::open(dir_, gid_t(-1));
  ASSERT_TRUE(s);
  const CaptureRecord *r = (*s)->find(id);
  ASSERT_NE(r, nullptr) << "the older record was not read";
  EXPECT_EQ(r->stopRequestedNs, 0);
  EXPECT_FALSE(r->toJson().contains("offset_time"));
  EXPECT_FALSE(r->toJson().contains("stop_requested"));
}

// A look-back's record keeps its offset_time and history_start across a reopen.
TEST_F(JobStoreTest, LookBackRecordsKeepOffsetTimeAndHistoryStart) {
  std::string id;
  {
    auto s = JobStore::open(dir_, gid_t(-1));
    ASSERT_TRUE(s);
    auto r = record(1, CaptureStatus::Success, 10);
    r.request.offset_time = "2026-11-26T10:00:00Z";
    r.lookedBack = true;
    r.historyStartNs = int64_t(1795687190) * 1000000000;
    id = r.id;
    ASSERT_TRUE((*s)->add(r));
  }
  auto s = JobStore::open(dir_, gid_t(-1));
  ASSERT_TRUE(s);
  const CaptureRecord *r = (*s)->find(id);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->lookedBack);
  EXPECT_EQ(r->toJson().value("offset_time", ""), "2026-11-26T10:00:00Z");
  EXPECT_EQ(r->toJson().value("history_start", ""), "2026-11-26T09:59:50.000000Z");
}
