#include "destination/AwsCredentials.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace ringcap {

namespace {

constexpr size_t kMaxCredentialsFileSize = 1 << 20;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char &c : out)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return out;
}

const char *env(const char *name) {
  const char *v = std::getenv(name);
  return (v && *v) ? v : nullptr;
}

Result<std::string> readSmallFile(const std::string &path, const std::string &what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int err = errno;
    return Error{err, what + " " + path + ": cannot open: " + std::strerror(err)};
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Error{err, what + " " + path + ": cannot stat: " + std::strerror(err)};
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error{EINVAL, what + " " + path + ": not a regular file"};
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxCredentialsFileSize) {
    ::close(fd);
    return Error{EFBIG, what + " " + path + ": larger than 1 MiB, not a credentials file"};
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int err = errno;
      ::close(fd);
      return Error{err, what + " " + path + ": cannot read: " + std::strerror(err)};
    }
    if (n == 0)
      break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxCredentialsFileSize) {
      ::close(fd);
      return Error{EFBIG, what + " " + path + ": larger than 1 MiB, not a credentials file"};
    }
  }
  ::close(fd);
  return text;
}

Result<AwsCredentials> fromFile(const std::string &path, const std::string &what) {
  auto text = readSmallFile(path, what);
  if (!text)
    return text.error();
  const char *profile = env("AWS_PROFILE");
  return parseAwsCredentialsFile(*text, profile ? profile : "default", what + " " + path);
}

} // namespace

Result<AwsCredentials> parseAwsCredentialsFile(std::string_view text, const std::string &profile,
                                               const std::string &source) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF")
    text.remove_prefix(3); // UTF-8 byte order mark, as some editors write it

  // section name -> key -> value. Values are kept only for the profile asked for.
  std::vector<std::string> sections;
  std::map<std::string, std::string> values;
  bool inProfile = false, found = false, inSection = false;
  size_t lineNo = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++lineNo;
    std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';')
      continue;
    if (line.front() == '[') {
      if (line.back() != ']')
        return Error{EINVAL, source + ": line " + std::to_string(lineNo) +
                                 ": a section header must look like [name]"};
      std::string_view name = trim(line.substr(1, line.size() - 2));
      if (name.substr(0, 8) == "profile ") // the config file's spelling, accepted here too
        name = trim(name.substr(8));
      sections.emplace_back(name);
      inSection = true;
      inProfile = name == profile;
      found = found || inProfile;
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos && (raw.front() == ' ' || raw.front() == '\t'))
      continue; // continuation of a multi-line value
    if (eq == std::string_view::npos || !inSection)
      return Error{EINVAL,
                   source + ": line " + std::to_string(lineNo) +
                       (inSection ? ": expected \"key = value\"" : ": a key before any [section]")};
    if (inProfile)
      values[lower(trim(line.substr(0, eq)))] = std::string(trim(line.substr(eq + 1)));
  }

  if (!found) {
    std::string have;
    for (const auto &s : sections)
      have += (have.empty() ? "" : ", ") + ("[" + s + "]");
    return Error{ENOENT, source + ": no [" + profile + "] section" +
                             (have.empty() ? std::string(" (the file has no sections)")
                                           : " (it has " + have + ")") +
                             (profile == "default" ? "" : "; the profile comes from AWS_PROFILE")};
  }
  AwsCredentials creds;
  auto take = [&](const char *key, std::string &out) { // absent and empty are the same
    auto it = values.find(key);
    if (it != values.end())
      out = it->second;
    return !out.empty();
  };
  if (!take("aws_access_key_id", creds.accessKeyId))
    return Error{EINVAL, source + ": [" + profile + "] has no aws_access_key_id"};
  if (!take("aws_secret_access_key", creds.secretAccessKey))
    return Error{EINVAL, source + ": [" + profile + "] has no aws_secret_access_key"};
  take("aws_session_token", creds.sessionToken);
  return creds;
}

Result<AwsCredentials> loadAwsCredentials(const std::optional<std::string> &file) {
  const char *id = env("AWS_ACCESS_KEY_ID");
  const char *secret = env("AWS_SECRET_ACCESS_KEY");
  if (id && secret) {
    const char *token = env("AWS_SESSION_TOKEN");
    return AwsCredentials{id, secret, token ? token : ""};
  }
  if (id || secret)
    return Error{EINVAL, std::string("AWS credentials from the environment: ") +
                             (id ? "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
                                 : "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not") +
                             "; set both, or neither to use the credentials file"};

  if (file && !file->empty())
    return fromFile(*file, "AWS credentials file");

  if (const char *dir = env("CREDENTIALS_DIRECTORY")) {
    std::string path = std::string(dir) + "/aws-credentials";
    if (::access(path.c_str(), F_OK) == 0)
      return fromFile(path, "AWS credentials (systemd LoadCredential=aws-credentials)");
  }
  return Error{ENOENT, "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                       "or [s3] credentials_file in the configuration, or give the service "
                       "LoadCredential=aws-credentials:<file>"};
}

} // namespace ringcap
