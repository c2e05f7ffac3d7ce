// HTTP/1.1 on Boost.Beast, plain or over TLS (Boost.Asio with OpenSSL): the
// server peers push to, and the keep-alive client a peer link pushes with.
// Every read and write has a deadline, every body a size limit; neither side
// decides anything (the Router does).
#ifndef ZONEMESH_REPLICATOR_HTTP_H_
#define ZONEMESH_REPLICATOR_HTTP_H_

#include <atomic>
#include <chrono>
#include <optional>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "replicator/config.h"
#include "replicator/router.h"

namespace zonemesh {

// A TLS configuration could not be loaded (files, keys); what() names it.
class TlsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class HttpServer {
 public:
  struct Options {
    Endpoint listen;
    int64_t max_body_bytes = 32 << 20;
    std::chrono::milliseconds timeout{10000};  // per request read and response write
    int threads = 4;
    int max_connections = 256;  // further connections are closed at once
    // Serve HTTPS with this certificate; with tls.ca and
    // tls.require_client_cert, clients must present a certificate the CA
    // signed.
    TlsConfig tls;
  };
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  HttpServer(Options options, Handler handler);
  ~HttpServer();

  // Binds and starts serving on background threads. Throws std::runtime_error
  // naming the address when it cannot bind, TlsError when the certificate or
  // key cannot be loaded.
  void Start();
  // Stops accepting, closes connections, joins the threads. Idempotent.
  void Stop();

  // The bound port (useful with port 0).
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A network-level failure: connection refused, timeout, reset, TLS
// handshake or certificate verification failure.
class HttpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One keep-alive connection to one server, used by one thread. A request on
// a connection the server closed meanwhile is retried once on a new one
// (every request zonemesh sends is idempotent).
class HttpClient {
 public:
  // With `tls` (https peers), the server's certificate must chain to tls.ca
  // and name the server's host; the node's own certificate is presented
  // when tls.cert is set. Throws TlsError when the files cannot be loaded.
  HttpClient(Endpoint server, std::chrono::milliseconds timeout, int64_t max_response_bytes = 64 << 20,
             const TlsConfig* tls = nullptr);
  ~HttpClient();

  struct Response {
    int status = 0;
    std::string body;
  };

  // Throws HttpError on network failure or timeout. `headers` are added to
  // the request.
  // `timeout`, when set, replaces the client's for this request.
  Response Request(const std::string& method, const std::string& target, const std::string& body,
                   const std::map<std::string, std::string>& headers = {},
                   std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  // Drops the connection (the next request reconnects).
  void Close();

  bool connected() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_HTTP_H_
