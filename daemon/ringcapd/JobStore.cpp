#include "JobStore.h"

#include "util/AtomicFile.h"

#include <algorithm>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <spdlog/spdlog.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace ringcap {
Result<std::unique_ptr<JobStore>> JobStore::open(const std::string &stateDirectory, gid_t group) {
  std::unique_ptr<JobStore> s(new JobStore());
  s->group_ = group;
  if (auto r = makePrivateDirectory(stateDirectory, group); !r)
    return r.error();
  s->dir_ = stateDirectory + "/captures";
  if (auto r = makePrivateDirectory(s->dir_, group); !r)
    return r.error();
  auto read = forEachJsonRecord(
      s->dir_, [&](const std::string &id, const std::string &path, const nlohmann::json &j) {
        auto rec = j.is_discarded() ? Result<CaptureRecord>(Error{EINVAL, "not JSON"})
                                    : CaptureRecord::fromStateJson(j);
        if (!rec || rec->id != id) {
          spdlog::error("ignoring the unreadable capture record {}: {}", path,
                        rec ? "id does not match the file name" : rec.error().message);
          return;
        }
        s->records_.emplace(id, std::move(*rec));
      });
  if (!read)
    return read.error();
  spdlog::info("{} capture records in {}", s->records_.size(), s->dir_);
  return s;
}

std::string JobStore::filePath(const CaptureRecord &record) const {
  return record.fileName.empty() ? std::string() : dir_ + "/" + record.fileName;
}

void JobStore::refreshFileSize(CaptureRecord &record) const {
  struct stat st {};
  record.fileSize = (!record.fileName.empty() && stat(filePath(record).c_str(), &st) == 0)
                        ? uint64_t(st.st_size)
                        : 0;
}

std::vector<std::string> JobStore::failInterrupted(const std::string &message) {
  std::vector<std::string> ids;
  for (auto &[id, r] : records_) {
    if (r.status != CaptureStatus::Pending && r.status != CaptureStatus::Running)
      continue;
    r.status = CaptureStatus::Failed;
    r.errorMessage = message;
    r.stopReason = "restart";
    r.finishedNs = wallClockNowNs();
    refreshFileSize(r);
    // The counters are those of the last periodic save: CaptureService::recountInterrupted
    // counts the file after the daemon is ready (a large file must not delay the start).
    if (auto s = save(r); !s)
      spdlog::error("capture {}: {}", id, s.error().message);
    ids.push_back(id);
  }
  return ids;
}

Result<void> JobStore::save(const CaptureRecord &record) {
  // Text in a record is made valid UTF-8 where it comes in (util/Text.h); should anything
  // slip through, its bad bytes become U+FFFD here rather than an exception.
  std::string text =
      record.toStateJson().dump(1, ' ', false, nlohmann::json::error_handler_t::replace);
  return writeFileAtomically(dir_ + "/" + record.id + ".json", text + "\n", group_);
}

Result<void> JobStore::add(CaptureRecord record) {
  if (auto r = save(record); !r)
    return r;
  std::string id = record.id;
  records_[id] = std::move(record);
  return {};
}

CaptureRecord *JobStore::find(const std::string &id) {
  auto it = records_.find(id);
  return it == records_.end() ? nullptr : &it->second;
}

std::vector<const CaptureRecord *> JobStore::newest(size_t n) const {
  std::vector<const CaptureRecord *> all;
  for (const auto &[id, r] : records_)
    all.push_back(&r);
  std::sort(all.begin(), all.end(), [](const CaptureRecord *a, const CaptureRecord *b) {
    return a->submittedNs != b->submittedNs ? a->submittedNs > b->submittedNs : a->id > b->id;
  });
  if (all.size() > n)
    all.resize(n);
  return all;
}

std::vector<std::string> JobStore::enforceRetention(uint64_t maxCaptures, uint64_t maxBytes) {
  std::vector<CaptureRecord *> done;
  uint64_t bytes = 0;
  for (auto &[id, r] : records_)
    if (r.finished()) {
      done.push_back(&r);
      bytes += r.fileSize;
    }
  std::sort(done.begin(), done.end(), [](const CaptureRecord *a, const CaptureRecord *b) {
    return a->submittedNs < b->submittedNs;
  });
  std::vector<std::string> removed;
  size_t count = done.size();
  for (CaptureRecord *r : done) {
    if (count <= maxCaptures && bytes <= maxBytes)
      break;
    std::string id = r->id;
    if (!r->fileName.empty() && unlink(filePath(*r).c_str()) != 0 && errno != ENOENT) {
      spdlog::error("retention: removing {}: {}", filePath(*r), std::strerror(errno));
      continue;
    }
    // A spool that a stop between conversion and its removal left behind.
    if (r->fileName != r->spoolName())
      (void)unlink((dir_ + "/" + r->spoolName()).c_str());
    if (unlink((dir_ + "/" + id + ".json").c_str()) != 0 && errno != ENOENT) {
      spdlog::error("retention: removing the record of {}: {}", id, std::strerror(errno));
      continue;
    }
    bytes -= r->fileSize;
    count--;
    records_.erase(id);
    removed.push_back(id);
  }
  return removed;
}

} // namespace ringcap
