// A TCP proxy for tests that cut network links: it listens on a loopback
// port and forwards every connection to a target, until told to block.
//
//   TcpProxy link(node_b.port());        // 127.0.0.1:<link.port()> -> b
//   ... point node a's peer URL for b at link.url() ...
//   link.Block();                        // a can no longer reach b
//   link.Unblock();                      // it can again
//
// Block(kReset) closes every open connection and closes each new one as soon
// as it is accepted: the client sees a connection reset or EOF at once.
// Block(kBlackhole) keeps connections open but forwards nothing in either
// direction (bytes are read and dropped), as a silently dropping network
// does: the client only notices through its own timeout. Unblock() closes
// the connections a blackhole swallowed bytes of (their streams are torn)
// and forwards new connections again.
//
// One proxy carries one direction of a peer link: in zonemesh the sender of
// changes opens the connection, so the link a->b is "a's pushes to b".
//
// Each proxy runs one Boost.Asio thread. Block(), Unblock(), stats() and the
// destructor may be called from any thread; Block() and Unblock() return
// once the change is in effect (existing connections closed). The destructor
// closes everything and joins the thread; nothing outlives it.
#ifndef ZONEMESH_TESTS_SUPPORT_PROXY_H_
#define ZONEMESH_TESTS_SUPPORT_PROXY_H_

#include <cstdint>
#include <memory>
#include <string>

namespace zonemesh::testing {

class TcpProxy {
 public:
  enum class BlockMode {
    kNone,       // forwarding
    kReset,      // connections closed, new ones closed on accept
    kBlackhole,  // connections kept, nothing forwarded
  };

  struct Stats {
    uint64_t accepted = 0;          // connections accepted (forwarded or not)
    uint64_t refused = 0;           // closed on accept while blocked (kReset)
    uint64_t swallowed = 0;         // accepted into a blackhole
    uint64_t upstream_failures = 0; // the target refused or was unreachable
    uint64_t closed_by_block = 0;   // open connections cut by Block/Unblock
    uint64_t bytes_to_target = 0;   // forwarded client -> target
    uint64_t bytes_to_client = 0;   // forwarded target -> client
    uint64_t bytes_dropped = 0;     // read and discarded by a blackhole
    int64_t open = 0;               // connections open now
  };

  // Listens on 127.0.0.1:listen_port (0: a port the system picks) and
  // forwards to target_host:target_port (an IPv4 literal). Throws
  // std::runtime_error when it cannot listen.
  explicit TcpProxy(uint16_t target_port, const std::string& target_host = "127.0.0.1",
                    uint16_t listen_port = 0);
  // Closes every connection and the listener; joins the proxy's thread.
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  uint16_t port() const;
  std::string url() const;  // "http://127.0.0.1:<port>"
  uint16_t target_port() const;

  void Block(BlockMode mode = BlockMode::kReset);
  void Unblock();
  BlockMode mode() const;
  bool blocked() const { return mode() != BlockMode::kNone; }

  Stats stats() const;

 // Implementation detail (proxy.cc), public only so that its helpers can
  // name it.
  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

const char* BlockModeName(TcpProxy::BlockMode mode);

}  // namespace zonemesh::testing

#endif  // ZONEMESH_TESTS_SUPPORT_PROXY_H_
