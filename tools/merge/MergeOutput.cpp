#include "merge/MergeOutput.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace ringcap {

MergeOutput::~MergeOutput() {
  if (fd_ >= 0 && created_)
    ::close(fd_);
}

Result<int> MergeOutput::fd() {
  if (fd_ >= 0)
    return fd_;
  if (path_ == "-") {
    fd_ = STDOUT_FILENO;
  } else {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd_ < 0)
      return Error::fromErrno(errno, path_ + ": cannot create output file");
    created_ = true;
  }
  const off_t pos = ::lseek(fd_, 0, SEEK_CUR);
  start_ = pos > 0 ? pos : 0;
  return fd_;
}

bool MergeOutput::rewindable() {
  struct stat st {};
  return fd_ >= 0 && ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) &&
         ::lseek(fd_, 0, SEEK_CUR) >= 0;
}

Result<void> MergeOutput::rewind() {
  if (::ftruncate(fd_, start_) != 0 || ::lseek(fd_, start_, SEEK_SET) < 0)
    return Error::fromErrno(errno, name() + ": cannot truncate");
  return {};
}

Result<void> MergeOutput::close() {
  if (fd_ < 0)
    return {};
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) && ::fsync(fd_) != 0)
    return Error::fromErrno(errno, name() + ": fsync failed");
  if (!created_)
    return {};
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0 && errno != EINTR)
    return Error::fromErrno(errno, name() + ": close failed");
  return {};
}

void MergeOutput::discard() {
  if (fd_ < 0 || !created_)
    return;
  struct stat mine {
  }, now{};
  const bool same = ::fstat(fd_, &mine) == 0 && ::stat(path_.c_str(), &now) == 0 &&
                    S_ISREG(now.st_mode) && mine.st_dev == now.st_dev && mine.st_ino == now.st_ino;
  ::close(fd_);
  fd_ = -1;
  if (same)
    ::unlink(path_.c_str());
}

} // namespace ringcap
