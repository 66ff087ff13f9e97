// s3detail::parseXml, the parser of S3's answers (untrusted: any server, or a proxy's page),
// then what the client and the daemon do with its text (safeText).
// Properties: no crash; an error has the code EINVAL and a printable message; an accepted
// tree is at most 64 levels deep with at most 200000 elements, and when the input is valid
// UTF-8 so are its names and texts (character references decode to valid UTF-8); safeText
// of any text is valid UTF-8 and bounded.
#include "FuzzCheck.h"
#include "destination/S3Client.h"
#include "util/Text.h"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

using namespace ringcap;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view text(reinterpret_cast<const char *>(data), size);
  auto xml = s3detail::parseXml(text);
  if (!xml) {
    FUZZ_CHECK(xml.error().code == EINVAL, "parseXml: error code " +
                                               std::to_string(xml.error().code) + ": " +
                                               xml.error().message);
    fuzz::checkUserError(xml.error(), "parseXml");
    return 0;
  }
  const bool utf8 = fuzz::isValidUtf8(text);
  size_t elements = 0;
  std::vector<std::pair<const s3detail::XmlElement *, int>> stack{{&*xml, 1}};
  while (!stack.empty()) {
    auto [el, depth] = stack.back();
    stack.pop_back();
    elements++;
    FUZZ_CHECK(depth <= 64, "parseXml accepted a tree deeper than 64 levels");
    FUZZ_CHECK(!el->name.empty(), "parseXml accepted an element without a name");
    if (utf8) {
      FUZZ_CHECK(fuzz::isValidUtf8(el->name), "invalid UTF-8 in a name from a UTF-8 input");
      FUZZ_CHECK(fuzz::isValidUtf8(el->text), "invalid UTF-8 in a text from a UTF-8 input");
    }
    std::string safe = safeText(el->text, 300);
    FUZZ_CHECK(fuzz::isValidUtf8(safe) && safe.size() <= 303,
               "safeText gave invalid UTF-8 or more than 303 bytes");
    (void)el->childText("Code");
    for (const auto &c : el->children)
      stack.emplace_back(&c, depth + 1);
  }
  FUZZ_CHECK(elements <= 200000, "parseXml accepted " + std::to_string(elements) + " elements");
  return 0;
}
