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

  // Checks the destination and that there is room for a record (ownership.max_records), then
  // writes the challenge file on the worker thread; `done` gets the new pending record, which
  // from then on is the destination's newest (an earlier success no longer counts), or the
  // error (nothing is recorded then).
  void create(const std::string &destinationConf,
              std::function<void(Result<OwnershipRecord>)> done);
  // Compares the challenge with the destination's newest record (pending ones expire first):
  // `success` when it matches (also after an earlier failure), `failed` otherwise (also after
  // an earlier success: the destination then needs the right challenge again).
  Result<OwnershipRecord> validate(const std::string &destinationConf,
                                   const std::string &challenge);
  // ImportOwnership (fleet mode): records the destination as validated without a challenge,
  // because the fleet's gateway validated it (the caller was checked: root or
  // fleet.agent_user). The destination's newest record when it is a success already (nothing
  // changes); else a new imported success, which supersedes the destination's other records
  // as a new challenge would. The destination's rules (form, allowed roots and endpoints) and
  // ownership.max_records hold as for CreateOwnership.
  Result<OwnershipRecord> importValidated(const std::string &destinationConf);
  // Every record, newest first (expired pending ones removed first).
  std::vector<const OwnershipRecord *> list();
  Result<void> remove(const std::string &id) { return store_.remove(id); }
  // Whether the destination's newest record has passed the challenge.
  bool validated(const std::string &canonical) const { return store_.validated(canonical); }

private:
  OwnershipStore &store_;
  Worker &worker_;
  DestinationSettings settings_;
};

} // namespace ringcap
