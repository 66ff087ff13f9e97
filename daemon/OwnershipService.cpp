#include "OwnershipService.h"

#include "CaptureRecord.h"
#include "CaptureService.h"

#include <memory>
#include <spdlog/spdlog.h>

namespace ringcap {

void OwnershipService::create(const std::string &destinationConf,
                              std::function<void(Result<OwnershipRecord>)> done) {
  auto uri = parseDestinationUri(destinationConf);
  if (!uri)
    return done(Error{service_error::kInvalidRequest, uri.error().message});
  if (auto c = checkFileConfinement(*uri, settings_.fileRoots); !c)
    return done(Error{service_error::kInvalidRequest, c.error().message});
  if (auto room = store_.checkRoom(uri->canonical(), wallClockNowNs()); !room)
    return done(Error{service_error::kRateLimited, room.error().message});
  NewOwnership made = OwnershipStore::make(destinationConf, uri->canonical(), wallClockNowNs());
  auto record = std::make_shared<OwnershipRecord>(std::move(made.record));
  auto result = std::make_shared<Result<void>>();
  worker_.post(
      [settings = settings_, uri = *uri, record, token = std::move(made.token), result] {
        auto dest = openDestination(uri, settings);
        *result =
            dest ? (*dest)->putObject(record->filename, token + "\n") : Result<void>(dest.error());
      },
      [this, record, result, done = std::move(done)] {
        if (!*result) {
          spdlog::warn("ownership challenge for {}: {}", record->destinationConf,
                       result->error().message);
          return done(Error{EIO, "writing the ownership challenge: " + result->error().message});
        }
        if (auto s = store_.add(*record, wallClockNowNs()); !s)
          return done(Error{s.error().code == ENOSPC ? service_error::kRateLimited : s.error().code,
                            s.error().message});
        spdlog::info("ownership {} for {}: challenge {} written", record->id,
                     record->destinationConf, record->filename);
        done(*record);
      });
}

Result<OwnershipRecord> OwnershipService::validate(const std::string &destinationConf,
                                                   const std::string &challenge) {
  auto uri = parseDestinationUri(destinationConf);
  if (!uri)
    return Error{service_error::kInvalidRequest, uri.error().message};
  store_.expire(wallClockNowNs());
  OwnershipRecord *r = store_.findByDestination(uri->canonical());
  if (!r)
    return Error{service_error::kNotFound,
                 "no ownership challenge for " + destinationConf + " (create one first)"};
  std::string given = challenge;
  while (!given.empty() && (given.back() == '\n' || given.back() == '\r' || given.back() == ' '))
    given.pop_back();
  OwnershipRecord next = *r;
  if (r->matches(given)) {
    next.status = OwnershipStatus::Success;
    next.validatedNs = wallClockNowNs();
  } else {
    next.status = OwnershipStatus::Failed;
    next.validatedNs = 0;
  }
  if (auto s = store_.update(next); !s)
    return s.error();
  return next;
}

std::vector<const OwnershipRecord *> OwnershipService::list() {
  store_.expire(wallClockNowNs());
  return store_.list();
}

} // namespace ringcap
