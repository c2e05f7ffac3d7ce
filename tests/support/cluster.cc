// Process-level test harness.
#include "tests/support/cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "replicator/dump.h"
#include "replicator/http.h"

namespace zonemesh::testing {

namespace fs = std::filesystem;
using nlohmann::json;

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& text, size_t lines) {
  if (lines == 0) return "";
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  size_t count = 0;
  while (pos > 0) {
    size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      pos = 0;
      break;
    }
    if (++count == lines) {
      pos = nl + 1;
      break;
    }
    pos = nl;
  }
  return text.substr(pos);
}

pid_t SpawnProgram(const std::vector<std::string>& args, int out_fd, int err_fd) {
  std::vector<std::string> argv_store = args;
  std::vector<char*> argv;
  for (std::string& s : argv_store) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  long max_fd = sysconf(_SC_OPEN_MAX);
  if (max_fd < 0 || max_fd > 65536) max_fd = 65536;

  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // The child dies with the test process, whatever way that ends.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    // Nothing else of the test process (sockets, database files) leaks
    // into the child.
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
      for (long fd = 3; fd < max_fd; ++fd) close(static_cast<int>(fd));
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

namespace {

// `zonemesh args...`, see SpawnProgram.
pid_t Spawn(const std::vector<std::string>& args, int out_fd, int err_fd) {
  std::vector<std::string> argv{ZonemeshBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return SpawnProgram(argv, out_fd, err_fd);
}

// Waits for `pid` up to `deadline`; returns the decoded status, or nullopt
// when it still runs.
std::optional<int> WaitFor(pid_t pid, std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return DecodeWaitStatus(status);
    if (r < 0 && errno != EINTR) return -1;  // not our child any more
    if (std::chrono::steady_clock::now() >= end) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

}  // namespace

// ------------------------------------------------------------- commands --

std::string ZonemeshBinary() {
  const std::string built = BuiltBinaryPath();
  if (access(built.c_str(), X_OK) != 0) {
    throw std::runtime_error("zonemesh binary " + built + " is not executable");
  }
  return built;
}

std::string CommandResult::Describe() const {
  return "exit " + std::to_string(exit_code) + "\n--- stdout ---\n" + out + "--- stderr ---\n" +
         err;
}

std::string CommandResult::Brief(size_t lines) const {
  return "exit " + std::to_string(exit_code) + "; stdout: " + Tail(out, lines) +
         "; stderr: " + Tail(err, lines);
}

CommandResult RunZonemesh(const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout) {
  std::vector<std::string> argv{ZonemeshBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, timeout);
}

CommandResult RunProgram(const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout) {
  static std::atomic<int> counter{0};
  const std::string base = ScratchDir() + "/cmd-" + std::to_string(++counter);
  const std::string out_path = base + ".out", err_path = base + ".err";
  int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) throw std::runtime_error("cannot create " + base + ".*");
  pid_t pid;
  try {
    pid = SpawnProgram(args, out_fd, err_fd);
  } catch (...) {
    close(out_fd);
    close(err_fd);
    throw;
  }
  close(out_fd);
  close(err_fd);
  CommandResult r;
  std::optional<int> status = WaitFor(pid, timeout);
  if (!status) {
    kill(pid, SIGKILL);
    WaitFor(pid, 10s);
    r.exit_code = -1;
  } else {
    r.exit_code = *status;
  }
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  if (!status) r.err += "\n[harness: killed after " + std::to_string(timeout.count()) + " ms]\n";
  fs::remove(out_path);
  fs::remove(err_path);
  return r;
}

uint16_t FreeLoopbackPort() {
  // Ports below the usual ephemeral range (32768-60999), so that no outgoing
  // connection of a daemon can occupy a port before its node listens on it.
  static std::mutex mu;
  static std::set<uint16_t> handed_out;
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(getpid()));
  std::lock_guard<std::mutex> lock(mu);
  for (int attempt = 0; attempt < 2000; ++attempt) {
    uint16_t candidate = attempt < 1000 ? static_cast<uint16_t>(20000 + rng() % 12000) : 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(candidate);
    uint16_t port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      socklen_t len = sizeof addr;
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) port = ntohs(addr.sin_port);
    }
    close(fd);
    if (port != 0 && handed_out.insert(port).second) return port;
  }
  throw std::runtime_error("no free loopback port found");
}

// --------------------------------------------------------------- polling --

bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
               std::chrono::milliseconds interval, std::string* last_error) {
  auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    try {
      if (condition()) return true;
    } catch (const std::exception& e) {
      if (last_error) *last_error = e.what();
    }
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(interval);
  }
}

// ----------------------------------------------------------------- SQL --

void WithTransaction(db::Connection& conn, const std::function<void()>& fn, int attempts) {
  for (int attempt = 1;; ++attempt) {
    try {
      conn.Begin();
      fn();
      conn.Commit();
      return;
    } catch (const db::Error& e) {
      conn.Rollback();
      if (!e.transient() || attempt >= attempts) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(5 * attempt));
    } catch (...) {
      conn.Rollback();
      throw;
    }
  }
}

namespace pdns {

std::optional<int64_t> ZoneId(db::Connection& conn, const std::string& zone) {
  auto rows = conn.Query("SELECT id FROM domains WHERE name = ?", {zone});
  if (rows.empty()) return std::nullopt;
  return rows[0][0].AsInt();
}

int64_t CreateZone(db::Connection& conn, const std::string& zone, int64_t serial) {
  conn.Execute(
      "INSERT INTO domains (type, name, master, account, last_check, notified_serial) "
      "VALUES ('NATIVE', ?, '', '', NULL, NULL)",
      {zone});
  int64_t id = conn.LastInsertId();
  InsertRecord(conn, id, zone, "SOA",
               "ns1." + zone + ". hostmaster." + zone + ". " + std::to_string(serial) +
                   " 10800 3600 604800 3600",
               3600);
  return id;
}

void DeleteZone(db::Connection& conn, int64_t zone_id) {
  conn.Execute("DELETE FROM records WHERE domain_id = ?", {zone_id});
  conn.Execute("DELETE FROM domainmetadata WHERE domain_id = ?", {zone_id});
  conn.Execute("DELETE FROM cryptokeys WHERE domain_id = ?", {zone_id});
  conn.Execute("DELETE FROM comments WHERE domain_id = ?", {zone_id});
  conn.Execute("DELETE FROM domains WHERE id = ?", {zone_id});
}

void InsertRecord(db::Connection& conn, int64_t zone_id, const std::string& name,
                  const std::string& type, const std::string& content, int64_t ttl) {
  conn.Execute(
      "INSERT INTO records (content, ttl, prio, type, domain_id, disabled, name, ordername, auth) "
      "VALUES (?, ?, 0, ?, ?, 0, ?, NULL, 1)",
      {content, ttl, type, zone_id, name});
}

void ReplaceRRset(db::Connection& conn, int64_t zone_id, const std::string& name,
                  const std::string& type, const std::vector<std::string>& contents, int64_t ttl) {
  conn.Execute("DELETE FROM records WHERE domain_id = ? AND name = ? AND type = ?",
               {zone_id, name, type});
  for (const std::string& c : contents) InsertRecord(conn, zone_id, name, type, c, ttl);
}

void SetMetadata(db::Connection& conn, int64_t zone_id, const std::string& kind,
                 const std::vector<std::string>& values) {
  conn.Execute("DELETE FROM domainmetadata WHERE domain_id = ? AND kind = ?", {zone_id, kind});
  for (const std::string& v : values) {
    conn.Execute("INSERT INTO domainmetadata (domain_id, kind, content) VALUES (?, ?, ?)",
                 {zone_id, kind, v});
  }
}

void SetTsigKey(db::Connection& conn, const std::string& name, const std::string& algorithm,
                const std::string& secret) {
  conn.Execute("REPLACE INTO tsigkeys (name, algorithm, secret) VALUES (?, ?, ?)",
               {name, algorithm, secret});
}

void DeleteTsigKey(db::Connection& conn, const std::string& name) {
  conn.Execute("DELETE FROM tsigkeys WHERE name = ?", {name});
}

}  // namespace pdns

// -------------------------------------------------------------- one node --

Node::Node(std::string id, std::string dir, uint16_t port)
    : id_(std::move(id)), dir_(std::move(dir)), port_(port) {
  fs::create_directories(dir_);
  db_path_ = dir_ + "/node.db";
  config_path_ = dir_ + "/zonemesh.json";
  log_path_ = dir_ + "/zonemesh.log";
}

Node::~Node() { Kill(); }

std::string Node::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

void Node::UseDatabase(db::DatabaseConfig database) { database_ = std::move(database); }

void Node::WriteConfig(const std::vector<PeerRef>& peers, const json& overrides) {
  json peer_list = json::array();
  for (const PeerRef& p : peers) peer_list.push_back({{"id", p.id}, {"url", p.url}});
  json database = {{"type", "sqlite"}, {"path", db_path_}, {"busy_timeout_ms", 30000}};
  if (database_ && database_->dialect == db::Dialect::kSqlite) {
    database["path"] = database_->path;
  } else if (database_ && database_->dialect == db::Dialect::kPostgres) {
    database = {{"type", "postgresql"}, {"conninfo", database_->conninfo}};
  } else if (database_) {
    database = {{"type", "mysql"},     {"host", database_->host}, {"port", database_->port},
                {"user", database_->user}, {"database", database_->database}};
  }
  json cfg{{"node_id", id_},
           {"listen", "127.0.0.1:" + std::to_string(port_)},
           {"database", database},
           {"peers", peer_list},
           {"log_level", "debug"},
           {"poll_interval_ms", 5},
           {"retry_min_ms", 50},
           {"retry_max_ms", 500},
           {"request_timeout_ms", 10000}};
  if (status_port_) cfg["status_listen"] = "127.0.0.1:" + std::to_string(status_port_);
  if (!overrides.is_null()) cfg.merge_patch(overrides);
  std::ofstream out(config_path_, std::ios::trunc);
  out << cfg.dump(2) << "\n";
  if (!out) throw std::runtime_error("cannot write " + config_path_);
}

void Node::Install() {
  CommandResult r = RunZonemesh({"install", "--config", config_path_, "--create-schema"});
  if (r.exit_code != 0) {
    ADD_FAILURE() << "zonemesh install for node " << id_ << " failed: " << r.Describe();
    throw std::runtime_error("zonemesh install failed for node " + id_);
  }
}

void Node::Start(std::chrono::milliseconds deadline) {
  if (running()) throw std::logic_error("node " + id_ + " is already running");
  int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + log_path_);
  std::string marker = "----- harness: starting `zonemesh run` for node " + id_ + " -----\n";
  (void)!write(fd, marker.data(), marker.size());
  try {
    pid_ = Spawn({"run", "--config", config_path_}, fd, fd);
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);

  auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (!running()) {
      throw std::runtime_error("node " + id_ + ": `zonemesh run` exited at start; log:\n" +
                               LogTail(30));
    }
    if (TryStatus()) return;
    if (std::chrono::steady_clock::now() >= end) {
      throw std::runtime_error("node " + id_ + ": /status did not answer within " +
                               std::to_string(deadline.count()) + " ms; log:\n" + LogTail(30));
    }
    std::this_thread::sleep_for(20ms);
  }
}

int Node::Stop(std::chrono::milliseconds deadline) {
  if (!running()) return 0;
  kill(pid_, SIGTERM);
  std::optional<int> status = WaitFor(pid_, deadline);
  if (!status) {
    ADD_FAILURE() << "node " << id_ << " did not stop within " << deadline.count()
                  << " ms of SIGTERM; killing it. Log:\n"
                  << LogTail(30);
    kill(pid_, SIGKILL);
    status = WaitFor(pid_, 10s);
  }
  pid_ = -1;
  return status.value_or(-1);
}

void Node::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  WaitFor(pid_, 10s);
  pid_ = -1;
}

bool Node::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  pid_ = -1;
  return false;
}

db::DatabaseConfig Node::database() const {
  if (database_) return *database_;
  db::DatabaseConfig c;
  c.dialect = db::Dialect::kSqlite;
  c.path = db_path_;
  c.busy_timeout_ms = 30000;
  return c;
}

std::unique_ptr<db::Connection> Node::Connect() const { return db::Open(database()); }

Node::HttpResult Node::Http(const std::string& method, const std::string& target,
                            const std::string& body) const {
  HttpClient client(Endpoint{"127.0.0.1", status_port_ ? status_port_ : port_},
                    std::chrono::milliseconds(10000));
  HttpClient::Response r = client.Request(method, target, body);
  return {r.status, r.body};
}

json Node::Status() const {
  HttpResult r = Http("GET", "/status");
  if (r.status != 200) {
    throw std::runtime_error("node " + id_ + ": GET /status answered " + std::to_string(r.status) +
                             ": " + r.body);
  }
  return json::parse(r.body);
}

std::optional<json> Node::TryStatus() const {
  try {
    return Status();
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::vector<std::string> Node::Dump() const {
  auto c = Connect();
  return CanonicalDump(*c);
}

std::string Node::Checksum() const { return DumpChecksum(Dump()); }

std::vector<std::string> Node::Sanity() const {
  auto c = Connect();
  return SanityProblems(*c);
}

std::string Node::Log() const { return ReadFile(log_path_); }

std::string Node::LogTail(size_t lines) const { return Tail(Log(), lines); }

json PeerEntry(const json& status, const std::string& peer_id) {
  if (!status.is_object() || !status.contains("peers")) return nullptr;
  for (const json& p : status["peers"]) {
    if (p.value("id", "") == peer_id) return p;
  }
  return nullptr;
}

json OriginEntry(const json& status, const std::string& origin_id) {
  if (!status.is_object() || !status.contains("origins")) return nullptr;
  for (const json& o : status["origins"]) {
    if (o.value("id", "") == origin_id) return o;
  }
  return nullptr;
}

std::string DumpDiff(const std::vector<std::string>& a, const std::vector<std::string>& b,
                     size_t max) {
  std::vector<std::string> only_a, only_b;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_a));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_b));
  std::ostringstream out;
  out << only_a.size() << " line(s) only in the first, " << only_b.size()
      << " only in the second\n";
  for (size_t i = 0; i < only_a.size() && i < max; ++i) out << "  - " << only_a[i] << "\n";
  for (size_t i = 0; i < only_b.size() && i < max; ++i) out << "  + " << only_b[i] << "\n";
  return out.str();
}

// ----------------------------------------------------------- full mesh --

Cluster::Cluster(size_t n, const std::string& name, const json& overrides)
    : Cluster(n, name, overrides, {db::Dialect::kSqlite}) {}

Cluster::Cluster(size_t n, const std::string& name, const json& overrides,
                 const std::vector<db::Dialect>& dialects)
    : dir_(ScratchDir() + "/" + name) {
  if (n < 1 || n > 26) throw std::invalid_argument("a cluster has 1 to 26 nodes");
  if (dialects.empty()) throw std::invalid_argument("a cluster needs at least one database type");
  fs::remove_all(dir_);
  for (size_t i = 0; i < n; ++i) {
    std::string id(1, static_cast<char>('a' + i));
    nodes_.push_back(std::make_unique<Node>(id, dir_ + "/" + id, FreeLoopbackPort()));
    const db::Dialect d = dialects[i % dialects.size()];
    if (d != db::Dialect::kSqlite) nodes_.back()->UseDatabase(FreshDatabase(d, "node_" + id));
  }
  for (auto& node : nodes_) {
    std::vector<PeerRef> peers;
    for (auto& other : nodes_) {
      if (other.get() != node.get()) peers.push_back({other->id(), other->url()});
    }
    node->WriteConfig(peers, overrides);
    node->Install();
  }
}

Cluster::~Cluster() {
  for (auto& n : nodes_) n->Kill();
  const char* keep = std::getenv("ZONEMESH_TEST_KEEP");
  if (keep && *keep && !::testing::Test::HasFailure()) {
    std::cerr << "[cluster] ZONEMESH_TEST_KEEP is set; node directories kept in " << dir_ << "\n";
  } else if (::testing::Test::HasFailure()) {
    std::cerr << "[cluster] test failed; node directories kept in " << dir_ << "\n";
    for (auto& n : nodes_) {
      std::cerr << "[cluster] ---- last lines of node " << n->id() << "'s log (" << n->log_path()
                << ") ----\n"
                << n->LogTail(25);
    }
  } else {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

Node& Cluster::node(const std::string& id) {
  for (auto& n : nodes_) {
    if (n->id() == id) return *n;
  }
  throw std::out_of_range("no node " + id);
}

std::vector<Node*> Cluster::nodes() {
  std::vector<Node*> out;
  for (auto& n : nodes_) out.push_back(n.get());
  return out;
}

void Cluster::StartAll() {
  for (auto& n : nodes_) {
    if (!n->running()) n->Start();
  }
}

void Cluster::StopAll() {
  for (auto& n : nodes_) {
    if (!n->running()) continue;
    int code = n->Stop();
    EXPECT_EQ(code, 0) << "node " << n->id() << " exit code after SIGTERM; log:\n"
                       << n->LogTail(30);
  }
}

Position Cluster::LastStamped(db::Connection& conn) {
  auto rows = conn.Query(
      "SELECT csn, id FROM zm_outbox WHERE csn IS NOT NULL ORDER BY csn DESC, id DESC LIMIT 1");
  if (rows.empty()) return {};
  return {rows[0][0].AsInt(), rows[0][1].AsInt()};
}

bool Cluster::WaitUntil(const std::string& what, const std::function<bool()>& condition,
                        std::chrono::milliseconds deadline) {
  std::string last_error;
  if (PollUntil(condition, deadline, 25ms, &last_error)) return true;
  ADD_FAILURE() << "timed out after " << deadline.count() << " ms waiting for: " << what
                << (last_error.empty() ? "" : "\nlast error: " + last_error) << "\n"
                << Diagnostics();
  return false;
}

bool Cluster::WaitForConnected(std::chrono::milliseconds deadline) {
  return WaitUntil(
      "every running node connected to every running peer",
      [&] {
        for (auto& n : nodes_) {
          if (!n->running()) continue;
          json s = n->Status();
          for (auto& other : nodes_) {
            if (other.get() == n.get() || !other->running()) continue;
            json p = PeerEntry(s, other->id());
            if (p.is_null() || !p.value("connected", false)) return false;
          }
        }
        return true;
      },
      deadline);
}

bool Cluster::WaitForConvergence(std::chrono::milliseconds deadline) {
  std::string why;
  auto quiet = [&]() -> bool {
    for (auto& n : nodes_) {
      if (!n->running()) {
        why = "node " + n->id() + " is not running";
        return false;
      }
      json s = n->Status();
      for (const json& p : s["peers"]) {
        if (p.value("queue_depth", int64_t{-1}) != 0) {
          why = "node " + n->id() + " /status: queue_depth " + p["queue_depth"].dump() +
                " for peer " + p.value("id", "?");
          return false;
        }
      }
      auto c = n->Connect();
      int64_t unstamped =
          c->Query("SELECT COUNT(*) FROM zm_outbox WHERE csn IS NULL")[0][0].AsInt();
      if (unstamped > 0) {
        why = "node " + n->id() + " has " + std::to_string(unstamped) + " unstamped outbox rows";
        return false;
      }
      int64_t staged = c->Query("SELECT COUNT(*) FROM zm_stage")[0][0].AsInt();
      if (staged > 0) {
        why = "node " + n->id() + " has " + std::to_string(staged) + " staged rows";
        return false;
      }
      Position last = LastStamped(*c);
      if (!last.IsZero()) {
        for (auto& other : nodes_) {
          if (other.get() == n.get()) continue;
          auto rows = c->Query("SELECT csn, id FROM zm_peer WHERE peer = ?", {other->id()});
          Position cursor = rows.empty() ? Position{} : Position{rows[0][0].AsInt(), rows[0][1].AsInt()};
          if (cursor < last) {
            why = "node " + n->id() + "'s cursor for " + other->id() + " is " + cursor.ToString() +
                  ", its outbox ends at " + last.ToString();
            return false;
          }
        }
      }
    }
    std::string first;
    for (auto& n : nodes_) {
      std::string sum = n->Checksum();
      if (first.empty()) {
        first = sum;
      } else if (sum != first) {
        why = "checksums differ (" + nodes_[0]->id() + " " + first.substr(0, 12) + ", " + n->id() +
              " " + sum.substr(0, 12) + ")";
        return false;
      }
    }
    return true;
  };
  std::string last_error;
  if (PollUntil(quiet, deadline, 100ms, &last_error)) return true;

  std::ostringstream msg;
  msg << "the mesh did not converge within " << deadline.count() << " ms: " << why << "\n";
  if (!last_error.empty()) msg << "last error: " << last_error << "\n";
  try {
    std::vector<std::string> base = nodes_[0]->Dump();
    for (size_t i = 1; i < nodes_.size(); ++i) {
      std::vector<std::string> other = nodes_[i]->Dump();
      if (other != base) {
        msg << "dump of " << nodes_[0]->id() << " vs " << nodes_[i]->id() << ": "
            << DumpDiff(base, other);
      }
    }
  } catch (const std::exception& e) {
    msg << "(dumps unavailable: " << e.what() << ")\n";
  }
  ADD_FAILURE() << msg.str() << Diagnostics();
  return false;
}

std::string Cluster::Diagnostics(size_t log_lines) {
  std::ostringstream out;
  for (auto& n : nodes_) {
    out << "===== node " << n->id() << " (" << n->url() << ", "
        << (n->running() ? "pid " + std::to_string(n->pid()) : std::string("not running"))
        << ") =====\n";
    if (n->running()) {
      std::optional<json> s = n->TryStatus();
      out << "status: " << (s ? s->dump() : std::string("(no answer)")) << "\n";
    }
    try {
      auto c = n->Connect();
      out << "outbox: " << c->Query("SELECT COUNT(*) FROM zm_outbox")[0][0].AsText()
          << " row(s), unstamped "
          << c->Query("SELECT COUNT(*) FROM zm_outbox WHERE csn IS NULL")[0][0].AsText()
          << ", last stamped " << LastStamped(*c).ToString() << "; cursors:";
      for (const db::Row& r : c->Query("SELECT peer, csn, id FROM zm_peer ORDER BY peer")) {
        out << " " << r[0].AsText() << "=" << r[1].AsText() << ":" << r[2].AsText();
      }
      out << "; applied:";
      for (const db::Row& r : c->Query("SELECT origin, csn, id FROM zm_applied ORDER BY origin")) {
        out << " " << r[0].AsText() << "=" << r[1].AsText() << ":" << r[2].AsText();
      }
      out << "; staged " << c->Query("SELECT COUNT(*) FROM zm_stage")[0][0].AsText()
          << ", parked " << c->Query("SELECT COUNT(*) FROM zm_parked")[0][0].AsText()
          << ", conflicts " << c->Query("SELECT COUNT(*) FROM zm_conflict")[0][0].AsText()
          << "\n";
    } catch (const std::exception& e) {
      out << "database: " << e.what() << "\n";
    }
    out << "log tail (" << n->log_path() << "):\n" << n->LogTail(log_lines) << "\n";
  }
  return out.str();
}

}  // namespace zonemesh::testing
