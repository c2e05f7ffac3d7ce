#include "replicator/http.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <optional>

namespace zonemesh {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// ------------------------------------------------------------------ server --

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, const HttpServer::Options& options, const HttpServer::Handler& handler,
          std::atomic<int>& active)
      : stream_(std::move(socket)), options_(options), handler_(handler), active_(active) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    remote_ = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~Session() { active_--; }

  void Run() {
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::Read, shared_from_this()));
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(static_cast<uint64_t>(options_.max_body_bytes));
    parser_->header_limit(16 * 1024);
    stream_.expires_after(options_.timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
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
      return;  // tcp_stream closed the socket
    }
    if (ec) {
      if (ec != net::error::operation_aborted && ec != net::error::connection_reset)
        spdlog::debug("read from {}: {}", remote_, ec.message());
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
    stream_.expires_after(options_.timeout);
    http::async_write(stream_, *res_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                        self->res_.reset();
                        if (ec) return;
                        if (!keep_alive) return self->Shutdown();
                        self->Read();
                      });
  }

  void Shutdown() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
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
        std::make_shared<Session>(std::move(socket), options, handler, active)->Run();
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
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  // Runs the io_context until the posted operation finished.
  void RunOps() {
    ioc.restart();
    ioc.run();
  }

  void Connect() {
    stream.emplace(ioc);
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
    stream->expires_after(timeout);
    stream->async_connect(results, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    RunOps();
    if (ec) {
      stream.reset();
      throw HttpError("cannot connect to " + server.ToString() + ": " + ec.message());
    }
    stream->socket().set_option(tcp::no_delay(true), ec);
  }

  // One exchange on the current connection.
  Response Exchange(const std::string& method, const std::string& target, const std::string& body,
                    const std::map<std::string, std::string>& headers, bool* nothing_received) {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    for (const auto& [name, value] : headers) req.set(name, value);
    req.set(http::field::host, server.ToString());
    req.set(http::field::user_agent, "zonemesh/" ZONEMESH_VERSION);
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();

    beast::error_code ec;
    stream->expires_after(timeout);
    http::async_write(*stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
    RunOps();
    if (ec) throw HttpError("sending to " + server.ToString() + ": " + ec.message());

    http::response_parser<http::string_body> parser;
    parser.body_limit(static_cast<uint64_t>(max_response_bytes));
    stream->expires_after(timeout);
    std::size_t received = 0;
    http::async_read(*stream, buffer, parser, [&](beast::error_code e, std::size_t n) {
      ec = e;
      received = n;
    });
    RunOps();
    if (ec) {
      *nothing_received = received == 0 && !parser.got_some();
      throw HttpError("reading from " + server.ToString() + ": " +
                      (ec == beast::error::timeout ? std::string("timed out") : ec.message()));
    }
    auto res = parser.release();
    if (!res.keep_alive()) Drop();
    return Response{static_cast<int>(res.result_int()), std::move(res.body())};
  }

  void Drop() {
    if (!stream) return;
    beast::error_code ec;
    stream->socket().shutdown(tcp::socket::shutdown_both, ec);
    stream->close();
    stream.reset();
  }
};

HttpClient::HttpClient(Endpoint server, std::chrono::milliseconds timeout, int64_t max_response_bytes)
    : impl_(std::make_unique<Impl>()) {
  impl_->server = std::move(server);
  impl_->timeout = timeout;
  impl_->max_response_bytes = max_response_bytes;
}

HttpClient::~HttpClient() { Close(); }

HttpClient::Response HttpClient::Request(const std::string& method, const std::string& target,
                                         const std::string& body,
                                         const std::map<std::string, std::string>& headers) {
  Impl& m = *impl_;
  bool reused = m.stream.has_value();
  if (!reused) m.Connect();
  try {
    bool nothing_received = false;
    try {
      return m.Exchange(method, target, body, headers, &nothing_received);
    } catch (const HttpError&) {
      m.Drop();
      // A kept-alive connection the server had closed fails without an
      // answer; one more try on a fresh connection tells that apart from a
      // server that is really gone.
      if (!reused || !nothing_received) throw;
    }
    m.Connect();
    bool ignored = false;
    return m.Exchange(method, target, body, headers, &ignored);
  } catch (const HttpError&) {
    m.Drop();
    throw;
  }
}

void HttpClient::Close() {
  if (impl_) impl_->Drop();
}

bool HttpClient::connected() const { return impl_->stream.has_value(); }

}  // namespace zonemesh
