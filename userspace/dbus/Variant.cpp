#include "dbus/Variant.h"

#include <cerrno>
#include <limits>
#include <systemd/sd-bus.h>

namespace ringcap {
namespace {

std::string join(const std::string &path, const std::string &key) {
  return path.empty() ? key : path + "." + key;
}

Error busError(int r, const std::string &where) {
  return Error::fromErrno(r, "reading " + (where.empty() ? std::string("the dictionary") : where));
}

// Reads one basic value of type `t` into `out`.
int readBasic(sd_bus_message *m, char t, nlohmann::json &out) {
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
    out = bool(v);
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
    const char *v;
    r = sd_bus_message_read_basic(m, t, &v);
    if (r > 0)
      out = std::string(v);
    break;
  }
  default:
    return -EINVAL;
  }
  return r;
}

bool isBasic(char t) { return std::string_view("ybnqiuxtdsog").find(t) != std::string_view::npos; }

Result<nlohmann::json> readValue(sd_bus_message *m, const std::string &where) {
  const char *contents = nullptr;
  int r = sd_bus_message_enter_container(m, 'v', nullptr);
  if (r < 0)
    return busError(r, where);
  char type;
  r = sd_bus_message_peek_type(m, &type, &contents);
  if (r < 0)
    return busError(r, where);
  nlohmann::json out;
  std::string sig = contents ? contents : std::string(1, type);
  if (isBasic(type)) {
    r = readBasic(m, type, out);
    if (r < 0)
      return busError(r, where);
  } else if (type == 'a' && sig == "{sv}") {
    auto nested = readVariantDict(m, where);
    if (!nested)
      return nested.error();
    out = std::move(*nested);
  } else if (type == 'a' && sig.size() == 1 && isBasic(sig[0])) {
    r = sd_bus_message_enter_container(m, 'a', contents);
    if (r < 0)
      return busError(r, where);
    out = nlohmann::json::array();
    while (true) {
      nlohmann::json item;
      r = readBasic(m, sig[0], item);
      if (r < 0)
        return busError(r, where);
      if (r == 0)
        break;
      out.push_back(std::move(item));
    }
    r = sd_bus_message_exit_container(m);
    if (r < 0)
      return busError(r, where);
  } else {
    std::string full = type == 'a' ? "a" + sig : sig;
    return Error{EINVAL, where + ": unsupported D-Bus type \"" + full + "\""};
  }
  r = sd_bus_message_exit_container(m);
  if (r < 0)
    return busError(r, where);
  return out;
}

// The signature and value for one JSON integer, honouring a hint when the value fits.
int appendInteger(sd_bus_message *m, const nlohmann::json &v, char hint) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    switch (hint) {
    case 'y':
      if (u <= 0xff)
        return sd_bus_message_append(m, "v", "y", uint8_t(u));
      break;
    case 'q':
      if (u <= 0xffff)
        return sd_bus_message_append(m, "v", "q", uint16_t(u));
      break;
    case 'u':
      if (u <= 0xffffffffu)
        return sd_bus_message_append(m, "v", "u", uint32_t(u));
      break;
    case 't':
      return sd_bus_message_append(m, "v", "t", u);
    }
    if (u <= uint64_t(std::numeric_limits<int64_t>::max()) && hint == 0)
      return sd_bus_message_append(m, "v", "x", int64_t(u));
    return sd_bus_message_append(m, "v", "t", u);
  }
  int64_t s = v.get<int64_t>();
  if (s >= 0) {
    nlohmann::json asUnsigned = uint64_t(s);
    return appendInteger(m, asUnsigned, hint);
  }
  return sd_bus_message_append(m, "v", "x", s);
}

int appendValue(sd_bus_message *m, const nlohmann::json &v, const VariantTypeHints &hints,
                char hint) {
  switch (v.type()) {
  case nlohmann::json::value_t::boolean:
    return sd_bus_message_append(m, "v", "b", int(v.get<bool>()));
  case nlohmann::json::value_t::number_integer:
  case nlohmann::json::value_t::number_unsigned:
    return appendInteger(m, v, hint);
  case nlohmann::json::value_t::number_float:
    return sd_bus_message_append(m, "v", "d", v.get<double>());
  case nlohmann::json::value_t::string:
    return sd_bus_message_append(m, "v", "s", v.get_ref<const std::string &>().c_str());
  case nlohmann::json::value_t::object: {
    int r = sd_bus_message_open_container(m, 'v', "a{sv}");
    if (r < 0)
      return r;
    r = appendVariantDict(m, v, hints);
    if (r < 0)
      return r;
    return sd_bus_message_close_container(m);
  }
  case nlohmann::json::value_t::array: {
    int r = sd_bus_message_open_container(m, 'v', "av");
    if (r < 0)
      return r;
    r = sd_bus_message_open_container(m, 'a', "v");
    for (const auto &item : v) {
      if (r < 0)
        return r;
      r = appendValue(m, item, hints, 0);
    }
    if (r < 0)
      return r;
    r = sd_bus_message_close_container(m);
    if (r < 0)
      return r;
    return sd_bus_message_close_container(m);
  }
  default:
    return -EINVAL;
  }
}

} // namespace

const VariantTypeHints &captureFieldTypes() {
  static const VariantTypeHints hints = {
      {"time_limit", 'u'},         {"packet_limit", 'u'},     {"byte_limit", 't'},
      {"source_port", 'q'},        {"destination_port", 'q'}, {"protocol", 'y'},
      {"packets_seen", 't'},       {"packets_matched", 't'},  {"packets_sampled_out", 't'},
      {"packets_captured", 't'},   {"bytes_captured", 't'},   {"packets_lost", 't'},
      {"packets_over_limit", 't'}, {"file_size", 't'},        {"packets_copy_failed", 't'},
  };
  return hints;
}

Result<nlohmann::json> readVariantDict(sd_bus_message *m, const std::string &path) {
  int r = sd_bus_message_enter_container(m, 'a', "{sv}");
  if (r < 0)
    return busError(r, path);
  nlohmann::json out = nlohmann::json::object();
  while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
    const char *key;
    r = sd_bus_message_read(m, "s", &key);
    if (r < 0)
      return busError(r, path);
    std::string where = join(path, key);
    if (out.contains(key))
      return Error{EINVAL, where + ": given more than once"};
    auto value = readValue(m, where);
    if (!value)
      return value.error();
    out[key] = std::move(*value);
    r = sd_bus_message_exit_container(m);
    if (r < 0)
      return busError(r, path);
  }
  if (r < 0)
    return busError(r, path);
  r = sd_bus_message_exit_container(m);
  if (r < 0)
    return busError(r, path);
  return out;
}

int appendVariantDict(sd_bus_message *m, const nlohmann::json &object,
                      const VariantTypeHints &hints) {
  if (!object.is_object())
    return -EINVAL;
  int r = sd_bus_message_open_container(m, 'a', "{sv}");
  if (r < 0)
    return r;
  for (const auto &[key, value] : object.items()) {
    if (value.is_null())
      continue;
    r = sd_bus_message_open_container(m, 'e', "sv");
    if (r < 0)
      return r;
    r = sd_bus_message_append(m, "s", key.c_str());
    if (r < 0)
      return r;
    auto h = hints.find(key);
    r = appendValue(m, value, hints, h == hints.end() ? 0 : h->second);
    if (r < 0)
      return r;
    r = sd_bus_message_close_container(m);
    if (r < 0)
      return r;
  }
  return sd_bus_message_close_container(m);
}

} // namespace ringcap
