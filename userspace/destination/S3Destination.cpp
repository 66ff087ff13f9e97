// s3:// destinations: a bucket and directory on S3 or an S3-compatible server.
#include "destination/AwsCredentials.h"
#include "destination/Destination.h"
#include "destination/S3Client.h"
#include "util/Text.h"

#include <cctype>

#include <spdlog/spdlog.h>
#include <sys/stat.h>

namespace ringcap {
namespace {

class S3Destination : public Destination {
public:
  S3Destination(DestinationUri uri, S3Client client, S3Options options)
      : uri_(std::move(uri)), client_(std::move(client)), options_(options) {}

  Result<void> putObject(const std::string &key, const std::string &content) override {
    auto r = client_.putObject(uri_.keyFor(key),
                               {reinterpret_cast<const uint8_t *>(content.data()), content.size()},
                               "text/plain");
    return r ? Result<void>() : Result<void>(r.error());
  }

  Result<std::string> uploadFile(const std::string &key, const std::string &path) override {
    struct stat st {};
    if (stat(path.c_str(), &st) == 0) {
      uint64_t size = uint64_t(st.st_size);
      if (size > options_.multipartThreshold)
        spdlog::info("uploading {} ({} bytes) as a multipart upload of {} parts", describe(key),
                     size, (size + options_.partSize - 1) / options_.partSize);
      else
        spdlog::info("uploading {} ({} bytes) in one request", describe(key), size);
    }
    auto etag = client_.uploadFile(uri_.keyFor(key), path);
    if (!etag)
      return etag.error();
    return "etag:" + *etag;
  }

  std::string describe(const std::string &key) const override { return uri_.describe(key); }

private:
  DestinationUri uri_;
  S3Client client_;
  S3Options options_;
};

} // namespace

Result<std::unique_ptr<Destination>> openFileDestination(const DestinationUri &uri,
                                                         const std::vector<std::string> &roots);

namespace {

// An endpoint as it is compared: lower case, without a trailing '/'.
std::string endpointKey(std::string e) {
  while (!e.empty() && e.back() == '/')
    e.pop_back();
  for (char &c : e)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

} // namespace

Result<std::string> s3EndpointFor(const DestinationUri &uri, const DestinationSettings &settings) {
  if (uri.endpoint.empty())
    return settings.s3Endpoint.value_or("");
  std::vector<std::string> allowed;
  if (settings.s3Endpoint)
    allowed.push_back(*settings.s3Endpoint);
  allowed.insert(allowed.end(), settings.s3AllowedEndpoints.begin(),
                 settings.s3AllowedEndpoints.end());
  const std::string wanted = endpointKey(uri.endpoint);
  std::string list;
  for (const auto &a : allowed) {
    if (endpointKey(a) == wanted)
      return a;
    list += (list.empty() ? "" : ", ") + a;
  }
  return Error{EINVAL, "destination_conf: endpoint \"" + safeText(uri.endpoint, 128) +
                           "\" is not allowed: a request may name only an endpoint the operator "
                           "configured (s3.endpoint or s3.allowed_endpoints); " +
                           (list.empty() ? std::string("none is configured, so leave endpoint= out")
                                         : "allowed here: " + list)};
}

Result<void> checkDestinationAllowed(const DestinationUri &uri,
                                     const DestinationSettings &settings) {
  if (uri.kind == DestinationUri::Kind::File)
    return checkFileConfinement(uri, settings.fileRoots);
  auto endpoint = s3EndpointFor(uri, settings);
  if (!endpoint)
    return endpoint.error();
  return {};
}

Result<std::unique_ptr<Destination>> openDestination(const DestinationUri &uri,
                                                     const DestinationSettings &settings) {
  if (uri.kind == DestinationUri::Kind::File)
    return openFileDestination(uri, settings.fileRoots);
  auto endpoint = s3EndpointFor(uri, settings);
  if (!endpoint)
    return endpoint.error();
  auto creds = loadAwsCredentials(settings.credentialsFile);
  if (!creds)
    return creds.error();
  S3Location where{uri.bucket, uri.region, *endpoint};
  S3Options options;
  if (settings.fastRetries)
    options.firstBackoff = std::chrono::milliseconds(50);
  options.cancel = settings.cancel;
  return std::unique_ptr<Destination>(
      new S3Destination(uri, S3Client(std::move(where), std::move(*creds), options), options));
}

} // namespace ringcap
