// The error kinds and their table (api/ServiceApi.h): a system errno never becomes a service
// error, and every kind has one D-Bus name, HTTP status and exit code that map back.
#include "api/ServiceApi.h"

#include <cerrno>
#include <cstring>
#include <gtest/gtest.h>
#include <set>
#include <string>

using namespace ringcap;

namespace {

// EACCES was OwnershipRequired's code, ENOENT NotFound's, EINVAL InvalidRequest's, EAGAIN
// RateLimited's, EBUSY CaptureBusy's, EINPROGRESS NotReady's: as errnos they are system errors.
TEST(ErrorKindTest, AnErrnoIsAFailureWithTheSystemsWords) {
  for (int err : {EACCES, ENOENT, EINVAL, EAGAIN, EBUSY, EINPROGRESS, EIO}) {
    SCOPED_TRACE(std::strerror(err));
    Error e = Error::fromErrno(err, "opening the file of capture abc");
    EXPECT_EQ(e.kind, ErrorKind::Failed);
    EXPECT_EQ(e.code, err);
    EXPECT_EQ(e.message, std::string("opening the file of capture abc: ") + std::strerror(err));
    EXPECT_STREQ(api::dbusErrorName(e.kind), "org.ringcap.Ringcap1.Error.Failed");
    EXPECT_EQ(api::httpStatus(e.kind), 500);

    Error plain{err, "plain"};
    EXPECT_EQ(plain.kind, ErrorKind::Failed);
    EXPECT_EQ(plain.code, err);
  }
  // libbpf and sd-bus return negative errnos.
  EXPECT_EQ(Error::fromErrno(-EACCES, "x").code, EACCES);
  EXPECT_EQ(Error::fromErrno(-EACCES, "x").kind, ErrorKind::Failed);
}

TEST(ErrorKindTest, AServiceErrorHasItsKindAndNoErrno) {
  Error e{service_error::kOwnershipRequired, "destination_conf: not validated"};
  EXPECT_EQ(e.kind, ErrorKind::OwnershipRequired);
  EXPECT_EQ(e.code, 0);
  EXPECT_EQ(e.message, "destination_conf: not validated");
  EXPECT_STREQ(api::dbusErrorName(e.kind), "org.ringcap.Ringcap1.Error.OwnershipRequired");
  Result<int> r = Error{service_error::kNotFound, "no capture with id \"x\""};
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::NotFound);
  EXPECT_EQ(Error{}.kind, ErrorKind::Failed);
}

struct Row {
  ErrorKind kind;
  const char *dbusName;
  int http, exit;
};

TEST(ErrorKindTest, TheTableMapsEveryKind) {
  const Row rows[] = {
      {ErrorKind::Failed, "org.ringcap.Ringcap1.Error.Failed", 500, 1},
      {ErrorKind::InvalidRequest, "org.ringcap.Ringcap1.Error.InvalidRequest", 400, 1},
      {ErrorKind::RateLimited, "org.ringcap.Ringcap1.Error.RateLimited", 429, 1},
      {ErrorKind::CaptureBusy, "org.ringcap.Ringcap1.Error.CaptureBusy", 429, 1},
      {ErrorKind::NotFound, "org.ringcap.Ringcap1.Error.NotFound", 404, 1},
      {ErrorKind::NotReady, "org.ringcap.Ringcap1.Error.NotReady", 409, 1},
      {ErrorKind::OwnershipRequired, "org.ringcap.Ringcap1.Error.OwnershipRequired", 403, 1},
      {ErrorKind::AccessDenied, "org.freedesktop.DBus.Error.AccessDenied", 403, 1},
      {ErrorKind::Unavailable, "org.freedesktop.DBus.Error.ServiceUnknown", 503, 3},
  };
  ASSERT_EQ(std::size(rows), api::kErrorKinds.size());
  std::set<std::string> names;
  for (const Row &row : rows) {
    SCOPED_TRACE(api::toString(row.kind));
    EXPECT_STREQ(api::dbusErrorName(row.kind), row.dbusName);
    EXPECT_EQ(api::httpStatus(row.kind), row.http);
    EXPECT_EQ(api::exitCode(row.kind), row.exit);
    EXPECT_EQ(api::errorKindFromDbusName(row.dbusName), row.kind);
    EXPECT_TRUE(names.insert(row.dbusName).second) << "two kinds share " << row.dbusName;
    std::string name = row.dbusName;
    if (name.starts_with(api::kErrorPrefix))
      EXPECT_EQ(name.substr(std::strlen(api::kErrorPrefix)), api::toString(row.kind));
  }
}

TEST(ErrorKindTest, ClientsMapTheBussOwnNamesBack) {
  EXPECT_EQ(api::errorKindFromDbusName("org.freedesktop.DBus.Error.NameHasNoOwner"),
            ErrorKind::Unavailable);
  EXPECT_EQ(api::errorKindFromDbusName("org.freedesktop.DBus.Error.Spawn.ChildExited"),
            ErrorKind::Unavailable);
  EXPECT_EQ(api::errorKindFromDbusName("org.freedesktop.DBus.Error.NoReply"), ErrorKind::Failed);
  EXPECT_EQ(api::errorKindFromDbusName("org.ringcap.Ringcap1.Error.SomethingNew"),
            ErrorKind::Failed);
  EXPECT_EQ(api::errorKindFromDbusName(""), ErrorKind::Failed);
}

TEST(ErrorKindTest, NamesAndPathsOfTheService) {
  EXPECT_STREQ(api::kBusName, "org.ringcap.Ringcap1");
  EXPECT_STREQ(api::kManagerPath, "/org/ringcap/Ringcap1");
  EXPECT_STREQ(api::kManagerInterface, "org.ringcap.Ringcap1.Manager");
  EXPECT_STREQ(api::kCaptureInterface, "org.ringcap.Ringcap1.Capture");
  EXPECT_EQ(api::capturePath("0123456789abcdef0123456789abcdef"),
            "/org/ringcap/Ringcap1/capture/0123456789abcdef0123456789abcdef");
}

} // namespace
