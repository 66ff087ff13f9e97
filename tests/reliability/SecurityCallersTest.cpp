// Who may call what: every method of docs/dbus-api.md (the Manager's capture and ownership
// methods, Properties.Get/GetAll on a capture object, Introspect on the manager, the capture
// tree and a capture object) called by root, by a member of the group "ringcap" and by an
// unprivileged user, on a real dbus-daemon:
//  - with the shipped policy (systemd/org.ringcap.Ringcap1.conf): root and the member get
//    their answers, the outsider is refused by the bus;
//  - with a permissive policy in its place: the outsider reaches ringcapd, whose own check
//    must refuse it (its message names the group), and nothing the outsider asked for
//    happens.
// The whole table is printed (caller x method -> outcome) for docs/reliability.md.
#include "../dbus/DaemonFixture.h"

#include <filesystem>
#include <iostream>
#include <sstream>

namespace ringcap::dbustest {
namespace {

constexpr const char *kProperties = "org.freedesktop.DBus.Properties";
constexpr const char *kIntrospectable = "org.freedesktop.DBus.Introspectable";
constexpr const char *kRoot = "root";
const std::string kDaemonRefusal = "only root and members of the group \"ringcap\"";

std::string idOf(const DictResult &d) { return d.dict.value("id", ""); }

// The objects a row works on; fresh ones are made for each caller where a call changes them.
struct Targets {
  std::string running;        // a capture that runs throughout
  std::string finished;       // a capture with a file
  std::string toStop;         // a running capture made for this caller
  std::string ownershipId;    // an ownership made for this caller (to delete)
  std::string destination;    // the destination of an existing ownership
  std::string newDestination; // where this caller's CreateOwnership writes
};

struct Row {
  std::string name;
  std::function<std::string(const Targets &)> path;
  const char *interface;
  const char *member;
  std::function<Args(const Targets &)> args;
  std::string privilegedError; // what root and the member get: "" is success
};

std::vector<Row> rows() {
  auto manager = [](const Targets &) { return std::string(kManagerPath); };
  auto none = [](const Targets &) { return Args{}; };
  return {
      {"CreateCapture", manager, kManager, "CreateCapture",
       [](const Targets &) {
         return jsonArgs(simpleRequest(300, 100, {{"destination_port", 7999}}));
       },
       ""},
      {"GetCapture", manager, kManager, "GetCapture",
       [](const Targets &t) { return stringArg(t.running); }, ""},
      {"ListCaptures", manager, kManager, "ListCaptures", none, ""},
      {"StopCapture", manager, kManager, "StopCapture",
       [](const Targets &t) { return stringArg(t.toStop); }, ""},
      {"OpenCaptureFile", manager, kManager, "OpenCaptureFile",
       [](const Targets &t) { return stringArg(t.finished); }, ""},
      {"CreateOwnership", manager, kManager, "CreateOwnership",
       [](const Targets &t) { return stringArg(t.newDestination); }, ""},
      {"ValidateOwnership", manager, kManager, "ValidateOwnership",
       [](const Targets &t) {
         return Args([d = t.destination](sd_bus_message *m) {
           return sd_bus_message_append(m, "ss", d.c_str(), "not-the-token");
         });
       },
       ""},
      {"ListOwnerships", manager, kManager, "ListOwnerships", none, ""},
      {"DeleteOwnership", manager, kManager, "DeleteOwnership",
       [](const Targets &t) { return stringArg(t.ownershipId); }, ""},
      {"Properties.Get(Status)", [](const Targets &t) { return capturePath(t.running); },
       kProperties, "Get",
       [](const Targets &) {
         return Args([](sd_bus_message *m) {
           return sd_bus_message_append(m, "ss", kCaptureInterface, "Status");
         });
       },
       ""},
      {"Properties.GetAll", [](const Targets &t) { return capturePath(t.running); }, kProperties,
       "GetAll", [](const Targets &) { return stringArg(kCaptureInterface); }, ""},
      {"Introspect(manager)", manager, kIntrospectable, "Introspect", none, ""},
      {"Introspect(capture tree)", [](const Targets &) { return std::string(kCapturePrefix); },
       kIntrospectable, "Introspect", none, ""},
      {"Introspect(capture)", [](const Targets &t) { return capturePath(t.running); },
       kIntrospectable, "Introspect", none, ""},
      // Paths above ringcap's tree, which sd-bus answers by itself.
      {"Introspect(/)", [](const Targets &) { return std::string("/"); }, kIntrospectable,
       "Introspect", none, ""},
      {"Peer.Ping(/)", [](const Targets &) { return std::string("/"); },
       "org.freedesktop.DBus.Peer", "Ping", none, ""},
      {"Peer.GetMachineId(/org)", [](const Targets &) { return std::string("/org"); },
       "org.freedesktop.DBus.Peer", "GetMachineId", none, ""},
  };
}

class CallerTableTest : public DaemonTest {
protected:
  // A simple capture that ends with 5 packets (a file to open).
  std::string finishedCapture() {
    DictResult r = root().create(simpleRequest(60, 5, {{"destination_port", 7990}}));
    EXPECT_TRUE(r.call.ok()) << r.call.describe();
    std::string id = idOf(r);
    root().watchCapture(r.path); // PropertiesChanged wakes the wait below
    EXPECT_TRUE(lab().sendUdp(40000, 7990, 5, 100));
    bool done =
        root().waitFor([&] { return root().get(id).dict.value("status", "") == "success"; }, 20s);
    EXPECT_TRUE(done) << "the 5-packet capture did not finish";
    return id;
  }
  std::string runningCapture(uint16_t port) {
    DictResult r = root().create(simpleRequest(300, 100, {{"destination_port", port}}));
    EXPECT_TRUE(r.call.ok()) << r.call.describe();
    return idOf(r);
  }
  // An ownership (created by root) of a file:// destination below the allowed root.
  std::pair<std::string, std::string> ownership(const std::string &dir) {
    std::string dest = "file://" + lab().destinationRoot() + "/" + dir;
    CallResult r = root().manager("CreateOwnership", stringArg(dest));
    EXPECT_TRUE(r.ok()) << r.describe();
    json o = r.ok() ? readReply(r.reply.get()) : json();
    return {o.value("id", ""), dest};
  }
  size_t ownershipCount() {
    CallResult r = root().manager("ListOwnerships");
    return r.ok() ? readReply(r.reply.get()).size() : 0;
  }

  // Calls every row as each caller; checks the outcomes; prints the table.
  void runTable(bool shippedPolicy) {
    Targets base;
    base.running = runningCapture(7991);
    base.finished = finishedCapture();
    ASSERT_FALSE(base.running.empty() || base.finished.empty());

    std::ostringstream table;
    table << "| method | root | ringcap member | unprivileged |\n|---|---|---|---|\n";
    std::map<std::string, std::map<std::string, std::string>> outcome;
    const std::vector<std::string> callers = {kRoot, kMemberUser, kUnprivilegedUser};
    for (size_t c = 0; c < callers.size(); c++) {
      const std::string &caller = callers[c];
      Targets t = base;
      t.toStop = runningCapture(uint16_t(7992 + c));
      auto [deleteId, deleteDest] = ownership("delete-" + caller);
      t.ownershipId = deleteId;
      auto [validateId, validateDest] = ownership("validate-" + caller);
      t.destination = validateDest;
      t.newDestination = "file://" + lab().destinationRoot() + "/new-" + caller;
      ASSERT_FALSE(t.toStop.empty() || deleteId.empty() || validateId.empty());
      size_t capturesBefore = root().list().size();
      size_t ownershipsBefore = ownershipCount();
      for (const Row &row : rows()) {
        SCOPED_TRACE(caller + " calls " + row.name);
        RemoteResult r =
            callAs(caller, lab().busAddress(), row.path(t), row.interface, row.member, row.args(t));
        std::string shown = r.ok() ? "answered" : r.error.substr(r.error.rfind('.') + 1);
        bool byDaemon = r.message.find(kDaemonRefusal) != std::string::npos;
        if (r.error == kAccessDenied)
          shown += byDaemon ? " (ringcapd)" : " (bus)";
        outcome[row.name][caller] = shown;
        if (caller != kUnprivilegedUser) {
          EXPECT_EQ(r.error, row.privilegedError) << r.describe();
          continue;
        }
        EXPECT_EQ(r.error, kAccessDenied) << r.describe();
        if (shippedPolicy) {
          EXPECT_FALSE(byDaemon) << "the shipped policy should stop the outsider at the bus: "
                                 << r.message;
        } else {
          EXPECT_TRUE(byDaemon) << "ringcapd itself should refuse the outsider: " << r.describe();
        }
        if (r.ok() && r.value.is_string()) {
          EXPECT_EQ(r.value.get<std::string>().find(base.running), std::string::npos)
              << "the outsider learnt the id of a capture from " << row.name;
        }
      }
      CallResult list = root().manager("ListOwnerships");
      ASSERT_TRUE(list.ok()) << list.describe();
      std::map<std::string, std::string> status;
      for (const auto &o : readReply(list.reply.get()))
        status[o.value("id", "")] = o.value("status", "");
      if (caller == kUnprivilegedUser) {
        // Nothing the outsider asked for happened.
        EXPECT_EQ(root().list().size(), capturesBefore) << "the outsider created a capture";
        EXPECT_EQ(root().get(t.toStop).dict.value("status", ""), "running")
            << "the outsider stopped a capture";
        EXPECT_EQ(ownershipCount(), ownershipsBefore)
            << "the outsider created or deleted an ownership";
        EXPECT_EQ(status[deleteId], "pending") << "the outsider deleted an ownership";
        EXPECT_EQ(status[validateId], "pending") << "the outsider's ValidateOwnership counted";
        EXPECT_FALSE(std::filesystem::exists(lab().destinationRoot() + "/new-" + caller))
            << "the outsider's CreateOwnership wrote into the destination";
      } else {
        // And what root and the member asked for did.
        EXPECT_EQ(root().list().size(), capturesBefore + 1) << caller << "'s CreateCapture";
        EXPECT_EQ(root().get(t.toStop).dict.value("status", ""), "success")
            << caller << "'s StopCapture did not stop the capture";
        EXPECT_EQ(status.count(deleteId), 0u) << caller << "'s DeleteOwnership";
        EXPECT_EQ(status[validateId], "failed") << caller << "'s ValidateOwnership (wrong token)";
        EXPECT_EQ(ownershipCount(), ownershipsBefore) << caller << ": one created, one deleted";
        EXPECT_TRUE(std::filesystem::is_directory(lab().destinationRoot() + "/new-" + caller))
            << caller << "'s CreateOwnership wrote no challenge";
      }
    }
    for (const Row &row : rows())
      table << "| " << row.name << " | " << outcome[row.name][kRoot] << " | "
            << outcome[row.name][kMemberUser] << " | " << outcome[row.name][kUnprivilegedUser]
            << " |\n";
    std::cout << (shippedPolicy ? "Shipped policy:\n" : "Permissive policy:\n") << table.str();
  }
};

TEST_F(CallerTableTest, ShippedPolicyAdmitsRootAndTheGroupToEveryMethodAndNobodyElse) {
  RINGCAP_LAB_UP();
  runTable(true);
}

TEST_F(CallerTableTest, WithAPermissivePolicyRingcapdStillRefusesTheOutsiderEverywhere) {
  RINGCAP_LAB_UP(LabOptions{.shippedPolicy = false});
  // Proof that the bus lets the outsider through: the refusal of Peer.Ping is ringcapd's own
  // (its message names the group), not the bus policy's.
  RemoteResult ping = callAs(kUnprivilegedUser, lab().busAddress(), kManagerPath,
                             "org.freedesktop.DBus.Peer", "Ping");
  ASSERT_EQ(ping.error, kAccessDenied) << ping.describe();
  ASSERT_NE(ping.message.find("only root and members of the group"), std::string::npos)
      << ping.describe();
  runTable(false);
}

} // namespace
} // namespace ringcap::dbustest
