#include "destination/S3Client.h"

#include "util/Text.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#ifndef RINGCAP_VERSION
#define RINGCAP_VERSION "dev"
#endif

namespace ringcap {

namespace s3detail {

std::string uriEncode(std::string_view s, bool keepSlash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved || (keepSlash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string canonicalQuery(std::vector<std::pair<std::string, std::string>> params) {
  for (auto &[name, value] : params) {
    name = uriEncode(name, false);
    value = uriEncode(value, false);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto &[name, value] : params) {
    if (!out.empty())
      out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

const XmlElement *XmlElement::child(std::string_view childName) const {
  for (const auto &c : children)
    if (c.name == childName)
      return &c;
  return nullptr;
}

std::string XmlElement::childText(std::string_view childName) const {
  const XmlElement *c = child(childName);
  return c ? c->text : std::string();
}

namespace {

constexpr int kMaxXmlDepth = 64;
constexpr size_t kMaxXmlElements = 200000;

bool isXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

void appendUtf8(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class XmlParser {
public:
  explicit XmlParser(std::string_view s) : s_(s) {}

  Result<XmlElement> document() {
    if (!skipMisc())
      return error("unterminated comment or declaration");
    if (!at("<"))
      return error("no root element");
    XmlElement root;
    if (!element(root, 1))
      return error(why_);
    if (!skipMisc() || pos_ != s_.size())
      return error("content after the root element");
    return root;
  }

private:
  Error error(const std::string &what) const {
    return Error{EINVAL, "malformed XML at byte " + std::to_string(pos_) + ": " + what};
  }
  bool fail(const char *why) {
    why_ = why;
    return false;
  }
  bool at(std::string_view lit) const { return s_.substr(pos_, lit.size()) == lit; }
  bool skipPast(std::string_view lit) {
    size_t e = s_.find(lit, pos_);
    if (e == std::string_view::npos)
      return false;
    pos_ = e + lit.size();
    return true;
  }
  void skipSpace() {
    while (pos_ < s_.size() && isXmlSpace(s_[pos_]))
      ++pos_;
  }
  // Whitespace, <?...?>, <!--...-->, <!DOCTYPE ...> between top-level items.
  bool skipMisc() {
    for (;;) {
      skipSpace();
      if (at("<?")) {
        if (!skipPast("?>"))
          return false;
      } else if (at("<!--")) {
        if (!skipPast("-->"))
          return false;
      } else if (at("<!")) {
        if (!skipPast(">"))
          return false;
      } else {
        return true;
      }
    }
  }
  std::string_view name() {
    size_t start = pos_;
    while (pos_ < s_.size() && !isXmlSpace(s_[pos_]) && s_[pos_] != '>' && s_[pos_] != '/' &&
           s_[pos_] != '<' && s_[pos_] != '=' && s_[pos_] != '"' && s_[pos_] != '\'')
      ++pos_;
    std::string_view n = s_.substr(start, pos_ - start);
    size_t colon = n.rfind(':');
    return colon == std::string_view::npos ? n : n.substr(colon + 1);
  }
  bool entity(std::string &out) {
    size_t semi = s_.find(';', pos_);
    if (semi == std::string_view::npos || semi - pos_ > 12)
      return fail("unterminated entity");
    std::string_view e = s_.substr(pos_ + 1, semi - pos_ - 1);
    pos_ = semi + 1;
    if (e == "lt")
      out += '<';
    else if (e == "gt")
      out += '>';
    else if (e == "amp")
      out += '&';
    else if (e == "quot")
      out += '"';
    else if (e == "apos")
      out += '\'';
    else if (e.size() > 1 && e[0] == '#') {
      bool hex = e[1] == 'x' || e[1] == 'X';
      std::string_view digits = e.substr(hex ? 2 : 1);
      uint32_t cp = 0;
      auto [p, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
      if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || cp == 0 ||
          cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return fail("bad character reference");
      appendUtf8(out, cp);
    } else {
      return fail("unknown entity");
    }
    return true;
  }
  // At '<' of a start tag.
  bool element(XmlElement &el, int depth) {
    if (depth > kMaxXmlDepth)
      return fail("nested too deeply");
    if (++elements_ > kMaxXmlElements)
      return fail("too many elements");
    ++pos_;
    el.name = std::string(name());
    if (el.name.empty())
      return fail("element without a name");
    for (;;) { // attributes, skipped
      skipSpace();
      if (pos_ >= s_.size())
        return fail("unterminated start tag");
      if (at("/>")) {
        pos_ += 2;
        return true;
      }
      if (s_[pos_] == '>') {
        ++pos_;
        break;
      }
      if (name().empty())
        return fail("bad attribute");
      skipSpace();
      if (!at("="))
        return fail("attribute without a value");
      ++pos_;
      skipSpace();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\''))
        return fail("attribute value without quotes");
      char quote = s_[pos_++];
      size_t end = s_.find(quote, pos_);
      if (end == std::string_view::npos)
        return fail("unterminated attribute value");
      pos_ = end + 1;
    }
    for (;;) { // content
      if (pos_ >= s_.size())
        return fail("unterminated element");
      if (at("</")) {
        pos_ += 2;
        std::string_view closing = name();
        skipSpace();
        if (closing != el.name || !at(">"))
          return fail("mismatched end tag");
        ++pos_;
        return true;
      }
      if (at("<!--")) {
        if (!skipPast("-->"))
          return fail("unterminated comment");
      } else if (at("<![CDATA[")) {
        size_t start = pos_ + 9;
        size_t end = s_.find("]]>", start);
        if (end == std::string_view::npos)
          return fail("unterminated CDATA section");
        el.text.append(s_.substr(start, end - start));
        pos_ = end + 3;
      } else if (at("<?")) {
        if (!skipPast("?>"))
          return fail("unterminated processing instruction");
      } else if (at("<")) {
        el.children.emplace_back();
        if (!element(el.children.back(), depth + 1))
          return false;
      } else if (s_[pos_] == '&') {
        if (!entity(el.text))
          return false;
      } else {
        size_t end = s_.find_first_of("<&", pos_);
        if (end == std::string_view::npos)
          end = s_.size();
        for (size_t i = pos_; i < end; ++i) // XML 1.0 has no control characters but these
          if (static_cast<unsigned char>(s_[i]) < 0x20 && !isXmlSpace(s_[i]))
            return fail("control character in text");
        el.text.append(s_.substr(pos_, end - pos_));
        pos_ = end;
      }
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  size_t elements_ = 0;
  const char *why_ = "";
};

} // namespace

Result<XmlElement> parseXml(std::string_view document) { return XmlParser(document).document(); }

} // namespace s3detail

namespace {

using s3detail::XmlElement;

constexpr uint64_t kMinPartSize = 5u << 20;
constexpr uint64_t kMaxParts = 10000;
constexpr size_t kMaxErrorBody = 1u << 20;  // kept of an error answer
constexpr size_t kMaxXmlAnswer = 64u << 20; // largest non-object answer accepted
constexpr size_t kMaxKeyBytes = 1024;       // S3's limit on key length

std::string hex(const unsigned char *p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 15];
  }
  return out;
}

// One-shot digest with OpenSSL's EVP API. MD5 and SHA-256 are always in the default provider.
std::string digestHex(const EVP_MD *md, const void *data, size_t n, std::string *base64 = nullptr) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data, n, out, &len, md, nullptr) != 1)
    return {};
  if (base64) {
    unsigned char b64[EVP_MAX_MD_SIZE * 2];
    int m = EVP_EncodeBlock(b64, out, static_cast<int>(len));
    base64->assign(reinterpret_cast<char *>(b64), static_cast<size_t>(m));
  }
  return hex(out, len);
}

std::string sha256Hex(std::span<const uint8_t> data) {
  return digestHex(EVP_sha256(), data.data(), data.size());
}
std::string md5Hex(std::span<const uint8_t> data, std::string *base64) {
  return digestHex(EVP_md5(), data.data(), data.size(), base64);
}

std::string stripQuotes(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"')
    s = s.substr(1, s.size() - 2);
  else if (s.size() >= 12 && s.compare(0, 6, "&quot;") == 0 &&
           s.compare(s.size() - 6, 6, "&quot;") == 0)
    s = s.substr(6, s.size() - 12);
  return s;
}

std::string lowerAscii(std::string s) {
  for (char &c : s)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string trimmed(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return std::string(s);
}

bool parseU64(std::string_view s, uint64_t &out) {
  std::string t = trimmed(s);
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  return !t.empty() && ec == std::errc() && p == t.data() + t.size();
}

// Text from the server or a key, made safe for one line of a message (util/Text.h).
std::string printable(std::string_view s, size_t max = 300) { return safeText(s, max); }

std::string seconds(std::chrono::milliseconds ms) {
  if (ms.count() % 1000 == 0)
    return std::to_string(ms.count() / 1000) + " s";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g s", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

void replaceAll(std::string &s, const std::string &what, const std::string &with) {
  if (what.empty())
    return;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + with.size()))
    s.replace(p, what.size(), with);
}

std::once_flag curlInitOnce;

struct Failure {
  int code = EIO;
  std::string what;
  bool retryable = false;
};

} // namespace

struct S3Client::Request {
  std::string operation; // S3's name for it: PutObject, UploadPart, ...
  std::string method;    // GET, HEAD, PUT, POST, DELETE
  std::string key;       // "" for requests on the bucket
  std::string target;    // s3://bucket/key, for messages
  std::vector<std::pair<std::string, std::string>> query;
  std::span<const uint8_t> body;
  std::string contentType;
  std::string contentMd5; // base64, sent as Content-MD5 when set
  size_t maxBody = kMaxXmlAnswer;
};

struct S3Client::Response {
  long status = 0;
  std::map<std::string, std::string> headers; // names in lower case
  std::vector<uint8_t> body;

  std::string header(const std::string &name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  std::string_view text() const {
    return {reinterpret_cast<const char *>(body.data()), body.size()};
  }
};

struct S3Client::Curl {
  CURL *handle = nullptr;
  char errbuf[CURL_ERROR_SIZE] = {};
  ~Curl() {
    if (handle)
      curl_easy_cleanup(handle);
  }
};

namespace {

struct Transfer {
  CURL *handle;
  S3Client::Response *response;
  size_t maxBody;
  bool tooLarge = false;
  std::span<const uint8_t> upload;
  size_t uploaded = 0;
  const Cancellation *cancel = nullptr;
};

// Called by curl at least once a second, also while nothing moves: non-zero aborts.
int onProgress(void *user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto *t = static_cast<Transfer *>(user);
  return t->cancel && t->cancel->cancelled() ? 1 : 0;
}

size_t onHeader(char *data, size_t size, size_t n, void *user) {
  auto *t = static_cast<Transfer *>(user);
  std::string_view line(data, size * n);
  if (line.substr(0, 5) == "HTTP/") {
    t->response->headers.clear(); // a new answer (after "100 Continue")
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    t->response->headers[lowerAscii(std::string(line.substr(0, colon)))] =
        trimmed(line.substr(colon + 1));
  }
  return size * n;
}

size_t onBody(char *data, size_t size, size_t n, void *user) {
  auto *t = static_cast<Transfer *>(user);
  size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
  auto &body = t->response->body;
  if (status >= 300) { // an error answer: keep its beginning, enough for the XML
    if (body.size() < kMaxErrorBody)
      body.insert(body.end(), data, data + std::min(len, kMaxErrorBody - body.size()));
    return len;
  }
  if (len > t->maxBody - body.size()) {
    t->tooLarge = true;
    return 0; // makes curl fail with CURLE_WRITE_ERROR
  }
  body.insert(body.end(), data, data + len);
  return len;
}

size_t onRead(char *buffer, size_t size, size_t n, void *user) {
  auto *t = static_cast<Transfer *>(user);
  size_t len = std::min(size * n, t->upload.size() - t->uploaded);
  std::memcpy(buffer, t->upload.data() + t->uploaded, len);
  t->uploaded += len;
  return len;
}

int onSeek(void *user, curl_off_t offset, int origin) {
  auto *t = static_cast<Transfer *>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > t->upload.size())
    return CURL_SEEKFUNC_FAIL;
  t->uploaded = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

// What S3's error codes mean for the operator.
Failure explainS3Error(const std::string &op, long status, const std::string &code,
                       const std::string &message, const XmlElement *xml,
                       const S3Client::Response &resp, const S3Location &where,
                       const AwsCredentials &creds, const std::string &key) {
  std::string region = where.region.empty() ? "us-east-1" : where.region;
  std::string details = message.empty() ? "" : ": " + printable(message);
  if (code == "SignatureDoesNotMatch")
    return {EACCES,
            "the credentials were refused (SignatureDoesNotMatch): check the secret access key"};
  if (code == "InvalidAccessKeyId")
    return {EACCES, "the credentials were refused (InvalidAccessKeyId): the access key id \"" +
                        printable(creds.accessKeyId, 128) + "\" is unknown"};
  if (code == "ExpiredToken" || code == "TokenRefreshRequired")
    return {EACCES, "the credentials were refused (" + code +
                        "): the session token has expired; renew the credentials"};
  if (code == "InvalidToken")
    return {EACCES, "the credentials were refused (InvalidToken): check the session token "
                    "(AWS_SESSION_TOKEN or aws_session_token)"};
  if (code == "RequestTimeTooSkewed")
    return {EACCES, "the request was refused (RequestTimeTooSkewed): this host's clock is more "
                    "than 15 minutes off the server's; synchronise it (NTP)"};
  if (code == "AccessDenied" || code == "AllAccessDisabled" || code == "AccountProblem")
    return {EACCES, "access denied (" + code + "): access key id \"" +
                        printable(creds.accessKeyId, 128) + "\" may not " + op + " in bucket \"" +
                        printable(where.bucket) +
                        "\"; check the bucket policy and IAM permissions" + details};
  if (code == "NoSuchBucket")
    return {ENOENT, "bucket \"" + printable(where.bucket) + "\" does not exist" +
                        (where.endpoint.empty() ? " in region " + region
                                                : " at " + printable(where.endpoint)) +
                        " (NoSuchBucket)"};
  if (code == "NoSuchKey")
    return {ENOENT, "no object \"" + printable(key) + "\" in bucket \"" + printable(where.bucket) +
                        "\" (NoSuchKey)"};
  if (code == "NoSuchUpload")
    return {ENOENT,
            "the multipart upload does not exist (NoSuchUpload): it was aborted or completed"};
  std::string otherRegion = resp.header("x-amz-bucket-region");
  if (otherRegion.empty() && xml)
    otherRegion = xml->childText("Region");
  if (code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect" || status == 301) {
    if (!otherRegion.empty() && otherRegion != region)
      return {EIO, "bucket \"" + printable(where.bucket) + "\" is in region " +
                       printable(otherRegion, 64) + ", not " + region + " (" +
                       (code.empty() ? "HTTP 301" : code) +
                       "): use region=" + printable(otherRegion, 64)};
  }
  if (code.empty()) { // no XML: a HEAD answer, or not an S3 server
    if (status == 403)
      return {EACCES, "the request was refused (HTTP 403, no details): check the access key id, "
                      "the secret access key and the bucket's permissions"};
    if (status == 404 && !key.empty())
      return {ENOENT, "no object \"" + printable(key) + "\" in bucket \"" +
                          printable(where.bucket) + "\" (HTTP 404; or no such bucket)"};
    if (status == 404)
      return {ENOENT, "bucket \"" + printable(where.bucket) + "\" does not exist (HTTP 404)"};
    std::string snippet = printable(resp.text(), 200);
    return {EIO,
            "HTTP " + std::to_string(status) +
                (snippet.empty() ? " without S3 error details" : ": " + snippet),
            status >= 500 || status == 429 || status == 408};
  }
  bool retry = status >= 500 || status == 429 || status == 408 || code == "RequestTimeout" ||
               code == "SlowDown" || code == "InternalError" || code == "ServiceUnavailable";
  int errcode = status == 403 ? EACCES : EIO;
  return {errcode, "HTTP " + std::to_string(status) + " (" + printable(code, 64) + ")" + details,
          retry};
}

} // namespace

S3Client::S3Client(S3Location where, AwsCredentials creds, S3Options options)
    : where_(std::move(where)), creds_(std::move(creds)), options_(options),
      curl_(std::make_unique<Curl>()) {
  std::call_once(curlInitOnce, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (where_.region.empty())
    where_.region = "us-east-1";
  while (!where_.endpoint.empty() && where_.endpoint.back() == '/')
    where_.endpoint.pop_back();
  if (options_.attempts < 1)
    options_.attempts = 1;
  if (options_.partSize < kMinPartSize)
    options_.partSize = kMinPartSize;
  curl_->handle = curl_easy_init();
}

S3Client::~S3Client() = default;
S3Client::S3Client(S3Client &&) noexcept = default;
S3Client &S3Client::operator=(S3Client &&) noexcept = default;

std::string S3Client::url(const std::string &key, const std::string &query) const {
  std::string path = key.empty() ? "" : "/" + s3detail::uriEncode(key, true);
  std::string u;
  if (!where_.endpoint.empty())
    u = where_.endpoint + "/" + s3detail::uriEncode(where_.bucket, false) + path;
  else if (where_.bucket.find('.') == std::string::npos) // virtual-hosted style
    u = "https://" + where_.bucket + ".s3." + where_.region + ".amazonaws.com" +
        (path.empty() ? "/" : path);
  else // dots break the TLS wildcard certificate: path style
    u = "https://s3." + where_.region + ".amazonaws.com/" +
        s3detail::uriEncode(where_.bucket, false) + path;
  if (!query.empty())
    u += "?" + query;
  return u;
}

Error S3Client::fail(const Request &request, int code, std::string what) const {
  // Every part is already bounded; this makes sure that nothing unescaped gets through.
  std::string message =
      safeText("S3 " + request.operation + " " + request.target + ": " + what, 8192);
  // Belt and braces: nothing the server sent back may echo a secret into a log.
  if (creds_.secretAccessKey.size() >= 4)
    replaceAll(message, creds_.secretAccessKey, "<secret>");
  if (creds_.sessionToken.size() >= 4)
    replaceAll(message, creds_.sessionToken, "<session token>");
  return Error{code, std::move(message)};
}

Result<S3Client::Response> S3Client::perform(const Request &request) {
  if (!curl_ || !curl_->handle)
    return fail(request, ENOMEM, "libcurl could not be initialised");
  if (creds_.accessKeyId.empty() || creds_.secretAccessKey.empty())
    return fail(request, EACCES,
                "no credentials: the access key id or the secret access key is empty");
  std::chrono::milliseconds backoff = options_.firstBackoff;
  for (int attempt = 1;; ++attempt) {
    if (options_.cancel && options_.cancel->cancelled())
      return fail(request, ECANCELED, "cancelled: ringcapd is stopping");
    bool retryable = false;
    auto r = performOnce(request, retryable);
    if (r.ok())
      return r;
    Error e = r.error();
    if (!retryable || attempt >= options_.attempts) {
      if (attempt > 1)
        e.message += " (after " + std::to_string(attempt) + " attempts)";
      return fail(request, e.code, e.message);
    }
    if (options_.cancel ? !options_.cancel->waitFor(backoff)
                        : (std::this_thread::sleep_for(backoff), false))
      return fail(request, ECANCELED, "cancelled: ringcapd is stopping (" + e.message + ")");
    backoff *= 2;
  }
}

Result<S3Client::Response> S3Client::performOnce(const Request &request, bool &retry) {
  CURL *h = curl_->handle;
  curl_easy_reset(h); // keeps the connection cache
  curl_->errbuf[0] = 0;
  Response response;
  Transfer t{h, &response, request.maxBody, false, request.body, 0, options_.cancel.get()};

  std::string query = s3detail::canonicalQuery(request.query);
  std::string target = url(request.key, query);
  std::string sigv4 = "aws:amz:" + where_.region + ":s3";
  std::string userAgent = std::string("ringcap/") + RINGCAP_VERSION;

  curl_easy_setopt(h, CURLOPT_URL, target.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L); // keys may hold "." and ".." segments
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_->errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, userAgent.c_str());
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connectTimeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.requestTimeout.count()));
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4.c_str());
  curl_easy_setopt(h, CURLOPT_USERNAME, creds_.accessKeyId.c_str());
  curl_easy_setopt(h, CURLOPT_PASSWORD, creds_.secretAccessKey.c_str());
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, onHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, onBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, onProgress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);

  // curl 7.88 signs the payload hash it finds in this header (and S3 requires the header).
  curl_slist *headers = nullptr;
  std::string payloadHash = "x-amz-content-sha256: " + sha256Hex(request.body);
  headers = curl_slist_append(headers, payloadHash.c_str());
  std::string contentType = "Content-Type: " + request.contentType;
  if (!request.contentType.empty())
    headers = curl_slist_append(headers, contentType.c_str());
  std::string contentMd5 = "Content-MD5: " + request.contentMd5;
  if (!request.contentMd5.empty())
    headers = curl_slist_append(headers, contentMd5.c_str());
  std::string token = "x-amz-security-token: " + creds_.sessionToken;
  if (!creds_.sessionToken.empty())
    headers = curl_slist_append(headers, token.c_str());

  if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT") {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, onRead);
    curl_easy_setopt(h, CURLOPT_READDATA, &t);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, onSeek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, &t);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  } else if (request.method == "POST") {
    static const char kEmpty[] = "";
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS,
                     request.body.empty() ? kEmpty
                                          : reinterpret_cast<const char *>(request.body.data()));
  } else if (request.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

  CURLcode rc = curl_easy_perform(h);
  long osErrno = 0;
  curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &osErrno);
  curl_off_t connectTime = 0;
  curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connectTime);
  long requestBytes = 0; // > 0 once a request went out, also on a reused connection
  curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &requestBytes);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  curl_slist_free_all(headers);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);

  auto retryable = [&retry](int code, std::string what) {
    retry = true;
    return Error{code, std::move(what)};
  };
  auto final = [&retry](int code, std::string what) {
    retry = false;
    return Error{code, std::move(what)};
  };

  // Where we talk to: scheme://host[:port], without the path (which may hold the key).
  std::string origin = target.substr(0, target.find('/', target.find("://") + 3));
  std::string curlText = curl_->errbuf[0] ? curl_->errbuf : curl_easy_strerror(rc);

  if (rc != CURLE_OK) {
    switch (rc) {
    case CURLE_COULDNT_CONNECT: {
      int e = static_cast<int>(osErrno);
      int code = (e == EHOSTUNREACH || e == ENETUNREACH) ? EHOSTUNREACH
                 : e == ETIMEDOUT                        ? ETIMEDOUT
                                                         : ECONNREFUSED;
      return retryable(code, "cannot connect to " + origin + ": " +
                                 (e ? std::string(std::strerror(e)) : curlText));
    }
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return retryable(EHOSTUNREACH, "cannot resolve the host name of " + origin + ": " + curlText);
    case CURLE_OPERATION_TIMEDOUT:
      if (connectTime == 0 && requestBytes == 0)
        return retryable(ETIMEDOUT, "cannot connect to " + origin + ": no answer within " +
                                        seconds(options_.connectTimeout) + " (connect timeout)");
      return retryable(ETIMEDOUT, "timed out after " + seconds(options_.requestTimeout) +
                                      " talking to " + origin + " (request timeout)");
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return retryable(EIO, "the connection to " + origin + " broke: " + curlText);
    case CURLE_ABORTED_BY_CALLBACK:
      return final(ECANCELED, "cancelled: ringcapd is stopping");
    case CURLE_WRITE_ERROR:
      if (t.tooLarge)
        return final(EIO, "the answer is larger than " + std::to_string(request.maxBody >> 20) +
                              " MiB, which no S3 server sends");
      return final(EIO, curlText);
    case CURLE_PEER_FAILED_VERIFICATION:
      return final(EIO, "the TLS certificate of " + origin + " was not accepted: " + curlText);
    default:
      return final(EIO, "talking to " + origin + ": " + curlText);
    }
  }

  // S3 reports some failures of a POST (CompleteMultipartUpload) as 200 with an <Error> body.
  std::optional<s3detail::XmlElement> xml;
  auto parseBody = [&] {
    if (!xml && !response.body.empty()) {
      auto parsed = s3detail::parseXml(response.text());
      if (parsed)
        xml = std::move(*parsed);
    }
  };
  bool ok = response.status >= 200 && response.status < 300;
  if (ok && request.method == "POST") {
    parseBody();
    if (xml && xml->name == "Error")
      ok = false;
  }
  if (ok)
    return response;

  parseBody();
  std::string code, message;
  if (xml && xml->name == "Error") {
    code = trimmed(xml->childText("Code"));
    message = trimmed(xml->childText("Message"));
  }
  if (code.empty())
    code = response.header("x-amz-error-code");
  Failure f = explainS3Error(request.operation, response.status, code, message,
                             xml ? &*xml : nullptr, response, where_, creds_, request.key);
  return f.retryable ? retryable(f.code, f.what) : final(f.code, f.what);
}

namespace {
Result<void> checkKey(const std::string &key) {
  if (key.empty())
    return Error{EINVAL, "an object key must not be empty"};
  if (key.size() > kMaxKeyBytes)
    return Error{EINVAL, "an object key is at most 1024 bytes"};
  return {};
}
} // namespace

Result<std::string> S3Client::putObject(const std::string &key, std::span<const uint8_t> data,
                                        const std::string &contentType) {
  Request req;
  req.operation = "PutObject";
  req.method = "PUT";
  req.key = key;
  req.target = "s3://" + where_.bucket + "/" + printable(key);
  if (auto k = checkKey(key); !k)
    return fail(req, k.error().code, k.error().message);
  req.body = data;
  req.contentType = contentType.empty() ? "application/octet-stream" : contentType;
  std::string md5 = md5Hex(data, &req.contentMd5);
  auto resp = perform(req);
  if (!resp)
    return resp.error();
  std::string etag = lowerAscii(stripQuotes(resp->header("etag")));
  if (etag != md5)
    return fail(req, EIO,
                "the server's ETag \"" + printable(etag, 80) +
                    "\" is not the MD5 of the content (" + md5 +
                    "): the object may be damaged (or the bucket encrypts with KMS)");
  return etag;
}

Result<std::string> S3Client::uploadFile(const std::string &key, const std::string &path) {
  Request req;
  req.operation = "upload of " + printable(path);
  req.target = "to s3://" + where_.bucket + "/" + printable(key);
  if (auto k = checkKey(key); !k)
    return fail(req, k.error().code, k.error().message);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int err = errno;
    return fail(req, err, std::string("cannot open the file: ") + std::strerror(err));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    return fail(req, err, std::string("cannot stat the file: ") + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode))
    return fail(req, EINVAL, "not a regular file");
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > options_.multipartThreshold)
    return uploadMultipart(key, path, fd, size);

  std::vector<uint8_t> data(size);
  size_t have = 0;
  while (have < size) {
    ssize_t n = ::pread(fd, data.data() + have, size - have, static_cast<off_t>(have));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int err = errno;
      return fail(req, err, std::string("cannot read the file: ") + std::strerror(err));
    }
    if (n == 0)
      return fail(req, EIO, "the file shrank while it was read");
    have += static_cast<size_t>(n);
  }
  return putObject(key, data);
}

Result<std::string> S3Client::uploadMultipart(const std::string &key, const std::string &path,
                                              int fd, uint64_t size) {
  std::string target = "s3://" + where_.bucket + "/" + printable(key);
  uint64_t partSize = options_.partSize;
  if ((size + partSize - 1) / partSize > kMaxParts) { // S3 allows 10000 parts
    partSize = (size + kMaxParts - 1) / kMaxParts;
    partSize = (partSize + (1u << 20) - 1) & ~uint64_t((1u << 20) - 1);
  }

  Request create;
  create.operation = "CreateMultipartUpload";
  create.method = "POST";
  create.key = key;
  create.target = target;
  create.query = {{"uploads", ""}};
  create.contentType = "application/octet-stream";
  auto created = perform(create);
  if (!created)
    return created.error();
  auto xml = s3detail::parseXml(created->text());
  std::string uploadId = xml ? trimmed(xml->childText("UploadId")) : "";
  if (uploadId.empty())
    return fail(create, EIO,
                "the answer has no UploadId" +
                    (xml ? std::string() : " (" + xml.error().message + ")"));

  // Everything after this point aborts the upload on failure.
  auto abandon = [&](Error e) -> Error {
    auto aborted = abortMultipart(key, uploadId);
    if (!aborted)
      e.message += "; the multipart upload " + printable(uploadId, 200) +
                   " could not be aborted either (" + aborted.error().message +
                   "): its parts stay in the bucket until AbortMultipartUpload succeeds or a "
                   "lifecycle rule (AbortIncompleteMultipartUpload) removes them";
    return e;
  };

  std::vector<uint8_t> buffer(static_cast<size_t>(std::min<uint64_t>(partSize, size)));
  std::vector<std::string> md5s;
  // The MD5 of the whole content too: some S3-compatible servers (s3rver) report that as the
  // ETag of a multipart object instead of S3's MD5-of-MD5s-N.
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> whole(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!whole || EVP_DigestInit_ex(whole.get(), EVP_md5(), nullptr) != 1)
    return abandon(fail(create, ENOMEM, "cannot set up an MD5 digest (OpenSSL)"));
  std::string completeXml = "<CompleteMultipartUpload>";
  uint64_t offset = 0;
  for (int part = 1; offset < size; ++part) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(partSize, size - offset));
    size_t have = 0;
    while (have < len) {
      ssize_t n = ::pread(fd, buffer.data() + have, len - have, static_cast<off_t>(offset + have));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        int err = n < 0 ? errno : EIO;
        Request r;
        r.operation = "upload of " + printable(path);
        r.target = "to " + target;
        return abandon(fail(r, err,
                            n < 0 ? std::string("cannot read the file: ") + std::strerror(err)
                                  : std::string("the file shrank while it was uploaded")));
      }
      have += static_cast<size_t>(n);
    }
    Request up;
    up.operation = "UploadPart";
    up.method = "PUT";
    up.key = key;
    up.target = target + " (part " + std::to_string(part) + ")";
    up.query = {{"partNumber", std::to_string(part)}, {"uploadId", uploadId}};
    up.body = std::span<const uint8_t>(buffer.data(), len);
    std::string md5 = md5Hex(up.body, &up.contentMd5);
    auto uploaded = perform(up);
    if (!uploaded)
      return abandon(uploaded.error());
    std::string etag = lowerAscii(stripQuotes(uploaded->header("etag")));
    if (etag != md5)
      return abandon(fail(up, EIO,
                          "the server's ETag \"" + printable(etag, 80) +
                              "\" is not the MD5 of the part (" + md5 + ")"));
    md5s.push_back(md5);
    EVP_DigestUpdate(whole.get(), buffer.data(), len);
    completeXml += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>\"" + md5 +
                   "\"</ETag></Part>";
    offset += len;
  }
  completeXml += "</CompleteMultipartUpload>";
  std::string expected = s3detail::multipartEtag(md5s);
  unsigned char wholeMd5[EVP_MAX_MD_SIZE];
  unsigned int wholeLen = 0;
  EVP_DigestFinal_ex(whole.get(), wholeMd5, &wholeLen);
  std::string expectedWhole = hex(wholeMd5, wholeLen);
  auto matches = [&](const std::string &etag) { return etag == expected || etag == expectedWhole; };

  Request complete;
  complete.operation = "CompleteMultipartUpload";
  complete.method = "POST";
  complete.key = key;
  complete.target = target;
  complete.query = {{"uploadId", uploadId}};
  complete.contentType = "application/xml";
  complete.body = std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(completeXml.data()),
                                           completeXml.size());
  auto completed = perform(complete);
  std::string etag;
  if (completed) {
    auto result = s3detail::parseXml(completed->text());
    etag = result ? lowerAscii(stripQuotes(trimmed(result->childText("ETag")))) : "";
  } else if (completed.error().code == ENOENT) {
    // NoSuchUpload after a retry: the first try may have completed it and lost the answer.
    auto head = headObject(key);
    if (!head || !matches(head->etag))
      return completed.error();
    etag = head->etag;
  } else {
    return abandon(completed.error());
  }
  if (!matches(etag))
    return fail(complete, EIO,
                "the server's ETag \"" + printable(etag, 80) +
                    "\" is not the one of the parts sent (" + expected +
                    "): the object may be damaged");
  return etag;
}

Result<void> S3Client::abortMultipart(const std::string &key, const std::string &uploadId) {
  Request req;
  req.operation = "AbortMultipartUpload";
  req.method = "DELETE";
  req.key = key;
  req.target = "s3://" + where_.bucket + "/" + printable(key);
  req.query = {{"uploadId", uploadId}};
  auto resp = perform(req);
  if (!resp && resp.error().code != ENOENT) // NoSuchUpload: already gone
    return resp.error();
  return {};
}

Result<S3ObjectInfo> S3Client::headObject(const std::string &key) {
  Request req;
  req.operation = "HeadObject";
  req.method = "HEAD";
  req.key = key;
  req.target = "s3://" + where_.bucket + "/" + printable(key);
  if (auto k = checkKey(key); !k)
    return fail(req, k.error().code, k.error().message);
  auto resp = perform(req);
  if (!resp)
    return resp.error();
  S3ObjectInfo info;
  info.key = key;
  info.etag = lowerAscii(stripQuotes(resp->header("etag")));
  if (!parseU64(resp->header("content-length"), info.size))
    return fail(req, EIO, "the answer has no valid Content-Length");
  return info;
}

Result<std::vector<uint8_t>> S3Client::getObject(const std::string &key) {
  Request req;
  req.operation = "GetObject";
  req.method = "GET";
  req.key = key;
  req.target = "s3://" + where_.bucket + "/" + printable(key);
  req.maxBody = std::numeric_limits<size_t>::max();
  if (auto k = checkKey(key); !k)
    return fail(req, k.error().code, k.error().message);
  auto resp = perform(req);
  if (!resp)
    return resp.error();
  return std::move(resp->body);
}

Result<std::vector<S3ObjectInfo>> S3Client::listObjects(const std::string &prefix) {
  std::vector<S3ObjectInfo> out;
  std::string token;
  for (;;) {
    Request req;
    req.operation = "ListObjectsV2";
    req.method = "GET";
    req.target = "s3://" + where_.bucket + "/" + printable(prefix) + "*";
    req.query = {{"list-type", "2"}, {"prefix", prefix}};
    if (!token.empty())
      req.query.emplace_back("continuation-token", token);
    auto resp = perform(req);
    if (!resp)
      return resp.error();
    auto xml = s3detail::parseXml(resp->text());
    if (!xml)
      return fail(req, EIO, "cannot read the answer: " + xml.error().message);
    if (xml->name != "ListBucketResult")
      return fail(req, EIO,
                  "the answer is <" + printable(xml->name, 64) + ">, not <ListBucketResult>");
    for (const auto &c : xml->children) {
      if (c.name != "Contents")
        continue;
      S3ObjectInfo info;
      info.key = c.childText("Key");
      info.etag = lowerAscii(stripQuotes(trimmed(c.childText("ETag"))));
      if (info.key.empty() || !parseU64(c.childText("Size"), info.size))
        return fail(req, EIO, "the answer lists an object without a Key or a valid Size");
      out.push_back(std::move(info));
    }
    if (trimmed(xml->childText("IsTruncated")) != "true")
      return out;
    std::string next = xml->childText("NextContinuationToken");
    if (next.empty() || next == token)
      return fail(req, EIO, "the listing is truncated but gives no new NextContinuationToken");
    token = std::move(next);
  }
}

Result<void> S3Client::deleteObject(const std::string &key) {
  Request req;
  req.operation = "DeleteObject";
  req.method = "DELETE";
  req.key = key;
  req.target = "s3://" + where_.bucket + "/" + printable(key);
  if (auto k = checkKey(key); !k)
    return fail(req, k.error().code, k.error().message);
  auto resp = perform(req);
  if (!resp)
    return resp.error();
  return {};
}

Result<std::vector<std::string>> S3Client::listMultipartUploads(const std::string &prefix) {
  std::vector<std::string> out;
  std::string keyMarker, idMarker;
  for (;;) {
    Request req;
    req.operation = "ListMultipartUploads";
    req.method = "GET";
    req.target = "s3://" + where_.bucket + "/" + printable(prefix) + "*";
    req.query = {{"uploads", ""}, {"prefix", prefix}};
    if (!keyMarker.empty())
      req.query.emplace_back("key-marker", keyMarker);
    if (!idMarker.empty())
      req.query.emplace_back("upload-id-marker", idMarker);
    auto resp = perform(req);
    if (!resp)
      return resp.error();
    auto xml = s3detail::parseXml(resp->text());
    if (!xml)
      return fail(req, EIO, "cannot read the answer: " + xml.error().message);
    if (xml->name != "ListMultipartUploadsResult")
      return fail(req, EIO,
                  "the answer is <" + printable(xml->name, 64) +
                      ">, not <ListMultipartUploadsResult>");
    for (const auto &c : xml->children)
      if (c.name == "Upload") {
        std::string id = trimmed(c.childText("UploadId"));
        if (id.empty())
          return fail(req, EIO, "the answer lists an upload without an UploadId");
        out.push_back(std::move(id));
      }
    if (trimmed(xml->childText("IsTruncated")) != "true")
      return out;
    std::string nextKey = xml->childText("NextKeyMarker");
    std::string nextId = xml->childText("NextUploadIdMarker");
    if ((nextKey.empty() && nextId.empty()) || (nextKey == keyMarker && nextId == idMarker))
      return fail(req, EIO, "the listing is truncated but gives no new markers");
    keyMarker = std::move(nextKey);
    idMarker = std::move(nextId);
  }
}

std::string s3detail::multipartEtag(const std::vector<std::string> &partMd5Hex) {
  std::vector<uint8_t> concat;
  concat.reserve(partMd5Hex.size() * 16);
  auto nibble = [](char c) -> uint8_t {
    return static_cast<uint8_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  };
  for (const auto &h : partMd5Hex)
    for (size_t i = 0; i + 1 < h.size(); i += 2)
      concat.push_back(static_cast<uint8_t>(nibble(h[i]) << 4 | nibble(h[i + 1])));
  return md5Hex(concat, nullptr) + "-" + std::to_string(partMd5Hex.size());
}

} // namespace ringcap
