#include "replicator/http.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <optional>

namespace zonemesh {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// Loads `path` into `ctx` with `load`, turning failures into TlsError naming
// the file.
template <typename Fn>
void LoadOrThrow(const std::string& what, const std::string& path, Fn load) {
  try {
    load();
  } catch (const boost::system::system_error& e) {
    throw TlsError("tls." + what + " " + path + ": " + e.code().message());
  }
}

std::shared_ptr<ssl::context> ServerContext(const TlsConfig& tls) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  LoadOrThrow("cert", tls.cert, [&] { ctx->use_certificate_chain_file(tls.cert); });
  LoadOrThrow("key", tls.key, [&] { ctx->use_private_key_file(tls.key, ssl::context::pem); });
  if (!tls.ca.empty()) LoadOrThrow("ca", tls.ca, [&] { ctx->load_verify_file(tls.ca); });
  if (tls.require_client_cert) {
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return ctx;
}

std::shared_ptr<ssl::context> ClientContext(const TlsConfig& tls) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (!tls.ca.empty()) {
    LoadOrThrow("ca", tls.ca, [&] { ctx->load_verify_file(tls.ca); });
  } else {
    ctx->set_default_verify_paths();
  }
  ctx->set_verify_mode(ssl::verify_peer);
  if (!tls.cert.empty()) {
    LoadOrThrow("cert", tls.cert, [&] { ctx->use_certificate_chain_file(tls.cert); });
    LoadOrThrow("key", tls.key, [&] { ctx->use_private_key_file(tls.key, ssl::context::pem); });
  }
  return ctx;
}

std::string ErrorText(const beast::error_code& ec) {
  std::string msg = ec.message();
  if (ec.category() == net::error::get_ssl_category()) {
    char buf[256];
    ERR_error_string_n(static_cast<unsigned long>(ec.value()), buf, sizeof buf);
    msg = buf;
  }
  return msg;
}

// ------------------------------------------------------------------ server --

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Stream&& stream, const HttpServer::Options& options, const HttpServer::Handler& handler,
          std::atomic<int>& active)
      : stream_(std::move(stream)), options_(options), handler_(handler), active_(active) {
    beast::error_code ec;
    auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    remote_ = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~Session() { active_--; }

  void Run() {
    net::dispatch(beast::get_lowest_layer(stream_).get_executor(),
                  beast::bind_front_handler(&Session::Start, this->shared_from_this()));
  }

 private:
  void Start() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      beast::get_lowest_layer(stream_).expires_after(options_.timeout);
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) {
          spdlog::warn("TLS handshake with {} failed: {}", self->remote_, ErrorText(ec));
          return;
        }
        self->Read();
      });
    } else {
      Read();
    }
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(static_cast<uint64_t>(options_.max_body_bytes));
    parser_->header_limit(16 * 1024);
    beast::get_lowest_layer(stream_).expires_after(options_.timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, this->shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return Shutdown();
    if (ec == http::error::body_limit) {
      spdlog::warn("request from {} exceeds {} bytes; refused", remote_, options_.max_body_bytes);
      return Send(ErrorResponse(413, "request body larger than " +
                                         std::to_string(options_.max_body_bytes) + " bytes"),
                  false, 11);
    }
    if (ec == beast::error::timeout) {
      spdlog::debug("request from {} timed out", remote_);
      return;  // the stream closed the socket
    }
    if (ec) {
      if (ec != net::error::operation_aborted && ec != net::error::connection_reset)
        spdlog::debug("read from {}: {}", remote_, ErrorText(ec));
      if (ec.category() == http::make_error_code(http::error::bad_method).category())
        return Send(ErrorResponse(400, "malformed HTTP request: " + ec.message()), false, 11);
      return;
    }
    http::request<http::string_body> req = parser_->release();
    HttpRequest r{std::string(req.method_string()), std::string(req.target()), std::move(req.body()),
                  remote_, {}};
    for (const auto& field : req) {
      std::string name(field.name_string());
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      r.headers[name] = std::string(field.value());
    }
    HttpResponse resp = handler_(r);
    Send(std::move(resp), req.keep_alive(), req.version());
  }

  void Send(HttpResponse resp, bool keep_alive, unsigned version) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(resp.status), version);
    res->set(http::field::server, "zonemesh/" ZONEMESH_VERSION);
    res->set(http::field::content_type, resp.content_type);
    res->keep_alive(keep_alive);
    res->body() = std::move(resp.body);
    res->prepare_payload();
    res_ = res;
    beast::get_lowest_layer(stream_).expires_after(options_.timeout);
    http::async_write(stream_, *res_,
                      [self = this->shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                        self->res_.reset();
                        if (ec) return;
                        if (!keep_alive) return self->Shutdown();
                        self->Read();
                      });
  }

  void Shutdown() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      beast::get_lowest_layer(stream_).expires_after(options_.timeout);
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
    } else {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::string_body>> res_;
  const HttpServer::Options& options_;
  const HttpServer::Handler& handler_;
  std::atomic<int>& active_;
  std::string remote_;
};

}  // namespace

struct HttpServer::Impl {
  // Sessions refer to options, handler and active; they are destroyed with
  // the io_context, so these are declared (and outlive it) first.
  Options options;
  Handler handler;
  std::atomic<int> active{0};
  std::atomic<bool> stopped{false};
  std::shared_ptr<ssl::context> tls;  // null: plain HTTP
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;

  void Accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || stopped) return;
        spdlog::warn("accept: {}", ec.message());
      } else if (active.load() >= options.max_connections) {
        spdlog::warn("connection limit ({}) reached; closing a new connection",
                     options.max_connections);
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        active++;
        if (tls) {
          std::make_shared<Session<TlsStream>>(TlsStream(std::move(socket), *tls), options, handler, active)
              ->Run();
        } else {
          std::make_shared<Session<PlainStream>>(PlainStream(std::move(socket)), options, handler, active)
              ->Run();
        }
      }
      if (!stopped) Accept();
    });
  }
};

HttpServer::HttpServer(Options options, Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Start() {
  Impl& m = *impl_;
  if (m.options.tls.enabled()) m.tls = ServerContext(m.options.tls);
  beast::error_code ec;
  auto address = net::ip::make_address(m.options.listen.host, ec);
  if (ec) {
    throw std::runtime_error("listen address " + m.options.listen.ToString() +
                             " is not an IP address: " + ec.message());
  }
  tcp::endpoint ep(address, m.options.listen.port);
  m.acceptor.open(ep.protocol(), ec);
  if (!ec) m.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) m.acceptor.bind(ep, ec);
  if (!ec) m.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + m.options.listen.ToString() + ": " + ec.message());
  m.Accept();
  for (int i = 0; i < m.options.threads; ++i) {
    m.threads.emplace_back([&m] { m.ioc.run(); });
  }
}

void HttpServer::Stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  net::post(impl_->ioc, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

uint16_t HttpServer::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

// ------------------------------------------------------------------ client --

struct HttpClient::Impl {
  Endpoint server;
  std::chrono::milliseconds timeout;
  int64_t max_response_bytes;
  std::shared_ptr<ssl::context> tls;  // null: plain HTTP
  net::io_context ioc;
  std::optional<PlainStream> plain;
  std::optional<TlsStream> secure;
  beast::flat_buffer buffer;

  bool Open() const { return plain.has_value() || secure.has_value(); }
  PlainStream& Lowest() { return plain ? *plain : beast::get_lowest_layer(*secure); }

  // Runs the io_context until the posted operation finished.
  void RunOps() {
    ioc.restart();
    ioc.run();
  }

  void Connect() {
    buffer.clear();
    beast::error_code ec;
    tcp::resolver resolver(ioc);
    tcp::resolver::results_type results;
    resolver.async_resolve(server.host, std::to_string(server.port),
                           [&](beast::error_code e, tcp::resolver::results_type r) {
                             ec = e;
                             results = std::move(r);
                           });
    RunOps();
    if (ec) throw HttpError("cannot resolve " + server.host + ": " + ec.message());
    PlainStream* lowest;
    if (tls) {
      secure.emplace(ioc, *tls);
      lowest = &beast::get_lowest_layer(*secure);
    } else {
      plain.emplace(ioc);
      lowest = &*plain;
    }
    lowest->expires_after(timeout);
    lowest->async_connect(results, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    RunOps();
    if (ec) {
      Drop();
      throw HttpError("cannot connect to " + server.ToString() + ": " + ec.message());
    }
    lowest->socket().set_option(tcp::no_delay(true), ec);
    if (!tls) return;
    // The certificate must be the server's: SNI and host name verification.
    if (!SSL_set_tlsext_host_name(secure->native_handle(), server.host.c_str())) {
      Drop();
      throw HttpError("TLS: cannot set the server name " + server.host);
    }
    secure->set_verify_callback(ssl::host_name_verification(server.host));
    lowest->expires_after(timeout);
    secure->async_handshake(ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
    RunOps();
    if (ec) {
      Drop();
      throw HttpError("TLS handshake with " + server.ToString() + " failed: " + ErrorText(ec));
    }
  }

  template <class Stream>
  Response Exchange(Stream& stream, const std::string& method, const std::string& target,
                    const std::string& body, const std::map<std::string, std::string>& headers,
                    bool* nothing_received) {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    for (const auto& [name, value] : headers) req.set(name, value);
    req.set(http::field::host, server.ToString());
    req.set(http::field::user_agent, "zonemesh/" ZONEMESH_VERSION);
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();

    beast::error_code ec;
    beast::get_lowest_layer(stream).expires_after(timeout);
    http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
    RunOps();
    if (ec) throw HttpError("sending to " + server.ToString() + ": " + ErrorText(ec));

    http::response_parser<http::string_body> parser;
    parser.body_limit(static_cast<uint64_t>(max_response_bytes));
    beast::get_lowest_layer(stream).expires_after(timeout);
    std::size_t received = 0;
    http::async_read(stream, buffer, parser, [&](beast::error_code e, std::size_t n) {
      ec = e;
      received = n;
    });
    RunOps();
    if (ec) {
      *nothing_received = received == 0 && !parser.got_some();
      throw HttpError("reading from " + server.ToString() + ": " +
                      (ec == beast::error::timeout ? std::string("timed out") : ErrorText(ec)));
    }
    auto res = parser.release();
    if (!res.keep_alive()) Drop();
    return Response{static_cast<int>(res.result_int()), std::move(res.body())};
  }

  Response ExchangeAny(const std::string& method, const std::string& target, const std::string& body,
                      const std::map<std::string, std::string>& headers, bool* nothing_received) {
    if (secure) return Exchange(*secure, method, target, body, headers, nothing_received);
    return Exchange(*plain, method, target, body, headers, nothing_received);
  }

  void Drop() {
    beast::error_code ec;
    if (plain) {
      plain->socket().shutdown(tcp::socket::shutdown_both, ec);
      plain->close();
      plain.reset();
    }
    if (secure) {
      // No TLS close_notify exchange: the peer may be gone; the socket goes.
      beast::get_lowest_layer(*secure).socket().shutdown(tcp::socket::shutdown_both, ec);
      beast::get_lowest_layer(*secure).close();
      secure.reset();
    }
  }
};

HttpClient::HttpClient(Endpoint server, std::chrono::milliseconds timeout, int64_t max_response_bytes,
                       const TlsConfig* tls)
    : impl_(std::make_unique<Impl>()) {
  impl_->server = std::move(server);
  impl_->timeout = timeout;
  impl_->max_response_bytes = max_response_bytes;
  if (tls) impl_->tls = ClientContext(*tls);
}

HttpClient::~HttpClient() { Close(); }

HttpClient::Response HttpClient::Request(const std::string& method, const std::string& target,
                                         const std::string& body,
                                         const std::map<std::string, std::string>& headers,
                                         std::optional<std::chrono::milliseconds> timeout) {
  Impl& m = *impl_;
  struct RestoreTimeout {
    Impl& m;
    std::chrono::milliseconds saved;
    ~RestoreTimeout() { m.timeout = saved; }
  } restore{m, m.timeout};
  if (timeout) m.timeout = *timeout;
  bool reused = m.Open();
  if (!reused) m.Connect();
  try {
    bool nothing_received = false;
    try {
      return m.ExchangeAny(method, target, body, headers, &nothing_received);
    } catch (const HttpError&) {
      m.Drop();
      // A kept-alive connection the server had closed fails without an
      // answer; one more try on a fresh connection tells that apart from a
      // server that is really gone.
      if (!reused || !nothing_received) throw;
    }
    m.Connect();
    bool ignored = false;
    return m.ExchangeAny(method, target, body, headers, &ignored);
  } catch (const HttpError&) {
    m.Drop();
    throw;
  }
}

void HttpClient::Close() {
  if (impl_) impl_->Drop();
}

bool HttpClient::connected() const { return impl_->Open(); }

}  // namespace zonemesh
