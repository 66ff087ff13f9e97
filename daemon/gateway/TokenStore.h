// The API tokens the gateway accepts: the tokens_file, one a line (docs/rest-api.md):
//
//   # a comment; blank lines are ignored
//   <token>                       a token, at least 16 visible ASCII characters, no spaces
//   sha256:<64 lowercase hex>     the SHA-256 of a token, so the file need not hold it
//   <name> <token or sha256:...>  either, with a name the request log shows
//
// Only hashes are kept in memory; a presented token is hashed and compared in constant time.
// The log names a token by its name, or by "sha256:" and the first 8 hex digits of its hash.
#pragma once

#include "util/Result.h"

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringcap::gateway {

using Sha256 = std::array<unsigned char, 32>;
Sha256 sha256(std::string_view data);
std::string toHex(const unsigned char *data, size_t n);

class TokenStore {
public:
  // Errors name the line and the rule ("tokens:3: a token must be ...").
  static Result<TokenStore> parse(const std::string &text, const std::string &source);
  static Result<TokenStore> load(const std::string &path);

  // The token's label for the log when it is one of the file's, nullopt otherwise.
  std::optional<std::string> check(std::string_view token) const;
  size_t size() const { return entries_.size(); }

  // How the log names an unknown token: "sha256:" and the first 8 hex digits of its hash.
  static std::string hashLabel(std::string_view token);

private:
  struct Entry {
    Sha256 hash;
    std::string label;
  };
  std::vector<Entry> entries_;
};

} // namespace ringcap::gateway
