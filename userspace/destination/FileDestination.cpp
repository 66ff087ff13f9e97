// file:// destinations: a directory below one of destinations.file_roots.
#include "destination/Destination.h"

#include <cerrno>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ringcap {
namespace {

std::string hex(const unsigned char *p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

// Hashes everything readable from fd with SHA-256, optionally copying it to `out`.
Result<std::string> hashFd(int fd, int out, const std::string &what) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<unsigned char> buf(1 << 20);
  while (true) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int err = errno;
      EVP_MD_CTX_free(ctx);
      return Error::fromErrno(err, "reading " + what);
    }
    if (n == 0)
      break;
    EVP_DigestUpdate(ctx, buf.data(), size_t(n));
    for (ssize_t off = 0; out >= 0 && off < n;) {
      ssize_t w = write(out, buf.data() + off, size_t(n - off));
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0) {
        int err = errno;
        EVP_MD_CTX_free(ctx);
        return Error::fromErrno(err, "writing " + what);
      }
      off += w;
    }
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return "sha256:" + hex(md, len);
}

std::string tempName(const std::string &name) {
  uint32_t r = 0;
  (void)!getrandom(&r, sizeof r, 0);
  char buf[16];
  snprintf(buf, sizeof buf, "%08x", r);
  return "." + name + "." + buf + ".tmp";
}

class FileDestination : public Destination {
public:
  FileDestination(DestinationUri uri, std::string root)
      : uri_(std::move(uri)), root_(std::move(root)) {}

  Result<void> putObject(const std::string &key, const std::string &content) override {
    auto r = write(key, [&](int out) -> Result<std::string> {
      if (::write(out, content.data(), content.size()) != ssize_t(content.size()))
        return Error::fromErrno(errno, "writing " + describe(key));
      return std::string();
    });
    return r ? Result<void>() : Result<void>(r.error());
  }

  Result<std::string> uploadFile(const std::string &key, const std::string &path) override {
    int in = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0)
      return Error::fromErrno(errno, "opening " + path);
    auto r = write(
        key, [&](int out) { return hashFd(in, out, describe(key)); }, true);
    close(in);
    return r;
  }

  std::string describe(const std::string &key) const override { return uri_.describe(key); }

private:
  // Writes `key` through a temporary file in its directory (opened without following links)
  // and renames it into place; with `verify`, reads it back and compares the checksum.
  template <typename Fill>
  Result<std::string> write(const std::string &key, Fill fill, bool verify = false) {
    // The destination's directory relative to the root ("" when it is the root itself).
    std::string rel = uri_.directory == root_ ? ""
                      : root_ == "/"          ? uri_.directory.substr(1)
                                              : uri_.directory.substr(root_.size() + 1);
    size_t slash = key.rfind('/');
    if (slash != std::string::npos)
      rel += (rel.empty() ? "" : "/") + key.substr(0, slash);
    std::string name = slash == std::string::npos ? key : key.substr(slash + 1);
    auto dir = openConfinedDirectory(root_, rel, true);
    if (!dir)
      return dir.error();
    std::string tmp = tempName(name);
    int out = openat(*dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    Result<std::string> r =
        out < 0 ? Result<std::string>(Error::fromErrno(errno, "creating " + describe(key)))
                : fill(out);
    if (r && fsync(out) != 0)
      r = Error::fromErrno(errno, "fsync " + describe(key));
    if (out >= 0)
      close(out);
    if (r && renameat(*dir, tmp.c_str(), *dir, name.c_str()) != 0)
      r = Error::fromErrno(errno, "renaming into " + describe(key));
    if (!r)
      unlinkat(*dir, tmp.c_str(), 0);
    else
      fsync(*dir);
    if (r && verify) {
      int check = openat(*dir, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      auto arrived =
          check < 0 ? Result<std::string>(Error::fromErrno(errno, "reading back " + describe(key)))
                    : hashFd(check, -1, describe(key));
      if (check >= 0)
        close(check);
      if (!arrived)
        r = arrived.error();
      else if (*arrived != *r)
        r = Error{EIO, describe(key) + ": the delivered file differs from the capture (" +
                           *arrived + " instead of " + *r + ")"};
    }
    close(*dir);
    return r;
  }

  DestinationUri uri_;
  std::string root_;
};

} // namespace

Result<std::string> sha256OfFile(const std::string &path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Error::fromErrno(errno, "opening " + path);
  auto r = hashFd(fd, -1, path);
  close(fd);
  return r;
}

Result<std::unique_ptr<Destination>> openFileDestination(const DestinationUri &uri,
                                                         const std::vector<std::string> &roots) {
  if (auto c = checkFileConfinement(uri, roots); !c)
    return c.error();
  for (std::string root : roots) {
    while (root.size() > 1 && root.back() == '/')
      root.pop_back();
    if (uri.directory == root || uri.directory.rfind(root + "/", 0) == 0 || root == "/")
      return std::unique_ptr<Destination>(new FileDestination(uri, root));
  }
  return Error{EINVAL, "destination_conf: not below an allowed directory"};
}

} // namespace ringcap
