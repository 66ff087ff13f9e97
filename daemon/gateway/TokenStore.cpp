#include "TokenStore.h"

#include <fstream>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sstream>

namespace ringcap::gateway {
namespace {

bool isName(std::string_view s) {
  if (s.empty() || s.size() > 64)
    return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return false;
  return true;
}

bool isToken(std::string_view s) {
  if (s.size() < 16 || s.size() > 512)
    return false;
  for (char c : s)
    if (c <= 0x20 || c >= 0x7f)
      return false;
  return true;
}

std::optional<Sha256> fromHex(std::string_view hex) {
  if (hex.size() != 64)
    return std::nullopt;
  Sha256 out{};
  for (size_t i = 0; i < 32; i++) {
    int v = 0;
    for (size_t j = 0; j < 2; j++) {
      char c = hex[2 * i + j];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0)
        return std::nullopt;
      v = v * 16 + d;
    }
    out[i] = static_cast<unsigned char>(v);
  }
  return out;
}

} // namespace

Sha256 sha256(std::string_view data) {
  Sha256 out{};
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha256(), nullptr);
  return out;
}

std::string toHex(const unsigned char *data, size_t n) {
  static const char *digits = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; i++) {
    s += digits[data[i] >> 4];
    s += digits[data[i] & 15];
  }
  return s;
}

std::string TokenStore::hashLabel(std::string_view token) {
  auto h = sha256(token);
  return "sha256:" + toHex(h.data(), 4);
}

Result<TokenStore> TokenStore::parse(const std::string &text, const std::string &source) {
  TokenStore store;
  std::istringstream in(text);
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    number++;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string s; words >> s;)
      w.push_back(s);
    if (w.empty() || w[0].starts_with("#"))
      continue;
    auto where = source + ":" + std::to_string(number) + ": ";
    if (w.size() > 2)
      return Error{EINVAL, where + "a line is a token, or a name and a token (" +
                               std::to_string(w.size()) + " words)"};
    std::string name = w.size() == 2 ? w[0] : "";
    const std::string &secret = w.back();
    if (w.size() == 2 && !isName(name))
      return Error{EINVAL, where + "a name must be 1 to 64 of A-Z a-z 0-9 . _ -"};
    Entry e;
    if (secret.starts_with("sha256:")) {
      auto h = fromHex(std::string_view(secret).substr(7));
      if (!h)
        return Error{EINVAL, where + "sha256: must be followed by 64 lowercase hex digits"};
      e.hash = *h;
    } else {
      if (!isToken(secret))
        return Error{EINVAL, where + "a token must be 16 to 512 visible ASCII characters"};
      e.hash = sha256(secret);
    }
    e.label = name.empty() ? "sha256:" + toHex(e.hash.data(), 4) : name;
    store.entries_.push_back(std::move(e));
  }
  if (store.entries_.empty())
    return Error{EINVAL, source + ": no token (one token a line, or sha256:<hex> of it)"};
  return store;
}

Result<TokenStore> TokenStore::load(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    return Error::fromErrno(errno, path);
  std::ostringstream s;
  s << in.rdbuf();
  return parse(s.str(), path);
}

std::optional<std::string> TokenStore::check(std::string_view token) const {
  auto h = sha256(token);
  const Entry *found = nullptr;
  for (const auto &e : entries_)
    if (CRYPTO_memcmp(e.hash.data(), h.data(), h.size()) == 0 && !found)
      found = &e;
  if (!found)
    return std::nullopt;
  return found->label;
}

} // namespace ringcap::gateway
