// OwnershipStore: bucket ownership challenges (Cloudflare's /pcaps/ownership). Creating one
// writes ownership-challenge-<hex>.txt holding a random token into the destination; the
// owner proves control of the destination by sending that token back. Only the token's
// SHA-256 is kept (in memory and in ownerships/<id>.json): reading the state directory does
// not let anyone answer a challenge.
//
// The newest record of a destination is the one that counts: a new challenge for a
// destination revokes its earlier success (the superseded success is removed), and a wrong
// answer turns the newest record failed. The records are bounded: pending ones expire, and
// at most OwnershipLimits::maxRecords exist (the oldest pending or failed one makes room).
#pragma once

#include "util/Result.h"

#include <cstddef>
#include <cstdint>
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
  std::string tokenSha256;     // SHA-256 of the challenge, 64 lowercase hex digits
  OwnershipStatus status = OwnershipStatus::Pending;
  int64_t submittedNs = 0;
  int64_t validatedNs = 0;
  // Recorded by ImportOwnership (a fleet's ownership, validated by the gateway): no challenge
  // file (filename empty), status success from the start.
  bool imported = false;

  // Whether `challenge` is the token (compared by hash, in constant time).
  bool matches(const std::string &challenge) const;
  // {id, destination_conf, filename (absent when imported), status, submitted, validated?,
  // imported (only when true)}
  nlohmann::json toJson() const;
};

// A record just made, and the token that goes into its challenge file (nowhere else).
struct NewOwnership {
  OwnershipRecord record;
  std::string token;
};

struct OwnershipLimits {
  size_t maxRecords = 1000;             // ownership.max_records
  int64_t pendingExpirySeconds = 86400; // ownership.pending_expiry_seconds
};

// SHA-256 of `text`, 64 lowercase hex digits.
std::string sha256Hex(const std::string &text);

class OwnershipStore {
public:
  // Loads ownerships/ below the state directory. Records of the first format (version 1,
  // which held the token itself) are rewritten with its hash; a record that cannot be
  // rewritten fails the open, naming the file.
  static Result<std::unique_ptr<OwnershipStore>> open(const std::string &stateDirectory,
                                                      gid_t group, OwnershipLimits limits = {},
                                                      int64_t nowNs = 0);
  // A new pending record for the destination, with a fresh id, file name and token (not saved).
  static NewOwnership make(const std::string &destinationConf, const std::string &canonical,
                           int64_t nowNs);

  // Whether a new record for the destination could be added now (after expiring pending
  // ones): an error when ownership.max_records records exist, all of them successes, and
  // none of them the destination's (which the new record would replace).
  Result<void> checkRoom(const std::string &canonical, int64_t nowNs);
  // Saves a new record: expires pending ones, removes the oldest pending or failed records
  // beyond the limit, then removes the destination's earlier successes (revoked).
  Result<void> add(const OwnershipRecord &record, int64_t nowNs);
  // Saves a changed record that exists.
  Result<void> update(const OwnershipRecord &record);
  // Removes pending records submitted more than pendingExpirySeconds before `nowNs`.
  void expire(int64_t nowNs);

  OwnershipRecord *find(const std::string &id);
  // The newest record of a destination.
  OwnershipRecord *findByDestination(const std::string &canonical);
  std::vector<const OwnershipRecord *> list() const;
  size_t size() const { return records_.size(); }
  Result<void> remove(const std::string &id);
  // True when the newest record of the destination has passed the challenge.
  bool validated(const std::string &canonical) const;

private:
  OwnershipStore() = default;
  Result<void> write(const OwnershipRecord &record);
  // The successes of a destination, which a new record for it revokes.
  std::vector<std::string> successesOf(const std::string &canonical) const;
  std::string dir_;
  gid_t group_ = gid_t(-1);
  OwnershipLimits limits_;
  std::map<std::string, OwnershipRecord> records_;
};

} // namespace ringcap
