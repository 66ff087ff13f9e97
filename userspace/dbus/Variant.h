// Conversions between D-Bus variant dictionaries (a{sv}) and JSON objects, shared by the
// daemon (requests in, records out) and ringcapctl (requests out, records in).
#pragma once

#include "util/Result.h"

#include <map>
#include <nlohmann/json.hpp>
#include <string>

struct sd_bus_message;

namespace ringcap {

// D-Bus integer types to use for JSON integers of known keys, such as {"time_limit", 'u'};
// applied at every nesting level (not to array elements). A value that does not fit the type
// is sent like an integer of a key without a hint, so that the receiver sees the value and
// can report its range.
using VariantTypeHints = std::map<std::string, char, std::less<>>;

// The types of the request and record fields of docs/dbus-api.md.
const VariantTypeHints &captureFieldTypes();

// Reads an a{sv} at the message's read position into a JSON object. Integers of every D-Bus
// type become JSON integers, doubles numbers, booleans booleans, strings, object paths and
// signatures strings, a{sv} objects, and arrays (of these types, of arrays or of variants
// holding them) JSON arrays. Any other type (structs, other dictionaries, unix fds, a variant
// holding a variant) is an error naming the key path and the signature
// ("filter_v1.source_port: unsupported D-Bus type \"(qq)\"", "list[2]: ..." for an array
// element), and so is a key given twice. `path` prefixes the keys in error messages.
Result<nlohmann::json> readVariantDict(sd_bus_message *m, const std::string &path = "");

// Reads an aa{sv} at the message's read position into a JSON array of objects, as
// readVariantDict does for each ("[1].status: ..." in error messages).
Result<nlohmann::json> readVariantDictArray(sd_bus_message *m);

// Appends a JSON object as a{sv}. Integers take the type of their key's hint when they fit it,
// else x (t above INT64_MAX); strings are s, booleans b, other numbers d, objects a{sv}
// (recursively) and arrays av. A null member is left out; null inside an array, a string
// holding a NUL character or invalid UTF-8 cannot be sent, and the error names the member's
// path ("filter_v1.x[1]: null cannot be sent inside an array").
Result<void> writeVariantDict(sd_bus_message *m, const nlohmann::json &object,
                              const VariantTypeHints &hints = captureFieldTypes());

// writeVariantDict in the style of sd-bus: 0, or a negative errno on failure.
int appendVariantDict(sd_bus_message *m, const nlohmann::json &object,
                      const VariantTypeHints &hints = captureFieldTypes());

} // namespace ringcap
