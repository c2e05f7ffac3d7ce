// A TCP proxy for cutting links in tests (see proxy.h).
// Relative: the proxy library links Boost and threads only, no project
// include path.
#include "proxy.h"

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <future>
#include <set>
#include <stdexcept>
#include <thread>

namespace zonemesh::testing {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

const char* BlockModeName(TcpProxy::BlockMode mode) {
  switch (mode) {
    case TcpProxy::BlockMode::kNone:
      return "open";
    case TcpProxy::BlockMode::kReset:
      return "reset";
    case TcpProxy::BlockMode::kBlackhole:
      return "blackhole";
  }
  return "?";
}

namespace {

class Session;

}  // namespace

struct TcpProxy::Impl {
  // Everything below `io` except the atomics is touched on the io thread only.
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  tcp::endpoint target;
  uint16_t port = 0;
  bool shutting_down = false;
  std::set<std::shared_ptr<Session>> sessions;

  std::atomic<BlockMode> mode{BlockMode::kNone};
  std::atomic<uint64_t> accepted{0}, refused{0}, swallowed{0}, upstream_failures{0},
      closed_by_block{0}, bytes_to_target{0}, bytes_to_client{0}, bytes_dropped{0};
  std::atomic<int64_t> open{0};

  std::thread thread;

  void DoAccept();
  void CloseSessions(bool only_blackholed);
  // Runs `fn` on the io thread and waits for it.
  void RunOnIo(const std::function<void()>& fn);
};

namespace {

// One accepted connection and, unless it was born in a blackhole, its
// connection to the target. Pumps bytes both ways; a clean EOF on one side
// is passed on as a half-close, anything else closes both.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(TcpProxy::Impl& owner, tcp::socket client, bool sink)
      : owner_(owner), client_(std::move(client)), upstream_(owner.io), sink_(sink) {}

  void Start() {
    if (sink_) {
      Pump(true);
      return;
    }
    auto self = shared_from_this();
    upstream_.async_connect(owner_.target, [self](const error_code& ec) {
      if (self->closed_) return;
      if (ec) {
        ++self->owner_.upstream_failures;
        self->Close();
        return;
      }
      error_code ignored;
      self->client_.set_option(tcp::no_delay(true), ignored);
      self->upstream_.set_option(tcp::no_delay(true), ignored);
      self->Pump(true);
      self->Pump(false);
    });
  }

  // Closes both sockets; pending operations end with operation_aborted.
  void Close() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    client_.close(ignored);
    upstream_.close(ignored);
    --owner_.open;
    owner_.sessions.erase(shared_from_this());
  }

  // True when this connection lost bytes to a blackhole: its stream is torn.
  bool blackholed() const { return sink_ || tainted_; }

 private:
  void Pump(bool to_target) {
    tcp::socket& from = to_target ? client_ : upstream_;
    std::array<char, 16384>& buf = to_target ? buf_to_target_ : buf_to_client_;
    auto self = shared_from_this();
    from.async_read_some(asio::buffer(buf), [self, to_target](const error_code& ec, size_t n) {
      if (self->closed_) return;
      if (ec) {
        if (ec == asio::error::eof && !self->sink_) {
          self->HalfClose(to_target);
        } else {
          self->Close();
        }
        return;
      }
      if (self->sink_ || self->owner_.mode.load() == TcpProxy::BlockMode::kBlackhole) {
        self->tainted_ = true;
        self->owner_.bytes_dropped += n;
        self->Pump(to_target);
        return;
      }
      tcp::socket& to = to_target ? self->upstream_ : self->client_;
      std::array<char, 16384>& b = to_target ? self->buf_to_target_ : self->buf_to_client_;
      asio::async_write(to, asio::buffer(b.data(), n),
                        [self, to_target](const error_code& wec, size_t written) {
                          if (self->closed_) return;
                          if (wec) {
                            self->Close();
                            return;
                          }
                          (to_target ? self->owner_.bytes_to_target : self->owner_.bytes_to_client) +=
                              written;
                          self->Pump(to_target);
                        });
    });
  }

  void HalfClose(bool to_target) {
    error_code ignored;
    (to_target ? upstream_ : client_).shutdown(tcp::socket::shutdown_send, ignored);
    if (++eofs_ == 2) Close();
  }

  TcpProxy::Impl& owner_;
  tcp::socket client_;
  tcp::socket upstream_;
  const bool sink_;
  bool tainted_ = false;
  bool closed_ = false;
  int eofs_ = 0;
  std::array<char, 16384> buf_to_target_;
  std::array<char, 16384> buf_to_client_;
};

}  // namespace

void TcpProxy::Impl::DoAccept() {
  acceptor.async_accept([this](const error_code& ec, tcp::socket socket) {
    if (shutting_down || !acceptor.is_open()) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // Out of descriptors, say: try again shortly rather than spin.
      accept_retry.expires_after(std::chrono::milliseconds(50));
      accept_retry.async_wait([this](const error_code& tec) {
        if (!tec && !shutting_down) DoAccept();
      });
      return;
    }
    ++accepted;
    const BlockMode m = mode.load();
    if (m == BlockMode::kReset) {
      ++refused;
      error_code ignored;
      socket.set_option(asio::socket_base::linger(true, 0), ignored);  // RST, no TIME_WAIT
      socket.close(ignored);
    } else {
      const bool sink = m == BlockMode::kBlackhole;
      if (sink) ++swallowed;
      auto s = std::make_shared<Session>(*this, std::move(socket), sink);
      sessions.insert(s);
      ++open;
      s->Start();
    }
    DoAccept();
  });
}

void TcpProxy::Impl::CloseSessions(bool only_blackholed) {
  std::vector<std::shared_ptr<Session>> victims;
  for (const auto& s : sessions) {
    if (!only_blackholed || s->blackholed()) victims.push_back(s);
  }
  for (const auto& s : victims) {
    s->Close();
    ++closed_by_block;
  }
}

void TcpProxy::Impl::RunOnIo(const std::function<void()>& fn) {
  if (io.get_executor().running_in_this_thread()) {
    fn();
    return;
  }
  std::promise<void> done;
  std::future<void> f = done.get_future();
  asio::post(io, [&] {
    try {
      fn();
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  f.get();
}

TcpProxy::TcpProxy(uint16_t target_port, const std::string& target_host, uint16_t listen_port)
    : impl_(std::make_shared<Impl>()) {
  error_code ec;
  impl_->target = tcp::endpoint(asio::ip::make_address_v4(target_host, ec), target_port);
  if (ec) throw std::runtime_error("proxy: bad target address " + target_host);
  const tcp::endpoint listen(asio::ip::address_v4::loopback(), listen_port);
  impl_->acceptor.open(listen.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(listen, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("proxy: cannot listen on 127.0.0.1:" + std::to_string(listen_port) +
                             ": " + ec.message());
  }
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->DoAccept();
  Impl* impl = impl_.get();
  impl_->thread = std::thread([impl] {
    for (;;) {
      try {
        impl->io.run();
        return;
      } catch (...) {
        // A handler threw (it should not): keep serving.
      }
    }
  });
}

TcpProxy::~TcpProxy() {
  Impl& impl = *impl_;
  try {
    impl.RunOnIo([&] {
      impl.shutting_down = true;
      error_code ignored;
      impl.acceptor.close(ignored);
      impl.accept_retry.cancel();
      impl.CloseSessions(false);
    });
  } catch (...) {
  }
  // Every socket is closed: the aborted handlers run and io.run() returns.
  // A safety net in case something still holds work.
  impl.work.reset();
  std::thread stopper([&impl] {
    for (int i = 0; i < 500 && !impl.io.stopped(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    impl.io.stop();
  });
  if (impl.thread.joinable()) impl.thread.join();
  stopper.join();
}

uint16_t TcpProxy::port() const { return impl_->port; }

std::string TcpProxy::url() const { return "http://127.0.0.1:" + std::to_string(impl_->port); }

uint16_t TcpProxy::target_port() const { return impl_->target.port(); }

void TcpProxy::Block(BlockMode mode) {
  if (mode == BlockMode::kNone) {
    Unblock();
    return;
  }
  impl_->RunOnIo([&] {
    impl_->mode = mode;
    // A reset cuts every open connection; a blackhole keeps them open and
    // starves them (the pumps drop what they read from now on).
    if (mode == BlockMode::kReset) impl_->CloseSessions(false);
  });
}

void TcpProxy::Unblock() {
  impl_->RunOnIo([&] {
    const BlockMode previous = impl_->mode.exchange(BlockMode::kNone);
    if (previous == BlockMode::kBlackhole) impl_->CloseSessions(true);
  });
}

TcpProxy::BlockMode TcpProxy::mode() const { return impl_->mode.load(); }

TcpProxy::Stats TcpProxy::stats() const {
  Stats s;
  s.accepted = impl_->accepted;
  s.refused = impl_->refused;
  s.swallowed = impl_->swallowed;
  s.upstream_failures = impl_->upstream_failures;
  s.closed_by_block = impl_->closed_by_block;
  s.bytes_to_target = impl_->bytes_to_target;
  s.bytes_to_client = impl_->bytes_to_client;
  s.bytes_dropped = impl_->bytes_dropped;
  s.open = impl_->open;
  return s;
}

}  // namespace zonemesh::testing
