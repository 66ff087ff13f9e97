// The capture request validator on a request that arrives over D-Bus as an a{sv}.
//
// The input is a small program that builds a message with sd-bus, so that every message is one
// sd-bus would deliver (the wire format itself is sd-bus's to parse). It is read forwards, one
// value at a time; a value is a tag byte and its payload (missing bytes read as zero):
//   y b n q i u x t d  a basic value: 1, 1, 2, 2, 4, 4, 8, 8, 8 bytes, little-endian
//   s                  a string: length byte, bytes
//   o g                an object path / a signature: index byte into a fixed list
//   D                  an a{sv}: count byte, then count times (key as a string payload, value)
//   A                  an array: element tag (a basic tag, v, D, or a followed by a basic tag),
//                      count byte, then the elements' payloads (values for v)
//   R                  a struct: count byte (1..4), then values
//   V                  a variant: a value (a variant holding a variant inside an a{sv})
//   S                  an a{ss}: count byte, then key and value strings
//   other bytes        a basic value of the type kBasic[byte % 12]
// The whole input is one value. An aa{sv} is read with readVariantDictArray, anything else
// with readVariantDict (which refuses what is not an a{sv}), once with ringcapd's request
// schema and once without; each object is then validated (in both modes without the schema).
// Properties: no crash or leak; validation errors are short and printable; an accepted
// request, written back with toJson(), is accepted again as the same request.
#include "FuzzCheck.h"
#include "api/ServiceApi.h"
#include "dbus/Variant.h"
#include "request/CaptureRequest.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <vector>

using namespace ringcap;
using nlohmann::json;

namespace {

// sd-bus builds messages only on a started bus; one end of a socket pair is enough (nothing is
// ever sent). Made once and kept for the whole run.
sd_bus *bus() {
  static sd_bus *b = [] {
    int fds[2];
    sd_bus *out = nullptr;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0 || sd_bus_new(&out) < 0 ||
        sd_bus_set_fd(out, fds[0], fds[0]) < 0 || sd_bus_start(out) < 0)
      fuzz::fail("cannot set up an sd-bus connection on a socket pair");
    return out;
  }();
  return b;
}

constexpr const char *kPaths[] = {"/", ringcap::api::kManagerPath, "/a/b_c/D0"};
constexpr const char *kSignatures[] = {"", "s", "a{sv}", "(iu)", "aav"};
constexpr char kBasic[] = "ybnqiuxtdsog";
constexpr int kMaxDepth = 6;

class Reader {
public:
  Reader(const uint8_t *data, size_t size) : p_(data), end_(data + size) {}
  bool empty() const { return p_ == end_; }
  uint8_t byte() { return p_ < end_ ? *p_++ : 0; }
  uint64_t integer(size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
      v |= uint64_t(byte()) << (8 * i);
    return v;
  }
  std::string string() {
    size_t n = std::min<size_t>(byte(), end_ - p_);
    std::string s(reinterpret_cast<const char *>(p_), n);
    p_ += n;
    return s;
  }

private:
  const uint8_t *p_, *end_;
};

struct Node {
  enum Kind { Basic, Dict, Array, Struct, Variant, StringDict } kind = Basic;
  char type = 's';               // Basic
  uint64_t integer = 0;          // Basic integers and booleans
  double real = 0;               // Basic 'd'
  std::string text;              // Basic 's', 'o', 'g'
  std::vector<std::string> keys; // Dict, StringDict
  std::string elementSignature;  // Array
  // Dict and StringDict values (Basic 's' for StringDict), Array items, Struct members, the
  // Variant's contents.
  std::vector<Node> children;
};

std::string signatureOf(const Node &n) {
  switch (n.kind) {
  case Node::Basic:
    return std::string(1, n.type);
  case Node::Dict:
    return "a{sv}";
  case Node::Array:
    return "a" + n.elementSignature;
  case Node::Struct: {
    std::string s = "(";
    for (const auto &c : n.children)
      s += signatureOf(c);
    return s + ")";
  }
  case Node::Variant:
    return "v";
  case Node::StringDict:
    return "a{ss}";
  }
  return "";
}

bool isBasic(uint8_t tag) { return tag && std::strchr(kBasic, tag) != nullptr; }

Node basic(Reader &in, char type) {
  Node n;
  n.kind = Node::Basic;
  n.type = type;
  switch (type) {
  case 'y':
  case 'b':
    n.integer = in.integer(1);
    break;
  case 'n':
  case 'q':
    n.integer = in.integer(2);
    break;
  case 'i':
  case 'u':
    n.integer = in.integer(4);
    break;
  case 'x':
  case 't':
    n.integer = in.integer(8);
    break;
  case 'd': {
    uint64_t bits = in.integer(8);
    std::memcpy(&n.real, &bits, sizeof n.real); // NaN and infinities included
    break;
  }
  case 's':
    n.text = in.string();
    break;
  case 'o':
    n.text = kPaths[in.byte() % std::size(kPaths)];
    break;
  case 'g':
    n.text = kSignatures[in.byte() % std::size(kSignatures)];
    break;
  }
  return n;
}

Node value(Reader &in, int depth);

Node dictBody(Reader &in, int depth) {
  Node n;
  n.kind = Node::Dict;
  size_t count = in.byte();
  for (size_t i = 0; i < count && !in.empty(); i++) {
    n.keys.push_back(in.string());
    n.children.push_back(value(in, depth + 1));
  }
  return n;
}

Node array(Reader &in, int depth) {
  Node n;
  n.kind = Node::Array;
  uint8_t tag = in.byte();
  char inner = 0;
  if (tag == 'a') {
    inner = char(in.byte());
    if (!isBasic(uint8_t(inner)))
      inner = 'y';
    n.elementSignature = std::string("a") + inner;
  } else if (tag == 'v' || tag == 'D') {
    n.elementSignature = tag == 'v' ? "v" : "a{sv}";
  } else {
    n.elementSignature = std::string(1, isBasic(tag) ? char(tag) : kBasic[tag % 12]);
  }
  size_t count = in.byte();
  for (size_t i = 0; i < count && !in.empty(); i++) {
    if (inner) {
      Node sub;
      sub.kind = Node::Array;
      sub.elementSignature = std::string(1, inner);
      size_t k = in.byte();
      for (size_t j = 0; j < k && !in.empty(); j++)
        sub.children.push_back(basic(in, inner));
      n.children.push_back(std::move(sub));
    } else if (n.elementSignature == "v") {
      n.children.push_back(value(in, depth + 1));
    } else if (n.elementSignature == "a{sv}") {
      n.children.push_back(dictBody(in, depth + 1));
    } else {
      n.children.push_back(basic(in, n.elementSignature[0]));
    }
  }
  return n;
}

Node value(Reader &in, int depth) {
  uint8_t tag = in.byte();
  if (depth >= kMaxDepth && !isBasic(tag))
    return basic(in, 's');
  switch (tag) {
  case 'D':
    return dictBody(in, depth);
  case 'A':
    return array(in, depth);
  case 'R': {
    Node n;
    n.kind = Node::Struct;
    size_t count = 1 + in.byte() % 4;
    for (size_t i = 0; i < count; i++)
      n.children.push_back(value(in, depth + 1));
    return n;
  }
  case 'V': {
    Node n;
    n.kind = Node::Variant;
    n.children.push_back(value(in, depth + 1));
    return n;
  }
  case 'S': {
    Node n;
    n.kind = Node::StringDict;
    size_t count = in.byte();
    for (size_t i = 0; i < count && !in.empty(); i++) {
      n.keys.push_back(in.string());
      n.children.push_back(basic(in, 's'));
    }
    return n;
  }
  default:
    return basic(in, isBasic(tag) ? char(tag) : kBasic[tag % 12]);
  }
}

// Appends n; false when sd-bus refuses (invalid UTF-8, for example): no such message exists.
bool append(sd_bus_message *m, const Node &n) {
  switch (n.kind) {
  case Node::Basic: {
    switch (n.type) {
    case 'y': {
      uint8_t v = uint8_t(n.integer);
      return sd_bus_message_append_basic(m, 'y', &v) >= 0;
    }
    case 'b': {
      int v = int(n.integer & 1);
      return sd_bus_message_append_basic(m, 'b', &v) >= 0;
    }
    case 'n':
    case 'q': {
      uint16_t v = uint16_t(n.integer);
      return sd_bus_message_append_basic(m, n.type, &v) >= 0;
    }
    case 'i':
    case 'u': {
      uint32_t v = uint32_t(n.integer);
      return sd_bus_message_append_basic(m, n.type, &v) >= 0;
    }
    case 'x':
    case 't': {
      uint64_t v = n.integer;
      return sd_bus_message_append_basic(m, n.type, &v) >= 0;
    }
    case 'd':
      return sd_bus_message_append_basic(m, 'd', &n.real) >= 0;
    default:
      return sd_bus_message_append_basic(m, n.type, n.text.c_str()) >= 0;
    }
  }
  case Node::Dict:
    if (sd_bus_message_open_container(m, 'a', "{sv}") < 0)
      return false;
    for (size_t i = 0; i < n.keys.size(); i++) {
      const Node &child = n.children[i];
      std::string sig = signatureOf(child);
      if (sd_bus_message_open_container(m, 'e', "sv") < 0 ||
          sd_bus_message_append_basic(m, 's', n.keys[i].c_str()) < 0 ||
          sd_bus_message_open_container(m, 'v', sig.c_str()) < 0 || !append(m, child) ||
          sd_bus_message_close_container(m) < 0 || sd_bus_message_close_container(m) < 0)
        return false;
    }
    return sd_bus_message_close_container(m) >= 0;
  case Node::Array:
    if (sd_bus_message_open_container(m, 'a', n.elementSignature.c_str()) < 0)
      return false;
    for (const auto &child : n.children) {
      if (n.elementSignature == "v") {
        std::string sig = signatureOf(child);
        if (sd_bus_message_open_container(m, 'v', sig.c_str()) < 0 || !append(m, child) ||
            sd_bus_message_close_container(m) < 0)
          return false;
      } else if (!append(m, child)) {
        return false;
      }
    }
    return sd_bus_message_close_container(m) >= 0;
  case Node::Struct: {
    std::string sig = signatureOf(n);
    if (sd_bus_message_open_container(m, 'r', sig.substr(1, sig.size() - 2).c_str()) < 0)
      return false;
    for (const auto &child : n.children)
      if (!append(m, child))
        return false;
    return sd_bus_message_close_container(m) >= 0;
  }
  case Node::Variant: {
    std::string sig = signatureOf(n.children[0]);
    return sd_bus_message_open_container(m, 'v', sig.c_str()) >= 0 && append(m, n.children[0]) &&
           sd_bus_message_close_container(m) >= 0;
  }
  case Node::StringDict:
    if (sd_bus_message_open_container(m, 'a', "{ss}") < 0)
      return false;
    for (size_t i = 0; i < n.keys.size(); i++)
      if (sd_bus_message_append(m, "{ss}", n.keys[i].c_str(), n.children[i].text.c_str()) < 0)
        return false;
    return sd_bus_message_close_container(m) >= 0;
  }
  return false;
}

void validate(const json &body, RequestMode mode, const char *name) {
  auto request = validateCaptureRequest(body, mode);
  if (!request) {
    fuzz::checkUserError(request.error(), name);
    return;
  }
  auto again = validateCaptureRequest(request->toJson(), mode);
  FUZZ_CHECK(again.ok(), std::string(name) + ": toJson() of an accepted request is refused: " +
                             (again ? "" : again.error().message));
  FUZZ_CHECK(*again == *request,
             std::string(name) + ": toJson() changes the request: " + request->toJson().dump());
}

struct MessageRef {
  sd_bus_message *m = nullptr;
  ~MessageRef() { sd_bus_message_unref(m); }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Reader in(data, size);
  const Node top = value(in, 0);
  const bool dictArray = signatureOf(top) == "aa{sv}";

  MessageRef msg;
  if (sd_bus_message_new_method_call(bus(), &msg.m, ringcap::api::kBusName,
                                     ringcap::api::kManagerPath, ringcap::api::kManagerInterface,
                                     "CreateCapture") < 0)
    fuzz::fail("cannot make a method call message");
  if (!append(msg.m, top))
    return 0;
  if (sd_bus_message_seal(msg.m, 1, 0) < 0 || sd_bus_message_rewind(msg.m, true) < 0)
    return 0;

  if (dictArray) {
    auto objects = readVariantDictArray(msg.m);
    if (!objects) {
      FUZZ_CHECK(!objects.error().message.empty(), "readVariantDictArray error without a message");
      return 0;
    }
    FUZZ_CHECK(objects->is_array(), "readVariantDictArray returned " + objects->dump());
    for (const auto &body : *objects) {
      FUZZ_CHECK(body.is_object(), "readVariantDictArray element " + body.dump());
      validate(body, RequestMode::Api, "api");
      validate(body, RequestMode::Tool, "tool");
    }
    return 0;
  }
  // ringcapd's own path (CreateCapture): the request schema refuses unknown keys and
  // container types before their values are read.
  auto schemed = readVariantDict(msg.m, captureRequestSchema());
  if (!schemed) {
    FUZZ_CHECK(!schemed.error().message.empty(),
               "readVariantDict (schema) error without a message");
  } else {
    FUZZ_CHECK(schemed->is_object(), "readVariantDict (schema) returned " + schemed->dump());
    validate(*schemed, RequestMode::Api, "api, schema");
  }
  if (sd_bus_message_rewind(msg.m, true) < 0)
    fuzz::fail("cannot rewind the message");
  auto body = readVariantDict(msg.m);
  if (!body) {
    FUZZ_CHECK(!body.error().message.empty(), "readVariantDict error without a message");
    return 0;
  }
  FUZZ_CHECK(body->is_object(), "readVariantDict returned " + body->dump());
  validate(*body, RequestMode::Api, "api");
  validate(*body, RequestMode::Tool, "tool");
  return 0;
}
