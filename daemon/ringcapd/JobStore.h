// JobStore: every capture record and its file, under <state_directory>/captures. Records
// are written atomically (temporary file, fsync, rename, fsync of the directory).
#pragma once

#include "CaptureRecord.h"

#include <map>
#include <memory>
#include <sys/types.h>
#include <vector>

namespace ringcap {

class JobStore {
public:
  // Creates the directories (0750, group `group` when it is not -1) and reads every record.
  // Unreadable records are logged and left in place, never deleted.
  static Result<std::unique_ptr<JobStore>> open(const std::string &stateDirectory, gid_t group);

  // Marks every capture that was pending or running when the daemon stopped as failed, with
  // `message`; returns their ids. Captures being delivered are left to resume. Their counters
  // are those of the last save until CaptureService::recountInterrupted has read the files.
  std::vector<std::string> failInterrupted(const std::string &message);

  Result<void> save(const CaptureRecord &record);
  Result<void> add(CaptureRecord record);
  CaptureRecord *find(const std::string &id);
  // The n newest records (by submission time), newest first.
  std::vector<const CaptureRecord *> newest(size_t n) const;
  size_t size() const { return records_.size(); }

  std::string capturesDirectory() const { return dir_; }
  std::string filePath(const CaptureRecord &record) const;
  // Sets record.fileSize from the file on disk (0 when missing).
  void refreshFileSize(CaptureRecord &record) const;

  // Removes the oldest finished captures (record and file) while more than maxCaptures are
  // finished or their files take more than maxBytes; returns the removed ids.
  std::vector<std::string> enforceRetention(uint64_t maxCaptures, uint64_t maxBytes);

  gid_t group() const { return group_; }

private:
  JobStore() = default;
  std::string dir_;
  gid_t group_ = gid_t(-1);
  std::map<std::string, CaptureRecord> records_;
};

} // namespace ringcap
