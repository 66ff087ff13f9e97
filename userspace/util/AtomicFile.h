// Replacing a small file atomically: a temporary file in the same directory, fsync,
// rename, fsync of the directory. Readers see the old or the new contents, never a mix.
#pragma once

#include "util/Result.h"

#include <string>
#include <sys/types.h>

namespace ringcap {

// Writes `content` to `path` (mode 0640; group `group` unless it is -1).
Result<void> writeFileAtomically(const std::string &path, const std::string &content,
                                 gid_t group = gid_t(-1));

// Creates `path` as a directory with mode 0750 (group `group` unless -1), or fixes the mode
// and group of an existing one.
Result<void> makePrivateDirectory(const std::string &path, gid_t group = gid_t(-1));

} // namespace ringcap
