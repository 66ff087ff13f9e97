#include "dbus/Variant.h"
#include "engine/SlotCounters.h"

#include "request/CaptureRequest.h"
#include "request/FilterV1.h"

#include <cerrno>
#include <cstdint>
#include <limits>
#include <string_view>
#include <systemd/sd-bus.h>

namespace ringcap {
namespace {

using nlohmann::json;

std::string join(const std::string &path, const std::string &key) {
  return path.empty() ? key : path + "." + key;
}

std::string element(const std::string &path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

// --- Reading ---

Error readError(int r, const std::string &where) {
  return Error::fromErrno(r, "reading " + (where.empty() ? std::string("the dictionary") : where));
}

bool isBasic(char t) { return std::string_view("ybnqiuxtdsog").find(t) != std::string_view::npos; }

// Whether values of the complete type `signature` have a JSON form. A variant has one only
// as an array element: a variant holding a variant is refused.
bool isSupported(std::string_view signature, bool arrayElement = false) {
  if (signature.size() == 1 && isBasic(signature[0]))
    return true;
  if (signature == "v")
    return arrayElement;
  if (signature == "a{sv}")
    return true;
  return signature.size() > 1 && signature[0] == 'a' && isSupported(signature.substr(1), true);
}

// The complete signature of the value at the read position, from sd_bus_message_peek_type.
std::string signatureOf(char type, const char *contents) {
  switch (type) {
  case SD_BUS_TYPE_ARRAY:
    return std::string("a") + contents;
  case SD_BUS_TYPE_STRUCT:
    return std::string("(") + contents + ")";
  case SD_BUS_TYPE_DICT_ENTRY:
    return std::string("{") + contents + "}";
  default:
    return std::string(1, type);
  }
}

// Checks that the next value is of type `type` with `contents` (what, in words, for the error).
Result<void> expect(sd_bus_message *m, char type, const char *contents, const std::string &what,
                    const std::string &where) {
  char t;
  const char *c = nullptr;
  int r = sd_bus_message_peek_type(m, &t, &c);
  if (r < 0)
    return readError(r, where);
  std::string prefix = where.empty() ? "" : where + ": ";
  if (r == 0)
    return Error{EBADMSG, prefix + "expected " + what + ", but the message ends"};
  if (t != type || std::string_view(c ? c : "") != contents)
    return Error{EBADMSG, prefix + "expected " + what + ", got \"" + signatureOf(t, c) + "\""};
  return {};
}

// Reads one basic value of type `t` into `out`; 0 at the end of the container.
int readBasic(sd_bus_message *m, char t, json &out) {
  int r;
  switch (t) {
  case 'y': {
    uint8_t v;
    r = sd_bus_message_read_basic(m, t, &v);
    out = v;
    break;
  }
  case 'b': {
    int v;
    r = sd_bus_message_read_basic(m, t, &v);
    out = v != 0;
    break;
  }
  case 'n': {
    int16_t v;
    r = sd_bus_message_read_basic(m, t, &v);
    out = v;
    break;
  }
  case 'q': {
    uint16_t v;
    r = sd_bus_message_read_basic(m, t, &v);
    out = v;
    break;
  }
  case 'i': {
    int32_t v;
    r = sd_bus_message_read_basic(m, t, &v);
    out = v;
    break;
  }
  case 'u': {
    uint32_t v;
    r = sd_bus_message_read_basic(m, t, &v);
    out = v;
    break;
  }
  case 'x': {
    int64_t v;
    r = sd_bus_message_read_basic(m, t, &v);
    out = v;
    break;
  }
  case 't': {
    uint64_t v;
    r = sd_bus_message_read_basic(m, t, &v);
    out = v;
    break;
  }
  case 'd': {
    double v;
    r = sd_bus_message_read_basic(m, t, &v);
    out = v;
    break;
  }
  case 's':
  case 'o':
  case 'g': {
    const char *v = nullptr;
    r = sd_bus_message_read_basic(m, t, &v);
    out = std::string(r > 0 && v ? v : "");
    break;
  }
  default:
    return -EINVAL;
  }
  return r;
}

Result<json> readVariant(sd_bus_message *m, const std::string &where);

// Reads a value of the complete type `signature`, which isSupported.
Result<json> readTyped(sd_bus_message *m, std::string_view signature, const std::string &where) {
  if (signature.size() == 1 && isBasic(signature[0])) {
    json out;
    int r = readBasic(m, signature[0], out);
    if (r < 0)
      return readError(r, where);
    if (r == 0)
      return Error{EBADMSG, where + ": the value is missing"};
    return out;
  }
  if (signature == "v")
    return readVariant(m, where);
  if (signature == "a{sv}")
    return readVariantDict(m, where);
  std::string elementType(signature.substr(1));
  int r = sd_bus_message_enter_container(m, 'a', elementType.c_str());
  if (r < 0)
    return readError(r, where);
  json out = json::array();
  for (size_t i = 0; (r = sd_bus_message_at_end(m, false)) == 0; i++) {
    auto item = readTyped(m, elementType, element(where, i));
    if (!item)
      return item;
    out.push_back(std::move(*item));
  }
  if (r < 0)
    return readError(r, where);
  if ((r = sd_bus_message_exit_container(m)) < 0)
    return readError(r, where);
  return out;
}

// The signature of the variant at the read position (which must be a variant), not read yet.
Result<std::string> peekVariant(sd_bus_message *m, const std::string &where) {
  char type;
  const char *contents = nullptr;
  int r = sd_bus_message_peek_type(m, &type, &contents);
  if (r < 0)
    return readError(r, where);
  if (r == 0 || type != 'v' || !contents)
    return Error{EBADMSG, where + ": expected a variant"};
  return std::string(contents); // contents does not outlive the container
}

// Reads a variant whose contents have a JSON form.
Result<json> readVariant(sd_bus_message *m, const std::string &where) {
  auto peeked = peekVariant(m, where);
  if (!peeked)
    return peeked.error();
  const std::string &signature = *peeked;
  if (!isSupported(signature))
    return Error{EINVAL, where + ": unsupported D-Bus type \"" + signature + "\""};
  int r;
  if ((r = sd_bus_message_enter_container(m, 'v', signature.c_str())) < 0)
    return readError(r, where);
  auto out = readTyped(m, signature, where);
  if (!out)
    return out;
  if ((r = sd_bus_message_exit_container(m)) < 0)
    return readError(r, where);
  return out;
}

// --- Writing ---

Error writeError(int r, const std::string &where) {
  return Error::fromErrno(r, "building " + (where.empty() ? std::string("the dictionary") : where));
}

// Whether a JSON integer fits the D-Bus integer type `type` (false for other types).
bool fits(const json &v, char type) {
  if (!v.is_number_unsigned() && v.get<int64_t>() < 0) {
    int64_t s = v.get<int64_t>();
    switch (type) {
    case 'n':
      return s >= std::numeric_limits<int16_t>::min();
    case 'i':
      return s >= std::numeric_limits<int32_t>::min();
    case 'x':
      return true;
    default:
      return false;
    }
  }
  uint64_t u = v.get<uint64_t>();
  switch (type) {
  case 'y':
    return u <= std::numeric_limits<uint8_t>::max();
  case 'n':
    return u <= uint64_t(std::numeric_limits<int16_t>::max());
  case 'q':
    return u <= std::numeric_limits<uint16_t>::max();
  case 'i':
    return u <= uint64_t(std::numeric_limits<int32_t>::max());
  case 'u':
    return u <= std::numeric_limits<uint32_t>::max();
  case 'x':
    return u <= uint64_t(std::numeric_limits<int64_t>::max());
  case 't':
    return true;
  default:
    return false;
  }
}

// The D-Bus type of a JSON integer: the hint when the value fits it, else x, or t for values
// above INT64_MAX.
char integerType(const json &v, char hint) {
  if (hint && fits(v, hint))
    return hint;
  return fits(v, 'x') ? 'x' : 't';
}

std::string signatureOf(const json &v, char hint) {
  switch (v.type()) {
  case json::value_t::object:
    return "a{sv}";
  case json::value_t::array:
    return "av";
  case json::value_t::string:
    return "s";
  case json::value_t::boolean:
    return "b";
  case json::value_t::number_float:
    return "d";
  case json::value_t::number_integer:
  case json::value_t::number_unsigned:
    return std::string(1, integerType(v, hint));
  default:
    return "";
  }
}

template <typename T>
Result<void> appendBasic(sd_bus_message *m, char type, T value, const std::string &where) {
  if (int r = sd_bus_message_append_basic(m, type, &value); r < 0)
    return writeError(r, where);
  return {};
}

Result<void> appendInteger(sd_bus_message *m, char type, const json &v, const std::string &where) {
  switch (type) {
  case 'y':
    return appendBasic(m, type, v.get<uint8_t>(), where);
  case 'n':
    return appendBasic(m, type, v.get<int16_t>(), where);
  case 'q':
    return appendBasic(m, type, v.get<uint16_t>(), where);
  case 'i':
    return appendBasic(m, type, v.get<int32_t>(), where);
  case 'u':
    return appendBasic(m, type, v.get<uint32_t>(), where);
  case 't':
    return appendBasic(m, type, v.get<uint64_t>(), where);
  default:
    return appendBasic(m, 'x', v.get<int64_t>(), where);
  }
}

Result<void> appendString(sd_bus_message *m, const std::string &s, const std::string &where) {
  if (s.find('\0') != std::string::npos)
    return Error{EINVAL, where + ": a string holding a NUL character cannot be sent"};
  int r = sd_bus_message_append_basic(m, 's', s.c_str());
  if (r == -EINVAL) // sd-bus checks UTF-8
    return Error{EINVAL, where + ": a string that is not valid UTF-8 cannot be sent"};
  if (r < 0)
    return Error::fromErrno(r, where + ": cannot be sent as a D-Bus string");
  return {};
}

Result<void> appendObject(sd_bus_message *m, const json &object, const VariantTypeHints &hints,
                          const std::string &path);

// Appends `v` as a variant at `where`; `hint` applies to an integer.
Result<void> appendVariant(sd_bus_message *m, const json &v, const VariantTypeHints &hints,
                           char hint, const std::string &where) {
  std::string signature = signatureOf(v, hint);
  if (signature.empty())
    return Error{EINVAL, where + ": a JSON " + v.type_name() + " cannot be sent"};
  if (int r = sd_bus_message_open_container(m, 'v', signature.c_str()); r < 0)
    return writeError(r, where);
  Result<void> appended;
  switch (v.type()) {
  case json::value_t::object:
    appended = appendObject(m, v, hints, where);
    break;
  case json::value_t::array: {
    if (int r = sd_bus_message_open_container(m, 'a', "v"); r < 0)
      return writeError(r, where);
    for (size_t i = 0; i < v.size() && appended; i++) {
      if (v[i].is_null())
        return Error{EINVAL, element(where, i) + ": null cannot be sent inside an array"};
      appended = appendVariant(m, v[i], hints, 0, element(where, i));
    }
    if (!appended)
      return appended;
    if (int r = sd_bus_message_close_container(m); r < 0)
      return writeError(r, where);
    break;
  }
  case json::value_t::string:
    appended = appendString(m, v.get_ref<const std::string &>(), where);
    break;
  case json::value_t::boolean:
    appended = appendBasic<int>(m, 'b', v.get<bool>(), where);
    break;
  case json::value_t::number_float:
    appended = appendBasic<double>(m, 'd', v.get<double>(), where);
    break;
  default:
    appended = appendInteger(m, signature[0], v, where);
  }
  if (!appended)
    return appended;
  if (int r = sd_bus_message_close_container(m); r < 0)
    return writeError(r, where);
  return {};
}

Result<void> appendObject(sd_bus_message *m, const json &object, const VariantTypeHints &hints,
                          const std::string &path) {
  if (int r = sd_bus_message_open_container(m, 'a', "{sv}"); r < 0)
    return writeError(r, path);
  for (const auto &[key, value] : object.items()) {
    if (value.is_null())
      continue;
    std::string where = join(path, key);
    if (int r = sd_bus_message_open_container(m, 'e', "sv"); r < 0)
      return writeError(r, where);
    if (auto r = appendString(m, key, where); !r)
      return r;
    auto hint = hints.find(key);
    if (auto r = appendVariant(m, value, hints, hint == hints.end() ? 0 : hint->second, where); !r)
      return r;
    if (int r = sd_bus_message_close_container(m); r < 0)
      return writeError(r, where);
  }
  if (int r = sd_bus_message_close_container(m); r < 0)
    return writeError(r, path);
  return {};
}

} // namespace

const VariantTypeHints &captureFieldTypes() {
  static const VariantTypeHints hints = [] {
    VariantTypeHints h = {
        {"time_limit", 'u'},       {"packet_limit", 'u'},
        {"byte_limit", 't'},       {"source_port", 'q'},
        {"destination_port", 'q'}, {"protocol", 'y'},
        {"file_size", 't'},        {std::string(kPacketsLostName), 't'},
    };
    for (const auto &f : kSlotCounterFields)
      h.emplace(std::string(f.name), 't');
    return h;
  }();
  return hints;
}

namespace {

// Reads the value of a schema's field: only a basic value, or an a{sv} where the field has a
// nested schema; anything else is refused before it is read.
Result<json> readField(sd_bus_message *m, const VariantSchema::Field &field,
                       const std::string &where) {
  auto peeked = peekVariant(m, where);
  if (!peeked)
    return peeked.error();
  const std::string &signature = *peeked;
  if (signature.size() == 1 && isBasic(signature[0]))
    return readVariant(m, where);
  if (signature != "a{sv}" || !field.dict)
    return Error{EINVAL,
                 where + ": unsupported D-Bus type \"" + signature + "\" (" +
                     (field.dict ? "must be a dictionary a{sv}"
                                 : "must be a single value such as s or u, not a container") +
                     ")"};
  int r;
  if ((r = sd_bus_message_enter_container(m, 'v', signature.c_str())) < 0)
    return readError(r, where);
  auto out = readVariantDict(m, *field.dict, where);
  if (!out)
    return out;
  if ((r = sd_bus_message_exit_container(m)) < 0)
    return readError(r, where);
  return out;
}

// readVariantDict, with or without a schema.
Result<json> readDict(sd_bus_message *m, const VariantSchema *schema, const std::string &path) {
  if (auto r = expect(m, 'a', "{sv}", "a dictionary (a{sv})", path); !r)
    return r.error();
  int r = sd_bus_message_enter_container(m, 'a', "{sv}");
  if (r < 0)
    return readError(r, path);
  json out = json::object();
  while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
    const char *key = nullptr;
    if ((r = sd_bus_message_read_basic(m, 's', &key)) <= 0)
      return readError(r < 0 ? r : -EBADMSG, path);
    std::string name = key;
    const VariantSchema::Field *field = schema ? schema->find(name) : nullptr;
    if (schema && !field)
      return Error{EINVAL, join(path, describeJsonKey(name)) + ": unknown field"};
    std::string where = join(path, name);
    if (out.contains(name))
      return Error{EINVAL, where + ": given more than once"};
    auto value = field ? readField(m, *field, where) : readVariant(m, where);
    if (!value)
      return value.error();
    out[name] = std::move(*value);
    if ((r = sd_bus_message_exit_container(m)) < 0)
      return readError(r, where);
  }
  if (r < 0)
    return readError(r, path);
  if ((r = sd_bus_message_exit_container(m)) < 0)
    return readError(r, path);
  return out;
}

} // namespace

const VariantSchema::Field *VariantSchema::find(std::string_view key) const {
  for (const Field &f : fields)
    if (f.key == key)
      return &f;
  return nullptr;
}

const VariantSchema &captureRequestSchema() {
  static const VariantSchema filter = [] {
    VariantSchema s;
    for (std::string_view key : filterV1Fields())
      s.fields.push_back({key});
    return s;
  }();
  static const VariantSchema request = [] {
    VariantSchema s;
    for (std::string_view key : captureRequestFields())
      s.fields.push_back({key, key == "filter_v1" ? &filter : nullptr});
    return s;
  }();
  return request;
}

Result<json> readVariantDict(sd_bus_message *m, const std::string &path) {
  return readDict(m, nullptr, path);
}

Result<json> readVariantDict(sd_bus_message *m, const VariantSchema &schema,
                             const std::string &path) {
  return readDict(m, &schema, path);
}

Result<json> readVariantDictArray(sd_bus_message *m) {
  if (auto r = expect(m, 'a', "a{sv}", "a list of dictionaries (aa{sv})", ""); !r)
    return r.error();
  int r = sd_bus_message_enter_container(m, 'a', "a{sv}");
  if (r < 0)
    return readError(r, "the list of dictionaries");
  json out = json::array();
  for (size_t i = 0; (r = sd_bus_message_at_end(m, false)) == 0; i++) {
    auto item = readVariantDict(m, element("", i));
    if (!item)
      return item;
    out.push_back(std::move(*item));
  }
  if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
    return readError(r, "the list of dictionaries");
  return out;
}

Result<void> writeVariantDict(sd_bus_message *m, const json &object,
                              const VariantTypeHints &hints) {
  if (!object.is_object())
    return Error{EINVAL, std::string("the dictionary must be a JSON object (got ") +
                             object.type_name() + ")"};
  return appendObject(m, object, hints, "");
}

int appendVariantDict(sd_bus_message *m, const json &object, const VariantTypeHints &hints) {
  auto r = writeVariantDict(m, object, hints);
  if (r)
    return 0;
  return r.error().code > 0 ? -r.error().code : -EINVAL;
}

} // namespace ringcap
