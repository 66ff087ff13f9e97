#include "destination/DestinationUri.h"

#include "request/IpAddress.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

namespace ringcap {
namespace {

Error bad(const std::string &rule) { return Error{EINVAL, "destination_conf: " + rule}; }

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    out.emplace_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos)
      return out;
    start = end + 1;
  }
}

bool hasControl(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f)
      return true;
  return false;
}

// Checks the segments of a path below a bucket or root: no "", ".", "..".
std::optional<Error> checkSegments(const std::vector<std::string> &segments, const char *what) {
  for (const auto &s : segments) {
    if (s.empty())
      return bad(std::string(what) + " must not contain empty segments (\"//\")");
    if (s == "." || s == "..")
      return bad(std::string(what) + " must not contain \".\" or \"..\" segments");
    if (s.size() > 255)
      return bad(std::string(what) + " segments must be at most 255 bytes");
  }
  return std::nullopt;
}

bool isBucketName(const std::string &b) {
  if (b.size() < 3 || b.size() > 63)
    return false;
  for (char c : b)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
      return false;
  return std::isalnum(static_cast<unsigned char>(b.front())) &&
         std::isalnum(static_cast<unsigned char>(b.back())) && b.find("..") == std::string::npos;
}

bool isRegion(const std::string &r) {
  if (r.empty() || r.size() > 32)
    return false;
  for (char c : r)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return false;
  return true;
}

bool isEndpoint(const std::string &e) {
  size_t scheme = e.rfind("http://", 0) == 0 ? 7 : e.rfind("https://", 0) == 0 ? 8 : 0;
  if (!scheme || e.size() == scheme || e.size() > 256)
    return false;
  std::string rest = e.substr(scheme);
  if (!rest.empty() && rest.back() == '/')
    rest.pop_back();
  for (char c : rest)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
          c == '[' || c == ']'))
      return false;
  return !rest.empty();
}

bool below(const std::string &path, const std::string &root) {
  if (root == "/")
    return true;
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

std::string normaliseRoot(std::string r) {
  while (r.size() > 1 && r.back() == '/')
    r.pop_back();
  return r;
}

} // namespace

std::string DestinationUri::canonical() const {
  if (kind == Kind::File)
    return "file://" + directory;
  std::string s = "s3://" + bucket + (prefix.empty() ? "" : "/" + prefix) + "?region=" + region;
  if (!endpoint.empty())
    s += "&endpoint=" + endpoint;
  return s;
}

std::string DestinationUri::keyFor(const std::string &name) const {
  return prefix.empty() ? name : prefix + "/" + name;
}

std::string DestinationUri::describe(const std::string &key) const {
  if (kind == Kind::File)
    return directory + "/" + key;
  return "s3://" + bucket + "/" + keyFor(key);
}

Result<DestinationUri> parseDestinationUri(std::string_view text) {
  if (text.empty())
    return bad("must not be empty");
  if (text.size() > 2048)
    return bad("must be at most 2048 bytes");
  if (hasControl(text))
    return bad("must not contain control characters");
  DestinationUri u;
  if (text.rfind("file://", 0) == 0) {
    u.kind = DestinationUri::Kind::File;
    std::string_view path = text.substr(7);
    if (path.empty() || path[0] != '/')
      return bad("a file destination must be file:///absolute/directory (got " +
                 quoteForMessage(text) + ")");
    if (path.find_first_of("?#%\\") != std::string_view::npos)
      return bad("a file destination must not contain '?', '#', '%' or '\\'");
    std::string p(path);
    while (p.size() > 1 && p.back() == '/')
      p.pop_back();
    if (p == "/")
      return bad("a file destination must name a directory below /");
    auto segments = split(std::string_view(p).substr(1), '/');
    if (auto e = checkSegments(segments, "the directory"))
      return *e;
    u.directory = p;
    return u;
  }
  if (text.rfind("s3://", 0) != 0)
    return bad("must start with s3:// or file:// (got " + quoteForMessage(text) + ")");
  u.kind = DestinationUri::Kind::S3;
  std::string_view rest = text.substr(5);
  size_t q = rest.find('?');
  std::string_view path = rest.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : rest.substr(q + 1);
  size_t slash = path.find('/');
  u.bucket = std::string(path.substr(0, slash));
  if (!isBucketName(u.bucket))
    return bad(quoteForMessage(u.bucket) +
               " is not a bucket name (3 to 63 lowercase letters, digits, '.' and '-')");
  if (slash != std::string_view::npos) {
    std::string prefix(path.substr(slash + 1));
    while (!prefix.empty() && prefix.back() == '/')
      prefix.pop_back();
    if (!prefix.empty()) {
      if (prefix.find_first_of("#\\") != std::string::npos)
        return bad("the directory must not contain '#' or '\\'");
      if (auto e = checkSegments(split(prefix, '/'), "the directory"))
        return *e;
    }
    u.prefix = prefix;
  }
  for (const auto &param : split(query, '&')) {
    if (param.empty() && query.empty())
      break;
    size_t eq = param.find('=');
    std::string key = param.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : param.substr(eq + 1);
    if (key == "region") {
      if (!u.region.empty())
        return bad("region given twice");
      if (!isRegion(value))
        return bad("region must be like us-east-1 (got " + quoteForMessage(value) + ")");
      u.region = value;
    } else if (key == "endpoint") {
      if (!u.endpoint.empty())
        return bad("endpoint given twice");
      if (!isEndpoint(value))
        return bad("endpoint must be http://host[:port] or https://host[:port] (got " +
                   quoteForMessage(value) + ")");
      u.endpoint = value;
      if (u.endpoint.back() == '/')
        u.endpoint.pop_back();
    } else {
      return bad("unknown parameter " + quoteForMessage(key) + " (only region and endpoint)");
    }
  }
  if (u.region.empty())
    return bad("an s3 destination needs ?region=REGION, such as s3://bucket/dir?region=us-east-1");
  return u;
}

Result<void> checkFileConfinement(const DestinationUri &uri,
                                  const std::vector<std::string> &roots) {
  if (uri.kind != DestinationUri::Kind::File)
    return {};
  if (roots.empty())
    return bad("file:// destinations are not allowed on this host (destinations.file_roots is "
               "empty)");
  for (const auto &r : roots) {
    std::string root = normaliseRoot(r);
    if (!below(uri.directory, root))
      continue;
    // Resolve the links of the longest existing ancestor; it must stay below the real root.
    char realRoot[PATH_MAX];
    if (!realpath(root.c_str(), realRoot))
      return bad("the allowed directory " + root + " does not exist");
    std::string existing = uri.directory;
    char resolved[PATH_MAX];
    while (!realpath(existing.c_str(), resolved)) {
      if (errno != ENOENT)
        return Error::fromErrno(errno, "destination_conf: " + existing);
      existing = existing.substr(0, existing.rfind('/'));
      if (existing.empty())
        existing = "/";
    }
    if (!below(resolved, normaliseRoot(realRoot)))
      return bad(uri.directory + " leads out of the allowed directory " + root +
                 " through a symbolic link");
    return {};
  }
  std::string list;
  for (const auto &r : roots)
    list += (list.empty() ? "" : ", ") + normaliseRoot(r);
  return bad(uri.directory + " is not below an allowed directory (" + list + ")");
}

Result<int> openConfinedDirectory(const std::string &root, const std::string &relative,
                                  bool create) {
  int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return Error::fromErrno(errno, "opening " + root);
  std::string path = root;
  for (const auto &seg : split(relative, '/')) {
    if (seg.empty())
      continue;
    if (seg == "." || seg == "..") {
      close(fd);
      return Error{EINVAL, "\"" + relative + "\" has a \".\" or \"..\" segment"};
    }
    path += "/" + seg;
    if (create && mkdirat(fd, seg.c_str(), 0750) != 0 && errno != EEXIST) {
      int err = errno;
      close(fd);
      return Error::fromErrno(err, "creating " + path);
    }
    int next = openat(fd, seg.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    close(fd);
    if (next < 0)
      return Error::fromErrno(err, err == ELOOP || err == ENOTDIR
                                       ? path + " is a symbolic link or not a directory"
                                       : "opening " + path);
    fd = next;
  }
  return fd;
}

} // namespace ringcap
