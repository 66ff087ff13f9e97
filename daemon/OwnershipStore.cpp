#include "OwnershipStore.h"

#include "CaptureRecord.h"
#include "util/AtomicFile.h"

#include <algorithm>
#include <dirent.h>
#include <fstream>
#include <spdlog/spdlog.h>
#include <sstream>
#include <unistd.h>

namespace ringcap {
namespace {

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

nlohmann::json stateJson(const OwnershipRecord &r) {
  return {{"version", 1},
          {"id", r.id},
          {"destination_conf", r.destinationConf},
          {"canonical", r.canonical},
          {"filename", r.filename},
          {"token", r.token},
          {"status", toString(r.status)},
          {"submitted_ns", r.submittedNs},
          {"validated_ns", r.validatedNs}};
}

Result<OwnershipRecord> fromStateJson(const nlohmann::json &j) {
  try {
    OwnershipRecord r;
    r.id = j.at("id").get<std::string>();
    r.destinationConf = j.at("destination_conf").get<std::string>();
    r.canonical = j.at("canonical").get<std::string>();
    r.filename = j.at("filename").get<std::string>();
    r.token = j.at("token").get<std::string>();
    auto status = parseStatus(j.at("status").get<std::string>());
    if (!status || !isCaptureId(r.id))
      return Error{EINVAL, "bad status or id"};
    r.status = *status;
    r.submittedNs = j.at("submitted_ns").get<int64_t>();
    r.validatedNs = j.at("validated_ns").get<int64_t>();
    return r;
  } catch (const nlohmann::json::exception &e) {
    return Error{EINVAL, e.what()};
  }
}

} // namespace

nlohmann::json OwnershipRecord::toJson() const {
  nlohmann::json j = {{"id", id},
                      {"destination_conf", destinationConf},
                      {"filename", filename},
                      {"status", toString(status)},
                      {"submitted", formatRfc3339(submittedNs)}};
  if (validatedNs)
    j["validated"] = formatRfc3339(validatedNs);
  return j;
}

Result<std::unique_ptr<OwnershipStore>> OwnershipStore::open(const std::string &stateDirectory,
                                                             gid_t group) {
  std::unique_ptr<OwnershipStore> s(new OwnershipStore());
  s->group_ = group;
  s->dir_ = stateDirectory + "/ownerships";
  if (auto r = makePrivateDirectory(s->dir_, group); !r)
    return r.error();
  auto read = forEachJsonRecord(
      s->dir_, [&](const std::string &id, const std::string &path, const nlohmann::json &j) {
        auto rec = j.is_discarded() ? Result<OwnershipRecord>(Error{EINVAL, "not JSON"})
                                    : fromStateJson(j);
        if (!rec || rec->id != id) {
          spdlog::error("ignoring the unreadable ownership record {}", path);
          return;
        }
        s->records_.emplace(id, std::move(*rec));
      });
  if (!read)
    return read.error();
  return s;
}

OwnershipRecord OwnershipStore::make(const std::string &destinationConf,
                                     const std::string &canonical) {
  OwnershipRecord r;
  r.id = newCaptureId();
  r.destinationConf = destinationConf;
  r.canonical = canonical;
  r.filename = "ownership-challenge-" + newCaptureId().substr(0, 16) + ".txt";
  r.token = newCaptureId() + newCaptureId();
  r.submittedNs = wallClockNowNs();
  return r;
}

Result<void> OwnershipStore::save(const OwnershipRecord &record) {
  if (auto r = writeFileAtomically(dir_ + "/" + record.id + ".json",
                                   stateJson(record).dump(1) + "\n", group_);
      !r)
    return r;
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
  for (const auto &[id, r] : records_)
    if (r.canonical == canonical && r.status == OwnershipStatus::Success)
      return true;
  return false;
}

} // namespace ringcap
