// destination_conf: where a full capture is delivered. Two forms:
//   s3://bucket/dir?region=REGION[&endpoint=http://host:port]   (S3 or an S3-compatible server)
//   file:///absolute/dir                                          (a local directory)
#pragma once

#include "util/Result.h"

#include <string>
#include <string_view>
#include <vector>

namespace ringcap {

struct DestinationUri {
  enum class Kind { S3, File };
  Kind kind = Kind::File;
  std::string bucket;   // s3
  std::string prefix;   // s3: the directory inside the bucket, "" or "a/b" (no slashes at the ends)
  std::string region;   // s3
  std::string endpoint; // s3: "" (AWS, or the configured endpoint) or http(s)://host[:port]
  std::string directory; // file: absolute and normalised, no trailing slash
  // One spelling per destination (the key of its ownership record).
  std::string canonical() const;
  // Where an object with this key (relative to the destination) lives, for messages.
  std::string describe(const std::string &key) const;
  // The key prefix inside the destination: prefix + "/" or "".
  std::string keyFor(const std::string &name) const;
};

// Parses and checks the syntax. Errors (EINVAL) say "destination_conf: <rule>".
Result<DestinationUri> parseDestinationUri(std::string_view text);

// For file:// destinations: the directory must lie below one of `roots` (checked lexically,
// then again after resolving the symbolic links of the part that exists), so that
// file:///etc, "..", and links out of a root are refused. Errors (EINVAL) name the rule.
Result<void> checkFileConfinement(const DestinationUri &uri, const std::vector<std::string> &roots);

// Opens (creating when asked) the directory `relative` below `root` one component at a time
// with O_NOFOLLOW, so that a symbolic link swapped in later cannot lead out of the root.
// Returns an O_DIRECTORY fd the caller closes.
Result<int> openConfinedDirectory(const std::string &root, const std::string &relative,
                                  bool create);

} // namespace ringcap
