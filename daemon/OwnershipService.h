// OwnershipService: the ownership challenge of destinations (docs/dbus-api.md).
#pragma once

#include "OwnershipStore.h"
#include "Worker.h"
#include "destination/Destination.h"

#include <functional>

namespace ringcap {

class OwnershipService {
public:
  OwnershipService(OwnershipStore &store, Worker &worker, DestinationSettings settings)
      : store_(store), worker_(worker), settings_(std::move(settings)) {}

  // Checks the destination, then writes the challenge file on the worker thread; `done`
  // gets the new pending record, or the error (nothing is recorded then).
  void create(const std::string &destinationConf,
              std::function<void(Result<OwnershipRecord>)> done);
  // Compares the challenge with the destination's newest record: `success` when it matches
  // (also after an earlier failure), `failed` otherwise (also after an earlier success: the
  // destination then needs the right challenge again).
  Result<OwnershipRecord> validate(const std::string &destinationConf,
                                   const std::string &challenge);
  std::vector<const OwnershipRecord *> list() const { return store_.list(); }
  Result<void> remove(const std::string &id) { return store_.remove(id); }
  bool validated(const std::string &canonical) const { return store_.validated(canonical); }

private:
  OwnershipStore &store_;
  Worker &worker_;
  DestinationSettings settings_;
};

} // namespace ringcap
