// CaptureFileOutput: the file under a capture writer (PcapWriter, PcapngWriter). It owns the
// fd, writes buffers of whole records or blocks (going on after partial writes and EINTR),
// counts the bytes that end on a whole record or block, cuts the file back to them after a
// failed write, keeps the failure, and syncs and closes the file.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "util/Result.h"

namespace ringcap {

class CaptureFileOutput {
public:
  // Takes `fd`, an open writable fd, which it closes. `path` only names the file in messages.
  // truncateToWhole() counts from the fd's offset now (0 if it cannot seek: a pipe).
  CaptureFileOutput(int fd, std::string path);
  CaptureFileOutput(const CaptureFileOutput &) = delete;
  CaptureFileOutput &operator=(const CaptureFileOutput &) = delete;
  // Closes the fd unless finish() has.
  ~CaptureFileOutput();

  const std::string &path() const { return path_; }
  // The fd is open: finish() has not run.
  bool isOpen() const { return fd_ >= 0; }
  const std::optional<Error> &failure() const { return failure_; }
  // Bytes in the file that end on a whole record or block.
  uint64_t wholeBytes() const { return whole_; }

  // The failure, or an error once finished; ok while records may be written.
  Result<void> usable() const;

  // A write that did not complete: how many of the bytes reached the file, and the errno
  // (EIO when write() wrote nothing).
  struct ShortWrite {
    size_t written;
    int err;
  };
  // Writes all of `bytes`, which are whole records or blocks; they then count as whole. On a
  // ShortWrite none of them counts yet: the caller says which part is whole (truncateToWhole)
  // and fails the output (fail).
  std::optional<ShortWrite> write(std::span<const uint8_t> bytes);
  // The same for the bytes the iovecs point to, in order, with writev (at most IOV_MAX of
  // them per call). The iovecs are consumed: their bases and lengths change.
  std::optional<ShortWrite> writev(std::span<iovec> iov);
  // After a ShortWrite of `written` bytes: the first `whole` of them count as whole, and the
  // file is cut back to their end if more reached it (a file that cannot be cut, such as a
  // pipe, keeps them).
  void truncateToWhole(size_t whole, size_t written);
  // Keeps `error` as the failure, which usable() returns from now on, and returns it.
  Error fail(Error error);

  // Fsyncs (an fd that cannot be synced, EINVAL/EROFS, is fine; `sync` false: the caller
  // syncs the file later, elsewhere) and closes the file. Later, usable() is an error.
  Result<void> finish(bool sync = true);

private:
  int fd_;
  std::string path_;
  off_t base_ = 0; // file offset of the first byte written
  uint64_t whole_ = 0;
  std::optional<Error> failure_;
  bool finished_ = false;
};

} // namespace ringcap
