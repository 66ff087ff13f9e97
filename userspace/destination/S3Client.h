// S3Client: the few S3 operations ringcap needs to deliver captures, over libcurl with SigV4.
//
// Blocking: each call runs its HTTP requests (with retries and backoff sleeps) on the calling
// thread, so the daemon calls it from a delivery worker, never from its event loop. One
// S3Client is used by one thread at a time; it keeps its connection alive between calls.
//
// Errors say which operation on which s3://bucket/key failed, why, and what to check. Codes:
// EACCES (credentials or permissions refused), ENOENT (NoSuchBucket, NoSuchKey, NoSuchUpload),
// ECONNREFUSED / ETIMEDOUT / EHOSTUNREACH (network), ECANCELED (S3Options::cancel raised),
// EIO otherwise. They never contain the
// secret access key, the session token or the Authorization header.
#pragma once

#include "destination/AwsCredentials.h"
#include "util/Cancellation.h"
#include "util/Result.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringcap {

struct S3Location {
  std::string bucket;
  std::string region;   // e.g. us-east-1 ("" = us-east-1)
  std::string endpoint; // "" = AWS (https://<bucket>.s3.<region>.amazonaws.com, virtual-hosted
                        // style; path style for bucket names with dots); else e.g.
                        // http://127.0.0.1:9000 (path style)
};

struct S3ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag; // without the quotes
};

struct S3Options {
  std::chrono::milliseconds connectTimeout{5000};
  std::chrono::milliseconds requestTimeout{120000};
  // Tries per request. Retried, after firstBackoff, 2x, 4x...: HTTP 5xx, 429, 408, S3's
  // RequestTimeout, timeouts and connection errors. Never other 4xx answers.
  int attempts = 4;
  std::chrono::milliseconds firstBackoff{500};
  uint64_t multipartThreshold = 16u << 20; // files larger than this go up as multipart
  uint64_t partSize = 8u << 20;            // raised to S3's minimum of 5 MiB when smaller
  // When raised, the transfer in progress is aborted within about a second (curl's progress
  // callback), backoff waits end at once, and the call fails with ECANCELED.
  std::shared_ptr<const Cancellation> cancel;
};

class S3Client {
public:
  S3Client(S3Location where, AwsCredentials creds, S3Options options = {});
  ~S3Client();
  S3Client(const S3Client &) = delete;
  S3Client &operator=(const S3Client &) = delete;
  S3Client(S3Client &&) noexcept;
  S3Client &operator=(S3Client &&) noexcept;

  // PutObject. Sends Content-MD5 and checks that the ETag the server returns is the MD5 of
  // `data`. Returns the ETag (quotes stripped).
  Result<std::string> putObject(const std::string &key, std::span<const uint8_t> data,
                                const std::string &contentType = "application/octet-stream");

  // Uploads a local file: one PutObject up to options.multipartThreshold bytes, else a multipart
  // upload (CreateMultipartUpload, UploadPart for each part with retries,
  // CompleteMultipartUpload). When the multipart upload fails it is aborted
  // (AbortMultipartUpload), so that no parts stay behind; if even the abort fails the error
  // names the upload id. The returned ETag is checked against the content: MD5 for a single
  // PUT, MD5(concatenated part MD5s)-N for N parts (S3), or the MD5 of the whole content
  // (what some S3-compatible servers, s3rver among them, report for a multipart object).
  Result<std::string> uploadFile(const std::string &key, const std::string &path);

  Result<S3ObjectInfo> headObject(const std::string &key);
  Result<std::vector<uint8_t>> getObject(const std::string &key);
  // ListObjectsV2, following continuation tokens to the end.
  Result<std::vector<S3ObjectInfo>> listObjects(const std::string &prefix);
  Result<void> deleteObject(const std::string &key);
  // ListMultipartUploads: the ids of the uploads in progress under `prefix`.
  Result<std::vector<std::string>> listMultipartUploads(const std::string &prefix);

  const S3Location &location() const { return where_; }

  struct Request;
  struct Response;

private:
  Result<Response> perform(const Request &request);
  Result<Response> performOnce(const Request &request, bool &retryable);
  Result<std::string> uploadMultipart(const std::string &key, const std::string &path, int fd,
                                      uint64_t size);
  Result<void> abortMultipart(const std::string &key, const std::string &uploadId);
  std::string url(const std::string &key, const std::string &query) const;
  Error fail(const Request &request, int code, std::string what) const;

  S3Location where_;
  AwsCredentials creds_;
  S3Options options_;
  struct Curl;
  std::unique_ptr<Curl> curl_;
};

// Pieces of the S3 protocol, exposed for the tests.
namespace s3detail {

// SigV4 URI encoding: A-Za-z0-9-._~ kept, everything else %XX (upper-case hex), and '/' kept
// when keepSlash (object keys: each path segment encoded, segments joined by '/').
std::string uriEncode(std::string_view s, bool keepSlash);

// The canonical query string SigV4 wants, which curl 7.88 does not build itself: parameters
// sorted by encoded name then value, each "name=value" (also when the value is empty).
std::string canonicalQuery(std::vector<std::pair<std::string, std::string>> params);

// A small XML element tree, enough for S3's responses: element names without namespace
// prefixes, their text (entities decoded), their children. Attributes, comments, processing
// instructions and DOCTYPE are skipped. Bounded: at most 64 levels and 200000 elements; junk
// gives an error, never a crash.
struct XmlElement {
  std::string name;
  std::string text;
  std::vector<XmlElement> children;

  const XmlElement *child(std::string_view childName) const;
  std::string childText(std::string_view childName) const; // "" when absent
};
Result<XmlElement> parseXml(std::string_view document);

// Hex MD5 of the concatenated binary part MD5s, and "-N": what S3 reports for N parts.
std::string multipartEtag(const std::vector<std::string> &partMd5Hex);

} // namespace s3detail

} // namespace ringcap
