// Destination: a place full captures and ownership challenges are written to: a local
// directory (file://) or an S3 bucket (s3://).
#pragma once

#include "destination/DestinationUri.h"
#include "util/Cancellation.h"
#include "util/Result.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ringcap {

class Destination {
public:
  virtual ~Destination() = default;
  // Writes a small object (an ownership challenge) at `key` below the destination.
  virtual Result<void> putObject(const std::string &key, const std::string &content) = 0;
  // Delivers a local file at `key` and verifies what arrived; returns the checksum that was
  // verified ("sha256:<hex>" for files, "etag:<etag>" for S3).
  virtual Result<std::string> uploadFile(const std::string &key, const std::string &path) = 0;
  // Where `key` lives, for messages and records.
  virtual std::string describe(const std::string &key) const = 0;
};

struct DestinationSettings {
  std::vector<std::string> fileRoots;          // destinations.file_roots
  std::optional<std::string> s3Endpoint;       // s3.endpoint
  std::vector<std::string> s3AllowedEndpoints; // s3.allowed_endpoints
  std::optional<std::string> credentialsFile;  // s3.credentials_file
  bool fastRetries = false;                    // tests: short S3 backoff
  std::shared_ptr<const Cancellation> cancel;  // aborts S3 transfers (Worker::cancellation)
};

// What the operator allows a request to name, checked when a request names a destination:
// file:// below destinations.file_roots (checkFileConfinement); for s3://, an endpoint= only
// when it is s3.endpoint or one of s3.allowed_endpoints (scheme, host and port compared
// without regard to case), so that a caller cannot send requests signed with the operator's
// key to a server of its choice, nor over plain http unless the operator wrote http://.
// Errors (EINVAL) say "destination_conf: <rule>".
Result<void> checkDestinationAllowed(const DestinationUri &uri,
                                     const DestinationSettings &settings);

// The endpoint an s3:// destination is delivered to: the one it names (when allowed), else
// s3.endpoint, else "" (AWS).
Result<std::string> s3EndpointFor(const DestinationUri &uri, const DestinationSettings &settings);

// Checks what checkDestinationAllowed checks, and credentials (s3://); returns a destination.
Result<std::unique_ptr<Destination>> openDestination(const DestinationUri &uri,
                                                     const DestinationSettings &settings);

// "sha256:<hex>" of a file's contents.
Result<std::string> sha256OfFile(const std::string &path);

} // namespace ringcap
