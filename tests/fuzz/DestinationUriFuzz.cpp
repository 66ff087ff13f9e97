// parseDestinationUri, and checkFileConfinement for file:// results against fixed roots: one
// that does not exist and /usr, which does (the check only reads the file system).
// Properties: no crash; an error has a code and a message, and when the input is valid UTF-8
// (as every D-Bus string is) so is the message, which the daemon sends back as the D-Bus error;
// canonical() is accepted again and is a fixed point.
#include "FuzzCheck.h"
#include "destination/DestinationUri.h"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

using namespace ringcap;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view text(reinterpret_cast<const char *>(data), size);
  auto uri = parseDestinationUri(text);
  if (!uri) {
    const Error &e = uri.error();
    FUZZ_CHECK(e.code != 0 && !e.message.empty(),
               "parseDestinationUri: error without a code or a message");
    FUZZ_CHECK(!fuzz::isValidUtf8(text) || fuzz::isValidUtf8(e.message),
               "parseDestinationUri: invalid UTF-8 in the error for a valid UTF-8 input: " +
                   e.message);
    return 0;
  }
  const std::string canonical = uri->canonical();
  auto again = parseDestinationUri(canonical);
  FUZZ_CHECK(again.ok(), "parseDestinationUri refuses canonical() \"" + canonical +
                              "\": " + (again ? "" : again.error().message));
  FUZZ_CHECK(again->canonical() == canonical, "canonical() is not a fixed point: \"" +
                                                   canonical + "\" -> \"" +
                                                   again->canonical() + "\"");
  (void)uri->describe("capture.pcapng");
  (void)uri->keyFor("capture.pcapng");
  if (uri->kind == DestinationUri::Kind::File) {
    FUZZ_CHECK(!uri->directory.empty() && uri->directory[0] == '/',
                "file:// directory is not absolute: \"" + uri->directory + "\"");
    static const std::vector<std::string> roots{"/nonexistent/ringcap-fuzz-root", "/usr"};
    auto confined = checkFileConfinement(*uri, roots);
    (void)confined;
    auto none = checkFileConfinement(*uri, {});
    FUZZ_CHECK(!none.ok(), "a file:// destination is allowed with no roots");
  }
  return 0;
}
