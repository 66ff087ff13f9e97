// MergeOutput: where the merged capture goes: a file, created only when the first block is
// written (so that an input error leaves an existing file alone), or stdout ("-").
#pragma once

#include <string>

#include "util/Result.h"

namespace ringcap {

class MergeOutput {
public:
  explicit MergeOutput(std::string path) : path_(std::move(path)) {}
  // An open descriptor (a pipe or a socket) that the caller keeps and closes; `name` for messages.
  MergeOutput(std::string name, int fd) : path_(std::move(name)), fd_(fd) {}
  ~MergeOutput();
  MergeOutput(const MergeOutput &) = delete;
  MergeOutput &operator=(const MergeOutput &) = delete;

  // "<stdout>" or the path.
  std::string name() const { return path_ == "-" ? "<stdout>" : path_; }
  // The descriptor, opening (creating or truncating, mode 0666 & ~umask) it the first time.
  Result<int> fd();
  // Whether rewind() can work: a regular file (stdout included when redirected to one).
  bool rewindable();
  // Drops everything written so far.
  Result<void> rewind();
  // Syncs and closes the file (stdout: syncs only when it is a regular file).
  Result<void> close();
  // After a failure: closes the file and removes it if it was created here.
  void discard();

private:
  std::string path_;
  int fd_ = -1;
  off_t start_ = 0; // offset of the first byte written (stdout may be appended to)
  bool created_ = false;
};

} // namespace ringcap
