// OwnershipStore: bucket ownership challenges (Cloudflare's /pcaps/ownership). Creating one
// writes ownership-challenge-<hex>.txt holding a random token into the destination; the
// owner proves control of the destination by sending that token back.
#pragma once

#include "util/Result.h"

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/types.h>
#include <vector>

namespace ringcap {

enum class OwnershipStatus { Pending, Success, Failed };

struct OwnershipRecord {
  std::string id;              // 32 lowercase hex digits
  std::string destinationConf; // as the user gave it
  std::string canonical;       // DestinationUri::canonical()
  std::string filename;        // ownership-challenge-<hex>.txt
  std::string token;           // the challenge; never in records users get
  OwnershipStatus status = OwnershipStatus::Pending;
  int64_t submittedNs = 0;
  int64_t validatedNs = 0;

  // {id, destination_conf, filename, status, submitted, validated?}
  nlohmann::json toJson() const;
};

class OwnershipStore {
public:
  static Result<std::unique_ptr<OwnershipStore>> open(const std::string &stateDirectory,
                                                      gid_t group);
  // A new pending record for the destination, with a fresh id, file name and token (not saved).
  static OwnershipRecord make(const std::string &destinationConf, const std::string &canonical);

  Result<void> save(const OwnershipRecord &record);
  OwnershipRecord *find(const std::string &id);
  // The newest record of a destination.
  OwnershipRecord *findByDestination(const std::string &canonical);
  std::vector<const OwnershipRecord *> list() const;
  Result<void> remove(const std::string &id);
  // True when a record of the destination has passed the challenge.
  bool validated(const std::string &canonical) const;

private:
  OwnershipStore() = default;
  std::string dir_;
  gid_t group_ = gid_t(-1);
  std::map<std::string, OwnershipRecord> records_;
};

} // namespace ringcap
