// The gateway's routes (docs/rest-api.md), as a pure function of the method and the path, so
// that the server and the fuzz target (tests/fuzz/GatewayRouterFuzz.cpp) share it.
#pragma once

#include <string>
#include <string_view>

namespace ringcap::gateway {

inline constexpr std::string_view kApiBase = "/client/v4";

enum class Route {
  NoRoute,           // 404: no such path
  WrongMethod,       // 405: the path exists, not with this method (RouteMatch::allow)
  CreateCapture,     // POST   /client/v4/accounts/{a}/pcaps
  ListCaptures,      // GET    /client/v4/accounts/{a}/pcaps
  GetCapture,        // GET    /client/v4/accounts/{a}/pcaps/{id}
  StopCapture,       // PUT    /client/v4/accounts/{a}/pcaps/{id}/stop
  DownloadCapture,   // GET    /client/v4/accounts/{a}/pcaps/{id}/download
  CreateOwnership,   // POST   /client/v4/accounts/{a}/pcaps/ownership
  ListOwnerships,    // GET    /client/v4/accounts/{a}/pcaps/ownership
  ValidateOwnership, // POST   /client/v4/accounts/{a}/pcaps/ownership/validate
  DeleteOwnership,   // DELETE /client/v4/accounts/{a}/pcaps/ownership/{id}
  DashboardFile,     // GET    / (index.html) and /<name>, name of [A-Za-z0-9._-]+
};

struct RouteMatch {
  Route route = Route::NoRoute;
  bool api = false;    // under /client/v4: JSON envelope replies, authentication
  std::string account; // {a}
  std::string id;      // {id}
  std::string file;    // DashboardFile: the file's name
  std::string allow;   // WrongMethod: the methods the path takes ("GET, POST")
};

// `method` as sent ("HEAD" is taken as "GET"); `path` decoded, without the query.
RouteMatch matchRoute(std::string_view method, std::string_view path);

// A dashboard file name: 1 to 128 of [A-Za-z0-9._-], not starting with a dot.
bool isDashboardFileName(std::string_view name);

const char *routeName(Route r);

} // namespace ringcap::gateway
