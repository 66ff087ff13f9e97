// Conversions between D-Bus variant dictionaries (a{sv}) and JSON objects, shared by the
// daemon (requests in, records out) and ringcapctl (requests out, records in).
#pragma once

#include "util/Result.h"

#include <map>
#include <nlohmann/json.hpp>
#include <string>

struct sd_bus_message;

namespace ringcap {

// D-Bus signatures to use for JSON integers of known keys, such as {"time_limit", 'u'};
// applied at every nesting level. A value that does not fit the type is sent as 'x' or 't'.
using VariantTypeHints = std::map<std::string, char, std::less<>>;

// The types of the request and record fields of docs/dbus-api.md.
const VariantTypeHints &captureFieldTypes();

// Reads an a{sv} at the message's read position into a JSON object. Integers of every
// D-Bus type become JSON integers, doubles numbers, booleans booleans, strings, object paths
// and signatures strings, a{sv} objects, arrays of basic types arrays; any other type is an
// error naming the key and the signature ("filter_v1.source_port: unsupported D-Bus type
// \"ai\""), and so is a key given twice.
Result<nlohmann::json> readVariantDict(sd_bus_message *m, const std::string &path = "");

// Appends a JSON object as a{sv} (null members are left out). Returns a negative errno on
// failure, like sd-bus.
int appendVariantDict(sd_bus_message *m, const nlohmann::json &object,
                      const VariantTypeHints &hints = captureFieldTypes());

} // namespace ringcap
