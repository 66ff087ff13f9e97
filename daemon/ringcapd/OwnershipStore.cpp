#include "OwnershipStore.h"

#include "CaptureRecord.h"
#include "util/AtomicFile.h"

#include <algorithm>
#include <dirent.h>
#include <fstream>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sstream>
#include <unistd.h>

namespace ringcap {
namespace {

constexpr int kStateVersion = 2; // 1 held the token itself, 2 its SHA-256

const char *toString(OwnershipStatus s) {
  switch (s) {
  case OwnershipStatus::Pending:
    return "pending";
  case OwnershipStatus::Success:
    return "success";
  case OwnershipStatus::Failed:
    return "failed";
  }
  return "failed";
}

std::optional<OwnershipStatus> parseStatus(const std::string &s) {
  for (auto v : {OwnershipStatus::Pending, OwnershipStatus::Success, OwnershipStatus::Failed})
    if (s == toString(v))
      return v;
  return std::nullopt;
}

bool isSha256Hex(const std::string &s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(),
                                       [](char c) { return isdigit(c) || (c >= 'a' && c <= 'f'); });
}

nlohmann::json stateJson(const OwnershipRecord &r) {
  nlohmann::json j = {{"version", kStateVersion},
                      {"id", r.id},
                      {"destination_conf", r.destinationConf},
                      {"canonical", r.canonical},
                      {"filename", r.filename},
                      {"token_sha256", r.tokenSha256},
                      {"status", toString(r.status)},
                      {"submitted_ns", r.submittedNs},
                      {"validated_ns", r.validatedNs}};
  if (r.imported)
    j["imported"] = true;
  return j;
}

// A record of either format; *legacy is set for version 1 (the token in plain text, hashed
// here).
Result<OwnershipRecord> fromStateJson(const nlohmann::json &j, bool *legacy) {
  try {
    OwnershipRecord r;
    int version = j.value("version", 1);
    if (version != 1 && version != kStateVersion)
      return Error{EINVAL, "unknown version " + std::to_string(version)};
    *legacy = version == 1;
    r.id = j.at("id").get<std::string>();
    r.destinationConf = j.at("destination_conf").get<std::string>();
    r.canonical = j.at("canonical").get<std::string>();
    r.filename = j.at("filename").get<std::string>();
    r.tokenSha256 = *legacy ? sha256Hex(j.at("token").get<std::string>())
                            : j.at("token_sha256").get<std::string>();
    auto status = parseStatus(j.at("status").get<std::string>());
    if (!status || !isCaptureId(r.id) || !isSha256Hex(r.tokenSha256))
      return Error{EINVAL, "bad status, id or token_sha256"};
    r.status = *status;
    r.submittedNs = j.at("submitted_ns").get<int64_t>();
    r.validatedNs = j.at("validated_ns").get<int64_t>();
    r.imported = j.value("imported", false);
    return r;
  } catch (const nlohmann::json::exception &e) {
    return Error{EINVAL, e.what()};
  }
}

} // namespace

std::string sha256Hex(const std::string &text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr) != 1)
    return std::string(64, 'x'); // never matches a hash (only on an OpenSSL failure)
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; i++) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

bool OwnershipRecord::matches(const std::string &challenge) const {
  std::string given = sha256Hex(challenge);
  return given.size() == tokenSha256.size() &&
         CRYPTO_memcmp(given.data(), tokenSha256.data(), given.size()) == 0;
}

nlohmann::json OwnershipRecord::toJson() const {
  nlohmann::json j = {{"id", id},
                      {"destination_conf", destinationConf},
                      {"status", toString(status)},
                      {"submitted", formatRfc3339(submittedNs)}};
  if (!filename.empty())
    j["filename"] = filename;
  if (validatedNs)
    j["validated"] = formatRfc3339(validatedNs);
  if (imported)
    j["imported"] = true;
  return j;
}

Result<std::unique_ptr<OwnershipStore>> OwnershipStore::open(const std::string &stateDirectory,
                                                             gid_t group, OwnershipLimits limits,
                                                             int64_t nowNs) {
  std::unique_ptr<OwnershipStore> s(new OwnershipStore());
  s->group_ = group;
  s->limits_ = limits;
  s->dir_ = stateDirectory + "/ownerships";
  if (auto r = makePrivateDirectory(s->dir_, group); !r)
    return r.error();
  std::vector<std::string> legacy;
  auto read = forEachJsonRecord(
      s->dir_, [&](const std::string &id, const std::string &path, const nlohmann::json &j) {
        bool old = false;
        auto rec = j.is_discarded() ? Result<OwnershipRecord>(Error{EINVAL, "not JSON"})
                                    : fromStateJson(j, &old);
        if (!rec || rec->id != id) {
          spdlog::error("ignoring the unreadable ownership record {}", path);
          return;
        }
        if (old)
          legacy.push_back(id);
        s->records_.emplace(id, std::move(*rec));
      });
  if (!read)
    return read.error();
  // Records of the first format held the token: rewrite them with its hash only.
  for (const auto &id : legacy) {
    if (auto w = s->write(s->records_.at(id)); !w)
      return Error{w.error().code, s->dir_ + "/" + id + ".json: rewriting without the challenge " +
                                       "token: " + w.error().message};
    spdlog::info("ownership record {} rewritten without its challenge token", id);
  }
  // Successes superseded by a newer record of their destination (possible in the first
  // format) no longer count: removed.
  std::map<std::string, int64_t> newest;
  for (const auto &[id, r] : s->records_)
    newest[r.canonical] = std::max(newest[r.canonical], r.submittedNs);
  std::vector<std::string> superseded;
  for (const auto &[id, r] : s->records_)
    if (r.status == OwnershipStatus::Success && r.submittedNs < newest[r.canonical])
      superseded.push_back(id);
  for (const auto &id : superseded)
    if (auto r = s->remove(id); !r)
      return r.error();
  s->expire(nowNs ? nowNs : wallClockNowNs());
  return s;
}

NewOwnership OwnershipStore::make(const std::string &destinationConf, const std::string &canonical,
                                  int64_t nowNs) {
  NewOwnership n;
  OwnershipRecord &r = n.record;
  r.id = newCaptureId();
  r.destinationConf = destinationConf;
  r.canonical = canonical;
  r.filename = "ownership-challenge-" + newCaptureId().substr(0, 16) + ".txt";
  n.token = newCaptureId() + newCaptureId();
  r.tokenSha256 = sha256Hex(n.token);
  r.submittedNs = nowNs;
  return n;
}

Result<void> OwnershipStore::write(const OwnershipRecord &record) {
  return writeFileAtomically(dir_ + "/" + record.id + ".json", stateJson(record).dump(1) + "\n",
                             group_);
}

void OwnershipStore::expire(int64_t nowNs) {
  const int64_t limitNs = limits_.pendingExpirySeconds * int64_t(1000000000);
  std::vector<std::string> expired;
  for (const auto &[id, r] : records_)
    if (r.status == OwnershipStatus::Pending && nowNs - r.submittedNs > limitNs)
      expired.push_back(id);
  for (const auto &id : expired) {
    spdlog::info("ownership {} for {} expired unanswered", id, records_.at(id).destinationConf);
    if (auto r = remove(id); !r)
      spdlog::warn("{}", r.error().message);
  }
}

std::vector<std::string> OwnershipStore::successesOf(const std::string &canonical) const {
  std::vector<std::string> ids;
  for (const auto &[id, r] : records_)
    if (r.canonical == canonical && r.status == OwnershipStatus::Success)
      ids.push_back(id);
  return ids;
}

Result<void> OwnershipStore::checkRoom(const std::string &canonical, int64_t nowNs) {
  expire(nowNs);
  if (records_.size() - successesOf(canonical).size() < limits_.maxRecords)
    return {};
  for (const auto &[id, r] : records_)
    if (r.status != OwnershipStatus::Success)
      return {}; // the oldest pending or failed one will make room
  return Error{service_error::kRateLimited,
               "there are " + std::to_string(records_.size()) +
                   " validated ownership records, the most ownership.max_records allows;" +
                   " delete one (DeleteOwnership) first"};
}

Result<void> OwnershipStore::add(const OwnershipRecord &record, int64_t nowNs) {
  if (auto room = checkRoom(record.canonical, nowNs); !room)
    return room;
  // The new challenge revokes the destination's earlier successes (removed once it is saved).
  const std::vector<std::string> revoked = successesOf(record.canonical);
  while (records_.size() - revoked.size() >= limits_.maxRecords) {
    const OwnershipRecord *oldest = nullptr;
    for (const auto &[id, r] : records_)
      if (r.status != OwnershipStatus::Success && (!oldest || r.submittedNs < oldest->submittedNs))
        oldest = &r;
    if (!oldest)
      break; // not reached: checkRoom found one
    spdlog::info("ownership {} for {} removed: ownership.max_records reached", oldest->id,
                 oldest->destinationConf);
    if (auto r = remove(oldest->id); !r)
      return r;
  }
  if (auto w = write(record); !w)
    return w;
  records_[record.id] = record;
  for (const auto &id : revoked) {
    spdlog::info("ownership {} for {} revoked by the new challenge {}", id, record.destinationConf,
                 record.id);
    if (auto r = remove(id); !r)
      return r;
  }
  return {};
}

Result<void> OwnershipStore::update(const OwnershipRecord &record) {
  if (!records_.count(record.id))
    return Error{ENOENT, "no ownership with id \"" + record.id + "\""};
  if (auto w = write(record); !w)
    return w;
  records_[record.id] = record;
  return {};
}

OwnershipRecord *OwnershipStore::find(const std::string &id) {
  auto it = records_.find(id);
  return it == records_.end() ? nullptr : &it->second;
}

OwnershipRecord *OwnershipStore::findByDestination(const std::string &canonical) {
  OwnershipRecord *best = nullptr;
  for (auto &[id, r] : records_)
    if (r.canonical == canonical && (!best || r.submittedNs > best->submittedNs))
      best = &r;
  return best;
}

std::vector<const OwnershipRecord *> OwnershipStore::list() const {
  std::vector<const OwnershipRecord *> out;
  for (const auto &[id, r] : records_)
    out.push_back(&r);
  std::sort(out.begin(), out.end(), [](const OwnershipRecord *a, const OwnershipRecord *b) {
    return a->submittedNs > b->submittedNs;
  });
  return out;
}

Result<void> OwnershipStore::remove(const std::string &id) {
  if (!records_.count(id))
    return Error{ErrorKind::NotFound, "no ownership with id \"" + id + "\""};
  if (unlink((dir_ + "/" + id + ".json").c_str()) != 0 && errno != ENOENT)
    return Error::fromErrno(errno, "removing ownership " + id);
  records_.erase(id);
  return {};
}

bool OwnershipStore::validated(const std::string &canonical) const {
  const OwnershipRecord *newest = nullptr;
  for (const auto &[id, r] : records_)
    if (r.canonical == canonical && (!newest || r.submittedNs > newest->submittedNs))
      newest = &r;
  return newest && newest->status == OwnershipStatus::Success;
}

} // namespace ringcap
