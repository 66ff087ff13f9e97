#include "Router.h"

#include <vector>

namespace ringcap::gateway {
namespace {

// "a/b/" -> {"a", "b", ""}: every segment, empty ones included.
std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> out;
  for (;;) {
    size_t j = path.find('/');
    out.push_back(path.substr(0, j));
    if (j == std::string_view::npos)
      return out;
    path.remove_prefix(j + 1);
  }
}

// A path segment that can be an account or an id: no empty segment, no dot segments.
bool isSegment(std::string_view s) { return !s.empty() && s != "." && s != ".."; }

RouteMatch pick(std::string_view method, RouteMatch m,
                std::initializer_list<std::pair<std::string_view, Route>> byMethod) {
  for (const auto &[verb, route] : byMethod)
    if (method == verb) {
      m.route = route;
      return m;
    }
  m.route = Route::WrongMethod;
  for (const auto &[verb, route] : byMethod) {
    if (!m.allow.empty())
      m.allow += ", ";
    m.allow += verb;
  }
  return m;
}

} // namespace

bool isDashboardFileName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name[0] == '.')
    return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return false;
  return true;
}

RouteMatch matchRoute(std::string_view method, std::string_view path) {
  if (method == "HEAD")
    method = "GET";
  RouteMatch m;
  if (path == kApiBase || path.starts_with(std::string(kApiBase) + "/")) {
    m.api = true;
    if (path.size() <= kApiBase.size() + 1)
      return m;
    auto s = split(path.substr(kApiBase.size() + 1));
    // accounts / {a} / pcaps [/ ...]
    if (s.size() < 3 || s[0] != "accounts" || !isSegment(s[1]) || s[2] != "pcaps")
      return m;
    RouteMatch none = m;
    m.account = std::string(s[1]);
    if (s.size() == 3)
      return pick(method, m, {{"GET", Route::ListCaptures}, {"POST", Route::CreateCapture}});
    if (s[3] == "ownership") {
      if (s.size() == 4)
        return pick(method, m, {{"GET", Route::ListOwnerships}, {"POST", Route::CreateOwnership}});
      if (s.size() == 5 && s[4] == "validate")
        return pick(method, m, {{"POST", Route::ValidateOwnership}});
      if (s.size() == 5 && isSegment(s[4])) {
        m.id = std::string(s[4]);
        return pick(method, m, {{"DELETE", Route::DeleteOwnership}});
      }
      return none;
    }
    if (!isSegment(s[3]))
      return none;
    m.id = std::string(s[3]);
    if (s.size() == 4)
      return pick(method, m, {{"GET", Route::GetCapture}});
    if (s.size() == 5 && s[4] == "stop")
      return pick(method, m, {{"PUT", Route::StopCapture}});
    if (s.size() == 5 && s[4] == "download")
      return pick(method, m, {{"GET", Route::DownloadCapture}});
    return none;
  }
  std::string_view name = path == "/" ? "index.html" : path.substr(path.starts_with("/") ? 1 : 0);
  if (!path.starts_with("/") || !isDashboardFileName(name))
    return m;
  m.file = std::string(name);
  return pick(method, m, {{"GET", Route::DashboardFile}});
}

const char *routeName(Route r) {
  switch (r) {
  case Route::NoRoute:
    return "NoRoute";
  case Route::WrongMethod:
    return "WrongMethod";
  case Route::CreateCapture:
    return "CreateCapture";
  case Route::ListCaptures:
    return "ListCaptures";
  case Route::GetCapture:
    return "GetCapture";
  case Route::StopCapture:
    return "StopCapture";
  case Route::DownloadCapture:
    return "DownloadCapture";
  case Route::CreateOwnership:
    return "CreateOwnership";
  case Route::ListOwnerships:
    return "ListOwnerships";
  case Route::ValidateOwnership:
    return "ValidateOwnership";
  case Route::DeleteOwnership:
    return "DeleteOwnership";
  case Route::DashboardFile:
    return "DashboardFile";
  }
  return "?";
}

} // namespace ringcap::gateway
