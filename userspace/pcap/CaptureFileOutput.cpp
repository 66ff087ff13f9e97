#include "pcap/CaptureFileOutput.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

namespace ringcap {

CaptureFileOutput::CaptureFileOutput(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
  const off_t pos = ::lseek(fd_, 0, SEEK_CUR);
  base_ = pos > 0 ? pos : 0; // not seekable (pipe): nothing to truncate
}

CaptureFileOutput::~CaptureFileOutput() {
  if (fd_ >= 0)
    ::close(fd_);
}

Result<void> CaptureFileOutput::usable() const {
  if (failure_)
    return *failure_;
  if (finished_)
    return Error{EINVAL, path_ + ": capture file is already finished"};
  return {};
}

std::optional<CaptureFileOutput::ShortWrite>
CaptureFileOutput::write(std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    const int err = errno;
    if (n > 0)
      done += static_cast<size_t>(n);
    else if (n < 0 && err == EINTR)
      continue;
    else
      return ShortWrite{done, n == 0 ? EIO : err};
  }
  whole_ += bytes.size();
  return std::nullopt;
}

std::optional<CaptureFileOutput::ShortWrite> CaptureFileOutput::writev(std::span<iovec> iov) {
  size_t done = 0, i = 0;
  auto skipEmpty = [&] {
    while (i < iov.size() && iov[i].iov_len == 0)
      ++i;
  };
  skipEmpty();
  while (i < iov.size()) {
    const int count = static_cast<int>(std::min<size_t>(iov.size() - i, IOV_MAX));
    ssize_t n = ::writev(fd_, &iov[i], count);
    const int err = errno;
    if (n < 0 && err == EINTR)
      continue;
    if (n <= 0)
      return ShortWrite{done, n == 0 ? EIO : err};
    done += static_cast<size_t>(n);
    for (size_t left = static_cast<size_t>(n); left > 0;) { // a short write: go on mid-iovec
      const size_t step = std::min(left, iov[i].iov_len);
      iov[i].iov_base = static_cast<uint8_t *>(iov[i].iov_base) + step;
      iov[i].iov_len -= step;
      left -= step;
      if (iov[i].iov_len == 0)
        ++i;
    }
    skipEmpty();
  }
  whole_ += done;
  return std::nullopt;
}

void CaptureFileOutput::truncateToWhole(size_t whole, size_t written) {
  whole_ += whole;
  if (written > whole)
    (void)::ftruncate(fd_, base_ + static_cast<off_t>(whole_)); // fails only for non-files
}

Error CaptureFileOutput::fail(Error error) {
  failure_ = std::move(error);
  return *failure_;
}

Result<void> CaptureFileOutput::finish(bool sync) {
  if (auto r = usable(); !r)
    return r;
  finished_ = true;
  const int fd = fd_;
  fd_ = -1;
  int rc = sync ? ::fsync(fd) : 0;
  int err = errno;
  if (rc != 0 && err != EINVAL && err != EROFS) { // EINVAL/EROFS: fd cannot be synced (pipe)
    ::close(fd);
    return fail(Error::fromErrno(err, path_ + ": fsync failed"));
  }
  rc = ::close(fd);
  err = errno;
  if (rc != 0 && err != EINTR)
    return fail(Error::fromErrno(err, path_ + ": close failed"));
  return {};
}

} // namespace ringcap
