// How a configuration value is quoted in an error message ("got ..."), the same in every
// service that reads the shared TOML file (ringcapd, ringcap-gateway).
#pragma once

#include <sstream>
#include <string>
#include <toml++/toml.h>

namespace ringcap::config {

inline std::string describe(const toml::node &n) {
  std::ostringstream o;
  if (n.is_string())
    o << '"' << n.as_string()->get() << '"';
  else if (n.is_table())
    o << "a table";
  else if (n.is_array())
    o << "an array";
  else
    n.visit([&](auto &&v) { o << v; });
  return o.str();
}

} // namespace ringcap::config
