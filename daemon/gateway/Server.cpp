#include "Server.h"

#include "util/Text.h"

#include "ClientBackend.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <thread>
#include <unistd.h>

namespace ringcap::gateway {
namespace {

using Clock = std::chrono::steady_clock;

// A fixed number of request threads and a bounded queue of accepted connections: when the
// queue is full, the accepting thread waits (new connections then wait in the kernel's listen
// backlog), so a flood of connections cannot grow memory or threads.
// `waiting` counts the connections accepted and not yet taken by a thread: while it is not 0,
// replies say Connection: close, so that kept-alive connections give their threads up.
class BoundedPool : public httplib::TaskQueue {
public:
  BoundedPool(size_t threads, size_t queued, std::shared_ptr<std::atomic<size_t>> waiting)
      : max_(queued), waiting_(std::move(waiting)) {
    for (size_t i = 0; i < threads; i++)
      threads_.emplace_back([this] { run(); });
  }
  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mutex_);
    notFull_.wait(lock, [&] { return queue_.size() < max_ || stopping_; });
    queue_.push_back(std::move(fn));
    *waiting_ = queue_.size();
    notEmpty_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    notEmpty_.notify_all();
    notFull_.notify_all();
    for (auto &t : threads_)
      t.join();
  }

private:
  void run() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mutex_);
        notEmpty_.wait(lock, [&] { return !queue_.empty() || stopping_; });
        if (queue_.empty())
          return; // stopping, and nothing left: every accepted connection is served
        fn = std::move(queue_.front());
        queue_.pop_front();
        *waiting_ = queue_.size();
        notFull_.notify_one();
      }
      fn();
    }
  }
  size_t max_;
  std::shared_ptr<std::atomic<size_t>> waiting_;
  std::mutex mutex_;
  std::condition_variable notEmpty_, notFull_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

// What the log line needs that httplib's Request/Response do not carry; set by the thread
// that serves the request, read by the logger on the same thread.
struct RequestLog {
  Clock::time_point start{};
  std::string who = "-";
};
thread_local RequestLog tLog;

std::string header(const httplib::Request &req, const char *name) {
  return req.has_header(name) ? req.get_header_value(name) : "";
}

void apply(HttpResponse &&r, httplib::Response &res) {
  res.status = r.status;
  for (auto &[k, v] : r.headers)
    res.set_header(k, v);
  tLog.who = r.who;
  if (r.file && r.streamed) {
    auto file = r.file;
    res.set_chunked_content_provider(r.contentType, [file](size_t, httplib::DataSink &sink) {
      char buf[64 * 1024];
      ssize_t n;
      do
        n = ::read(file->get(), buf, sizeof buf);
      while (n < 0 && errno == EINTR);
      if (n < 0)
        return false; // the producer failed: the reply ends without its last chunk
      if (n == 0) {
        sink.done();
        return true;
      }
      return sink.write(buf, static_cast<size_t>(n));
    });
  } else if (r.file) {
    auto file = r.file;
    res.set_content_provider(
        static_cast<size_t>(r.fileSize), r.contentType,
        [file](size_t offset, size_t length, httplib::DataSink &sink) {
          char buf[64 * 1024];
          size_t want = std::min(length, sizeof buf);
          ssize_t n;
          do
            n = ::pread(file->get(), buf, want, static_cast<off_t>(offset));
          while (n < 0 && errno == EINTR);
          if (n <= 0)
            return false; // the file shrank or failed: the connection is closed short
          return sink.write(buf, static_cast<size_t>(n));
        });
  } else if (!r.contentType.empty()) {
    res.set_content(std::move(r.body), r.contentType);
  }
}

const char *statusText(int status) {
  switch (status) {
  case 400:
    return "bad request";
  case 404:
    return "not found";
  case 405:
    return "method not allowed";
  case 408:
    return "request timeout";
  case 414:
    return "URI too long";
  case 416:
    return "range not satisfiable";
  case 417:
    return "expectation failed";
  case 431:
    return "request header fields too large";
  case 500:
    return "internal error";
  default:
    return "error";
  }
}

} // namespace

int serve(const GatewayConfig &config, Api &api,
          const std::function<void(const std::string &)> &ready, const std::function<void()> &wait,
          Backend *backend) {
  std::unique_ptr<httplib::Server> server;
  if (config.tls_certificate) {
    server = std::make_unique<httplib::SSLServer>(config.tls_certificate->c_str(),
                                                  config.tls_key->c_str());
    if (!server->is_valid()) {
      spdlog::error("gateway.tls_certificate, gateway.tls_key: cannot load {} and {} (a PEM "
                    "certificate chain and its PEM private key)",
                    *config.tls_certificate, *config.tls_key);
      return 1;
    }
  } else {
    server = std::make_unique<httplib::Server>();
  }
  auto &svr = *server;
  size_t threads = config.threads;
  auto waiting = std::make_shared<std::atomic<size_t>>(0);
  svr.new_task_queue = [threads, waiting] {
    return new BoundedPool(threads, threads * 8, waiting);
  };
  svr.set_payload_max_length(kMaxBodyBytes);
  svr.set_read_timeout(10, 0);
  svr.set_write_timeout(10, 0);
  svr.set_keep_alive_timeout(5);
  svr.set_keep_alive_max_count(100);
  // Headers and body go out in separate writes: without TCP_NODELAY the body waits for the
  // client's delayed ACK (40 ms a request on Linux).
  svr.set_tcp_nodelay(true);

  svr.set_pre_routing_handler([](const httplib::Request &req, httplib::Response &res) {
    tLog.start = Clock::now();
    tLog.who = "-";
    // Range requests are not served: the whole file comes with 200. cpp-httplib 0.11 would
    // cut the body to the ranges but keep the handler's status 200 (a resumed download then
    // takes a part for the whole file), and build a multipart body of every range in memory,
    // so thousands of ranges in one header would cost hundreds of MiB (RFC 9110 lets a server
    // ignore Range). The Request is httplib's own non-const object.
    const_cast<httplib::Request &>(req).ranges.clear();
    res.set_header("Accept-Ranges", "none");
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // While accepted connections wait for a thread, a kept-alive connection gives its thread up
  // after its reply: idle keep-alive clients cannot hold every thread.
  svr.set_post_routing_handler([waiting](const httplib::Request &, httplib::Response &res) {
    if (waiting->load() > 0)
      res.set_header("Connection", "close");
  });

  auto handle = [&api, shared = backend](const httplib::Request &req, std::string body,
                                         httplib::Response &res) {
    HttpRequest r;
    r.method = req.method;
    r.path = req.path;
    r.body = std::move(body);
    r.authorization = header(req, "Authorization");
    r.authKey = header(req, "X-Auth-Key");
    r.authEmail = header(req, "X-Auth-Email");
    r.remote = req.remote_addr;
    if (shared) {
      apply(api.handle(r, *shared), res);
      return;
    }
    ClientBackend backend;
    apply(api.handle(r, backend), res);
  };
  auto handler = [handle](const httplib::Request &req, httplib::Response &res) {
    handle(req, req.body, res);
  };
  // Methods that may carry a body read it here: a request with neither Content-Length nor
  // Transfer-Encoding has no body (RFC 9112, 6.3), where httplib would wait for the
  // connection to close (curl -X PUT sends such a request).
  auto withBody = [handle](const httplib::Request &req, httplib::Response &res,
                           const httplib::ContentReader &reader) {
    std::string body;
    if (req.is_multipart_form_data()) {
      // httplib reads such a body only part by part, through callbacks; it is no JSON body.
      HttpResponse r = errorResponse(400, errorCode(ErrorKind::InvalidRequest),
                                     "request body: must be a JSON object (Content-Type "
                                     "application/json), not multipart/form-data");
      if (req.method == "POST")
        r.headers.emplace_back("x-should-retry", "false");
      res.set_header("Connection", "close"); // the body is left unread
      apply(std::move(r), res);
      return;
    }
    if (req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) {
      bool complete = reader([&](const char *data, size_t n) {
        body.append(data, n);
        return body.size() <= kMaxBodyBytes;
      });
      if (!complete || body.size() > kMaxBodyBytes) {
        bool tooLarge = body.size() > kMaxBodyBytes || res.status == 413;
        HttpResponse r = tooLarge
                             ? errorResponse(413, kCodeTooLarge,
                                             "request body: larger than " +
                                                 std::to_string(kMaxBodyBytes) + " bytes")
                             : errorResponse(400, kCodeHttp,
                                             "request body: incomplete (the connection "
                                             "ended or timed out before Content-Length bytes)");
        if (req.method == "POST")
          r.headers.emplace_back("x-should-retry", "false");
        res.set_header("Connection", "close");
        apply(std::move(r), res);
        return;
      }
    }
    handle(req, std::move(body), res);
  };
  svr.Get(".*", handler);
  svr.Post(".*", httplib::Server::HandlerWithContentReader(withBody));
  svr.Put(".*", httplib::Server::HandlerWithContentReader(withBody));
  svr.Patch(".*", httplib::Server::HandlerWithContentReader(withBody));
  svr.Delete(".*", httplib::Server::HandlerWithContentReader(withBody));
  svr.Options(".*", handler);

  // Replies httplib makes itself (413 of a body over the limit, 400 of a bad request line, a
  // 500 of an exception) get the envelope too.
  svr.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request &req,
                                                                httplib::Response &res) {
    if (!res.body.empty() || res.content_length_ > 0)
      return httplib::Server::HandlerResponse::Unhandled;
    HttpResponse r;
    if (res.status == 413)
      r = errorResponse(413, kCodeTooLarge,
                        "request body: larger than " + std::to_string(kMaxBodyBytes) + " bytes");
    else
      r = errorResponse(res.status, kCodeHttp,
                        "HTTP " + std::to_string(res.status) + ": " + statusText(res.status));
    if (req.method == "POST")
      r.headers.emplace_back("x-should-retry", "false");
    r.who = tLog.who;
    apply(std::move(r), res);
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler(
      [](const httplib::Request &req, httplib::Response &res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception &e) {
          what = e.what();
        } catch (...) {
        }
        spdlog::error("request failed: {}", safeText(what));
        // The client, who may not have sent a valid token, learns nothing of the inside.
        HttpResponse r = errorResponse(500, errorCode(ErrorKind::Failed),
                                       "internal error; the gateway's log has the details");
        if (req.method == "POST")
          r.headers.emplace_back("x-should-retry", "false");
        res.set_header("Connection", "close"); // where the request ended is unknown
        apply(std::move(r), res);
      });

  svr.set_logger([](const httplib::Request &req, const httplib::Response &res) {
    double ms = tLog.start == Clock::time_point{}
                    ? 0.0
                    : std::chrono::duration<double, std::milli>(Clock::now() - tLog.start).count();
    // Every field present, "-" where httplib could not parse it (a 414, a bad request line).
    spdlog::info("{}",
                 requestLogLine(req.method, req.path, res.status, ms, tLog.who, req.remote_addr));
    tLog = RequestLog{};
  });

  int port = config.listen.port;
  if (port == 0) {
    port = svr.bind_to_any_port(config.listen.host);
    if (port < 0)
      port = 0;
  } else if (!svr.bind_to_port(config.listen.host, port)) {
    port = 0;
  }
  if (port == 0) {
    spdlog::error("gateway.listen: cannot listen on {}:{}: {}", config.listen.host,
                  config.listen.port, std::strerror(errno));
    return 1;
  }
  bool v6 = config.listen.host.find(':') != std::string::npos;
  std::string url = std::string(config.tls_certificate ? "https" : "http") + "://" +
                    (v6 ? "[" + config.listen.host + "]" : config.listen.host) + ":" +
                    std::to_string(port);
  std::thread listener([&] { svr.listen_after_bind(); });
  ready(url);
  wait();
  svr.stop();
  listener.join();
  return 0;
}

} // namespace ringcap::gateway
