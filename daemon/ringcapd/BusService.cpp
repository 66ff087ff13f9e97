#include "BusService.h"

#include "api/ServiceApi.h"
#include "dbus/Variant.h"
#include "engine/SlotCounters.h"

#include <grp.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <vector>

namespace ringcap {
namespace {

using namespace service_error;

bool userInGroup(uid_t uid, gid_t gid) {
  std::vector<char> buf(16384);
  passwd pw{}, *found = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || !found)
    return false;
  if (pw.pw_gid == gid)
    return true;
  int n = 64;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  if (getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<size_t>(n));
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0)
      return false;
  }
  groups.resize(static_cast<size_t>(n));
  return std::find(groups.begin(), groups.end(), gid) != groups.end();
}

// Reads the capture id argument and checks its form.
int readId(sd_bus_message *m, std::string &id, sd_bus_error *e) {
  const char *s;
  int r = sd_bus_message_read(m, "s", &s);
  if (r < 0)
    return r;
  id = s;
  if (!isCaptureId(id))
    return sd_bus_error_set(e, api::dbusErrorName(kInvalidRequest),
                            ("id: " + std::string(kCaptureIdRule)).c_str());
  return 0;
}

// Replies to `call` with an optional object path followed by the dictionary of `j`, or by
// an array of dictionaries when `j` is an array.
int replyJson(sd_bus_message *call, const nlohmann::json &j, const std::string &path = "") {
  sd_bus_message *reply = nullptr;
  int r = sd_bus_message_new_method_return(call, &reply);
  if (r >= 0 && !path.empty())
    r = sd_bus_message_append(reply, "o", path.c_str());
  if (r >= 0 && j.is_array()) {
    r = sd_bus_message_open_container(reply, 'a', "a{sv}");
    for (const auto &item : j)
      if (r >= 0)
        r = appendVariantDict(reply, item);
    if (r >= 0)
      r = sd_bus_message_close_container(reply);
  } else if (r >= 0) {
    r = appendVariantDict(reply, j);
  }
  if (r >= 0)
    r = sd_bus_send(nullptr, reply, nullptr);
  sd_bus_message_unref(reply);
  return r;
}

} // namespace

const sd_bus_vtable BusService::kManagerVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("CreateCapture", "a{sv}", SD_BUS_PARAM(request), "oa{sv}",
                             SD_BUS_PARAM(capture) SD_BUS_PARAM(record), BusService::onCreate,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("GetCapture", "s", SD_BUS_PARAM(id), "a{sv}", SD_BUS_PARAM(record),
                             BusService::onGet, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListCaptures", "", , "aa{sv}", SD_BUS_PARAM(records),
                             BusService::onList, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("StopCapture", "s", SD_BUS_PARAM(id), "", , BusService::onStop,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("OpenCaptureFile", "s", SD_BUS_PARAM(id), "h", SD_BUS_PARAM(fd),
                             BusService::onOpenFile, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("CreateOwnership", "s", SD_BUS_PARAM(destination_conf), "a{sv}",
                             SD_BUS_PARAM(ownership), BusService::onCreateOwnership,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ValidateOwnership", "ss",
                             SD_BUS_PARAM(destination_conf) SD_BUS_PARAM(ownership_challenge),
                             "a{sv}", SD_BUS_PARAM(ownership), BusService::onValidateOwnership,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListOwnerships", "", , "aa{sv}", SD_BUS_PARAM(ownerships),
                             BusService::onListOwnerships, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("DeleteOwnership", "s", SD_BUS_PARAM(id), "", ,
                             BusService::onDeleteOwnership, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ImportOwnership", "s", SD_BUS_PARAM(destination_conf), "a{sv}",
                             SD_BUS_PARAM(ownership), BusService::onImportOwnership,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL_WITH_NAMES("CaptureFinished", "oss",
                             SD_BUS_PARAM(capture) SD_BUS_PARAM(id) SD_BUS_PARAM(status), 0),
    SD_BUS_VTABLE_END,
};

const sd_bus_vtable BusService::kCaptureVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Id", "s", BusService::getProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Status", "s", BusService::getProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("ErrorMessage", "s", BusService::getProperty, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Record", "a{sv}", BusService::getProperty, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("PacketsLost", "t", BusService::getProperty, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
// clang-format off
    // One property per counter (engine/SlotCounters.h).
#define RINGCAP_X(field, member, name, property, description) \
    SD_BUS_PROPERTY(#property, "t", BusService::getProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    RINGCAP_SLOT_COUNTERS(RINGCAP_X)
#undef RINGCAP_X
    // clang-format on
    SD_BUS_VTABLE_END,
};

BusService::BusService(sd_bus *bus, CaptureService &service, OwnershipService &ownership,
                       std::string groupName, gid_t group)
    : bus_(sd_bus_ref(bus)), service_(service), ownership_(ownership),
      groupName_(std::move(groupName)), group_(group) {
  service_.setChangeListener(
      [this](const CaptureRecord &r, bool statusChanged) { onChange(r, statusChanged); });
}

BusService::~BusService() {
  service_.setChangeListener(nullptr);
  for (auto *&slot : slots_)
    slot = sd_bus_slot_unref(slot);
  sd_bus_unref(bus_);
}

int BusService::filterCalls(sd_bus_message *m, void *userdata, sd_bus_error *) {
  auto *self = static_cast<BusService *>(userdata);
  // Every method call, whatever its path: sd-bus itself answers Introspect of the paths above
  // ringcap's tree ("/", "/org", ...) and Peer on any path.
  if (!sd_bus_message_is_method_call(m, nullptr, nullptr))
    return 0;
  sd_bus_error err = SD_BUS_ERROR_NULL;
  if (self->checkCaller(m, &err) >= 0)
    return 0;
  sd_bus_reply_method_error(m, &err);
  sd_bus_error_free(&err);
  return 1; // handled: refused
}

Result<void> BusService::start() {
  // Every method call to ringcapd, on any path, Introspect, Peer and Properties included,
  // passes the caller check first (the bus policy says the same; this holds without it).
  int r = sd_bus_add_filter(bus_, &slots_[3], filterCalls, this);
  if (r < 0)
    return Error::fromErrno(r, "installing the caller check");
  r = sd_bus_add_object_vtable(bus_, &slots_[0], kManagerPath, kManagerInterface, kManagerVtable,
                               this);
  if (r < 0)
    return Error::fromErrno(r, "registering the manager object");
  r = sd_bus_add_fallback_vtable(bus_, &slots_[1], kCapturePrefix, kCaptureInterface,
                                 kCaptureVtable, findCapture, this);
  if (r < 0)
    return Error::fromErrno(r, "registering the capture objects");
  r = sd_bus_add_node_enumerator(bus_, &slots_[2], kCapturePrefix, enumerateCaptures, this);
  if (r < 0)
    return Error::fromErrno(r, "registering the capture enumerator");
  r = sd_bus_request_name(bus_, kBusName, 0);
  if (r == -EEXIST || r == -EALREADY)
    return Error{EEXIST, std::string("the bus name ") + kBusName +
                             " is already taken (is another ringcapd running?)"};
  if (r < 0)
    return Error::fromErrno(r, std::string("taking the bus name ") + kBusName);
  return {};
}

int BusService::checkCaller(sd_bus_message *m, sd_bus_error *e) const {
  sd_bus_creds *creds = nullptr;
  int r = sd_bus_query_sender_creds(m,
                                    SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID | SD_BUS_CREDS_EGID |
                                        SD_BUS_CREDS_GID | SD_BUS_CREDS_SUPPLEMENTARY_GIDS,
                                    &creds);
  uid_t uid = uid_t(-1);
  bool member = false;
  if (r >= 0) {
    if (sd_bus_creds_get_euid(creds, &uid) < 0 && sd_bus_creds_get_uid(creds, &uid) < 0)
      uid = uid_t(-1);
    // The caller's groups as the bus saw them (as the bus policy matches them) ...
    gid_t gid;
    const gid_t *gids = nullptr;
    if (group_ != gid_t(-1)) {
      member = (sd_bus_creds_get_egid(creds, &gid) >= 0 && gid == group_) ||
               (sd_bus_creds_get_gid(creds, &gid) >= 0 && gid == group_);
      int n = sd_bus_creds_get_supplementary_gids(creds, &gids);
      for (int i = 0; i < n && !member; i++)
        member = gids[i] == group_;
    }
  }
  sd_bus_creds_unref(creds);
  // ... or, where the bus does not tell, the user database.
  if (!member && uid != uid_t(-1) && group_ != gid_t(-1))
    member = userInGroup(uid, group_);
  if (uid == 0 || (uid != uid_t(-1) && member))
    return 0;
  spdlog::warn("refused a call of {} from uid {}", sd_bus_message_get_member(m),
               uid == uid_t(-1) ? -1 : int64_t(uid));
  return sd_bus_error_setf(e, api::dbusErrorName(kAccessDenied),
                           "only root and members of the group \"%s\" may use ringcapd",
                           groupName_.c_str());
}

int BusService::fail(const Error &error, sd_bus_error *e) const {
  return sd_bus_error_set(e, api::dbusErrorName(error.kind), error.message.c_str());
}

std::optional<Error> BusService::checkFleetCaller(sd_bus_message *m,
                                                  const std::string &what) const {
  sd_bus_creds *creds = nullptr;
  uid_t uid = uid_t(-1);
  if (sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID, &creds) >= 0 &&
      sd_bus_creds_get_euid(creds, &uid) < 0 && sd_bus_creds_get_uid(creds, &uid) < 0)
    uid = uid_t(-1);
  sd_bus_creds_unref(creds);
  if (uid == 0)
    return std::nullopt;
  std::string rule = what + " only by root";
  if (agentUser_) {
    std::vector<char> buf(16384);
    passwd pw{}, *found = nullptr;
    if (uid != uid_t(-1) &&
        getpwnam_r(agentUser_->c_str(), &pw, buf.data(), buf.size(), &found) == 0 && found &&
        found->pw_uid == uid)
      return std::nullopt;
    rule += " or the fleet agent's user \"" + *agentUser_ + "\" (fleet.agent_user)";
  } else {
    rule += " (fleet.agent_user is not set)";
  }
  spdlog::warn("refused a {} of uid {} ({})", sd_bus_message_get_member(m),
               uid == uid_t(-1) ? -1 : int64_t(uid), what);
  return Error{kAccessDenied, rule};
}

int BusService::onCreate(sd_bus_message *m, void *userdata, sd_bus_error *e) {
  auto *self = static_cast<BusService *>(userdata);
  // Unknown keys and container types are refused before their values are read.
  auto request = readVariantDict(m, captureRequestSchema());
  if (!request)
    return self->fail(Error{kInvalidRequest, request.error().message}, e);
  // Who may name the capture is checked before the id's form or anything else.
  if (auto id = request->find("id"); id != request->end() && !id->is_null())
    if (auto denied = self->checkFleetCaller(m, "id: a capture id may be supplied"))
      return self->fail(*denied, e);
  auto created = self->service_.create(*request);
  if (!created)
    return self->fail(created.error(), e);
  return replyJson(m, (*created)->toJson(), capturePath((*created)->id));
}

int BusService::onGet(sd_bus_message *m, void *userdata, sd_bus_error *e) {
  auto *self = static_cast<BusService *>(userdata);
  std::string id;
  if (int r = readId(m, id, e); r < 0)
    return r;
  auto record = self->service_.get(id);
  if (!record)
    return self->fail(record.error(), e);
  return replyJson(m, (*record)->toJson());
}

int BusService::onList(sd_bus_message *m, void *userdata, sd_bus_error *) {
  auto *self = static_cast<BusService *>(userdata);
  nlohmann::json all = nlohmann::json::array();
  for (const CaptureRecord *rec : self->service_.list(50)) {
    auto fresh = self->service_.get(rec->id); // running ones get current counters
    all.push_back((fresh ? **fresh : *rec).toJson());
  }
  return replyJson(m, all);
}

int BusService::onStop(sd_bus_message *m, void *userdata, sd_bus_error *e) {
  auto *self = static_cast<BusService *>(userdata);
  std::string id;
  if (int r = readId(m, id, e); r < 0)
    return r;
  if (auto r = self->service_.stop(id); !r)
    return self->fail(r.error(), e);
  return sd_bus_reply_method_return(m, "");
}

int BusService::onOpenFile(sd_bus_message *m, void *userdata, sd_bus_error *e) {
  auto *self = static_cast<BusService *>(userdata);
  std::string id;
  if (int r = readId(m, id, e); r < 0)
    return r;
  auto fd = self->service_.openFile(id);
  if (!fd)
    return self->fail(fd.error(), e);
  int r = sd_bus_reply_method_return(m, "h", *fd); // sd-bus duplicates the fd
  close(*fd);
  return r;
}

int BusService::onCreateOwnership(sd_bus_message *m, void *userdata, sd_bus_error *) {
  auto *self = static_cast<BusService *>(userdata);
  const char *dest;
  if (int r = sd_bus_message_read(m, "s", &dest); r < 0)
    return r;
  // The challenge is written on the worker thread; the reply follows when it is done.
  sd_bus_message_ref(m);
  self->ownership_.create(dest, [self, m](Result<OwnershipRecord> r) {
    if (r) {
      replyJson(m, r->toJson());
    } else {
      sd_bus_error err = SD_BUS_ERROR_NULL;
      self->fail(r.error(), &err);
      sd_bus_reply_method_error(m, &err);
      sd_bus_error_free(&err);
    }
    sd_bus_message_unref(m);
  });
  return 1;
}

int BusService::onValidateOwnership(sd_bus_message *m, void *userdata, sd_bus_error *e) {
  auto *self = static_cast<BusService *>(userdata);
  const char *dest, *challenge;
  if (int r = sd_bus_message_read(m, "ss", &dest, &challenge); r < 0)
    return r;
  auto r = self->ownership_.validate(dest, challenge);
  if (!r)
    return self->fail(r.error(), e);
  return replyJson(m, r->toJson());
}

int BusService::onListOwnerships(sd_bus_message *m, void *userdata, sd_bus_error *) {
  auto *self = static_cast<BusService *>(userdata);
  nlohmann::json all = nlohmann::json::array();
  for (const auto *o : self->ownership_.list())
    all.push_back(o->toJson());
  return replyJson(m, all);
}

int BusService::onDeleteOwnership(sd_bus_message *m, void *userdata, sd_bus_error *e) {
  auto *self = static_cast<BusService *>(userdata);
  std::string id;
  if (int r = readId(m, id, e); r < 0)
    return r;
  if (auto r = self->ownership_.remove(id); !r)
    return self->fail(r.error(), e);
  return sd_bus_reply_method_return(m, "");
}

int BusService::onImportOwnership(sd_bus_message *m, void *userdata, sd_bus_error *e) {
  auto *self = static_cast<BusService *>(userdata);
  const char *dest;
  if (int r = sd_bus_message_read(m, "s", &dest); r < 0)
    return r;
  if (auto denied = self->checkFleetCaller(m, "ImportOwnership: an ownership may be imported"))
    return self->fail(*denied, e);
  auto r = self->ownership_.importValidated(dest);
  if (!r)
    return self->fail(r.error(), e);
  return replyJson(m, r->toJson());
}

int BusService::findCapture(sd_bus *, const char *path, const char *, void *userdata, void **found,
                            sd_bus_error *) {
  auto *self = static_cast<BusService *>(userdata);
  std::string p(path);
  std::string prefix = std::string(kCapturePrefix) + "/";
  if (p.rfind(prefix, 0) != 0)
    return 0;
  std::string id = p.substr(prefix.size());
  if (!isCaptureId(id) || !self->service_.get(id))
    return 0;
  *found = self;
  return 1;
}

int BusService::enumerateCaptures(sd_bus *, const char *, void *userdata, char ***nodes,
                                  sd_bus_error *) {
  auto *self = static_cast<BusService *>(userdata);
  auto records = self->service_.list(50);
  char **list = static_cast<char **>(calloc(records.size() + 1, sizeof(char *)));
  if (!list)
    return -ENOMEM;
  size_t i = 0;
  for (const CaptureRecord *r : records)
    list[i++] = strdup(capturePath(r->id).c_str());
  *nodes = list;
  return 0;
}

int BusService::getProperty(sd_bus *, const char *path, const char *, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *e) {
  auto *self = static_cast<BusService *>(userdata);
  std::string p(path);
  auto record = self->service_.get(p.substr(p.rfind('/') + 1));
  if (!record)
    return self->fail(record.error(), e);
  const CaptureRecord &r = **record;
  std::string_view name(property);
  if (name == "Id")
    return sd_bus_message_append(reply, "s", r.id.c_str());
  if (name == "Status")
    return sd_bus_message_append(reply, "s", std::string(toString(r.status)).c_str());
  if (name == "ErrorMessage")
    return sd_bus_message_append(reply, "s", r.errorMessage.c_str());
  if (name == "Record")
    return appendVariantDict(reply, r.toJson());
  for (const auto &f : kSlotCounterFields)
    if (name == f.property)
      return sd_bus_message_append(reply, "t", uint64_t(r.counters.*f.member));
  if (name == kPacketsLostProperty)
    return sd_bus_message_append(reply, "t", packetsLost(r.counters));
  return -ENOENT;
}

void BusService::onChange(const CaptureRecord &record, bool statusChanged) {
  std::string path = capturePath(record.id);
  // Record and the counters; with the status, Status and ErrorMessage first.
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v{"Status", "ErrorMessage", "Record"};
    for (const auto &f : kSlotCounterFields)
      v.emplace_back(f.property);
    v.emplace_back(kPacketsLostProperty);
    return v;
  }();
  static const std::vector<char *> strv = [] {
    std::vector<char *> v;
    for (const auto &n : names)
      v.push_back(const_cast<char *>(n.c_str()));
    v.push_back(nullptr);
    return v;
  }();
  char **changed = const_cast<char **>(strv.data()) + (statusChanged ? 0 : 2);
  int r = sd_bus_emit_properties_changed_strv(bus_, path.c_str(), kCaptureInterface, changed);
  if (r < 0)
    spdlog::warn("PropertiesChanged for {}: {}", record.id, std::strerror(-r));
  if (statusChanged && record.finished()) {
    r = sd_bus_emit_signal(bus_, kManagerPath, kManagerInterface, "CaptureFinished", "oss",
                           path.c_str(), record.id.c_str(),
                           std::string(toString(record.status)).c_str());
    if (r < 0)
      spdlog::warn("CaptureFinished for {}: {}", record.id, std::strerror(-r));
  }
}

} // namespace ringcap
