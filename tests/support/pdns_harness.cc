// Real PowerDNS authoritative servers for the end-to-end tests.
#include "tests/support/pdns_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "replicator/http.h"

namespace zonemesh::testing {

namespace fs = std::filesystem;
using db::Dialect;
using nlohmann::json;

// ------------------------------------------------------------ programs --

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

std::set<std::string> DnsAnswer::Rdata(const std::string& name, const std::string& type) const {
  std::set<std::string> out;
  for (const std::string& r : records) {
    std::vector<std::string> t = Split(r);  // owner class type rdata...
    if (t.size() >= 4 && t[0] == name + "." && t[2] == type) {
      out.insert(Join(std::vector<std::string>(t.begin() + 3, t.end()), " "));
    }
  }
  return out;
}

std::string DnsAnswer::ToString() const {
  std::string s = rcode + (aa ? " aa" : "") + " {";
  for (const std::string& r : records) s += "\n      " + r;
  return s + (records.empty() ? "}" : "\n    }");
}

DnsAnswer Dig(uint16_t port, const std::string& name, const std::string& type, bool dnssec) {
  static const std::string dig = FindProgram("dig");
  std::vector<std::string> args = {dig,          "@127.0.0.1", "-p",        std::to_string(port),
                                   "+norec",     "+noall",     "+comments", "+answer",
                                   "+authority", "+time=5",    "+tries=3",  "+nocookie"};
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

PdnsServer::PdnsServer(std::string name, std::string dir, const db::DatabaseConfig& database,
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
    // Every cache on, and long-lived (powerdns_test.cc explains why).
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

void PdnsServer::Start() {
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
      kPdnsDeadline, std::chrono::milliseconds(100), &why);
  if (!up || !running()) {
    throw std::runtime_error("pdns_server " + name_ + " did not come up (" + why + "); log:\n" +
                             Tail(ReadFile(log_path()), 30));
  }
}

void PdnsServer::Kill() {
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

bool PdnsServer::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == 0) return true;
  pid_ = -1;
  return false;
}

CommandResult PdnsServer::Pdnsutil(const std::vector<std::string>& args) const {
  static const std::string binary = FindProgram("pdnsutil");
  std::vector<std::string> argv = {binary, "--config-dir=" + dir_};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, kProgramTimeout);
}

Node::HttpResult PdnsServer::Api(const std::string& method, const std::string& path,
                                 const json& body) const {
  HttpClient client(Endpoint{"127.0.0.1", api_port_}, std::chrono::milliseconds(30000));
  HttpClient::Response r =
      client.Request(method, "/api/v1/servers/localhost" + path, body.is_null() ? "" : body.dump(),
                     {{"X-API-Key", api_key_}});
  return {r.status, r.body};
}

// ------------------------------------------- three PowerDNS + zonemesh --

bool HavePowerDns() {
  return !FindProgram("pdns_server").empty() && !FindProgram("pdnsutil").empty() &&
         !FindProgram("dig").empty();
}

PowerDnsMesh::PowerDnsMesh(const std::string& name, const std::string& extra_pdns_conf)
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
    mesh[i].WriteConfig(
        peers,
        json{{"powerdns", {{"api_url", pdns[i]->api_url()}, {"api_key", pdns[i]->api_key()}}},
             {"auth", {{"secret", "a-long-shared-mesh-secret-for-tests"}}}});
  }
}

PowerDnsMesh::~PowerDnsMesh() {
  if (::testing::Test::HasFailure()) {
    for (auto& p : pdns) {
      std::cerr << "[powerdns] ---- last lines of pdns_server " << p->name() << "'s log ("
                << p->log_path() << ") ----\n"
                << p->LogTail(25);
    }
  }
  for (auto& p : pdns) p->Kill();
}

void PowerDnsMesh::Start() {
  for (auto& p : pdns) p->Start();
  mesh.StartAll();
  ASSERT_TRUE(mesh.WaitForConnected());
}

bool PowerDnsMesh::Settle() {
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

bool PowerDnsMesh::Agree(const std::string& what, const std::function<DnsAnswer(PdnsServer&)>& ask,
                         const std::function<std::string(const DnsAnswer&)>& expect) {
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
      kPdnsDeadline, std::chrono::milliseconds(250));
  if (!ok) {
    std::ostringstream msg;
    msg << what << ": " << problem << "\n";
    for (size_t i = 0; i < size(); ++i)
      msg << "  " << server(i).name() << ": " << answers[i].ToString() << "\n";
    ADD_FAILURE() << msg.str();
  }
  return ok;
}

bool PowerDnsMesh::AxfrAgrees(const std::string& zone) {
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
      kPdnsDeadline, std::chrono::milliseconds(250));
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

// The seed: $ZONEMESH_TEST_SEED, else random; printed either way.
uint32_t TestSeed(const std::string& what) {
  const char* s = std::getenv("ZONEMESH_TEST_SEED");
  uint32_t seed = s && *s ? static_cast<uint32_t>(std::strtoul(s, nullptr, 10))
                          : static_cast<uint32_t>(std::random_device{}());
  std::cout << "[powerdns] " << what << " seed " << seed << " (ZONEMESH_TEST_SEED=" << seed
            << " repeats it)" << std::endl;
  return seed;
}

bool Transient(const std::string& text) {
  for (const char* word :
       {"locked", "busy", "Deadlock", "deadlock", "could not serialize", "try restarting"}) {
    if (text.find(word) != std::string::npos) return true;
  }
  return false;
}

}  // namespace zonemesh::testing
