#include "JobStore.h"

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
namespace {

Result<void> makeDirectory(const std::string &path, gid_t group) {
  if (mkdir(path.c_str(), 0750) != 0 && errno != EEXIST)
    return Error::fromErrno(errno, "creating " + path);
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    return Error::fromErrno(errno, path);
  if (!S_ISDIR(st.st_mode))
    return Error{ENOTDIR, path + " is not a directory"};
  if (group != gid_t(-1) && st.st_gid != group && chown(path.c_str(), uid_t(-1), group) != 0)
    return Error::fromErrno(errno, "giving " + path + " to its group");
  if ((st.st_mode & 07777) != 0750 && chmod(path.c_str(), 0750) != 0)
    return Error::fromErrno(errno, "chmod " + path);
  return {};
}

Result<void> writeAll(int fd, const std::string &data, const std::string &path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return Error::fromErrno(errno, "writing " + path);
    off += size_t(n);
  }
  return {};
}

} // namespace

Result<std::unique_ptr<JobStore>> JobStore::open(const std::string &stateDirectory, gid_t group) {
  std::unique_ptr<JobStore> s(new JobStore());
  s->group_ = group;
  if (auto r = makeDirectory(stateDirectory, group); !r)
    return r.error();
  s->dir_ = stateDirectory + "/captures";
  if (auto r = makeDirectory(s->dir_, group); !r)
    return r.error();
  DIR *d = opendir(s->dir_.c_str());
  if (!d)
    return Error::fromErrno(errno, "reading " + s->dir_);
  while (dirent *e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() != 37 || name.substr(32) != ".json")
      continue;
    std::string path = s->dir_ + "/" + name;
    std::ifstream in(path);
    std::stringstream buf;
    buf << in.rdbuf();
    auto j = nlohmann::json::parse(buf.str(), nullptr, false);
    auto rec = j.is_discarded() ? Result<CaptureRecord>(Error{EINVAL, "not JSON"})
                                : CaptureRecord::fromStateJson(j);
    if (!rec || rec->id != name.substr(0, 32)) {
      spdlog::error("ignoring the unreadable capture record {}: {}", path,
                    rec ? "id does not match the file name" : rec.error().message);
      continue;
    }
    s->records_.emplace(rec->id, std::move(*rec));
  }
  closedir(d);
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
    if (r.finished())
      continue;
    r.status = CaptureStatus::Failed;
    r.errorMessage = message;
    r.stopReason = "restart";
    r.finishedNs = wallClockNowNs();
    refreshFileSize(r);
    if (auto s = save(r); !s)
      spdlog::error("capture {}: {}", id, s.error().message);
    ids.push_back(id);
  }
  return ids;
}

Result<void> JobStore::save(const CaptureRecord &record) {
  std::string path = dir_ + "/" + record.id + ".json";
  std::string tmp = dir_ + "/." + record.id + ".json.tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0)
    return Error::fromErrno(errno, "creating " + tmp);
  if (group_ != gid_t(-1))
    (void)fchown(fd, uid_t(-1), group_);
  auto w = writeAll(fd, record.toStateJson().dump(1) + "\n", tmp);
  if (w && fsync(fd) != 0)
    w = Error::fromErrno(errno, "fsync " + tmp);
  close(fd);
  if (!w) {
    unlink(tmp.c_str());
    return w;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return Error::fromErrno(err, "renaming " + tmp);
  }
  int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return {};
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
