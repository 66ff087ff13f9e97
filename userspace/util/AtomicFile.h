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

#include <functional>
#include <nlohmann/json.hpp>

namespace ringcap {

// Calls fn(id, path, json) for every "<32 hex digits>.json" file in `dir`; `json` is
// discarded (is_discarded()) when the file is not JSON.
Result<void>
forEachJsonRecord(const std::string &dir,
                  const std::function<void(const std::string &id, const std::string &path,
                                           const nlohmann::json &json)> &fn);

} // namespace ringcap
