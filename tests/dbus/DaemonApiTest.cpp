// ringcapd's D-Bus API (docs/dbus-api.md) through a real dbus-daemon: requests, records,
// errors, limits and access control.
#include "../lib/Sanitizer.h"
#include "DaemonFixture.h"
#include "engine/SlotCounters.h"

#include <cstring>
#include <filesystem>
#include <grp.h>
#include <iostream>
#include <regex>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace ringcap::dbustest {
namespace {

const std::regex kRfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)");
// Every counter of a record and of a capture object (engine/SlotCounters.h).
std::vector<std::string> counterNames() {
  std::vector<std::string> v;
  for (const auto &f : kSlotCounterFields)
    v.emplace_back(f.name);
  v.emplace_back(kPacketsLostName);
  return v;
}
std::vector<std::string> counterProperties() {
  std::vector<std::string> v;
  for (const auto &f : kSlotCounterFields)
    v.emplace_back(f.property);
  v.emplace_back(kPacketsLostProperty);
  return v;
}

std::string idOf(const DictResult &d) { return d.dict.value("id", ""); }

Fields simpleFields() {
  return {stringField("system", "magic-transit"), stringField("type", "simple"),
          intField("time_limit", 'u', 30), intField("packet_limit", 'u', 100)};
}

// The simple request with `field` in place of the entry of the same key (or added).
Fields with(Field field) {
  Fields f = simpleFields();
  auto it = std::find_if(f.begin(), f.end(), [&](const Field &x) { return x.key == field.key; });
  if (it != f.end())
    *it = std::move(field);
  else
    f.push_back(std::move(field));
  return f;
}

Fields without(const std::string &key) {
  Fields f = simpleFields();
  std::erase_if(f, [&](const Field &x) { return x.key == key; });
  return f;
}

Fields withFilter(Fields filter) { return with(dictField("filter_v1", std::move(filter))); }

TEST_F(DaemonTest, CreateCaptureAnswersARunningRecordAndMakesACaptureObject) {
  RINGCAP_LAB_UP();
  json filter = {{"destination_address", Lab::kCaptureAddress}, {"destination_port", 7001}};
  DictResult created = root().create(simpleRequest(60, 100, filter));
  ASSERT_TRUE(created.call.ok()) << created.call.describe();
  const json &rec = created.dict;
  ASSERT_TRUE(rec.is_object());
  std::string id = idOf(created);
  EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{32}"))) << id;
  EXPECT_EQ(created.path, capturePath(id));
  EXPECT_EQ(rec.value("status", ""), "running");
  EXPECT_EQ(rec.value("system", ""), "magic-transit");
  EXPECT_EQ(rec.value("type", ""), "simple");
  EXPECT_EQ(rec.value("time_limit", 0), 60);
  EXPECT_EQ(rec.value("packet_limit", 0), 100);
  EXPECT_EQ(rec.value("filter_v1", json()), filter);
  EXPECT_TRUE(std::regex_match(rec.value("submitted", ""), kRfc3339)) << rec.dump();
  EXPECT_TRUE(std::regex_match(rec.value("started", ""), kRfc3339)) << rec.dump();
  for (const auto &key : counterNames())
    EXPECT_TRUE(rec.contains(key) && rec[key].is_number_unsigned()) << key << " in " << rec.dump();
  for (const char *key : {"finished", "stop_reason", "error_message", "byte_limit", "colo_name"})
    EXPECT_FALSE(rec.contains(key)) << key << " in " << rec.dump();

  DictResult got = root().get(id);
  ASSERT_TRUE(got.call.ok()) << got.call.describe();
  EXPECT_EQ(idOf(got), id);
  EXPECT_EQ(got.dict.value("status", ""), "running");
  EXPECT_EQ(got.dict.value("submitted", ""), rec.value("submitted", ""));

  CallResult intro = root().call(created.path, "org.freedesktop.DBus.Introspectable", "Introspect");
  ASSERT_TRUE(intro.ok()) << intro.describe();
  const char *xml = "";
  ASSERT_GE(sd_bus_message_read(intro.reply.get(), "s", &xml), 0);
  EXPECT_NE(std::string(xml).find(std::string("<interface name=\"") + kCaptureInterface + "\">"),
            std::string::npos)
      << xml;
  CallResult parent =
      root().call(kCapturePrefix, "org.freedesktop.DBus.Introspectable", "Introspect");
  ASSERT_TRUE(parent.ok()) << parent.describe();
  ASSERT_GE(sd_bus_message_read(parent.reply.get(), "s", &xml), 0);
  EXPECT_NE(std::string(xml).find("<node name=\"" + id + "\"/>"), std::string::npos) << xml;

  CallResult all = root().call(created.path, "org.freedesktop.DBus.Properties", "GetAll",
                               stringArg(kCaptureInterface));
  ASSERT_TRUE(all.ok()) << all.describe();
  json props = readReply(all.reply.get());
  EXPECT_EQ(props.value("Id", ""), id);
  EXPECT_EQ(props.value("Status", ""), "running");
  EXPECT_EQ(props.value("ErrorMessage", "x"), "");
  EXPECT_EQ(props.value("Record", json()).value("id", ""), id);
  for (const auto &key : counterProperties())
    EXPECT_TRUE(props.contains(key) && props[key].is_number_unsigned()) << key << props.dump();
  EXPECT_TRUE(root().stop(id).ok());
}

struct BadRequest {
  const char *what;
  Fields request;
  std::string field; // the message must start with "<field>:"
};

TEST_F(DaemonTest, BadRequestsAreRefusedBeforeAnyJobExists) {
  RINGCAP_LAB_UP();
  const std::vector<BadRequest> table = {
      {"time_limit as s", with(stringField("time_limit", "10")), "time_limit"},
      {"time_limit as b", with(boolField("time_limit", true)), "time_limit"},
      {"time_limit as d", with(doubleField("time_limit", 10.0)), "time_limit"},
      {"time_limit as (ii)", with(pairField("time_limit", 1, 2)), "time_limit"},
      {"time_limit negative", with(intField("time_limit", 'i', -1)), "time_limit"},
      {"time_limit 0", with(intField("time_limit", 'u', 0)), "time_limit"},
      {"time_limit 301", with(intField("time_limit", 'u', 301)), "time_limit"},
      {"time_limit missing", without("time_limit"), "time_limit"},
      {"time_limit twice",
       [] {
         Fields f = simpleFields();
         f.push_back(intField("time_limit", 'u', 20));
         return f;
       }(),
       "time_limit"},
      {"packet_limit 0", with(intField("packet_limit", 'u', 0)), "packet_limit"},
      {"packet_limit 10001", with(intField("packet_limit", 'u', 10001)), "packet_limit"},
      {"packet_limit missing on simple", without("packet_limit"), "packet_limit"},
      {"byte_limit on simple", with(intField("byte_limit", 't', 1000)), "byte_limit"},
      {"colo_name on simple", with(stringField("colo_name", "lab01")), "colo_name"},
      {"destination_conf on simple", with(stringField("destination_conf", "file:///tmp")),
       "destination_conf"},
      {"offset_time not RFC 3339", with(stringField("offset_time", "yesterday")), "offset_time"},
      {"output_format pcap2", with(stringField("output_format", "pcap2")), "output_format"},
      {"output_format as u", with(intField("output_format", 'u', 1)), "output_format"},
      {"offset_time well-formed (no history on this host)",
       with(stringField("offset_time", "2026-11-26T10:00:00Z")), "offset_time"},
      {"unknown top-level key", with(stringField("colour", "blue")), "colour"},
      {"type x", with(stringField("type", "x")), "type"},
      {"type missing", without("type"), "type"},
      {"system missing", without("system"), "system"},
      {"system other", with(stringField("system", "other")), "system"},
      {"system as u", with(intField("system", 'u', 1)), "system"},
      {"filter_v1 as s", with(stringField("filter_v1", "udp")), "filter_v1"},
      {"filter_v1 unknown key", withFilter({intField("vlan", 'u', 5)}), "filter_v1.vlan"},
      {"filter_v1 unknown nested dict", withFilter({dictField("extra", {})}), "filter_v1.extra"},
      {"source_port as s", withFilter({stringField("source_port", "53")}), "filter_v1.source_port"},
      {"destination_port 65536", withFilter({intField("destination_port", 'u', 65536)}),
       "filter_v1.destination_port"},
      {"protocol 256", withFilter({intField("protocol", 'q', 256)}), "filter_v1.protocol"},
      {"source_address 10.0.0.256", withFilter({stringField("source_address", "10.0.0.256")}),
       "filter_v1.source_address"},
      {"destination_address not an address",
       withFilter({stringField("destination_address", "not-an-address")}),
       "filter_v1.destination_address"},
      {"source_address bad IPv6", withFilter({stringField("source_address", "fd00::zz")}),
       "filter_v1.source_address"},
      {"source_address as u", withFilter({intField("source_address", 'u', 167772161)}),
       "filter_v1.source_address"},
      {"mixed families",
       withFilter({stringField("source_address", "10.0.0.1"),
                   stringField("destination_address", "fd00::1")}),
       "filter_v1.destination_address"},
  };
  for (const BadRequest &row : table) {
    SCOPED_TRACE(row.what);
    DictResult r = root().create(dictArgs(row.request));
    EXPECT_EQ(r.call.error, kInvalidRequest) << r.call.describe();
    EXPECT_EQ(r.call.message.rfind(row.field + ": ", 0), 0u)
        << "the message should name " << row.field << ": " << r.call.message;
  }
  EXPECT_EQ(root().list().size(), 0u) << "a refused request left a capture behind";
  // And the base request is fine, so each row failed for its own reason.
  DictResult ok = root().create(dictArgs(simpleFields()));
  ASSERT_TRUE(ok.call.ok()) << ok.call.describe();
  EXPECT_EQ(root().list().size(), 1u);
  EXPECT_TRUE(root().stop(idOf(ok)).ok());
}

// ringcapd's resident memory high-water mark (VmHWM), in KiB; -1 when unknown.
long daemonPeakKiB(pid_t pid) {
  std::istringstream status(readFile("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

Field byteArrayField(std::string key, size_t bytes) {
  return {std::move(key), [bytes](sd_bus_message *m) {
            const std::vector<uint8_t> data(bytes, 0x5a);
            int r = sd_bus_message_open_container(m, 'v', "ay");
            if (r >= 0)
              r = sd_bus_message_append_array(m, 'y', data.data(), data.size());
            return r < 0 ? r : sd_bus_message_close_container(m);
          }};
}

// A request of 24 MiB (an ay under an unknown key, or under a known key that takes one value)
// must cost ringcapd about its size, not the ~600 MiB the array would take as JSON.
TEST_F(DaemonTest, LargeValuesAreRefusedWithoutBuildingThem) {
  RINGCAP_LAB_UP();
  constexpr size_t kBytes = 24 << 20; // the bus's default limit is 32 MiB a message
  const struct {
    Field field;
    std::string message;
  } rows[] = {
      {byteArrayField("colour", kBytes), "colour: unknown field"},
      {byteArrayField("destination_conf", kBytes),
       "destination_conf: unsupported D-Bus type \"ay\" (must be a single value such as s or u, "
       "not a container)"},
  };
  for (const auto &row : rows) {
    SCOPED_TRACE(row.field.key);
    const long before = daemonPeakKiB(lab().daemonPid());
    ASSERT_GT(before, 0);
    DictResult r = root().create(dictArgs(with(row.field)));
    EXPECT_EQ(r.call.error, kInvalidRequest) << r.call.describe();
    EXPECT_EQ(r.call.message, row.message);
    const long grown = daemonPeakKiB(lab().daemonPid()) - before;
    std::cerr << "ringcapd VmHWM " << before << " KiB, +" << grown << " KiB for a "
              << (kBytes >> 20) << " MiB " << row.field.key << "\n";
    // The message itself is held once (24 MiB), in sd-bus's buffer. Under AddressSanitizer
    // (this binary and ringcapd come from the same build) freed memory stays in ASan's
    // quarantine (256 MiB by default) and allocations carry redzones: measured +326 MiB there,
    // still a third of what building the value as JSON costs without ASan (+1 GiB).
    EXPECT_LT(grown, testsupport::kAddressSanitizer ? 512 * 1024 : 40 * 1024)
        << "ringcapd's peak memory grew by " << grown << " KiB";
  }
  EXPECT_EQ(root().list().size(), 0u);
}

// Variant.h: a value of a type requests never hold is refused with its key and its D-Bus
// signature.
TEST_F(DaemonTest, UnsupportedValueTypesAreNamedByTheirSignature) {
  RINGCAP_LAB_UP();
  const std::vector<std::pair<Field, std::string>> rows = {
      {pairField("time_limit", 1, 2), "(ii)"},
      {Field{"time_limit",
             [](sd_bus_message *m) { return sd_bus_message_append(m, "v", "v", "u", 10u); }},
       "v"},
      {Field{"time_limit",
             [](sd_bus_message *m) {
               return sd_bus_message_append(m, "v", "a{ss}", 1, "key", "value");
             }},
       "a{ss}"},
  };
  for (const auto &[field, signature] : rows) {
    SCOPED_TRACE("time_limit as " + signature);
    DictResult r = root().create(dictArgs(with(field)));
    EXPECT_EQ(r.call.error, kInvalidRequest) << r.call.describe();
    EXPECT_EQ(r.call.message, "time_limit: unsupported D-Bus type \"" + signature +
                                  "\" (must be a single value such as s or u, not a container)");
  }
  EXPECT_EQ(root().list().size(), 0u);
}

TEST_F(DaemonTest, EveryIntegerTypeIsAcceptedForTimeLimit) {
  RINGCAP_LAB_UP();
  for (char type : std::string("yqnuixt")) {
    SCOPED_TRACE(std::string("time_limit as ") + type);
    DictResult r = root().create(dictArgs(with(intField("time_limit", type, 10))));
    ASSERT_TRUE(r.call.ok()) << r.call.describe();
    EXPECT_EQ(r.dict.value("time_limit", 0), 10);
    EXPECT_EQ(r.dict.value("status", ""), "running");
    EXPECT_TRUE(root().stop(idOf(r)).ok());
  }
  EXPECT_EQ(root().list().size(), 7u);
}

TEST_F(DaemonTest, FullCaptureNeedsThisSiteAndAValidatedDestination) {
  RINGCAP_LAB_UP();
  auto full = [&](const std::string &colo, const std::string &destination) {
    return root().create(json{{"system", "magic-transit"},
                              {"type", "full"},
                              {"time_limit", 10},
                              {"colo_name", colo},
                              {"destination_conf", destination}});
  };
  const std::string allowed = "file://" + lab().destinationRoot();
  DictResult unvalidated = full("lab01", allowed);
  EXPECT_EQ(unvalidated.call.error, kOwnershipRequired) << unvalidated.call.describe();
  EXPECT_EQ(unvalidated.call.message.rfind("destination_conf: ", 0), 0u)
      << unvalidated.call.message;
  DictResult elsewhere = full("elsewhere", allowed);
  EXPECT_EQ(elsewhere.call.error, kInvalidRequest) << elsewhere.call.describe();
  EXPECT_EQ(elsewhere.call.message.rfind("colo_name: ", 0), 0u) << elsewhere.call.message;
  DictResult outside = full("lab01", "file:///var/tmp");
  EXPECT_EQ(outside.call.error, kInvalidRequest) << outside.call.describe();
  EXPECT_EQ(outside.call.message.rfind("destination_conf: ", 0), 0u) << outside.call.message;
  DictResult noColo = root().create(json{{"system", "magic-transit"},
                                         {"type", "full"},
                                         {"time_limit", 10},
                                         {"destination_conf", allowed}});
  EXPECT_EQ(noColo.call.error, kInvalidRequest) << noColo.call.describe();
  EXPECT_EQ(noColo.call.message.rfind("colo_name: ", 0), 0u) << noColo.call.message;
  EXPECT_EQ(root().list().size(), 0u);
}

TEST_F(DaemonTest, SecondSimpleCaptureWithinTheIntervalIsRateLimited) {
  RINGCAP_LAB_UP(LabOptions{.simpleIntervalSeconds = 60});
  DictResult first = root().create(simpleRequest(30, 10));
  ASSERT_TRUE(first.call.ok()) << first.call.describe();
  DictResult second = root().create(simpleRequest(30, 10));
  EXPECT_EQ(second.call.error, kRateLimited) << second.call.describe();
  EXPECT_TRUE(std::regex_search(second.call.message, std::regex(R"(next is allowed in [0-9]+ s)")))
      << second.call.message;
  // The alias "sample" is a simple capture too.
  json sampleRequest = simpleRequest(30, 10);
  sampleRequest["type"] = "sample";
  DictResult sample = root().create(sampleRequest);
  EXPECT_EQ(sample.call.error, kRateLimited) << sample.call.describe();
  std::vector<json> records = root().list();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].value("id", ""), idOf(first));
  EXPECT_TRUE(root().stop(idOf(first)).ok());
}

TEST_F(DaemonTest, NinthCaptureFindsEverySlotBusy) {
  RINGCAP_LAB_UP();
  std::vector<std::string> ids;
  for (int i = 0; i < 8; i++) {
    DictResult r = root().create(simpleRequest(300, 10000));
    ASSERT_TRUE(r.call.ok()) << "capture " << i << ": " << r.call.describe();
    ids.push_back(idOf(r));
  }
  DictResult ninth = root().create(simpleRequest(300, 10000));
  EXPECT_EQ(ninth.call.error, kCaptureBusy) << ninth.call.describe();
  EXPECT_EQ(root().list().size(), 8u);
  for (const auto &id : ids) {
    CallResult stopped = root().stop(id);
    EXPECT_TRUE(stopped.ok()) << stopped.describe();
    EXPECT_EQ(root().get(id).dict.value("status", ""), "success");
  }
  // The slots are free again.
  DictResult again = root().create(simpleRequest(300, 10000));
  ASSERT_TRUE(again.call.ok()) << again.call.describe();
  EXPECT_TRUE(root().stop(idOf(again)).ok());
}

TEST_F(DaemonTest, StopCaptureEndsARunningCapture) {
  RINGCAP_LAB_UP();
  root().watchFinished();
  DictResult r = root().create(simpleRequest(300, 100));
  ASSERT_TRUE(r.call.ok()) << r.call.describe();
  std::string id = idOf(r);
  CallResult stopped = root().stop(id);
  ASSERT_TRUE(stopped.ok()) << stopped.describe();
  DictResult got = root().get(id);
  ASSERT_TRUE(got.call.ok()) << got.call.describe();
  EXPECT_EQ(got.dict.value("status", ""), "success");
  EXPECT_EQ(got.dict.value("stop_reason", ""), "stopped");
  EXPECT_TRUE(std::regex_match(got.dict.value("finished", ""), kRfc3339)) << got.dict.dump();
  // When the stop was asked for: RFC 3339 in UTC of one width, so the strings compare.
  const std::string requested = got.dict.value("stop_requested", "");
  EXPECT_TRUE(std::regex_match(requested, kRfc3339)) << got.dict.dump();
  EXPECT_LE(got.dict.value("started", ""), requested) << got.dict.dump();
  EXPECT_LE(requested, got.dict.value("finished", "")) << got.dict.dump();
  EXPECT_TRUE(got.dict.contains("file_size")) << got.dict.dump();
  EXPECT_FALSE(got.dict.contains("error_message")) << got.dict.dump();
  EXPECT_TRUE(root().waitFor([&] { return root().finishedSignalFor(id); }, 10s))
      << "no CaptureFinished for " << id;
  // Stopping a finished capture leaves it as it is.
  EXPECT_TRUE(root().stop(id).ok());
  EXPECT_EQ(root().get(id).dict.value("stop_reason", ""), "stopped");
  EXPECT_EQ(root().get(id).dict.value("stop_requested", ""), requested);

  CallResult unknown = root().stop(std::string(32, 'a'));
  EXPECT_EQ(unknown.error, kNotFound) << unknown.describe();
  for (const std::string &bad : std::vector<std::string>{
           "xyz", "", std::string(32, 'A'), std::string(33, 'a'), std::string(31, 'a') + "g"}) {
    SCOPED_TRACE("id \"" + bad + "\"");
    CallResult malformed = root().stop(bad);
    EXPECT_EQ(malformed.error, kInvalidRequest) << malformed.describe();
    EXPECT_EQ(malformed.message.rfind("id: ", 0), 0u) << malformed.message;
    EXPECT_EQ(root().get(bad).call.error, kInvalidRequest);
  }
  EXPECT_EQ(root().get(std::string(32, 'b')).call.error, kNotFound);
}

// NotFound is a kind the service chooses, for every method that takes an id, not an ENOENT
// that happened to come back from a store.
TEST_F(DaemonTest, UnknownIdsAreNotFoundForEveryMethod) {
  RINGCAP_LAB_UP();
  const std::string unknown(32, 'c');
  for (const char *method : {"GetCapture", "StopCapture", "OpenCaptureFile", "DeleteOwnership"}) {
    SCOPED_TRACE(method);
    CallResult r = root().manager(method, stringArg(unknown));
    EXPECT_EQ(r.error, kNotFound) << r.describe();
    EXPECT_NE(r.message.find(unknown), std::string::npos) << r.message;
  }
  std::string destination = "file://" + lab().destinationRoot() + "/never-challenged";
  CallResult validate = root().manager("ValidateOwnership", [&](sd_bus_message *m) {
    return sd_bus_message_append(m, "ss", destination.c_str(), "token");
  });
  EXPECT_EQ(validate.error, kNotFound) << validate.describe();
}

// A system error is not a service error: when open() of a finished capture's file fails
// (here ENOENT: the file was removed behind the daemon's back), the caller gets Failed with
// the system's words in the message, not NotFound ("no capture with that id").
TEST_F(DaemonTest, OpenCaptureFileReportsASystemErrorAsFailed) {
  RINGCAP_LAB_UP();
  DictResult r = root().create(simpleRequest(300, 100));
  ASSERT_TRUE(r.call.ok()) << r.call.describe();
  std::string id = idOf(r);
  ASSERT_TRUE(root().stop(id).ok());
  std::string file = lab().stateDirectory() + "/captures/" + id + ".pcap"; // converted
  ASSERT_EQ(unlink(file.c_str()), 0) << file << ": " << std::strerror(errno);

  UniqueFd fd;
  CallResult opened = root().openFile(id, fd);
  EXPECT_EQ(opened.error, kFailed) << opened.describe();
  EXPECT_NE(opened.message.find(id), std::string::npos) << opened.message;
  EXPECT_NE(opened.message.find(std::strerror(ENOENT)), std::string::npos) << opened.message;
  EXPECT_EQ(fd.get(), -1);
  // The capture itself is still there.
  DictResult got = root().get(id);
  ASSERT_TRUE(got.call.ok()) << got.call.describe();
  EXPECT_EQ(got.dict.value("status", ""), "success") << got.dict.dump();
}

TEST_F(DaemonTest, ListCapturesAnswersThe50NewestNewestFirst) {
  RINGCAP_LAB_UP();
  std::vector<std::string> created;
  for (int i = 0; i < 55; i++) {
    DictResult r = root().create(simpleRequest(1, 10));
    ASSERT_TRUE(r.call.ok()) << "capture " << i << ": " << r.call.describe();
    created.push_back(idOf(r));
    ASSERT_TRUE(root().stop(created.back()).ok());
  }
  std::vector<json> records = root().list();
  ASSERT_EQ(records.size(), 50u);
  EXPECT_EQ(records.front().value("id", ""), created.back());
  for (size_t i = 0; i < records.size(); i++) {
    EXPECT_EQ(records[i].value("id", ""), created[created.size() - 1 - i]) << "position " << i;
    if (i > 0) {
      EXPECT_GE(records[i - 1].value("submitted", ""), records[i].value("submitted", ""))
          << "position " << i;
    }
  }
  // Older ones are still there by id.
  DictResult oldest = root().get(created.front());
  ASSERT_TRUE(oldest.call.ok()) << oldest.call.describe();
  EXPECT_EQ(oldest.dict.value("status", ""), "success");
}

TEST_F(DaemonTest, BusPolicyAdmitsOnlyRootAndTheGroup) {
  RINGCAP_LAB_UP();
  DictResult r = root().create(simpleRequest(300, 100));
  ASSERT_TRUE(r.call.ok()) << r.call.describe();
  std::string id = idOf(r), address = lab().busAddress();
  auto as = [&](const char *user, const std::string &path, const char *interface,
                const char *member, const Args &args = {}) {
    return callAs(user, address, path, interface, member, args);
  };

  // The outsider is stopped by the bus: the message is dbus-daemon's, not ringcapd's.
  for (auto [path, interface, member] :
       std::vector<std::tuple<std::string, const char *, const char *>>{
           {kManagerPath, kManager, "ListCaptures"},
           {kManagerPath, "org.freedesktop.DBus.Introspectable", "Introspect"},
           {kManagerPath, "org.freedesktop.DBus.Peer", "Ping"},
       }) {
    SCOPED_TRACE(member);
    RemoteResult denied = as(kUnprivilegedUser, path, interface, member);
    EXPECT_EQ(denied.error, kAccessDenied) << denied.describe();
    EXPECT_EQ(denied.message.find("only root and members"), std::string::npos) << denied.message;
  }
  RemoteResult get = as(kUnprivilegedUser, kManagerPath, kManager, "GetCapture", stringArg(id));
  EXPECT_EQ(get.error, kAccessDenied) << get.describe();
  RemoteResult props = as(kUnprivilegedUser, capturePath(id), "org.freedesktop.DBus.Properties",
                          "GetAll", stringArg(kCaptureInterface));
  EXPECT_EQ(props.error, kAccessDenied) << props.describe();
  RemoteResult create = as(kUnprivilegedUser, kManagerPath, kManager, "CreateCapture",
                           jsonArgs(simpleRequest(10, 10)));
  EXPECT_EQ(create.error, kAccessDenied) << create.describe();
  RemoteResult stop = as(kUnprivilegedUser, kManagerPath, kManager, "StopCapture", stringArg(id));
  EXPECT_EQ(stop.error, kAccessDenied) << stop.describe();

  RemoteResult list = as(kMemberUser, kManagerPath, kManager, "ListCaptures");
  ASSERT_TRUE(list.ok()) << list.describe();
  ASSERT_TRUE(list.value.is_array());
  ASSERT_EQ(list.value.size(), 1u) << "the outsider's CreateCapture must not have run";
  EXPECT_EQ(list.value[0].value("id", ""), id);
  RemoteResult memberGet = as(kMemberUser, kManagerPath, kManager, "GetCapture", stringArg(id));
  ASSERT_TRUE(memberGet.ok()) << memberGet.describe();
  EXPECT_EQ(memberGet.value.value("status", ""), "running");
  RemoteResult memberProps = as(kMemberUser, capturePath(id), "org.freedesktop.DBus.Properties",
                                "GetAll", stringArg(kCaptureInterface));
  ASSERT_TRUE(memberProps.ok()) << memberProps.describe();
  EXPECT_EQ(memberProps.value.value("Id", ""), id);
  RemoteResult memberStop = as(kMemberUser, kManagerPath, kManager, "StopCapture", stringArg(id));
  EXPECT_TRUE(memberStop.ok()) << memberStop.describe();
  EXPECT_EQ(root().get(id).dict.value("stop_reason", ""), "stopped");
}

TEST_F(DaemonTest, DaemonRefusesOutsidersEvenWhenTheBusLetsThemThrough) {
  RINGCAP_LAB_UP(LabOptions{.shippedPolicy = false});
  DictResult r = root().create(simpleRequest(300, 100));
  ASSERT_TRUE(r.call.ok()) << r.call.describe();
  std::string id = idOf(r), address = lab().busAddress();
  auto as = [&](const char *user, const std::string &path, const char *interface,
                const char *member, const Args &args = {}) {
    return callAs(user, address, path, interface, member, args);
  };
  const std::string groupRule = "only root and members of the group \"ringcap\"";
  // Proof that the bus lets the outsider through: the refusal of Peer.Ping is ringcapd's own
  // (its message names the group), not the bus policy's.
  RemoteResult ping = as(kUnprivilegedUser, kManagerPath, "org.freedesktop.DBus.Peer", "Ping");
  ASSERT_EQ(ping.error, "org.freedesktop.DBus.Error.AccessDenied") << ping.describe();
  ASSERT_NE(ping.message.find(groupRule), std::string::npos) << ping.describe();
  for (auto [member, args] : std::vector<std::pair<const char *, Args>>{
           {"ListCaptures", {}},
           {"GetCapture", stringArg(id)},
           {"StopCapture", stringArg(id)},
           {"OpenCaptureFile", stringArg(id)},
           {"CreateCapture", jsonArgs(simpleRequest(10, 10))},
       }) {
    SCOPED_TRACE(member);
    RemoteResult denied = as(kUnprivilegedUser, kManagerPath, kManager, member, args);
    EXPECT_EQ(denied.error, kAccessDenied) << denied.describe();
    EXPECT_NE(denied.message.find(groupRule), std::string::npos) << denied.message;
  }
  RemoteResult props = as(kUnprivilegedUser, capturePath(id), "org.freedesktop.DBus.Properties",
                          "GetAll", stringArg(kCaptureInterface));
  EXPECT_EQ(props.error, kAccessDenied) << props.describe();
  EXPECT_EQ(root().get(id).dict.value("status", ""), "running") << "the outsider stopped it";
  EXPECT_EQ(root().list().size(), 1u) << "the outsider created a capture";

  RemoteResult list = as(kMemberUser, kManagerPath, kManager, "ListCaptures");
  ASSERT_TRUE(list.ok()) << list.describe();
  EXPECT_EQ(list.value.size(), 1u);
  RemoteResult get = as(kMemberUser, kManagerPath, kManager, "GetCapture", stringArg(id));
  ASSERT_TRUE(get.ok()) << get.describe();
  EXPECT_EQ(get.value.value("id", ""), id);
  RemoteResult stop = as(kMemberUser, kManagerPath, kManager, "StopCapture", stringArg(id));
  EXPECT_TRUE(stop.ok()) << stop.describe();
}

TEST_F(DaemonTest, StateFilesAreNotWorldReadable) {
  RINGCAP_LAB_UP();
  DictResult r = root().create(simpleRequest(300, 100));
  ASSERT_TRUE(r.call.ok()) << r.call.describe();
  ASSERT_TRUE(root().stop(idOf(r)).ok());
  const group *g = getgrnam(kGroup);
  ASSERT_NE(g, nullptr);
  // Stopped, the capture was converted to PCAP; the file keeps the spool's mode and group.
  std::string capture = lab().stateDirectory() + "/captures/" + idOf(r) + ".pcap";
  struct stat st {};
  ASSERT_EQ(stat(capture.c_str(), &st), 0) << capture << ": " << std::strerror(errno);
  EXPECT_EQ(st.st_mode & 07777, 0640u) << capture;
  EXPECT_EQ(st.st_gid, g->gr_gid) << capture << " should belong to the group " << kGroup;

  int checked = 0;
  std::error_code ec;
  std::vector<std::filesystem::path> paths = {lab().stateDirectory()};
  for (const auto &e : std::filesystem::recursive_directory_iterator(lab().stateDirectory(), ec))
    paths.push_back(e.path());
  ASSERT_FALSE(ec) << ec.message();
  for (const auto &p : paths) {
    ASSERT_EQ(lstat(p.c_str(), &st), 0) << p;
    EXPECT_EQ(st.st_mode & 0007, 0u)
        << p << " is open to others (mode " << std::oct << (st.st_mode & 07777) << ")";
    ++checked;
  }
  EXPECT_GE(checked, 4) << "expected the state directory, captures/, a record and a file";
}

} // namespace
} // namespace ringcap::dbustest
