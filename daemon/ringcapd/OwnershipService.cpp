#include "OwnershipService.h"

#include "CaptureRecord.h"
#include "CaptureService.h"
#include "util/Text.h"

#include <memory>
#include <spdlog/spdlog.h>

namespace ringcap {

void OwnershipService::create(const std::string &destinationConf,
                              std::function<void(Result<OwnershipRecord>)> done) {
  auto uri = parseDestinationUri(destinationConf);
  if (!uri)
    return done(Error{service_error::kInvalidRequest, uri.error().message});
  if (auto c = checkDestinationAllowed(*uri, settings_); !c)
    return done(Error{service_error::kInvalidRequest, c.error().message});
  if (auto room = store_.checkRoom(uri->canonical(), wallClockNowNs()); !room)
    return done(room.error());
  NewOwnership made = OwnershipStore::make(destinationConf, uri->canonical(), wallClockNowNs());
  auto record = std::make_shared<OwnershipRecord>(std::move(made.record));
  auto result = std::make_shared<Result<void>>();
  // Copied before `done` is moved into the completion: a refused post still answers.
  auto answer = done;
  auto posted = worker_.post(
      [settings = settings_, uri = *uri, record, token = std::move(made.token), result] {
        auto dest = openDestination(uri, settings);
        *result =
            dest ? (*dest)->putObject(record->filename, token + "\n") : Result<void>(dest.error());
      },
      [this, record, result, done = std::move(done)] {
        if (!*result) {
          std::string why = safeText(result->error().message, 4096);
          spdlog::warn("ownership challenge for {}: {}", safeText(record->destinationConf), why);
          return done(Error{EIO, "writing the ownership challenge: " + why});
        }
        if (auto s = store_.add(*record, wallClockNowNs()); !s)
          return done(s.error());
        spdlog::info("ownership {} for {}: challenge {} written", record->id,
                     record->destinationConf, record->filename);
        done(*record);
      },
      nullptr, uri->canonical());
  if (!posted)
    answer(Error{posted.error().code == Worker::kQueueFull ? service_error::kRateLimited
                                                           : service_error::kFailed,
                 "writing the ownership challenge: " + posted.error().message});
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

Result<OwnershipRecord> OwnershipService::importValidated(const std::string &destinationConf) {
  auto uri = parseDestinationUri(destinationConf);
  if (!uri)
    return Error{service_error::kInvalidRequest, uri.error().message};
  if (auto c = checkDestinationAllowed(*uri, settings_); !c)
    return Error{service_error::kInvalidRequest, c.error().message};
  const int64_t now = wallClockNowNs();
  store_.expire(now);
  if (const OwnershipRecord *newest = store_.findByDestination(uri->canonical());
      newest && newest->status == OwnershipStatus::Success)
    return *newest;
  if (auto room = store_.checkRoom(uri->canonical(), now); !room)
    return room.error();
  OwnershipRecord record =
      OwnershipStore::make(destinationConf, uri->canonical(), now).record; // token dropped
  record.filename.clear();
  record.status = OwnershipStatus::Success;
  record.validatedNs = now;
  record.imported = true;
  if (auto s = store_.add(record, now); !s)
    return s.error();
  spdlog::info("ownership {} for {}: imported as validated (fleet)", record.id,
               record.destinationConf);
  return record;
}

std::vector<const OwnershipRecord *> OwnershipService::list() {
  store_.expire(wallClockNowNs());
  return store_.list();
}

} // namespace ringcap
