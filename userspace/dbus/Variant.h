// Conversions between D-Bus variant dictionaries (a{sv}) and JSON objects, shared by the
// daemon (requests in, records out) and ringcapctl (requests out, records in).
#pragma once

#include "util/Result.h"

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

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

// What a dictionary may hold, checked before a value is read: an unknown key, or a value of a
// type its field never takes (an array of 30 MiB under any key), is refused without reading
// the value, so a request costs no more memory than the message it came in.
struct VariantSchema {
  struct Field {
    std::string_view key;
    // null: the field takes one basic value (s, an integer type, b, d, o, g), whose type and
    // range the caller checks; else it also takes an a{sv} read with this schema.
    const VariantSchema *dict = nullptr;
  };
  std::vector<Field> fields;
  const Field *find(std::string_view key) const;
};

// The schema of a CreateCapture request (the keys of docs/dbus-api.md, filter_v1 nested).
const VariantSchema &captureRequestSchema();

// readVariantDict with a schema: a key the schema lacks is "<path>: unknown field"; a value
// whose type the field does not take is "<path>: unsupported D-Bus type \"ay\" (...)". Both
// are EINVAL and leave the value unread.
Result<nlohmann::json> readVariantDict(sd_bus_message *m, const VariantSchema &schema,
                                       const std::string &path = "");

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
