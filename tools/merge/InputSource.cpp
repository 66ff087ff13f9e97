#include "merge/InputSource.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "destination/AwsCredentials.h"
#include "destination/DestinationUri.h"
#include "destination/S3Client.h"

namespace ringcap {
namespace {

// An S3 object, downloaded on the first open() into an unlinked temporary file, so that
// memory holds at most one object at a time and the merge reads it like a local file.
class S3ObjectSource : public InputSource {
public:
  S3ObjectSource(std::shared_ptr<S3Client> client, std::string key)
      : client_(std::move(client)), key_(std::move(key)),
        name_("s3://" + client_->location().bucket + "/" + key_) {}
  ~S3ObjectSource() override {
    if (fd_ >= 0)
      ::close(fd_);
  }
  const std::string &name() const override { return name_; }
  bool reopenable() const override { return true; }
  Result<std::unique_ptr<PcapReader>> open() override {
    if (fd_ < 0)
      if (auto r = download(); !r)
        return r.error();
    auto reader = PcapReader::open(readerPath());
    if (!reader)
      return own(reader.error());
    return reader;
  }

protected:
  std::string readerPath() const override { return "/proc/self/fd/" + std::to_string(fd_); }

private:
  Result<void> download() {
    auto bytes = client_->getObject(key_);
    if (!bytes)
      return bytes.error();
    const char *tmp = std::getenv("TMPDIR");
    std::string path = std::string(tmp && *tmp ? tmp : "/tmp") + "/ringcap-merge.XXXXXX";
    const int fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0)
      return Error::fromErrno(errno, path + ": cannot create a temporary file for " + name_);
    ::unlink(path.c_str());
    for (size_t done = 0; done < bytes->size();) {
      const ssize_t n = ::write(fd, bytes->data() + done, bytes->size() - done);
      const int err = errno;
      if (n < 0 && err == EINTR)
        continue;
      if (n <= 0) {
        ::close(fd);
        return Error::fromErrno(n < 0 ? err : EIO, "cannot store " + name_ +
                                                       " in a temporary file in " +
                                                       (tmp && *tmp ? tmp : "/tmp"));
      }
      done += static_cast<size_t>(n);
    }
    fd_ = fd;
    return {};
  }

  std::shared_ptr<S3Client> client_;
  std::string key_;
  std::string name_;
  int fd_ = -1;
};

Result<std::vector<std::unique_ptr<InputSource>>> expandS3(const std::string &arg,
                                                           const InputSettings &settings) {
  auto uri = parseDestinationUri(arg);
  if (!uri) {
    std::string message = uri.error().message;
    if (const std::string tag = "destination_conf: "; message.rfind(tag, 0) == 0)
      message.erase(0, tag.size());
    return Error{uri.error().code, arg + ": " + message};
  }
  auto creds = loadAwsCredentials(settings.credentialsFile);
  if (!creds)
    return Error{creds.error().code, arg + ": " + creds.error().message};
  auto client = std::make_shared<S3Client>(S3Location{uri->bucket, uri->region, uri->endpoint},
                                           std::move(*creds));
  const std::string prefix = uri->keyFor("");
  auto objects = client->listObjects(prefix);
  if (!objects)
    return objects.error();
  std::vector<std::string> keys;
  for (const auto &o : *objects) {
    const std::string base = o.key.substr(o.key.rfind('/') + 1);
    if (o.key.size() > prefix.size() && ::fnmatch("pcap_*.pcap", base.c_str(), 0) == 0)
      keys.push_back(o.key);
  }
  if (keys.empty())
    return Error{ENOENT, arg + ": no object named pcap_*.pcap below s3://" + uri->bucket + "/" +
                             prefix + " (" + std::to_string(objects->size()) + " objects there)"};
  std::sort(keys.begin(), keys.end());
  std::vector<std::unique_ptr<InputSource>> sources;
  for (auto &key : keys)
    sources.push_back(std::make_unique<S3ObjectSource>(client, std::move(key)));
  return sources;
}

} // namespace

Error InputSource::own(Error e) const {
  const std::string path = readerPath();
  if (path != name() && e.message.rfind(path, 0) == 0)
    e.message.replace(0, path.size(), name());
  return e;
}

bool LocalFileSource::reopenable() const {
  struct stat st {};
  return ::stat(path_.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<std::unique_ptr<InputSource>> s3ObjectInput(const std::string &arg,
                                                   const InputSettings &settings,
                                                   const std::string &defaultEndpoint) {
  auto uri = parseDestinationUri(arg);
  if (!uri || uri->kind != DestinationUri::Kind::S3 || uri->prefix.empty())
    return Error{EINVAL, arg + ": not an s3://bucket/key URI" +
                             (uri ? std::string() : ": " + uri.error().message)};
  auto creds = loadAwsCredentials(settings.credentialsFile);
  if (!creds)
    return Error{creds.error().code, arg + ": " + creds.error().message};
  auto client = std::make_shared<S3Client>(
      S3Location{uri->bucket, uri->region, uri->endpoint.empty() ? defaultEndpoint : uri->endpoint},
      std::move(*creds));
  return std::unique_ptr<InputSource>(std::make_unique<S3ObjectSource>(client, uri->prefix));
}

Result<std::vector<std::unique_ptr<InputSource>>> expandInput(const std::string &arg,
                                                              const InputSettings &settings) {
  if (arg.rfind("s3://", 0) == 0)
    return expandS3(arg, settings);
  std::vector<std::unique_ptr<InputSource>> sources;
  sources.push_back(std::make_unique<LocalFileSource>(arg));
  return sources;
}

} // namespace ringcap
