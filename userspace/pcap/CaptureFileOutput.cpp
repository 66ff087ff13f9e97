#include "pcap/CaptureFileOutput.h"

#include <unistd.h>

#include <cerrno>

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

void CaptureFileOutput::truncateToWhole(size_t whole, size_t written) {
  whole_ += whole;
  if (written > whole)
    (void)::ftruncate(fd_, base_ + static_cast<off_t>(whole_)); // fails only for non-files
}

Error CaptureFileOutput::fail(Error error) {
  failure_ = std::move(error);
  return *failure_;
}

Result<void> CaptureFileOutput::finish() {
  if (auto r = usable(); !r)
    return r;
  finished_ = true;
  const int fd = fd_;
  fd_ = -1;
  int rc = ::fsync(fd);
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
