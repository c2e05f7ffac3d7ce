// Process-level test harness: real `zonemesh` processes on 127.0.0.1, each
// with its own SQLite database, config file and log file.
//
//   Cluster mesh(3, "convergence");   // nodes a, b, c in a full mesh, installed
//   mesh.StartAll();                  // `zonemesh run` for each, waits for /status
//   auto conn = mesh[0].Connect();    // write to node a's database directly
//   ...
//   mesh.WaitForConvergence();        // quiet mesh, equal canonical dumps
//
// Every wait is bounded by a generous deadline and polls; nothing asserts on
// wall-clock timing. A failed wait reports what it waited for, the last
// /status of each node and the tail of each node's log. Daemons still running
// when a Node or Cluster is destroyed are killed (SIGKILL) and reaped, also
// when the test failed; each child also gets SIGKILL if the test process
// dies (PR_SET_PDEATHSIG).
//
// The binary is this build's (or $ZONEMESH_BINARY, see BuiltBinaryPath()).
// Node directories live under ScratchDir() and are removed by the Cluster
// destructor unless the test failed or ZONEMESH_TEST_KEEP is set (then their
// path is printed).
//
// Thread-safety: Node and Cluster are driven by the test's main thread.
// Connect() hands out independent connections that other threads may use.
#ifndef ZONEMESH_TESTS_SUPPORT_CLUSTER_H_
#define ZONEMESH_TESTS_SUPPORT_CLUSTER_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.h"
#include "db/open.h"
#include "replicator/wire.h"
#include "tests/support/test_db.h"

namespace zonemesh::testing {

using namespace std::chrono_literals;

// The default bound of every wait: generous, since CI machines are slow.
inline constexpr std::chrono::seconds kDefaultDeadline{60};

// ------------------------------------------------------------- commands --

// The zonemesh binary (BuiltBinaryPath()). Throws std::runtime_error when
// it is not executable.
std::string ZonemeshBinary();

struct CommandResult {
  int exit_code = -1;  // the exit status; 128+N when killed by signal N
  std::string out;     // everything written to stdout
  std::string err;     // everything written to stderr
  // "exit 2; stdout: ...; stderr: ..." for failure messages.
  std::string Describe() const;
  // The same with only the last `lines` lines of each stream.
  std::string Brief(size_t lines = 15) const;
};

// fork + exec of args[0] (a path) with stdin from /dev/null and stdout and
// stderr redirected to the given descriptors (the caller closes its
// copies). The child dies with the test process and inherits no other
// descriptor. Only async-signal-safe calls after fork: the test process may
// have other threads.
pid_t SpawnProgram(const std::vector<std::string>& args, int out_fd, int err_fd);

// A waitpid() status as an exit code: the code, 128 + signal, or -1.
int DecodeWaitStatus(int status);

// Runs args[0] (a path) with args to completion (stdin from /dev/null). A
// program still running after `timeout` is killed and reported with exit
// code -1.
CommandResult RunProgram(const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout = 60s);
// RunProgram of `zonemesh args...`.
CommandResult RunZonemesh(const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout = 60s);

// A whole file ("" when it cannot be read).
std::string ReadFile(const std::string& path);
// The last `lines` lines of `text`.
std::string Tail(const std::string& text, size_t lines);

// A loopback port that was free a moment ago (bound to port 0 and released).
// Never hands out the same port twice in one process.
uint16_t FreeLoopbackPort();

// --------------------------------------------------------------- polling --

// Polls `condition` every `interval` until it returns true (then returns
// true) or `deadline` passes (then returns false). Exceptions from the
// condition count as "not yet" and the last one is kept in *last_error.
bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
               std::chrono::milliseconds interval = 25ms, std::string* last_error = nullptr);

// ----------------------------------------------------------------- SQL --

// Runs `fn` in a write transaction (BEGIN IMMEDIATE on SQLite) and commits,
// retrying the whole transaction on transient errors (busy, deadlock) up to
// `attempts` times. Other errors propagate after a rollback.
void WithTransaction(db::Connection& conn, const std::function<void()>& fn, int attempts = 20);

// Writes as PowerDNS's generic-SQL backend does (gsqlite3 queries), for
// tests that play PowerDNS. Each function runs inside the caller's
// transaction; names are lower-case FQDNs without the trailing dot.
namespace pdns {

// The zone's domains.id, or nullopt.
std::optional<int64_t> ZoneId(db::Connection& conn, const std::string& zone);

// pdnsutil create-zone: the domains row and its SOA record (the zone apex,
// serial `serial`). Returns the new domains.id.
int64_t CreateZone(db::Connection& conn, const std::string& zone, int64_t serial = 1);

// deleteDomain: records, comments, metadata, keys, then the domains row.
void DeleteZone(db::Connection& conn, int64_t zone_id);

// One records row (auth = 1, disabled = 0, prio 0).
void InsertRecord(db::Connection& conn, int64_t zone_id, const std::string& name,
                  const std::string& type, const std::string& content, int64_t ttl);

// replaceRRSet: delete the RRset (name, type), insert `contents`.
void ReplaceRRset(db::Connection& conn, int64_t zone_id, const std::string& name,
                  const std::string& type, const std::vector<std::string>& contents, int64_t ttl);

// setDomainMetadata: delete every row of `kind`, insert `values`.
void SetMetadata(db::Connection& conn, int64_t zone_id, const std::string& kind,
                 const std::vector<std::string>& values);

// setTSIGKey (REPLACE INTO, as gsqlite3 does) and deleteTSIGKey.
void SetTsigKey(db::Connection& conn, const std::string& name, const std::string& algorithm,
                const std::string& secret);
void DeleteTsigKey(db::Connection& conn, const std::string& name);

}  // namespace pdns

// -------------------------------------------------------------- one node --

// A peer entry of a node's config.
struct PeerRef {
  std::string id;
  std::string url;  // "http://127.0.0.1:PORT"
};

// One zonemesh node: a directory holding node.db, zonemesh.json and
// zonemesh.log, a listen port, and at most one running `zonemesh run`.
class Node {
 public:
  // Creates `dir` (and parents). Nothing else happens until WriteConfig().
  Node(std::string id, std::string dir, uint16_t port);
  // Kills the daemon if it still runs.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& id() const { return id_; }
  uint16_t port() const { return port_; }
  std::string url() const;  // http://127.0.0.1:port
  const std::string& dir() const { return dir_; }
  const std::string& db_path() const { return db_path_; }
  const std::string& config_path() const { return config_path_; }
  const std::string& log_path() const { return log_path_; }

  // Uses `database` (a fresh PostgreSQL or MariaDB database, say) instead
  // of the node's own SQLite file. Call before WriteConfig().
  void UseDatabase(db::DatabaseConfig database);

  // Serves /status, /health and /metrics on a separate plain-HTTP port
  // (status_listen), which Http() then uses: for nodes whose listen address
  // speaks HTTPS. Call before WriteConfig().
  void UseStatusPort(uint16_t port) { status_port_ = port; }

  // Writes zonemesh.json: node_id, listen 127.0.0.1:port, the SQLite
  // database, `peers`, "log_level": "debug", small retry back-offs; then
  // `overrides` is merged in (RFC 7386 merge patch).
  void WriteConfig(const std::vector<PeerRef>& peers, const nlohmann::json& overrides = {});

  // `zonemesh install --config F --create-schema`; fails the test (and
  // throws) unless it exits 0.
  void Install();

  // Starts `zonemesh run --config F` (stdout and stderr appended to the log)
  // and waits until /status answers. Throws std::runtime_error with the log
  // tail when the process exits or does not answer within the deadline.
  // REQUIRES: not running.
  void Start(std::chrono::milliseconds deadline = kDefaultDeadline);
  // SIGTERM and wait (SIGKILL after `deadline`, reported as a test failure).
  // Returns the exit code (128+N after signal N). No-op (returns 0) when not
  // running.
  int Stop(std::chrono::milliseconds deadline = 30s);
  // SIGKILL and reap. No-op when not running.
  void Kill();
  // True while the daemon process exists (reaps it if it exited).
  bool running();
  pid_t pid() const { return pid_; }

  // A new connection to this node's database (busy timeout 30 s). The
  // daemon may be running: SQLite serializes writers.
  std::unique_ptr<db::Connection> Connect() const;
  db::DatabaseConfig database() const;

  // HTTP to the daemon. Throws HttpError when it does not answer.
  struct HttpResult {
    int status = 0;
    std::string body;
  };
  HttpResult Http(const std::string& method, const std::string& target,
                  const std::string& body = "") const;
  // GET /status, parsed. Throws when the daemon does not answer 200 JSON.
  nlohmann::json Status() const;
  // The same, nullopt instead of throwing.
  std::optional<nlohmann::json> TryStatus() const;

  // Canonical dump, checksum and DNS sanity problems, read from the database.
  std::vector<std::string> Dump() const;
  std::string Checksum() const;
  std::vector<std::string> Sanity() const;

  // The last `lines` lines of the log.
  std::string LogTail(size_t lines = 40) const;
  // The whole log.
  std::string Log() const;

 private:
  std::string id_;
  std::string dir_;
  uint16_t port_;
  std::string db_path_;
  std::optional<db::DatabaseConfig> database_;  // unset: SQLite at db_path_
  uint16_t status_port_ = 0;                      // 0: status on port_
  std::string config_path_;
  std::string log_path_;
  pid_t pid_ = -1;
};

// The entry for `peer_id` in a /status document's peers[], or null json.
nlohmann::json PeerEntry(const nlohmann::json& status, const std::string& peer_id);
// The entry for `origin_id` in a /status document's origins[], or null json.
nlohmann::json OriginEntry(const nlohmann::json& status, const std::string& origin_id);

// Lines only in `a` and only in `b` (sorted inputs), at most `max` of each,
// as readable text.
std::string DumpDiff(const std::vector<std::string>& a, const std::vector<std::string>& b,
                     size_t max = 20);

// ----------------------------------------------------------- full mesh --

class Cluster {
 public:
  // `n` nodes with ids "a", "b", "c", ... in ScratchDir()/<name>/<id>, each
  // configured with every other node as a peer (`overrides` merged into
  // every config) and installed. Nothing runs yet.
  Cluster(size_t n, const std::string& name, const nlohmann::json& overrides = {});
  // The same, with node i on a fresh database of dialects[i % size] (SQLite
  // files, or databases on the test PostgreSQL and MariaDB servers).
  Cluster(size_t n, const std::string& name, const nlohmann::json& overrides,
          const std::vector<db::Dialect>& dialects);
  // Kills every daemon still running; removes the directories when the
  // current test has not failed.
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  size_t size() const { return nodes_.size(); }
  Node& operator[](size_t i) { return *nodes_.at(i); }
  Node& node(const std::string& id);
  std::vector<Node*> nodes();

  void StartAll();
  // Stops every running node; expects exit code 0 from each.
  void StopAll();

  // Waits until every running node reports every peer that runs as
  // connected. Returns false (after a test failure with diagnostics) on
  // timeout.
  bool WaitForConnected(std::chrono::milliseconds deadline = kDefaultDeadline);

  // Waits until the mesh is quiet and converged: every node runs, none has
  // unstamped outbox rows, every send cursor (zm_peer) is at its node's last
  // stamped position, every /status peer shows queue_depth 0, nothing is
  // staged, and all canonical dump checksums are equal. Returns false (after
  // a test failure with the dump differences, statuses and logs) on timeout.
  bool WaitForConvergence(std::chrono::milliseconds deadline = 90s);

  // Polls `condition`; on timeout adds a test failure naming `what`, with
  // Diagnostics(), and returns false.
  bool WaitUntil(const std::string& what, const std::function<bool()>& condition,
                 std::chrono::milliseconds deadline = kDefaultDeadline);

  // Every node's last /status (or why there is none), its outbox state and
  // the tail of its log.
  std::string Diagnostics(size_t log_lines = 30);

  // The last stamped outbox position of `node` (from its database).
  static Position LastStamped(db::Connection& conn);

 private:
  std::string dir_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace zonemesh::testing

#endif  // ZONEMESH_TESTS_SUPPORT_CLUSTER_H_
