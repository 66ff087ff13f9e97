#include "util/AtomicFile.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ringcap {

Result<void> writeFileAtomically(const std::string &path, const std::string &content, gid_t group) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  std::string tmp = dir + "/." + path.substr(slash + 1) + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0)
    return Error::fromErrno(errno, "creating " + tmp);
  if (group != gid_t(-1))
    (void)!fchown(fd, uid_t(-1), group);
  Result<void> r;
  for (size_t off = 0; r && off < content.size();) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      r = Error::fromErrno(errno, "writing " + tmp);
    else
      off += size_t(n);
  }
  if (r && fsync(fd) != 0)
    r = Error::fromErrno(errno, "fsync " + tmp);
  close(fd);
  if (r && rename(tmp.c_str(), path.c_str()) != 0)
    r = Error::fromErrno(errno, "renaming " + tmp);
  if (!r) {
    unlink(tmp.c_str());
    return r;
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return {};
}

Result<void> makePrivateDirectory(const std::string &path, gid_t group) {
  if (mkdir(path.c_str(), 0750) != 0 && errno != EEXIST)
    return Error::fromErrno(errno, "creating " + path);
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0)
    return Error::fromErrno(errno, path);
  if (!S_ISDIR(st.st_mode))
    return Error{ENOTDIR, path + " is not a directory"};
  if (group != gid_t(-1) && st.st_gid != group && chown(path.c_str(), uid_t(-1), group) != 0)
    return Error::fromErrno(errno, "giving " + path + " to its group");
  if ((st.st_mode & 07777) != 0750 && chmod(path.c_str(), 0750) != 0)
    return Error::fromErrno(errno, "chmod " + path);
  return {};
}

} // namespace ringcap

#include <dirent.h>
#include <fstream>
#include <sstream>

namespace ringcap {

Result<void> forEachJsonRecord(const std::string &dir,
                               const std::function<void(const std::string &, const std::string &,
                                                        const nlohmann::json &)> &fn) {
  DIR *d = opendir(dir.c_str());
  if (!d)
    return Error::fromErrno(errno, "reading " + dir);
  while (dirent *e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() != 37 || name.substr(32) != ".json")
      continue;
    std::string path = dir + "/" + name;
    std::ifstream in(path);
    std::stringstream buf;
    buf << in.rdbuf();
    fn(name.substr(0, 32), path, nlohmann::json::parse(buf.str(), nullptr, false));
  }
  closedir(d);
  return {};
}

} // namespace ringcap
