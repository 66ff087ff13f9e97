#include "ringcapctl/Watch.h"

#include "dbus/Variant.h"
#include "engine/SlotCounters.h"
#include "ringcapctl/Output.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <vector>

namespace ringcap::ctl {

namespace {

using nlohmann::json;

// Capture properties and the record keys they mirror.
const std::vector<std::pair<std::string, std::string>> kProperties = [] {
  std::vector<std::pair<std::string, std::string>> v{
      {"Id", "id"}, {"Status", "status"}, {"ErrorMessage", "error_message"}};
  for (const auto &f : kSlotCounterFields)
    v.emplace_back(f.property, f.name);
  v.emplace_back(kPacketsLostProperty, kPacketsLostName);
  return v;
}();

// Reads the invalidated properties (as) of a PropertiesChanged signal, those whose new values
// it does not carry, and tells whether there are any.
bool namesInvalidatedProperties(sd_bus_message *m) {
  char **names = nullptr;
  if (sd_bus_message_read_strv(m, &names) < 0 || !names)
    return false;
  bool any = names[0] != nullptr;
  for (char **name = names; *name; name++)
    std::free(*name);
  std::free(names);
  return any;
}

std::string text(const json &record, const char *key) {
  auto it = record.find(key);
  if (it == record.end())
    return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// The record arrives by the GetCapture reply, then by PropertiesChanged. Signals are
// subscribed to before GetCapture is sent, and messages are handled in the order they
// arrive, so no change is missed; a signal that arrives before the reply is already
// reflected in it, and is ignored.
class Watcher {
public:
  Watcher(Bus &bus, std::string id, bool json) : bus_(bus), id_(std::move(id)), json_(json) {}
  ~Watcher() {
    sd_bus_slot_unref(changed_);
    sd_bus_slot_unref(owner_);
    sd_bus_slot_unref(fetch_);
  }
  Watcher(const Watcher &) = delete;
  Watcher &operator=(const Watcher &) = delete;

  int run() {
    sd_bus *bus = bus_.get();
    std::string path = api::capturePath(id_);
    if (!sd_bus_object_path_is_valid(path.c_str())) {
      unwrap(bus_->getCapture(id_)); // ringcapd names the problem
      throw Failure(kExitFailure, "capture \"" + id_ + "\" has no object path to watch");
    }
    int r = sd_bus_match_signal(bus, &changed_, api::kBusName, path.c_str(),
                                "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                &Watcher::onPropertiesChanged, this);
    std::string ownerMatch = "type='signal',sender='org.freedesktop.DBus',"
                             "path='/org/freedesktop/DBus',interface='org.freedesktop.DBus',"
                             "member='NameOwnerChanged',arg0='" +
                             std::string(api::kBusName) + "'";
    if (r >= 0)
      r = sd_bus_add_match(bus, &owner_, ownerMatch.c_str(), &Watcher::onNameOwnerChanged, this);
    if (r < 0)
      throw Failure(kExitFailure,
                    std::string("subscribing to the capture's signals: ") + std::strerror(-r));
    fetch();
    while (!exit_ && !failure_) {
      r = sd_bus_process(bus, nullptr);
      if (r > 0)
        continue;
      if (r == 0)
        r = sd_bus_wait(bus, UINT64_MAX);
      if (r < 0 && r != -EINTR)
        throw Failure(kExitFailure,
                      std::string("lost the connection to the system bus: ") + std::strerror(-r));
    }
    if (failure_)
      throw *failure_;
    return *exit_;
  }

private:
  template <typename F> static int guarded(void *self, F &&f) {
    auto *w = static_cast<Watcher *>(self);
    try {
      f(*w);
    } catch (const Failure &e) {
      w->failure_ = e;
    } catch (const std::exception &e) {
      w->failure_ = Failure(kExitFailure, e.what());
    }
    return 0;
  }

  void fetch() {
    if (fetch_)
      return; // the pending reply is as new as what made us ask
    int r = sd_bus_call_method_async(bus_.get(), &fetch_, api::kBusName, api::kManagerPath,
                                     api::kManagerInterface, "GetCapture", &Watcher::onRecord, this,
                                     "s", id_.c_str());
    if (r < 0)
      throw Failure(kExitFailure, std::string("calling GetCapture: ") + std::strerror(-r));
  }

  static int onRecord(sd_bus_message *m, void *self, sd_bus_error *) {
    return guarded(self, [m](Watcher &w) {
      w.fetch_ = sd_bus_slot_unref(w.fetch_);
      if (sd_bus_message_is_method_error(m, nullptr))
        throw failureFrom(
            api::errorFromBus(sd_bus_message_get_error(m), -sd_bus_message_get_errno(m)));
      w.update(readRecord(m));
    });
  }

  static int onPropertiesChanged(sd_bus_message *m, void *self, sd_bus_error *) {
    return guarded(self, [m](Watcher &w) {
      const char *interface = nullptr;
      if (!w.record_ || sd_bus_message_read(m, "s", &interface) < 0 ||
          std::strcmp(interface, api::kCaptureInterface) != 0)
        return;
      auto changed = readVariantDict(m);
      if (!changed)
        return;
      json record = *w.record_;
      if (auto it = changed->find("Record"); it != changed->end() && it->is_object()) {
        record = *it;
      } else {
        for (const auto &[property, key] : kProperties)
          if (auto it = changed->find(property); it != changed->end()) {
            if (it->is_string() && it->get_ref<const std::string &>().empty())
              record.erase(key);
            else
              record[key] = *it;
          }
      }
      if (namesInvalidatedProperties(m))
        w.fetch();
      w.update(std::move(record));
    });
  }

  static int onNameOwnerChanged(sd_bus_message *m, void *self, sd_bus_error *) {
    return guarded(self, [m](Watcher &w) {
      const char *name, *from, *to;
      if (sd_bus_message_read(m, "sss", &name, &from, &to) < 0)
        return;
      if (*to)
        w.fetch(); // a new ringcapd: its view of the capture
      else
        throw Failure(kExitFailure, "ringcapd left the bus while capture " + w.id_ + " was " +
                                        (w.record_ ? text(*w.record_, "status") : "unknown"));
    });
  }

  void update(json record) {
    std::string status = text(record, "status");
    std::string shown =
        json_ ? record.dump()
              : status + "|" + text(record, "packets_captured") + "|" +
                    text(record, "packet_limit") + "|" + text(record, "bytes_captured") + "|" +
                    text(record, "packets_lost") + "|" + text(record, "stop_reason");
    if (shown != shown_) {
      std::printf("%s\n",
                  json_ ? shown.c_str() : formatProgress(record, std::time(nullptr)).c_str());
      std::fflush(stdout);
      shown_ = shown;
    }
    if (status == "success") {
      exit_ = kExitOk;
    } else if (status == "failed") {
      std::fprintf(stderr, "ringcapctl: capture %s failed: %s\n", id_.c_str(),
                   text(record, "error_message").c_str());
      exit_ = kExitFailure;
    }
    record_ = std::move(record);
  }

  Bus &bus_;
  std::string id_;
  bool json_;
  std::optional<json> record_;
  std::string shown_;
  sd_bus_slot *changed_ = nullptr;
  sd_bus_slot *owner_ = nullptr;
  sd_bus_slot *fetch_ = nullptr;
  std::optional<int> exit_;
  std::optional<Failure> failure_;
};

} // namespace

int watchCapture(Bus &bus, const std::string &id, bool json) {
  return Watcher(bus, id, json).run();
}

} // namespace ringcap::ctl
