// Real PowerDNS authoritative servers for the end-to-end tests: a
// pdns_server on a zonemesh node's database (PdnsServer), three of them on
// SQLite, PostgreSQL and MariaDB with a `zonemesh run` beside each
// (PowerDnsMesh), and DNS questions asked with dig (Dig, Axfr).
//
//   PowerDnsMesh m("pdns-e2e");          // nodes a, b, c; nothing runs yet
//   m.Start();                           // pdns_server each, then zonemesh each
//   m.server(0).Api("POST", "/zones", ...);
//   m.Settle();                          // converged, every PowerDNS told
//   m.AxfrAgrees("example");             // the three AXFRs are equal
//
// Needs pdns_server with the gsqlite3/gpgsql/gmysql backends, pdnsutil and
// dig (scripts/install-deps.sh), and the test database servers.
//
// Thread-safety: Dig, Axfr and a PdnsServer's Api, Dig and Axfr may be
// called from any thread; starting and stopping servers and the mesh is for
// the test's main thread.
#ifndef ZONEMESH_TESTS_SUPPORT_PDNS_HARNESS_H_
#define ZONEMESH_TESTS_SUPPORT_PDNS_HARNESS_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "db/open.h"
#include "tests/support/cluster.h"

namespace zonemesh::testing {

// Deadline of every "eventually" check of PowerDNS answers. Generous:
// nothing here measures time.
inline constexpr std::chrono::milliseconds kPdnsDeadline{120000};

// How long dig, pdnsutil and the like may run.
inline constexpr std::chrono::milliseconds kProgramTimeout{120000};

// ------------------------------------------------------------ programs --

// The absolute path of `name` on $PATH (plus the sbin directories), or "".
std::string FindProgram(const std::string& name);

// pdns_server, pdnsutil and dig are installed.
bool HavePowerDns();

// Whitespace-separated words.
std::vector<std::string> Split(const std::string& s);
std::string Lower(std::string s);
std::string Join(const std::vector<std::string>& v, const std::string& sep);

// One resource record line of dig's output, normalized: single spaces, the
// owner in lower case, the TTL left out when `keep_ttl` is false (the
// packet cache ages TTLs, so two servers differ there legitimately), and an
// RRSIG's signature blob left out (it is a function of the data and keys,
// which are compared anyway; ECDSA signatures differ on every signing).
std::string NormalizeRecord(const std::string& line, bool keep_ttl);

// --------------------------------------------------------------- DNS --

struct DnsAnswer {
  std::string rcode;  // NOERROR, NXDOMAIN, REFUSED, ...; "dig failed: ..." when dig did
  bool aa = false;
  std::vector<std::string> records;  // answer and authority sections, normalized, sorted
  bool operator==(const DnsAnswer& o) const {
    return rcode == o.rcode && aa == o.aa && records == o.records;
  }
  // The rdata of answer records of `type` owned by `name` (FQDN, no dot).
  std::set<std::string> Rdata(const std::string& name, const std::string& type) const;
  std::string ToString() const;
};

// `dig @127.0.0.1 -p port name type` without recursion.
DnsAnswer Dig(uint16_t port, const std::string& name, const std::string& type, bool dnssec = false);

// The zone by AXFR, normalized (TTLs kept) and sorted; {"AXFR failed ..."}
// when it did.
std::vector<std::string> Axfr(uint16_t port, const std::string& zone);

// ------------------------------------------------------- a pdns_server --

// One PowerDNS authoritative server on 127.0.0.1 with the HTTP API, using
// the database of a zonemesh node. Every cache is on and long-lived
// (packet, query and negative caches and the zone cache 3600 s) except the
// DNSSEC key and zone metadata caches; `extra_conf` is appended to
// pdns.conf, and a setting repeated there overrides the default above it.
class PdnsServer {
 public:
  PdnsServer(std::string name, std::string dir, const db::DatabaseConfig& database,
             const std::string& extra_conf);
  ~PdnsServer() { Kill(); }
  PdnsServer(const PdnsServer&) = delete;
  PdnsServer& operator=(const PdnsServer&) = delete;

  const std::string& name() const { return name_; }
  const std::string& dir() const { return dir_; }
  uint16_t dns_port() const { return dns_port_; }
  uint16_t api_port() const { return api_port_; }
  const std::string& api_key() const { return api_key_; }
  std::string api_url() const { return "http://127.0.0.1:" + std::to_string(api_port_); }
  std::string log_path() const { return dir_ + "/pdns.log"; }

  // Starts pdns_server (output appended to log_path()) and waits until its
  // API answers and it answers DNS. Throws std::runtime_error with the log
  // tail when it does not come up.
  void Start();
  // SIGTERM, then SIGKILL after 10 s; reaps it. No-op when not running.
  void Kill();
  // True while the process exists (reaps it if it exited).
  bool running();

  CommandResult Pdnsutil(const std::vector<std::string>& args) const;

  // The HTTP API; `path` below /api/v1/servers/localhost. A new connection
  // per call (the client retries a request once on a stale keep-alive
  // connection, which a POST must not be).
  Node::HttpResult Api(const std::string& method, const std::string& path,
                       const nlohmann::json& body = nullptr) const;

  DnsAnswer Dig(const std::string& name, const std::string& type, bool dnssec = false) const {
    return zonemesh::testing::Dig(dns_port_, name, type, dnssec);
  }
  std::vector<std::string> Axfr(const std::string& zone) const {
    return zonemesh::testing::Axfr(dns_port_, zone);
  }

  std::string LogTail(size_t lines = 20) const { return Tail(ReadFile(log_path()), lines); }

 private:
  std::string name_;
  std::string dir_;
  uint16_t dns_port_ = 0;
  uint16_t api_port_ = 0;
  std::string api_key_;
  pid_t pid_ = -1;
};

// ------------------------------------------- three PowerDNS + zonemesh --

// Nodes a (SQLite), b (PostgreSQL), c (MariaDB): a zonemesh daemon and a
// pdns_server each, sharing the node's database; zonemesh tells its own
// pdns_server's API about every changed zone. `extra_pdns_conf` goes into
// every pdns.conf (see PdnsServer).
class PowerDnsMesh {
 public:
  explicit PowerDnsMesh(const std::string& name, const std::string& extra_pdns_conf = "");
  // Prints the tail of every pdns_server log when the test failed; kills them.
  ~PowerDnsMesh();

  // Every pdns_server, then every zonemesh; waits until they are connected.
  void Start();

  size_t size() const { return pdns.size(); }
  PdnsServer& server(size_t i) { return *pdns.at(i); }

  // The mesh is converged and every daemon has told its PowerDNS about
  // everything (no zones pending, no failures outstanding).
  bool Settle();

  // Asks every server until all give the same answer and `expect` accepts
  // it; on timeout, a test failure naming `what` with every server's last
  // answer.
  bool Agree(const std::string& what, const std::function<DnsAnswer(PdnsServer&)>& ask,
             const std::function<std::string(const DnsAnswer&)>& expect = nullptr);

  // Polls until every server's AXFR of `zone` is the same; on timeout, a
  // test failure with the differences.
  bool AxfrAgrees(const std::string& zone);

  Cluster mesh;
  std::vector<std::unique_ptr<PdnsServer>> pdns;
};

// ------------------------------------------------------------- helpers --

// The seed: $ZONEMESH_TEST_SEED, else random; printed either way.
uint32_t TestSeed(const std::string& what);

// Runs a test's body: an exception becomes a test failure while the mesh
// still exists, so that its logs are shown and its directories kept.
template <typename Fn>
void Guarded(Fn fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "exception: " << e.what();
  }
}

// A database error a client may simply retry (SQLite busy, a deadlock, a
// serialization failure), judged by its text.
bool Transient(const std::string& text);

}  // namespace zonemesh::testing

#endif  // ZONEMESH_TESTS_SUPPORT_PDNS_HARNESS_H_
