// Real PowerDNS end to end: three authoritative pdns_server processes, one
// per database (gsqlite3 on SQLite, gpgsql on PostgreSQL, gmysql on
// MariaDB), a `zonemesh run` beside each, every cache of PowerDNS on.
// Changes are made the ways operators make them — pdnsutil and the HTTP API
// — on random nodes, and the servers are then asked over DNS: answers, AXFRs
// and (for rectified zones) the ordername/auth columns must agree everywhere.
//
// The caches are not only on, they are long-lived (packet, query and
// negative caches and the zone cache all 3600 s, records with TTL 3600;
// only the DNSSEC key and zone metadata caches are off, see PdnsServer):
// data written into a database behind a running pdns_server stays invisible
// for an hour unless something tells PowerDNS, so every check below, which
// polls with a generous deadline, can only pass because zonemesh flushes the
// local PowerDNS's caches (after applied batches and after local commits).
//
// Rectify: zonemesh does not re-run rectify. records.ordername and
// records.auth are replicated values, and empty-non-terminal rows (type
// NULL) are rows like any other, so the result of a rectify (pdnsutil
// rectify-zone, or the HTTP API's API-RECTIFY after an edit) made on one
// node is the result on every node. The test
// RectifiedZonesHaveTheSameOrdernameAuthAndEmptyNonTerminalsEverywhere
// checks that through SQL and through DNSSEC denial answers, which PowerDNS
// builds from ordername.
//
// Needs pdns_server with the gsqlite3/gpgsql/gmysql backends, pdnsutil and
// dig (scripts/install-deps.sh), and the test database servers.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "db/open.h"
#include "replicator/http.h"
#include "tests/support/cluster.h"
#include "tests/support/test_db.h"

namespace zonemesh::testing {
namespace {

namespace fs = std::filesystem;
using db::Dialect;
using nlohmann::json;

// Deadline of every "eventually" check. Generous: nothing here measures time.
constexpr auto kDeadline = std::chrono::milliseconds(120000);
constexpr int kTtl = 3600;

// ------------------------------------------------------------ programs --

// The absolute path of `name` on $PATH (plus the sbin directories), or "".
std::string FindProgram(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    fs::path p = fs::path(dir) / name;
    if (access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

// How long dig, pdnsutil and the like may run.
constexpr std::chrono::milliseconds kProgramTimeout{120000};

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string t;
  while (in >> t) out.push_back(t);
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

// One resource record line of dig's output, normalized: single spaces, the
// owner in lower case, the TTL left out when `keep_ttl` is false (the
// packet cache ages TTLs, so two servers differ there legitimately), and an
// RRSIG's signature blob left out (it is a function of the data and keys,
// which are compared anyway; ECDSA signatures differ on every signing).
std::string NormalizeRecord(const std::string& line, bool keep_ttl) {
  std::vector<std::string> t = Split(line);
  if (t.size() < 4) return "";
  t[0] = Lower(t[0]);
  if (t[3] == "RRSIG" && t.size() > 12) t.resize(12);
  if (!keep_ttl) t.erase(t.begin() + 1);
  return Join(t, " ");
}

// --------------------------------------------------------------- DNS --

struct DnsAnswer {
  std::string rcode;  // NOERROR, NXDOMAIN, REFUSED, ...; "dig failed: ..." when dig did
  bool aa = false;
  std::vector<std::string> records;  // answer and authority sections, normalized, sorted
  bool operator==(const DnsAnswer& o) const { return rcode == o.rcode && aa == o.aa && records == o.records; }
  // The rdata of answer records of `type` owned by `name` (FQDN, no dot).
  std::set<std::string> Rdata(const std::string& name, const std::string& type) const {
    std::set<std::string> out;
    for (const std::string& r : records) {
      std::vector<std::string> t = Split(r);  // owner class type rdata...
      if (t.size() >= 4 && t[0] == name + "." && t[2] == type) {
        out.insert(Join(std::vector<std::string>(t.begin() + 3, t.end()), " "));
      }
    }
    return out;
  }
  std::string ToString() const {
    std::string s = rcode + (aa ? " aa" : "") + " {";
    for (const std::string& r : records) s += "\n      " + r;
    return s + (records.empty() ? "}" : "\n    }");
  }
};

DnsAnswer Dig(uint16_t port, const std::string& name, const std::string& type, bool dnssec = false) {
  static const std::string dig = FindProgram("dig");
  std::vector<std::string> args = {dig, "@127.0.0.1", "-p", std::to_string(port), "+norec",
                                   "+noall", "+comments", "+answer", "+authority", "+time=5",
                                   "+tries=3", "+nocookie"};
  if (dnssec) args.push_back("+dnssec");
  args.push_back(name);
  args.push_back(type);
  CommandResult r = RunProgram(args, kProgramTimeout);
  DnsAnswer a;
  if (r.exit_code != 0) {
    a.rcode = "dig failed: " + r.Brief();
    return a;
  }
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(";; ->>HEADER<<-", 0) == 0) {
      size_t p = line.find("status: ");
      if (p != std::string::npos) a.rcode = line.substr(p + 8, line.find(',', p) - p - 8);
    } else if (line.rfind(";; flags:", 0) == 0) {
      std::string flags = line.substr(9, line.find(';', 9) - 9);
      a.aa = (" " + flags + " ").find(" aa ") != std::string::npos;
    } else if (!line.empty() && line[0] != ';') {
      std::string n = NormalizeRecord(line, false);
      if (!n.empty()) a.records.push_back(n);
    }
  }
  if (a.rcode.empty()) a.rcode = "no answer: " + Tail(r.out, 5);
  std::sort(a.records.begin(), a.records.end());
  return a;
}

// The zone by AXFR, normalized and sorted; {"AXFR failed ..."} when it did.
std::vector<std::string> Axfr(uint16_t port, const std::string& zone) {
  static const std::string dig = FindProgram("dig");
  CommandResult r = RunProgram({dig, "@127.0.0.1", "-p", std::to_string(port), "+noall", "+answer",
                                "+time=10", "+tries=1", zone, "AXFR"},
                               kProgramTimeout);
  std::vector<std::string> out;
  if (r.exit_code != 0 || r.out.find("Transfer failed") != std::string::npos ||
      r.out.find("failed") != std::string::npos) {
    return {"AXFR failed: " + r.Brief()};
  }
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == ';') continue;
    std::string n = NormalizeRecord(line, true);
    if (!n.empty()) out.push_back(n);
  }
  if (out.empty()) return {"AXFR returned nothing"};
  std::sort(out.begin(), out.end());
  return out;
}

// ------------------------------------------------------- a pdns_server --

// One PowerDNS authoritative server on 127.0.0.1 with the HTTP API, using
// the database of a zonemesh node.
class PdnsServer {
 public:
  PdnsServer(std::string name, std::string dir, const db::DatabaseConfig& database,
             const std::string& extra_conf)
      : name_(std::move(name)), dir_(std::move(dir)) {
    dns_port_ = FreeLoopbackPort();
    api_port_ = FreeLoopbackPort();
    api_key_ = "pdns-api-key-" + name_ + "-" + std::to_string(getpid());
    fs::create_directories(dir_);
    std::ostringstream c;
    switch (database.dialect) {
      case Dialect::kSqlite:
        c << "launch=gsqlite3\ngsqlite3-database=" << database.path << "\ngsqlite3-dnssec=yes\n";
        break;
      case Dialect::kPostgres: {
        // host=... port=... user=... dbname=... from the test's conninfo.
        std::map<std::string, std::string> kv;
        for (const std::string& t : Split(database.conninfo)) {
          size_t eq = t.find('=');
          if (eq != std::string::npos) kv[t.substr(0, eq)] = t.substr(eq + 1);
        }
        c << "launch=gpgsql\ngpgsql-host=" << kv["host"] << "\ngpgsql-port=" << kv["port"]
          << "\ngpgsql-dbname=" << kv["dbname"] << "\ngpgsql-user=" << kv["user"]
          << "\ngpgsql-password=" << kv["password"] << "\ngpgsql-dnssec=yes\n";
        break;
      }
      case Dialect::kMysql:
        c << "launch=gmysql\ngmysql-host=" << database.host << "\ngmysql-port=" << database.port
          << "\ngmysql-dbname=" << database.database << "\ngmysql-user=" << database.user
          << "\ngmysql-password=" << database.password << "\ngmysql-dnssec=yes\n";
        break;
    }
    c << "local-address=127.0.0.1:" << dns_port_ << "\n"
      << "socket-dir=" << dir_ << "\n"
      << "daemon=no\nguardian=no\ndisable-syslog=yes\nloglevel=4\n"
      << "security-poll-suffix=\n"
      << "api=yes\napi-key=" << api_key_ << "\n"
      << "webserver=yes\nwebserver-address=127.0.0.1\nwebserver-port=" << api_port_ << "\n"
      << "webserver-allow-from=127.0.0.0/8\n"
      << "allow-axfr-ips=127.0.0.0/8\n"
      << "default-ksk-algorithm=ed25519\n"
      // Every cache on, and long-lived (see the top of the file).
      << "cache-ttl=3600\nquery-cache-ttl=3600\nnegquery-cache-ttl=3600\n"
      << "zone-cache-refresh-interval=3600\n"
      // Except the DNSSEC key cache and the zone metadata cache: the API's
      // cache flush, which zonemesh calls, does not clear them, so a
      // replicated key or metadata change would only show when they
      // expire (30 s and 60 s by default). docs/operations.md says so.
      << "dnssec-key-cache-ttl=0\nzone-metadata-cache-ttl=0\n"
      << extra_conf;
    std::ofstream out(dir_ + "/pdns.conf", std::ios::trunc);
    out << c.str();
    if (!out) throw std::runtime_error("cannot write " + dir_ + "/pdns.conf");
  }
  ~PdnsServer() { Kill(); }
  PdnsServer(const PdnsServer&) = delete;
  PdnsServer& operator=(const PdnsServer&) = delete;

  const std::string& name() const { return name_; }
  uint16_t dns_port() const { return dns_port_; }
  uint16_t api_port() const { return api_port_; }
  const std::string& api_key() const { return api_key_; }
  std::string api_url() const { return "http://127.0.0.1:" + std::to_string(api_port_); }
  std::string log_path() const { return dir_ + "/pdns.log"; }

  void Start() {
    static const std::string binary = FindProgram("pdns_server");
    int fd = open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot open " + log_path());
    pid_ = SpawnProgram({binary, "--config-dir=" + dir_}, fd, fd);
    close(fd);
    std::string why;
    bool up = PollUntil(
        [&] {
          if (!running()) return true;  // reported below
          return Api("GET", "").status == 200 && Dig("example", "SOA").rcode == "REFUSED";
        },
        kDeadline, std::chrono::milliseconds(100), &why);
    if (!up || !running()) {
      throw std::runtime_error("pdns_server " + name_ + " did not come up (" + why + "); log:\n" +
                               Tail(ReadFile(log_path()), 30));
    }
  }

  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == 0) return true;
    pid_ = -1;
    return false;
  }

  CommandResult Pdnsutil(const std::vector<std::string>& args) const {
    static const std::string binary = FindProgram("pdnsutil");
    std::vector<std::string> argv = {binary, "--config-dir=" + dir_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProgram(argv, kProgramTimeout);
  }

  // The HTTP API; `path` below /api/v1/servers/localhost. A new connection
  // per call (the client retries a request once on a stale keep-alive
  // connection, which a POST must not be).
  Node::HttpResult Api(const std::string& method, const std::string& path,
                       const json& body = nullptr) const {
    HttpClient client(Endpoint{"127.0.0.1", api_port_}, std::chrono::milliseconds(30000));
    HttpClient::Response r = client.Request(method, "/api/v1/servers/localhost" + path,
                                            body.is_null() ? "" : body.dump(),
                                            {{"X-API-Key", api_key_}});
    return {r.status, r.body};
  }

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

bool HavePowerDns() {
  return !FindProgram("pdns_server").empty() && !FindProgram("pdnsutil").empty() &&
         !FindProgram("dig").empty();
}

// Nodes a (SQLite), b (PostgreSQL), c (MariaDB): a zonemesh daemon and a
// pdns_server each, sharing the node's database; zonemesh tells its own
// pdns_server's API about every changed zone.
class PowerDnsMesh {
 public:
  PowerDnsMesh(const std::string& name, const std::string& extra_pdns_conf = "")
      : mesh(3, name, json::object(), {Dialect::kSqlite, Dialect::kPostgres, Dialect::kMysql}) {
    for (size_t i = 0; i < mesh.size(); ++i) {
      pdns.push_back(std::make_unique<PdnsServer>(mesh[i].id(), mesh[i].dir() + "/pdns",
                                                  mesh[i].database(), extra_pdns_conf));
    }
    for (size_t i = 0; i < mesh.size(); ++i) {
      std::vector<PeerRef> peers;
      for (size_t j = 0; j < mesh.size(); ++j) {
        if (j != i) peers.push_back({mesh[j].id(), mesh[j].url()});
      }
      mesh[i].WriteConfig(peers, json{{"powerdns", {{"api_url", pdns[i]->api_url()},
                                                    {"api_key", pdns[i]->api_key()}}},
                                      {"auth", {{"secret", "a-long-shared-mesh-secret-for-tests"}}}});
    }
  }

  ~PowerDnsMesh() {
    if (::testing::Test::HasFailure()) {
      for (auto& p : pdns) {
        std::cerr << "[powerdns] ---- last lines of pdns_server " << p->name() << "'s log ("
                  << p->log_path() << ") ----\n"
                  << p->LogTail(25);
      }
    }
    for (auto& p : pdns) p->Kill();
  }

  void Start() {
    for (auto& p : pdns) p->Start();
    mesh.StartAll();
    ASSERT_TRUE(mesh.WaitForConnected());
  }

  size_t size() const { return pdns.size(); }
  PdnsServer& server(size_t i) { return *pdns.at(i); }

  // The mesh is converged and every daemon has told its PowerDNS about
  // everything (no zones pending, no failures outstanding).
  bool Settle() {
    if (!mesh.WaitForConvergence()) return false;
    return mesh.WaitUntil("every zonemesh told its PowerDNS about every zone", [&] {
      for (Node* n : mesh.nodes()) {
        json s = n->Status();
        const json& p = s["powerdns"];
        if (!p.is_object() || p.value("pending", int64_t{-1}) != 0 || !p["last_error"].is_null())
          return false;
      }
      return true;
    });
  }

  // Asks every server until all give the same answer and `expect` accepts
  // it; on timeout, a test failure naming `what` with every server's last
  // answer.
  bool Agree(const std::string& what, const std::function<DnsAnswer(PdnsServer&)>& ask,
             const std::function<std::string(const DnsAnswer&)>& expect = nullptr) {
    std::vector<DnsAnswer> answers(size());
    std::string problem;
    bool ok = PollUntil(
        [&] {
          for (size_t i = 0; i < size(); ++i) answers[i] = ask(server(i));
          for (size_t i = 1; i < size(); ++i) {
            if (!(answers[i] == answers[0])) {
              problem = "servers disagree";
              return false;
            }
          }
          problem = expect ? expect(answers[0]) : "";
          return problem.empty();
        },
        kDeadline, std::chrono::milliseconds(250));
    if (!ok) {
      std::ostringstream msg;
      msg << what << ": " << problem << "\n";
      for (size_t i = 0; i < size(); ++i) msg << "  " << server(i).name() << ": " << answers[i].ToString() << "\n";
      ADD_FAILURE() << msg.str();
    }
    return ok;
  }

  bool AxfrAgrees(const std::string& zone) {
    std::vector<std::vector<std::string>> x(size());
    bool ok = PollUntil(
        [&] {
          for (size_t i = 0; i < size(); ++i) x[i] = server(i).Axfr(zone);
          if (x[0].empty() || x[0][0].rfind("AXFR ", 0) == 0) return false;
          for (size_t i = 1; i < size(); ++i) {
            if (x[i] != x[0]) return false;
          }
          return true;
        },
        kDeadline, std::chrono::milliseconds(250));
    if (!ok) {
      std::ostringstream msg;
      msg << "AXFR of " << zone << " differs between servers:\n";
      for (size_t i = 1; i < size(); ++i) {
        msg << server(0).name() << " vs " << server(i).name() << ": " << DumpDiff(x[0], x[i]);
      }
      if (!x[0].empty()) msg << server(0).name() << " first line: " << x[0][0] << "\n";
      ADD_FAILURE() << msg.str();
    }
    return ok;
  }

  Cluster mesh;
  std::vector<std::unique_ptr<PdnsServer>> pdns;
};

// The seed: $ZONEMESH_TEST_SEED, else random; printed either way.
uint32_t TestSeed(const std::string& what) {
  const char* s = std::getenv("ZONEMESH_TEST_SEED");
  uint32_t seed = s && *s ? static_cast<uint32_t>(std::strtoul(s, nullptr, 10))
                          : static_cast<uint32_t>(std::random_device{}());
  std::cout << "[powerdns] " << what << " seed " << seed << " (ZONEMESH_TEST_SEED=" << seed
            << " repeats it)" << std::endl;
  return seed;
}

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

bool Transient(const std::string& text) {
  for (const char* word : {"locked", "busy", "Deadlock", "deadlock", "could not serialize", "try restarting"}) {
    if (text.find(word) != std::string::npos) return true;
  }
  return false;
}

// ------------------------------------------------ the zones' expected state --

struct ZoneModel {
  bool exists = false;
  // (owner FQDN without dot, TYPE) -> rdata as dig prints it.
  std::map<std::pair<std::string, std::string>, std::set<std::string>> rrsets;
  // RRsets that were deleted: every server must answer without them.
  std::set<std::pair<std::string, std::string>> gone;
  // Metadata kind -> values, as set last.
  std::map<std::string, std::set<std::string>> meta;
};

// Makes changes through pdnsutil or the HTTP API on a chosen node and
// records what every server must then answer.
class Driver {
 public:
  Driver(PowerDnsMesh& m, uint32_t seed) : m_(m), rng_(seed) {}

  uint32_t Pick(uint32_t n) { return rng_() % n; }
  std::mt19937& rng() { return rng_; }
  std::map<std::string, ZoneModel>& zones() { return zones_; }

  // pdnsutil on node `n`, retried while the database reports a transient
  // failure (SQLite busy, a deadlock with the applier), as an operator would.
  void Pdnsutil(size_t n, const std::vector<std::string>& args) {
    CommandResult r;
    for (int attempt = 0; attempt < 30; ++attempt) {
      r = m_.server(n).Pdnsutil(args);
      if (r.exit_code == 0) {
        Log(n, "pdnsutil " + Join(args, " "));
        return;
      }
      if (!Transient(r.out + r.err)) break;
      Retried(n, "pdnsutil " + Join(args, " "), Tail(r.err + r.out, 1));
      std::this_thread::sleep_for(std::chrono::milliseconds(50 * (attempt + 1)));
    }
    throw std::runtime_error("on " + m_.server(n).name() + ": pdnsutil " + Join(args, " ") + ": " +
                             r.Brief());
  }

  // The HTTP API of node `n`; retried on a transient database error.
  json Api(size_t n, const std::string& method, const std::string& path, const json& body = nullptr) {
    Node::HttpResult r;
    for (int attempt = 0; attempt < 30; ++attempt) {
      r = m_.server(n).Api(method, path, body);
      if (r.status >= 200 && r.status < 300) {
        Log(n, "API " + method + " " + path + (body.is_null() ? "" : " " + body.dump()));
        return r.body.empty() ? json(nullptr) : json::parse(r.body, nullptr, false);
      }
      // PowerDNS answers a failed transaction ("database is locked" on
      // SQLite, a deadlock elsewhere) with a bare 500 and logs the reason;
      // the transaction was rolled back, so the call can be made again.
      if (!Transient(r.body) && r.status != 500) break;
      Retried(n, "API " + method + " " + path, "HTTP " + std::to_string(r.status) + " " + r.body);
      std::this_thread::sleep_for(std::chrono::milliseconds(50 * (attempt + 1)));
    }
    throw std::runtime_error("on " + m_.server(n).name() + ": API " + method + " " + path + " " +
                             (body.is_null() ? "" : body.dump()) + ": HTTP " + std::to_string(r.status) +
                             " " + r.body);
  }

  // An operation PowerDNS refused for a transient reason, made again.
  void Retried(size_t n, const std::string& what, const std::string& why) {
    ++retries_[m_.server(n).name()];
    std::cout << "[powerdns]   " << m_.server(n).name() << ": RETRY " << what << ": " << why << std::endl;
  }
  ~Driver() {
    for (const auto& [name, count] : retries_) {
      std::cout << "[powerdns] " << count << " PowerDNS operation(s) on " << name
                << " failed transiently and were made again" << std::endl;
    }
  }

  void Log(size_t n, const std::string& what) {
    std::cout << "[powerdns]   " << m_.server(n).name() << ": " << what << std::endl;
  }

  static std::string Fqdn(const std::string& label, const std::string& zone) {
    return label == "@" ? zone : label + "." + zone;
  }
  static json Records(const std::set<std::string>& contents) {
    json r = json::array();
    for (const std::string& c : contents) r.push_back({{"content", c}, {"disabled", false}});
    return r;
  }
  json RRset(const std::string& name, const std::string& type, const std::set<std::string>& contents,
             const std::string& changetype = "REPLACE") {
    json j{{"name", name + "."}, {"type", type}, {"changetype", changetype}};
    if (changetype == "REPLACE") {
      j["ttl"] = kTtl;
      j["records"] = Records(contents);
    }
    return j;
  }

  void CreateZone(size_t n, bool api, const std::string& zone) {
    ZoneModel& z = zones_[zone];
    z = ZoneModel{};
    const std::string www = "www." + zone;
    std::set<std::string> a = {"192.0.2." + std::to_string(1 + Pick(250))};
    if (api) {
      Api(n, "POST", "/zones",
          json{{"name", zone + "."},
               {"kind", "Native"},
               {"nameservers", json::array({"ns1." + zone + "."})},
               {"rrsets", json::array({RRset(www, "A", a)})}});
    } else {
      Pdnsutil(n, {"create-zone", zone, "ns1." + zone});
      Pdnsutil(n, {"add-record", zone, "www", "A", std::to_string(kTtl), *a.begin()});
    }
    z.exists = true;
    z.rrsets[{zone, "NS"}] = {"ns1." + zone + "."};
    z.rrsets[{www, "A"}] = a;
  }

  void ReplaceA(size_t n, bool api, const std::string& zone, const std::string& label) {
    const std::string name = Fqdn(label, zone);
    std::set<std::string> a;
    for (uint32_t i = 0, k = 1 + Pick(3); i < k; ++i) a.insert("198.51.100." + std::to_string(Pick(256)));
    if (api) {
      Api(n, "PATCH", "/zones/" + zone + ".", json{{"rrsets", json::array({RRset(name, "A", a)})}});
    } else {
      std::vector<std::string> args = {"replace-rrset", zone, label, "A", std::to_string(kTtl)};
      args.insert(args.end(), a.begin(), a.end());
      Pdnsutil(n, args);
    }
    zones_[zone].rrsets[{name, "A"}] = a;
    zones_[zone].gone.erase({name, "A"});
  }

  void AddTxt(size_t n, bool api, const std::string& zone, const std::string& label, const std::string& text) {
    const std::string name = Fqdn(label, zone);
    const std::string content = "\"" + text + "\"";
    std::set<std::string> all = zones_[zone].rrsets[{name, "TXT"}];
    all.insert(content);
    if (api) {
      // The API has no "add": REPLACE with the whole RRset.
      Api(n, "PATCH", "/zones/" + zone + ".", json{{"rrsets", json::array({RRset(name, "TXT", all)})}});
    } else {
      Pdnsutil(n, {"add-record", zone, label, "TXT", std::to_string(kTtl), content});
    }
    zones_[zone].rrsets[{name, "TXT"}] = all;
    zones_[zone].gone.erase({name, "TXT"});
  }

  void DeleteRRset(size_t n, bool api, const std::string& zone, const std::string& name, const std::string& type) {
    if (api) {
      Api(n, "PATCH", "/zones/" + zone + ".", json{{"rrsets", json::array({RRset(name, type, {}, "DELETE")})}});
    } else {
      std::string label = name == zone ? "@" : name.substr(0, name.size() - zone.size() - 1);
      Pdnsutil(n, {"delete-rrset", zone, label, type});
    }
    zones_[zone].rrsets.erase({name, type});
    zones_[zone].gone.insert({name, type});
  }

  void SetMeta(size_t n, bool api, const std::string& zone) {
    if (api) {
      std::set<std::string> v = {"value-" + std::to_string(Pick(1000)), "second-" + std::to_string(Pick(1000))};
      Api(n, "PUT", "/zones/" + zone + "./metadata/X-ZONEMESH-TEST",
          json{{"metadata", std::vector<std::string>(v.begin(), v.end())}});
      zones_[zone].meta["X-ZONEMESH-TEST"] = v;
    } else {
      std::set<std::string> v = {"192.0.2." + std::to_string(Pick(250))};
      Pdnsutil(n, {"set-meta", zone, "ALSO-NOTIFY", *v.begin()});
      zones_[zone].meta["ALSO-NOTIFY"] = v;
    }
  }

  void DeleteZone(size_t n, bool api, const std::string& zone) {
    if (api) {
      Api(n, "DELETE", "/zones/" + zone + ".");
    } else {
      Pdnsutil(n, {"delete-zone", zone});
    }
    zones_[zone] = ZoneModel{};
  }

  // One random change to `zone`, valid for its current state.
  void RandomChange(const std::string& zone, int round) {
    const size_t n = Pick(static_cast<uint32_t>(m_.size()));
    const bool api = Pick(2) == 0;
    ZoneModel& z = zones_[zone];
    if (!z.exists) return CreateZone(n, api, zone);
    static const std::vector<std::string> a_labels = {"www", "mail", "a.deep", "x.y.deep2"};
    static const std::vector<std::string> txt_labels = {"txt", "www", "t.deep"};
    switch (Pick(10)) {
      case 0:
      case 1:
      case 2:
        return ReplaceA(n, api, zone, a_labels[Pick(static_cast<uint32_t>(a_labels.size()))]);
      case 3:
      case 4:
        return AddTxt(n, api, zone, txt_labels[Pick(static_cast<uint32_t>(txt_labels.size()))],
                      "round " + std::to_string(round) + " via " + (api ? "api" : "pdnsutil") + " on " +
                          m_.server(n).name());
      case 5: {
        std::vector<std::pair<std::string, std::string>> deletable;
        for (const auto& [k, v] : z.rrsets) {
          if (k.first != zone) deletable.push_back(k);
        }
        if (deletable.empty()) return ReplaceA(n, api, zone, "www");
        const auto& k = deletable[Pick(static_cast<uint32_t>(deletable.size()))];
        return DeleteRRset(n, api, zone, k.first, k.second);
      }
      case 6:
      case 7:
        return SetMeta(n, api, zone);
      case 8:
        return Pdnsutil(n, {"rectify-zone", zone});
      case 9:
        return DeleteZone(n, api, zone);
    }
  }

  // Every server answers for `zone` what the model says, all alike, and
  // their AXFRs are identical.
  void Verify(const std::string& zone, const std::string& tag) {
    const ZoneModel& z = zones_[zone];
    if (!z.exists) {
      m_.Agree(tag + ": deleted zone " + zone + " SOA",
               [&](PdnsServer& s) { return s.Dig(zone, "SOA"); },
               [](const DnsAnswer& a) { return a.rcode == "REFUSED" ? "" : "expected REFUSED"; });
      return;
    }
    m_.Agree(tag + ": " + zone + " SOA", [&](PdnsServer& s) { return s.Dig(zone, "SOA"); },
             [&](const DnsAnswer& a) {
               return a.rcode == "NOERROR" && a.aa && a.Rdata(zone, "SOA").size() == 1 ? "" : "expected one SOA";
             });
    for (const auto& [key, contents] : z.rrsets) {
      const auto& [name, type] = key;
      m_.Agree(tag + ": " + name + " " + type, [&](PdnsServer& s) { return s.Dig(name, type); },
               [&](const DnsAnswer& a) -> std::string {
                 if (a.rcode != "NOERROR" || !a.aa) return "expected an authoritative NOERROR";
                 if (a.Rdata(name, type) != contents) return "expected " + Join({contents.begin(), contents.end()}, " | ");
                 return "";
               });
    }
    for (const auto& [name, type] : z.gone) {
      if (z.rrsets.count({name, type})) continue;
      m_.Agree(tag + ": deleted RRset " + name + " " + type, [&](PdnsServer& s) { return s.Dig(name, type); },
               [&](const DnsAnswer& a) -> std::string {
                 if (a.rcode != "NOERROR" && a.rcode != "NXDOMAIN") return "expected NOERROR or NXDOMAIN";
                 return a.Rdata(name, type).empty() ? "" : "the deleted RRset is still served";
               });
    }
    const std::string nx = "nx-" + tag + "." + zone;
    m_.Agree(tag + ": " + nx, [&](PdnsServer& s) { return s.Dig(nx, "A"); },
             [](const DnsAnswer& a) { return a.rcode == "NXDOMAIN" ? "" : "expected NXDOMAIN"; });
    m_.AxfrAgrees(zone);
    for (const auto& [kind, values] : z.meta) {
      std::vector<std::set<std::string>> got(m_.size());
      bool ok = PollUntil(
          [&] {
            for (size_t i = 0; i < m_.size(); ++i) {
              Node::HttpResult r = m_.server(i).Api("GET", "/zones/" + zone + "./metadata/" + kind);
              if (r.status != 200) return false;
              json j = json::parse(r.body);
              got[i].clear();
              for (const json& v : j["metadata"]) got[i].insert(v.get<std::string>());
              if (got[i] != values) return false;
            }
            return true;
          },
          kDeadline, std::chrono::milliseconds(250));
      EXPECT_TRUE(ok) << tag << ": metadata " << kind << " of " << zone << " should be "
                      << Join({values.begin(), values.end()}, ",") << " everywhere; " << m_.server(0).name()
                      << " has " << Join({got[0].begin(), got[0].end()}, ",");
    }
  }

 private:
  PowerDnsMesh& m_;
  std::mt19937 rng_;
  std::map<std::string, ZoneModel> zones_;
  std::map<std::string, int> retries_;
};

// name, type, content, ordername, auth, disabled of every row of the zone
// (empty non-terminals included), as text, sorted.
std::vector<std::string> ZoneRowsBySql(Node& node, const std::string& zone) {
  auto c = node.Connect();
  auto rows = c->Query(
      "SELECT r.name, r.type, r.content, r.ordername, CASE WHEN r.auth THEN 1 ELSE 0 END, "
      "CASE WHEN r.disabled THEN 1 ELSE 0 END, r.ttl "
      "FROM records r JOIN domains d ON d.id = r.domain_id WHERE d.name = ?",
      {zone});
  std::vector<std::string> out;
  for (const db::Row& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) line += (i ? " | " : "") + (r[i].IsNull() ? std::string("NULL") : r[i].AsText());
    out.push_back(line);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// ------------------------------------------------------------- the tests --

TEST(PowerDns, ThreeServersOnThreeDatabasesAnswerAlikeAfterPdnsutilAndApiChanges) {
  if (!HavePowerDns()) GTEST_SKIP() << "needs pdns_server, pdnsutil and dig (scripts/install-deps.sh)";
  const uint32_t seed = TestSeed("changes");
  PowerDnsMesh m("pdns-e2e");
  Guarded([&] { m.Start(); });
  if (::testing::Test::HasFailure()) return;
  Guarded([&] {
    Driver d(m, seed);

    // 1. A zone created with pdnsutil on node X is answered by node X itself:
    //    pdnsutil writes SQL behind X's running pdns_server, whose zone cache
    //    (refreshed hourly here) would keep answering REFUSED but for the
    //    flush zonemesh sends its own PowerDNS after a local commit.
    for (size_t i = 0; i < m.size(); ++i) {
      const std::string zone = "own-" + m.server(i).name() + ".example";
      ASSERT_EQ(m.server(i).Dig(zone, "SOA").rcode, "REFUSED");
      ASSERT_EQ(m.server(i).Dig("www." + zone, "A").rcode, "REFUSED");  // cached, if PowerDNS caches that
      d.CreateZone(i, false, zone);
      const auto want = d.zones()[zone].rrsets[{"www." + zone, "A"}];
      DnsAnswer last;
      bool ok = PollUntil(
          [&] {
            last = m.server(i).Dig("www." + zone, "A");
            return last.rcode == "NOERROR" && last.aa && last.Rdata("www." + zone, "A") == want;
          },
          kDeadline, std::chrono::milliseconds(100));
      EXPECT_TRUE(ok) << m.server(i).name() << " does not serve " << zone
                      << ", created with pdnsutil on it: " << last.ToString();
    }
    ASSERT_TRUE(m.Settle());
    for (size_t i = 0; i < m.size(); ++i) d.Verify("own-" + m.server(i).name() + ".example", "created");

    // 2. Random changes by pdnsutil and the API on random nodes, in rounds;
    //    after each round every server answers every zone alike and as
    //    expected (answers cached in the previous round must not survive).
    std::vector<std::string> pool;
    for (int i = 0; i < 6; ++i) pool.push_back("z" + std::to_string(i) + ".example");
    for (size_t i = 0; i < m.size(); ++i) pool.push_back("own-" + m.server(i).name() + ".example");
    const int rounds = 10;
    for (int round = 1; round <= rounds; ++round) {
      std::cout << "[powerdns] round " << round << std::endl;
      std::vector<std::string> zones = pool;
      std::shuffle(zones.begin(), zones.end(), d.rng());
      zones.resize(4);
      for (const std::string& z : zones) d.RandomChange(z, round);
      ASSERT_TRUE(m.Settle()) << "round " << round;
      for (const std::string& z : pool) d.Verify(z, "round" + std::to_string(round));
      if (::testing::Test::HasFailure()) return;
    }
    for (Node* n : m.mesh.nodes()) EXPECT_TRUE(n->Sanity().empty()) << n->id();

    // 3. Deleting zones with both tools: REFUSED everywhere, the deleting
    //    node included.
    std::vector<std::string> existing;
    for (const std::string& z : pool) {
      if (d.zones()[z].exists) existing.push_back(z);
    }
    for (size_t k = 0; k < existing.size() && k < 4; ++k) {
      d.DeleteZone(d.Pick(3), k % 2 == 0, existing[k]);
    }
    ASSERT_TRUE(m.Settle());
    for (const std::string& z : pool) d.Verify(z, "final");
    // A deleted zone created again comes back empty of its former records.
    if (!existing.empty()) {
      d.CreateZone(d.Pick(3), d.Pick(2) == 0, existing[0]);
      ASSERT_TRUE(m.Settle());
      d.Verify(existing[0], "recreated");
    }
  });
}

TEST(PowerDns, RectifiedZonesHaveTheSameOrdernameAuthAndEmptyNonTerminalsEverywhere) {
  if (!HavePowerDns()) GTEST_SKIP() << "needs pdns_server, pdnsutil and dig (scripts/install-deps.sh)";
  const uint32_t seed = TestSeed("rectify");
  PowerDnsMesh m("pdns-rectify");
  Guarded([&] { m.Start(); });
  if (::testing::Test::HasFailure()) return;
  Guarded([&] {
    Driver d(m, seed);
    const size_t x = d.Pick(3), y = (x + 1) % 3, w = (x + 2) % 3;

    // An NSEC zone: created and signed with pdnsutil on X, with a delegation
    // and its glue (auth = 0) and names deep enough for empty non-terminals,
    // rectified there.
    const std::string nsec = "signed.example";
    d.CreateZone(x, false, nsec);
    d.Pdnsutil(x, {"add-record", nsec, "sub", "NS", std::to_string(kTtl), "ns.sub." + nsec + "."});
    d.Pdnsutil(x, {"add-record", nsec, "ns.sub", "A", std::to_string(kTtl), "192.0.2.53"});
    d.ReplaceA(x, false, nsec, "host.a.b.c");
    d.Pdnsutil(x, {"secure-zone", nsec});
    d.Pdnsutil(x, {"rectify-zone", nsec});
    ASSERT_TRUE(m.Settle());
    // Edited through the API on Y: API-RECTIFY (on by default) rectifies on Y,
    // in the same transaction as the edit.
    d.ReplaceA(y, true, nsec, "new.e.f");
    ASSERT_TRUE(m.Settle());
    // pdnsutil edits on W do not rectify; rectify-zone on W does.
    d.AddTxt(w, false, nsec, "txt.g.h", "unrectified until rectify-zone");
    d.DeleteRRset(w, false, nsec, "host.a.b.c." + nsec, "A");
    d.Pdnsutil(w, {"rectify-zone", nsec});

    // An NSEC3 zone created signed through the API on W (rectified by the
    // API), edited through the API on X.
    const std::string nsec3 = "nsec3.example";
    d.Api(w, "POST", "/zones",
          json{{"name", nsec3 + "."},
               {"kind", "Native"},
               {"nameservers", json::array({"ns1." + nsec3 + "."})},
               {"dnssec", true},
               {"nsec3param", "1 0 0 -"},
               {"rrsets", json::array({d.RRset("www.deep." + nsec3, "A", {"192.0.2.80"})})}});
    d.zones()[nsec3].exists = true;
    d.zones()[nsec3].rrsets[{nsec3, "NS"}] = {"ns1." + nsec3 + "."};
    d.zones()[nsec3].rrsets[{"www.deep." + nsec3, "A"}] = {"192.0.2.80"};
    ASSERT_TRUE(m.Settle());
    d.ReplaceA(x, true, nsec3, "mail.k.l");
    ASSERT_TRUE(m.Settle());

    for (const std::string& zone : {nsec, nsec3}) {
      // The rows PowerDNS's rectify wrote, compared through SQL.
      std::vector<std::vector<std::string>> rows;
      for (Node* n : m.mesh.nodes()) rows.push_back(ZoneRowsBySql(*n, zone));
      for (size_t i = 1; i < rows.size(); ++i) {
        EXPECT_EQ(rows[i], rows[0]) << zone << ": rows on " << m.mesh[i].id() << " vs " << m.mesh[0].id()
                                    << ":\n" << DumpDiff(rows[0], rows[i]);
      }
      size_t ents = 0, unauth = 0, without_ordername = 0;
      for (const std::string& r : rows[0]) {
        std::vector<std::string> f;
        for (size_t p = 0, q; p <= r.size(); p = q + 3) {
          q = r.find(" | ", p);
          if (q == std::string::npos) q = r.size();
          f.push_back(r.substr(p, q - p));
        }
        if (f[1] == "NULL") ++ents;
        if (f[4] == "0") ++unauth;
        // Rectify gives every authoritative name an ordername; with NSEC
        // (not NSEC3) empty non-terminals and glue are not in the chain.
        const bool in_chain = f[4] == "1" && (f[1] != "NULL" || zone == nsec3);
        if (in_chain && f[3] == "NULL") ++without_ordername;
      }
      std::cout << "[powerdns] " << zone << ": " << rows[0].size() << " rows, " << ents
                << " empty non-terminals, " << unauth << " with auth=0" << std::endl;
      EXPECT_GT(ents, 0u) << zone << " should have empty non-terminal rows:\n" << Join(rows[0], "\n");
      EXPECT_EQ(without_ordername, 0u) << zone << " was rectified last; every name in the chain has an ordername:\n"
                                       << Join(rows[0], "\n");
      if (zone == nsec) {
        EXPECT_GT(unauth, 0u) << "the glue below the delegation has auth=0";
      }

      // DNS: denial of existence is built from ordername; every server
      // gives the same signed proof, also for an empty non-terminal.
      m.Agree(zone + " NXDOMAIN proof", [&](PdnsServer& s) { return s.Dig("nope.deep." + zone, "A", true); },
              [](const DnsAnswer& a) -> std::string {
                if (a.rcode != "NXDOMAIN") return "expected NXDOMAIN";
                for (const std::string& r : a.records) {
                  if (r.find(" NSEC ") != std::string::npos || r.find(" NSEC3 ") != std::string::npos) return "";
                }
                return "expected NSEC or NSEC3 records";
              });
      const std::string ent = zone == nsec ? "e.f." + nsec : "deep." + nsec3;
      m.Agree(zone + " empty non-terminal " + ent, [&](PdnsServer& s) { return s.Dig(ent, "A", true); },
              [](const DnsAnswer& a) { return a.rcode == "NOERROR" ? "" : "expected NOERROR (NODATA)"; });
      m.Agree(zone + " DNSKEY", [&](PdnsServer& s) { return s.Dig(zone, "DNSKEY", true); },
              [&](const DnsAnswer& a) { return a.Rdata(zone, "DNSKEY").empty() ? "expected a DNSKEY" : ""; });
      d.Verify(zone, "rectified");
    }
  });
}

// Concurrent API edits of one zone on all three nodes (RRsets of their own
// and one they all replace, each PATCH also bumping the SOA serial and
// rectifying): the servers end up answering alike.
TEST(PowerDns, ConcurrentApiEditsOfOneZoneOnThreeNodesEndUpAnsweredAlike) {
  if (!HavePowerDns()) GTEST_SKIP() << "needs pdns_server, pdnsutil and dig (scripts/install-deps.sh)";
  const uint32_t seed = TestSeed("concurrent");
  PowerDnsMesh m("pdns-concurrent");
  Guarded([&] { m.Start(); });
  if (::testing::Test::HasFailure()) return;
  Guarded([&] {
    Driver setup(m, seed);
    const std::string zone = "shared.example";
    setup.CreateZone(0, true, zone);
    ASSERT_TRUE(m.Settle());

    std::vector<std::thread> threads;
    std::vector<std::string> errors(m.size());
    std::vector<int> retried(m.size(), 0);
    std::vector<std::string> last_txt(m.size());  // each node's final value of both.<zone> TXT
    for (size_t i = 0; i < m.size(); ++i) {
      threads.emplace_back([&, i] {
        try {
          std::mt19937 rng(seed + static_cast<uint32_t>(i));
          for (int k = 0; k < 15; ++k) {
            const std::string own = "n" + std::to_string(k) + "." + m.server(i).name() + "." + zone + ".";
            json rrsets = json::array();
            rrsets.push_back({{"name", own}, {"type", "A"}, {"ttl", kTtl}, {"changetype", "REPLACE"},
                              {"records", json::array({json{{"content", "192.0.2." + std::to_string(k)}, {"disabled", false}}})}});
            const std::string txt = "\"" + m.server(i).name() + " " + std::to_string(rng() % 1000) + "\"";
            last_txt[i] = txt;
            rrsets.push_back({{"name", "both." + zone + "."}, {"type", "TXT"}, {"ttl", kTtl}, {"changetype", "REPLACE"},
                              {"records", json::array({json{{"content", txt}, {"disabled", false}}})}});
            for (int attempt = 0;; ++attempt) {
              Node::HttpResult r = m.server(i).Api("PATCH", "/zones/" + zone + ".", json{{"rrsets", rrsets}});
              if (r.status == 204) break;
              if ((!Transient(r.body) && r.status != 500) || attempt > 30)
              throw std::runtime_error("HTTP " + std::to_string(r.status) + " " + r.body);
            ++retried[i];
              std::this_thread::sleep_for(std::chrono::milliseconds(20 * (attempt + 1)));
            }
          }
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < m.size(); ++i) {
      std::cout << "[powerdns] " << m.server(i).name() << ": " << retried[i]
                << " PATCH(es) failed transiently (HTTP 500) and were made again" << std::endl;
    }
    for (size_t i = 0; i < m.size(); ++i) ASSERT_TRUE(errors[i].empty()) << m.server(i).name() << ": " << errors[i];
    ASSERT_TRUE(m.Settle());
    for (Node* n : m.mesh.nodes()) EXPECT_TRUE(n->Sanity().empty()) << n->id();
    m.AxfrAgrees(zone);
    m.Agree("SOA", [&](PdnsServer& s) { return s.Dig(zone, "SOA"); },
            [&](const DnsAnswer& a) { return a.Rdata(zone, "SOA").size() == 1 ? "" : "expected one SOA"; });
    // Records are the unit of replication: REPLACEs of one RRset made at the
    // same moment on several nodes each remove only what their node had
    // seen, so the RRset ends as the union of the concurrent last values
    // (docs/replication-model.md). Never empty, never an older value.
    const std::set<std::string> finals(last_txt.begin(), last_txt.end());
    m.Agree("both TXT", [&](PdnsServer& s) { return s.Dig("both." + zone, "TXT"); },
            [&](const DnsAnswer& a) -> std::string {
              const std::set<std::string> got = a.Rdata("both." + zone, "TXT");
              if (got.empty()) return "expected at least one TXT";
              for (const std::string& t : got)
                if (!finals.count(t)) return "TXT " + t + " is not any node's last value";
              return "";
            });
    for (size_t i = 0; i < m.size(); ++i) {
      const std::string name = "n14." + m.server(i).name() + "." + zone;
      m.Agree(name, [&](PdnsServer& s) { return s.Dig(name, "A"); },
              [&](const DnsAnswer& a) { return a.Rdata(name, "A") == std::set<std::string>{"192.0.2.14"} ? "" : "expected 192.0.2.14"; });
    }
    std::vector<std::vector<std::string>> rows;
    for (Node* n : m.mesh.nodes()) rows.push_back(ZoneRowsBySql(*n, zone));
    for (size_t i = 1; i < rows.size(); ++i) EXPECT_EQ(rows[i], rows[0]) << DumpDiff(rows[0], rows[i]);
  });
}

// An idle mesh of three PowerDNS nodes sends nothing, while every
// pdns_server keeps running its own housekeeping: NOTIFYs for a primary
// zone (domains.notified_serial) and SOA freshness checks of a secondary
// zone (domains.last_check), both node-local columns.
TEST(PowerDns, IdleMeshSendsNoBatchesWhilePowerDnsDoesItsHousekeeping) {
  if (!HavePowerDns()) GTEST_SKIP() << "needs pdns_server, pdnsutil and dig (scripts/install-deps.sh)";
  PowerDnsMesh m("pdns-idle", "primary=yes\nsecondary=yes\nxfr-cycle-interval=5\n");
  Guarded([&] { m.Start(); });
  if (::testing::Test::HasFailure()) return;
  Guarded([&] {
    Driver d(m, 1);

    d.CreateZone(0, false, "native.example");
    // A primary zone through the API on b: every node NOTIFYs its NS.
    d.Api(1, "POST", "/zones",
          json{{"name", "primary.example."}, {"kind", "Master"}, {"nameservers", json::array({"localhost."})}});
    // A secondary zone, its SOA refresh 10 s, whose primary is node a's
    // PowerDNS: every node (a too) checks its serial there and, finding it
    // equal, only updates last_check.
    const std::string sec = "secondary.example";
    d.CreateZone(2, false, sec);
    d.Pdnsutil(2, {"replace-rrset", sec, "@", "SOA", "3600",
                   "ns1." + sec + ". hostmaster." + sec + ". 7 10 10 604800 3600"});
    d.Pdnsutil(2, {"set-kind", sec, "secondary"});
    d.Pdnsutil(2, {"change-secondary-zone-primary", sec, "127.0.0.1:" + std::to_string(m.server(0).dns_port())});
    ASSERT_TRUE(m.Settle());

    auto last_check = [&](size_t i) {
      auto c = m.mesh[i].Connect();
      auto r = c->Query("SELECT last_check FROM domains WHERE name = ?", {sec});
      return r.empty() || r[0][0].IsNull() ? int64_t{0} : r[0][0].AsInt();
    };
    auto notified = [&](size_t i) {
      auto c = m.mesh[i].Connect();
      auto r = c->Query("SELECT notified_serial FROM domains WHERE name = ?", {std::string("primary.example")});
      return r.empty() || r[0][0].IsNull() ? int64_t{0} : r[0][0].AsInt();
    };
    ASSERT_TRUE(m.mesh.WaitUntil("every PowerDNS checked the secondary zone and notified the primary one", [&] {
      for (size_t i = 0; i < m.size(); ++i) {
        if (last_check(i) == 0 || notified(i) == 0) return false;
      }
      return true;
    }, std::chrono::milliseconds(180000)));
    ASSERT_TRUE(m.Settle());

    auto snapshot = [&] {
      std::map<std::string, std::string> s;
      for (Node* n : m.mesh.nodes()) {
        json st = n->Status();
        s[n->id() + " outbox"] = st["outbox"]["last_position"].dump();
        for (const json& p : st["peers"]) {
          s[n->id() + " -> " + p.value("id", "?") + " batches_sent"] = p["batches_sent"].dump();
          s[n->id() + " -> " + p.value("id", "?") + " changes_sent"] = p["changes_sent"].dump();
        }
        for (const json& o : st["origins"]) {
          s[n->id() + " <- " + o.value("id", "?") + " batches_applied"] = o["batches_applied"].dump();
        }
      }
      return s;
    };
    const auto before = snapshot();
    std::vector<int64_t> checked_before;
    for (size_t i = 0; i < m.size(); ++i) checked_before.push_back(last_check(i));

    // At least 60 s, and until every PowerDNS has checked the secondary zone
    // again (so its housekeeping demonstrably ran during the window); queries
    // and transfers all along.
    const auto start = std::chrono::steady_clock::now();
    const auto give_up = start + std::chrono::seconds(300);
    int queries = 0;
    for (;;) {
      for (size_t i = 0; i < m.size(); ++i) {
        EXPECT_EQ(m.server(i).Dig("www.native.example", "A").rcode, "NOERROR");
        EXPECT_EQ(m.server(i).Dig(sec, "SOA").rcode, "NOERROR");
        EXPECT_EQ(m.server(i).Dig("nothing.primary.example", "A").rcode, "NXDOMAIN");
        queries += 3;
        if (queries % 30 == 3) {
          EXPECT_NE(m.server(i).Axfr("primary.example")[0].rfind("AXFR ", 0), 0u);
        }
      }
      bool all_checked = true;
      for (size_t i = 0; i < m.size(); ++i) all_checked &= last_check(i) > checked_before[i];
      const auto now = std::chrono::steady_clock::now();
      if (now - start >= std::chrono::seconds(60) && all_checked) break;
      if (now > give_up) {
        ADD_FAILURE() << "PowerDNS did not re-check the secondary zone on every node within 300 s; "
                         "the idle window proves less than intended";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    const auto after = snapshot();
    for (const auto& [k, v] : before) {
      EXPECT_EQ(after.at(k), v) << k << " changed while the mesh was idle";
    }
    for (size_t i = 0; i < m.size(); ++i) {
      EXPECT_TRUE(m.server(i).running()) << m.server(i).name();
      EXPECT_TRUE(m.mesh[i].running()) << m.mesh[i].id();
      std::cout << "[powerdns] " << m.server(i).name() << ": last_check " << checked_before[i] << " -> "
                << last_check(i) << ", notified_serial " << notified(i) << std::endl;
    }
    std::cout << "[powerdns] " << queries << " queries during the idle window" << std::endl;
    ASSERT_TRUE(m.mesh.WaitForConvergence());
  });
}

}  // namespace
}  // namespace zonemesh::testing
