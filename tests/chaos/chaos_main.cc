// zonemesh-chaos: a randomized convergence checker.
//
// Runs a full mesh of real `zonemesh run` daemons (SQLite, PostgreSQL and
// MariaDB nodes), writes to every node's database at once the way PowerDNS
// does, and meanwhile cuts links (through per-link TCP proxies), stops
// daemons with SIGTERM and kills them with SIGKILL. Then it heals
// everything, waits until the mesh is quiet and checks the invariants of the
// design brief (section 7): convergence, DNS sanity, no loss, no echo; and
// that daemons shut down cleanly and restart. See tests/chaos/README.md.
//
// Everything random derives from --seed: the writers' operation sequences
// and the chaos schedule. The interleaving with the daemons depends on
// timing, so a seed replays the same run, not the same microsecond history.
//
// Exit status: 0 every check passed, 1 a check failed (or the run could not
// be set up), 2 bad arguments.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include "db/connection.h"
#include "db/open.h"
#include "replicator/dump.h"
#include "replicator/wire.h"
#include "schema/key.h"
#include "schema/spec.h"
#include "schema/version.h"
#include "tests/support/cluster.h"
#include "tests/support/proxy.h"
#include "tests/support/test_db.h"

namespace zonemesh::testing::chaos {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using db::Dialect;
using db::Value;
using nlohmann::json;
using schema::Version;
using schema::VersionVector;

// ------------------------------------------------------------- options --

struct Options {
  uint64_t seed = 0;
  int nodes = 3;
  std::vector<Dialect> databases = {Dialect::kSqlite, Dialect::kPostgres, Dialect::kMysql};
  int ops = 200;            // per writer; 0 with --duration: until the duration ends
  bool ops_given = false;
  double duration = 0;      // seconds of workload; 0: until the writers are done
  int zones = 5;
  int batch = 20;           // batch_max_changes
  int chaos_interval_ms = 300;
  std::set<std::string> chaos = {"cut", "blackhole", "isolate", "stop", "kill"};
  int think_ms = 30;        // a writer sleeps up to this long between operations
  std::string strategy = "latest-wins";  // conflict.strategy of every daemon
  int serial_poll_ms = 5;   // the SOA poller's interval; 0: no poller
  int converge_timeout = 300;
  int request_timeout_ms = 3000;
  int anti_entropy_s = 0;   // anti_entropy.interval_seconds; 0: off
  std::string log_level = "debug";
  std::string workdir;
  bool keep = false;
  bool quiet = false;
  int max_report = 40;
};

const std::vector<std::string> kChaosKinds = {"cut", "blackhole", "isolate", "stop", "kill"};

[[noreturn]] void Usage(const std::string& error) {
  std::ostream& out = error.empty() ? std::cout : std::cerr;
  if (!error.empty()) out << "zonemesh-chaos: " << error << "\n\n";
  out << R"(usage: zonemesh-chaos [options]

Runs a randomized mesh of real zonemesh daemons under concurrent writes and
network/process chaos, heals it, waits until it is quiet and checks the
replication invariants. Exit status: 0 all checks passed, 1 a check failed,
2 bad arguments.

  --seed N               seed of every random choice (default: random; printed)
  --nodes N              number of nodes, 2..5 (default 3)
  --databases LIST       comma-separated: sqlite, postgresql, mysql; node i uses
                         LIST[i % len] (default sqlite,postgresql,mysql)
  --ops N                operations per writer (default 200; with --duration and
                         no --ops: unlimited)
  --duration S           stop the workload after S seconds (default: none)
  --zones N              size of the zone name space, 1..26 (default 5)
  --batch N              batch_max_changes of every daemon (default 20)
  --chaos LIST           chaos events to use: cut, blackhole, isolate, stop, kill,
                         all or none (default all)
  --chaos-interval MS    mean time between chaos events (default 300)
  --think MS             writers pause up to MS between operations (default 30)
  --strategy NAME        conflict.strategy of every daemon: latest-wins, soa-serial
                         or priority (node ids in order) (default latest-wins)
  --serial-poll MS       read every node's SOA serials every MS during the run and
                         report any that goes back (default 5; 0: off)
  --converge-timeout S   how long to wait for a quiet mesh after healing (default 300)
  --request-timeout MS   request_timeout_ms of every daemon (default 3000)
  --anti-entropy S       compare and repair zones every S seconds (settled after
                         1 s, trees rebuilt every S s); default 0: off, so that
                         replication alone must converge
  --log-level LEVEL      the daemons' log level (default debug)
  --workdir DIR          node directories and logs (default $TMPDIR/zonemesh-chaos-SEED-PID)
  --keep                 keep the work directory and databases after a pass
  --quiet                print only the parameters, phase lines and the verdict
                         (the full event log is still written to DIR/chaos.log)
  --max-report N         list at most N lost changes / dump differences (default 40)
  --help                 this text

Environment: ZONEMESH_BINARY (the zonemesh binary to run),
ZONEMESH_TEST_PG_PORT, ZONEMESH_TEST_MYSQL_PORT (test database servers).
)";
  std::exit(error.empty() ? 0 : 2);
}

int64_t ParseInt(const std::string& flag, const std::string& v, int64_t lo, int64_t hi) {
  try {
    size_t used = 0;
    long long x = std::stoll(v, &used, 0);
    if (used != v.size()) throw std::invalid_argument(v);
    if (x < lo || x > hi) Usage(flag + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return x;
  } catch (const std::logic_error&) {
    Usage(flag + ": not a number: " + v);
  }
}

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  bool seed_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto need = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) Usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      Usage("");
    } else if (arg == "--seed") {
      std::string v = need();
      try {
        size_t used = 0;
        o.seed = std::stoull(v, &used, 0);
        if (used != v.size()) throw std::invalid_argument(v);
      } catch (const std::logic_error&) {
        Usage("--seed: not a number: " + v);
      }
      seed_given = true;
    } else if (arg == "--nodes") {
      o.nodes = static_cast<int>(ParseInt(arg, need(), 2, 5));
    } else if (arg == "--databases") {
      o.databases.clear();
      for (const std::string& d : SplitCommas(need())) {
        if (d == "sqlite" || d == "sqlite3") {
          o.databases.push_back(Dialect::kSqlite);
        } else if (d == "postgresql" || d == "postgres" || d == "pg") {
          o.databases.push_back(Dialect::kPostgres);
        } else if (d == "mysql" || d == "mariadb") {
          o.databases.push_back(Dialect::kMysql);
        } else {
          Usage("--databases: unknown database " + d);
        }
      }
      if (o.databases.empty()) Usage("--databases: empty list");
    } else if (arg == "--ops") {
      o.ops = static_cast<int>(ParseInt(arg, need(), 1, 10000000));
      o.ops_given = true;
    } else if (arg == "--duration") {
      o.duration = static_cast<double>(ParseInt(arg, need(), 1, 7 * 86400));
    } else if (arg == "--zones") {
      o.zones = static_cast<int>(ParseInt(arg, need(), 1, 26));
    } else if (arg == "--anti-entropy") {
      o.anti_entropy_s = static_cast<int>(ParseInt(arg, need(), 0, 3600));
    } else if (arg == "--batch") {
      o.batch = static_cast<int>(ParseInt(arg, need(), 1, 100000));
    } else if (arg == "--chaos") {
      o.chaos.clear();
      for (const std::string& k : SplitCommas(need())) {
        if (k == "all") {
          o.chaos.insert(kChaosKinds.begin(), kChaosKinds.end());
        } else if (k == "none") {
        } else if (std::find(kChaosKinds.begin(), kChaosKinds.end(), k) != kChaosKinds.end()) {
          o.chaos.insert(k);
        } else {
          Usage("--chaos: unknown event kind " + k);
        }
      }
    } else if (arg == "--chaos-interval") {
      o.chaos_interval_ms = static_cast<int>(ParseInt(arg, need(), 10, 600000));
    } else if (arg == "--think") {
      o.think_ms = static_cast<int>(ParseInt(arg, need(), 0, 60000));
    } else if (arg == "--strategy") {
      o.strategy = need();
      if (o.strategy != "latest-wins" && o.strategy != "soa-serial" && o.strategy != "priority")
        Usage("--strategy: one of latest-wins, soa-serial, priority");
    } else if (arg == "--serial-poll") {
      o.serial_poll_ms = static_cast<int>(ParseInt(arg, need(), 0, 60000));
    } else if (arg == "--converge-timeout") {
      o.converge_timeout = static_cast<int>(ParseInt(arg, need(), 5, 86400));
    } else if (arg == "--request-timeout") {
      o.request_timeout_ms = static_cast<int>(ParseInt(arg, need(), 100, 600000));
    } else if (arg == "--log-level") {
      o.log_level = need();
      static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error"};
      if (!levels.count(o.log_level)) Usage("--log-level: one of trace, debug, info, warn, error");
    } else if (arg == "--workdir") {
      o.workdir = need();
      if (o.workdir.empty()) Usage("--workdir: empty");
    } else if (arg == "--keep") {
      o.keep = true;
    } else if (arg == "--quiet" || arg == "-q") {
      o.quiet = true;
    } else if (arg == "--max-report") {
      o.max_report = static_cast<int>(ParseInt(arg, need(), 1, 1000000));
    } else {
      Usage("unknown argument " + arg);
    }
    if (has_value && (arg == "--keep" || arg == "--quiet" || arg == "--help"))
      Usage(arg + " takes no value");
  }
  if (!seed_given) o.seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  if (o.duration > 0 && !o.ops_given) o.ops = 0;  // until the duration ends
  if (o.workdir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    o.workdir = std::string(tmp && *tmp ? tmp : "/tmp") + "/zonemesh-chaos-" +
                std::to_string(o.seed) + "-" + std::to_string(getpid());
  }
  return o;
}

std::string ReproduceCommand(const Options& o) {
  std::string dbs;
  for (Dialect d : o.databases) dbs += (dbs.empty() ? "" : ",") + std::string(db::DialectName(d));
  std::string chaos;
  for (const std::string& k : kChaosKinds) {
    if (o.chaos.count(k)) chaos += (chaos.empty() ? "" : ",") + k;
  }
  std::string cmd = fmt::format("zonemesh-chaos --seed {} --nodes {} --databases {}", o.seed,
                                o.nodes, dbs);
  if (o.ops > 0) cmd += fmt::format(" --ops {}", o.ops);
  if (o.duration > 0) cmd += fmt::format(" --duration {}", static_cast<int64_t>(o.duration));
  cmd += fmt::format(" --zones {} --batch {} --chaos {} --chaos-interval {} --think {}", o.zones,
                     o.batch, chaos.empty() ? "none" : chaos, o.chaos_interval_ms, o.think_ms);
  cmd += fmt::format(" --strategy {} --serial-poll {}", o.strategy, o.serial_poll_ms);
  cmd += fmt::format(" --request-timeout {}", o.request_timeout_ms);
  if (o.anti_entropy_s > 0) cmd += fmt::format(" --anti-entropy {}", o.anti_entropy_s);
  return cmd;
}

// One independent 64-bit stream per purpose, derived from the seed.
uint64_t SubSeed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// ------------------------------------------------------------- logging --

class Log {
 public:
  void Open(const std::string& path, bool quiet) {
    std::lock_guard<std::mutex> lock(mu_);
    file_.open(path, std::ios::app);
    quiet_ = quiet;
  }
  void Start() { start_ = Clock::now(); }
  double Elapsed() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }
  // A timestamped event line: stdout unless quiet, always the log file.
  void Event(const std::string& text) { Write(Stamp() + text, !quiet_); }
  // A line that is printed even with --quiet.
  void Always(const std::string& text) { Write(text, true); }
  // A timestamped line that is printed even with --quiet.
  void Phase(const std::string& text) { Write(Stamp() + text, true); }
  // Untimestamped detail (diagnostics): stdout unless quiet, and the file.
  void Detail(const std::string& text) { Write(text, !quiet_); }

 private:
  // Offset from the start, and the UTC wall clock the daemons' logs use.
  std::string Stamp() const {
    const auto now = std::chrono::system_clock::now();
    const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char clock[16];
    std::strftime(clock, sizeof clock, "%H:%M:%S", &tm);
    return fmt::format("[{:8.3f}s {}.{:03d}] ", Elapsed(), clock, static_cast<int>(ms % 1000));
  }
  void Write(const std::string& line, bool to_stdout) {
    std::lock_guard<std::mutex> lock(mu_);
    if (to_stdout) {
      std::cout << line << (line.empty() || line.back() != '\n' ? "\n" : "");
      std::cout.flush();
    }
    if (file_) {
      file_ << line << (line.empty() || line.back() != '\n' ? "\n" : "");
      file_.flush();
    }
  }
  std::mutex mu_;
  std::ofstream file_;
  bool quiet_ = false;
  Clock::time_point start_ = Clock::now();
};

Log g_log;


// ------------------------------------------------------------ databases --

std::string DescribeDatabase(const db::DatabaseConfig& c, const std::string& sqlite_path) {
  switch (c.dialect) {
    case Dialect::kSqlite:
      return "sqlite " + (c.path.empty() ? sqlite_path : c.path);
    case Dialect::kPostgres:
      return "postgresql \"" + c.conninfo + "\"";
    case Dialect::kMysql:
      return fmt::format("mysql {}@{}:{}/{}", c.user, c.host, c.port, c.database);
  }
  return "?";
}

// --------------------------------------------------------------- writers --

const std::vector<std::string> kLabels = {"", "www.", "mail.", "a.", "b.", "c."};
const std::vector<std::string> kTypes = {"A", "AAAA", "TXT", "MX"};

std::vector<std::string> ContentsFor(const std::string& type) {
  if (type == "A") return {"192.0.2.1", "192.0.2.2", "192.0.2.3", "198.51.100.7"};
  if (type == "AAAA") return {"2001:db8::1", "2001:db8::2", "2001:db8::3"};
  if (type == "MX") return {"10 mx1.example.net.", "20 mx2.example.net.", "30 mx3.example.net."};
  return {"\"hello\"", "\"v=spf1 -all\"", "\"zonemesh\"", "\"caf\xc3\xa9 | 100%\""};
}

std::string ZoneName(uint64_t i) { return std::string(1, static_cast<char>('a' + i)) + "z.chaos.test"; }

// The serial field of SOA content; nullopt when it has none.
std::optional<int64_t> SoaSerial(const std::string& content) {
  std::istringstream in(content);
  std::string mname, rname, serial;
  if (!(in >> mname >> rname >> serial)) return std::nullopt;
  try {
    size_t used = 0;
    const long long v = std::stoll(serial, &used);
    if (used != serial.size() || v < 0 || v > 0xffffffffLL) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string Soa(const std::string& zone, int64_t serial) {
  return "ns1." + zone + ". hostmaster." + zone + ". " + std::to_string(serial) +
         " 10800 3600 604800 3600";
}

// Serials the writers chose themselves (zone creation, set-serial): a node
// serves such a serial, lower or not, until its daemon publishes the zone's
// clock again, and a zone created again starts from it. The SOA poller
// forgives a step back to one of them.
class SerialNotes {
 public:
  void Note(const std::string& zone, int64_t serial) {
    std::lock_guard<std::mutex> lock(mu_);
    noted_.insert({zone, serial & 0xffffffffLL});
  }
  bool Noted(const std::string& zone, int64_t serial) const {
    std::lock_guard<std::mutex> lock(mu_);
    return noted_.count({zone, serial}) > 0;
  }

 private:
  mutable std::mutex mu_;
  std::set<std::pair<std::string, int64_t>> noted_;
};
SerialNotes g_serial_notes;

void NoteSetSerial(const std::string& zone, int64_t serial) { g_serial_notes.Note(zone, serial); }

// Reads every node's SOA serials every --serial-poll ms while it runs and
// records every step back (RFC 1982) within one incarnation of a zone on
// one node (zm_zone's epoch, written in the transaction that creates the
// zone), except to a serial a writer chose (SerialNotes). A zone created
// again starts from its own serial, as on a lone PowerDNS server.
class SerialPoller {
 public:
  SerialPoller(std::vector<std::function<std::unique_ptr<db::Connection>()>> connect,
               std::vector<std::string> ids, int interval_ms)
      : connect_(std::move(connect)), ids_(std::move(ids)), interval_ms_(interval_ms) {}
  ~SerialPoller() { Stop(); }

  void Start() {
    if (interval_ms_ <= 0) return;
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int64_t polls() const { return polls_; }
  int64_t observations() const { return observations_; }
  const std::vector<std::string>& decreases() const { return decreases_; }
  int64_t forgiven() const { return forgiven_; }
  int64_t incarnations() const { return incarnations_; }

 private:
  void Loop() {
    const size_t n = connect_.size();
    std::vector<std::unique_ptr<db::Connection>> conns(n);
    // node -> zone -> (incarnation, last serial)
    std::vector<std::map<std::string, std::pair<std::string, int64_t>>> last(n);
    const auto t0 = Clock::now();
    while (!stop_) {
      for (size_t i = 0; i < n && !stop_; ++i) {
        std::map<std::string, std::pair<std::string, std::vector<int64_t>>> seen;
        try {
          if (!conns[i]) conns[i] = connect_[i]();
          for (const db::Row& r : conns[i]->Query(
                   "SELECT d.name, r.content, z.epoch_hlc, z.epoch_node FROM domains d "
                   "JOIN records r ON r.domain_id = d.id LEFT JOIN zm_zone z ON z.zone = d.name "
                   "WHERE r.type = 'SOA'")) {
            auto& entry = seen[r[0].AsText()];
            entry.first = r[2].IsNull() ? "" : std::to_string(r[2].AsInt()) + "@" + r[3].AsText();
            if (auto serial = SoaSerial(r[1].AsText())) entry.second.push_back(*serial);
          }
        } catch (const std::exception&) {
          conns[i].reset();  // a busy or restarting database: the next poll
          continue;
        }
        ++polls_;
        for (auto it = last[i].begin(); it != last[i].end();) {
          it = seen.count(it->first) ? std::next(it) : last[i].erase(it);
        }
        for (const auto& [zone, state] : seen) {
          const auto& [epoch, serials] = state;
          if (serials.size() != 1) continue;  // check b reports zones without one SOA
          ++observations_;
          const int64_t now = serials[0];
          auto it = last[i].find(zone);
          if (it != last[i].end() && it->second.first != epoch) {
            ++incarnations_;
            last[i].erase(it);
            it = last[i].end();
          }
          if (it != last[i].end() && Rfc1982Less(now, it->second.second)) {
            if (g_serial_notes.Noted(zone, now)) {
              ++forgiven_;
            } else if (decreases_.size() < 40) {
              decreases_.push_back(fmt::format(
                  "node {} zone {} (incarnation {}): {} -> {} at {:.3f}s", ids_[i], zone, epoch,
                  it->second.second, now,
                  std::chrono::duration<double>(Clock::now() - t0).count()));
            } else {
              ++more_decreases_;
            }
          }
          last[i][zone] = {epoch, now};
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms_));
    }
    if (more_decreases_ > 0) decreases_.push_back(fmt::format("... and {} more", more_decreases_));
  }

  static bool Rfc1982Less(int64_t a, int64_t b) {
    const uint32_t d = static_cast<uint32_t>(b) - static_cast<uint32_t>(a);
    return d != 0 && d < 0x80000000u;
  }

  std::vector<std::function<std::unique_ptr<db::Connection>()>> connect_;
  std::vector<std::string> ids_;
  int interval_ms_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::atomic<int64_t> polls_{0}, observations_{0}, forgiven_{0}, incarnations_{0};
  int64_t more_decreases_ = 0;
  std::vector<std::string> decreases_;
};

// The random numbers of one operation, drawn up front and always the same
// number of them, so that the sequence of intended operations depends on the
// seed only, whatever the database state turns out to be.
struct Draw {
  uint64_t v[12];
  uint64_t u(int i, uint64_t n) const { return n == 0 ? 0 : v[i] % n; }
};

// An operation that found nothing to do: its transaction is rolled back.
struct Noop {};

class Writer {
 public:
  Writer(Node& node, uint64_t seed, const Options& opt, const std::atomic<bool>& stop)
      : node_(node), rng_(seed), opt_(opt), stop_(stop) {}

  void Run() {
    try {
      for (int i = 0; (opt_.ops == 0 || i < opt_.ops) && !stop_.load(); ++i) {
        OneOperation(i);
        ++done_;
      }
    } catch (const std::exception& e) {
      NoteError("writer", std::string("stopped: ") + e.what());
    }
    finished_ = true;
  }

  int done() const { return done_.load(); }
  bool finished() const { return finished_.load(); }
  const std::string& node_id() const { return node_.id(); }

  struct Summary {
    int64_t committed = 0, refused = 0, noops = 0, errors = 0;
    std::map<std::string, int64_t> by_op;
    std::vector<std::string> error_samples;
    std::vector<std::string> refusal_samples;
  };
  Summary summary() {
    std::lock_guard<std::mutex> lock(mu_);
    return summary_;
  }

 private:
  enum class Outcome { kCommitted, kRefused, kNoop, kError };

  void NoteError(const std::string& op, const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    summary_.errors++;
    if (summary_.error_samples.size() < 5) summary_.error_samples.push_back(op + ": " + what);
    g_log.Event(fmt::format("writer {}: {} failed: {}", node_.id(), op, what));
  }

  // One transaction, retried on transient errors (busy, deadlock, lost
  // connection) as an operator's script would. A constraint error is a
  // write the database refused, as it would refuse PowerDNS's when a race
  // with the applier made it invalid (the zone was created or deleted by a
  // replicated change between the read and the write).
  Outcome Tx(const std::string& op, const std::function<void(db::Connection&)>& body) {
    for (int attempt = 1;; ++attempt) {
      try {
        if (!conn_) conn_ = node_.Connect();
        conn_->Begin();
        body(*conn_);
        conn_->Commit();
        Count(op, Outcome::kCommitted, "");
        return Outcome::kCommitted;
      } catch (const Noop&) {
        conn_->Rollback();
        Count(op, Outcome::kNoop, "");
        return Outcome::kNoop;
      } catch (const db::Error& e) {
        if (conn_) conn_->Rollback();
        if (e.kind() == db::Error::Kind::kConstraint) {
          Count(op, Outcome::kRefused, e.what());
          return Outcome::kRefused;
        }
        if (e.connection_lost()) conn_.reset();
        if (e.transient() && attempt < 200 && !stop_.load()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(std::min(2 * attempt, 100)));
          continue;
        }
        NoteError(op, fmt::format("{} (after {} attempt(s))", e.what(), attempt));
        return Outcome::kError;
      } catch (const std::exception& e) {
        if (conn_) conn_->Rollback();
        NoteError(op, e.what());
        return Outcome::kError;
      }
    }
  }

  void Count(const std::string& op, Outcome o, const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    switch (o) {
      case Outcome::kCommitted:
        summary_.committed++;
        summary_.by_op[op]++;
        break;
      case Outcome::kRefused:
        summary_.refused++;
        summary_.by_op[op + "(refused)"]++;
        if (summary_.refusal_samples.size() < 3) summary_.refusal_samples.push_back(op + ": " + why);
        break;
      case Outcome::kNoop:
        summary_.noops++;
        break;
      case Outcome::kError:
        break;
    }
  }

  // Outside a transaction (autocommit), retried like Tx.
  std::optional<bool> ZoneExists(const std::string& zone) {
    for (int attempt = 1;; ++attempt) {
      try {
        if (!conn_) conn_ = node_.Connect();
        return ZoneId(*conn_, zone).has_value();
      } catch (const db::Error& e) {
        if (e.connection_lost()) conn_.reset();
        if (e.transient() && attempt < 200 && !stop_.load()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(std::min(2 * attempt, 100)));
          continue;
        }
        NoteError("lookup", e.what());
        return std::nullopt;
      }
    }
  }

  static std::optional<int64_t> ZoneId(db::Connection& c, const std::string& zone) {
    auto rows = c.Query("SELECT id FROM domains WHERE name = ?", {zone});
    if (rows.empty()) return std::nullopt;
    return rows[0][0].AsInt();
  }
  static int64_t RequireZone(db::Connection& c, const std::string& zone) {
    auto id = ZoneId(c, zone);
    if (!id) throw Noop{};
    return *id;
  }
  static void InsertRecord(db::Connection& c, int64_t zid, const std::string& name,
                           const std::string& type, const std::string& content, int64_t ttl) {
    c.Execute(
        "INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) "
        "VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
        {zid, name, type, content, ttl, Value(false), Value(true)});
  }
  static bool HasRecord(db::Connection& c, int64_t zid, const std::string& name,
                        const std::string& type, const std::string& content) {
    return !c.Query("SELECT 1 FROM records WHERE domain_id = ? AND name = ? AND type = ? AND content = ?",
                    {zid, name, type, content})
                .empty();
  }
  // pdnsutil create-zone: the zone, its SOA and an NS record.
  static void CreateZone(db::Connection& c, const std::string& zone, int64_t serial) {
    c.Execute("INSERT INTO domains (name, type, account) VALUES (?, 'NATIVE', '')", {zone});
    int64_t zid = *ZoneId(c, zone);
    c.Execute(
        "INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) "
        "VALUES (?, ?, 'SOA', ?, 3600, 0, ?, ?)",
        {zid, zone, Soa(zone, serial), Value(false), Value(true)});
    InsertRecord(c, zid, zone, "NS", "ns1." + zone + ".", 3600);
  }
  // deleteDomain: child tables, then the zone.
  static void DeleteZone(db::Connection& c, int64_t zid) {
    for (const char* t : {"records", "domainmetadata", "cryptokeys", "comments"}) {
      c.Execute(std::string("DELETE FROM ") + t + " WHERE domain_id = ?", {zid});
    }
    c.Execute("DELETE FROM domains WHERE id = ?", {zid});
  }

  void OneOperation(int index) {
    Draw r;
    for (uint64_t& x : r.v) x = rng_();
    const int roll = static_cast<int>(r.u(0, 100));
    // The first half of the zones (rounded up) live and die: only they are
    // deleted and re-created, so incarnation races happen there. The others
    // are created once and then only edited, so that data accumulates and
    // row-level conflicts are not all swept away by zone deletes.
    const uint64_t mortal_zones = std::max<uint64_t>(1, (static_cast<uint64_t>(opt_.zones) + 1) / 2);
    const std::string zone =
        ZoneName(roll < 4 ? r.u(1, mortal_zones) : r.u(1, static_cast<uint64_t>(opt_.zones)));
    const std::string name = kLabels[r.u(2, kLabels.size())] + zone;
    const std::string type = kTypes[r.u(3, kTypes.size())];
    const std::vector<std::string> contents = ContentsFor(type);
    const std::string content = contents[r.u(4, contents.size())];
    const int64_t ttl = 60 + static_cast<int64_t>(r.u(5, 3600));
    const int64_t serial = 1 + static_cast<int64_t>(r.u(7, 2000000000));
    const std::string& me = node_.id();

    // Operations on a zone create it when it is missing: deleted zones come
    // back soon, often on another node than the one that deleted them.
    const bool zone_op = roll < 79 || roll >= 91;
    if (zone_op) {
      std::optional<bool> exists = ZoneExists(zone);
      if (!exists) return;  // the error is noted
      if (!*exists) {
        Tx("create-zone", [&](db::Connection& c) {
          if (ZoneId(c, zone)) throw Noop{};
          CreateZone(c, zone, serial);
          NoteSetSerial(zone, serial);
        });
        Think(r);
        return;
      }
    }

    if (roll < 2) {
      Tx("delete-zone", [&](db::Connection& c) { DeleteZone(c, RequireZone(c, zone)); });
    } else if (roll < 3) {
      Tx("recreate-zone-1tx", [&](db::Connection& c) {
        DeleteZone(c, RequireZone(c, zone));
        CreateZone(c, zone, serial);
        NoteSetSerial(zone, serial);
      });
    } else if (roll < 4) {
      if (Tx("recreate-zone-2tx", [&](db::Connection& c) { DeleteZone(c, RequireZone(c, zone)); }) ==
          Outcome::kCommitted) {
        Tx("create-zone", [&](db::Connection& c) {
          if (ZoneId(c, zone)) throw Noop{};
          CreateZone(c, zone, serial);
          NoteSetSerial(zone, serial);
        });
      }
    } else if (roll < 22) {  // 18%
      Tx("add-record", [&](db::Connection& c) {
        int64_t zid = RequireZone(c, zone);
        if (HasRecord(c, zid, name, type, content)) throw Noop{};
        InsertRecord(c, zid, name, type, content, ttl);
      });
    } else if (roll < 30) {
      Tx("delete-record", [&](db::Connection& c) {
        int64_t zid = RequireZone(c, zone);
        auto rows = c.Query(
            "SELECT id FROM records WHERE domain_id = ? AND type <> 'SOA' "
            "ORDER BY name, type, content, id",
            {zid});
        if (rows.empty()) throw Noop{};
        c.Execute("DELETE FROM records WHERE id = ?", {rows[r.u(6, rows.size())][0]});
      });
    } else if (roll < 44) {
      Tx("replace-rrset", [&](db::Connection& c) {
        int64_t zid = RequireZone(c, zone);
        c.Execute("DELETE FROM records WHERE domain_id = ? AND name = ? AND type = ?",
                  {zid, name, type});
        std::vector<std::string> all = contents;
        const size_t n = 1 + r.u(6, std::min<size_t>(3, all.size()));
        for (size_t k = 0; k < n; ++k) {
          const std::string& ct = all[(r.u(8, all.size()) + k) % all.size()];
          InsertRecord(c, zid, name, type, ct, ttl);
        }
      });
    } else if (roll < 50) {
      Tx("set-ttl", [&](db::Connection& c) {
        int64_t zid = RequireZone(c, zone);
        if (c.Execute("UPDATE records SET ttl = ? WHERE domain_id = ? AND name = ? AND type = ?",
                      {ttl, zid, name, type}) == 0)
          throw Noop{};
      });
    } else if (roll < 51) {
      // An operator setting a serial of their choice, lower ones included.
      Tx("set-serial", [&](db::Connection& c) {
        int64_t zid = RequireZone(c, zone);
        c.Execute("UPDATE records SET content = ? WHERE domain_id = ? AND type = 'SOA'",
                  {Soa(zone, serial), zid});
        NoteSetSerial(zone, serial);
      });
    } else if (roll < 53) {
      // pdnsutil increase-serial / SOA-EDIT-API INCREASE: read, add one.
      Tx("increase-serial", [&](db::Connection& c) {
        int64_t zid = RequireZone(c, zone);
        auto rows = c.Query("SELECT content FROM records WHERE domain_id = ? AND type = 'SOA'", {zid});
        if (rows.size() != 1) throw Noop{};
        const std::optional<int64_t> cur = SoaSerial(rows[0][0].AsText());
        if (!cur) throw Noop{};
        c.Execute("UPDATE records SET content = ? WHERE domain_id = ? AND type = 'SOA'",
                  {Soa(zone, (*cur + 1) & 0xffffffffLL), zid});
      });
    } else if (roll < 56) {
      // What PowerDNS writes for an RFC 2136 update with
      // SOA-EDIT-DNSUPDATE=INCREASE: the RRset replaced (delete + insert),
      // then the SOA replaced the same way with the serial plus one, in
      // one transaction.
      Tx("ddns-update", [&](db::Connection& c) {
        int64_t zid = RequireZone(c, zone);
        auto rows = c.Query("SELECT content FROM records WHERE domain_id = ? AND type = 'SOA'", {zid});
        if (rows.size() != 1) throw Noop{};
        const std::optional<int64_t> cur = SoaSerial(rows[0][0].AsText());
        if (!cur) throw Noop{};
        c.Execute("DELETE FROM records WHERE domain_id = ? AND name = ? AND type = ?", {zid, name, type});
        const size_t n = 1 + r.u(6, 2);
        for (size_t k = 0; k < n; ++k) {
          InsertRecord(c, zid, name, type, contents[(r.u(8, contents.size()) + k) % contents.size()], ttl);
        }
        c.Execute("DELETE FROM records WHERE domain_id = ? AND name = ? AND type = 'SOA'", {zid, zone});
        InsertRecord(c, zid, zone, "SOA", Soa(zone, (*cur + 1) & 0xffffffffLL), 3600);
      });
    } else if (roll < 59) {
      // A single-valued RRset (one logical row whatever its content).
      const std::string alias = "alias." + zone;
      const std::string target = "t" + std::to_string(r.u(6, 4)) + ".example.net.";
      if (r.u(8, 2) == 0) {
        Tx("replace-cname", [&](db::Connection& c) {
          int64_t zid = RequireZone(c, zone);
          c.Execute("DELETE FROM records WHERE domain_id = ? AND name = ? AND type = 'CNAME'",
                    {zid, alias});
          InsertRecord(c, zid, alias, "CNAME", target, ttl);
        });
      } else {
        Tx("edit-cname", [&](db::Connection& c) {
          int64_t zid = RequireZone(c, zone);
          if (c.Execute("UPDATE records SET content = ? WHERE domain_id = ? AND name = ? AND type = 'CNAME'",
                        {target, zid, alias}) == 0)
            throw Noop{};
        });
      }
    } else if (roll < 66) {
      static const std::vector<std::string> kinds = {"ALSO-NOTIFY", "SOA-EDIT-API", "X-CHAOS-NOTE"};
      const std::string kind = kinds[r.u(6, kinds.size())];
      std::vector<std::string> values;
      if (kind == "ALSO-NOTIFY") {
        std::vector<std::string> all = {"192.0.2.53", "192.0.2.54", "198.51.100.53"};
        for (size_t k = 0; k < all.size(); ++k) {
          if ((r.v[8] >> k) & 1) values.push_back(all[k]);
        }
      } else if (kind == "SOA-EDIT-API") {
        static const std::vector<std::string> v = {"DEFAULT", "INCREASE", "EPOCH"};
        values = {v[r.u(8, v.size())]};
      } else {
        values = {"note " + std::to_string(r.u(8, 5)) + " from " + me};
      }
      Tx("set-metadata", [&](db::Connection& c) {
        int64_t zid = RequireZone(c, zone);
        c.Execute("DELETE FROM domainmetadata WHERE domain_id = ? AND kind = ?", {zid, kind});
        for (const std::string& v : values) {
          c.Execute("INSERT INTO domainmetadata (domain_id, kind, content) VALUES (?, ?, ?)",
                    {zid, kind, v});
        }
      });
    } else if (roll < 69) {
      static const std::vector<std::string> columns = {"type", "account", "master"};
      const std::string column = columns[r.u(6, columns.size())];
      const std::string value = column == "type"      ? (r.u(8, 2) ? "NATIVE" : "MASTER")
                                : column == "account" ? "acct" + std::to_string(r.u(8, 3))
                                                      : "192.0.2." + std::to_string(1 + r.u(8, 3));
      Tx("edit-zone", [&](db::Connection& c) {
        int64_t zid = RequireZone(c, zone);
        c.Execute("UPDATE domains SET " + column + " = ? WHERE id = ?", {value, zid});
      });
    } else if (roll < 75) {
      const std::string key = "Private-key-format: v1.2\nAlgorithm: 13\nPrivateKey: k" +
                              std::to_string(r.u(6, 4));
      const int action = static_cast<int>(r.u(8, 3));
      Tx(action == 0 ? "add-cryptokey" : action == 1 ? "remove-cryptokey" : "toggle-cryptokey",
         [&](db::Connection& c) {
           int64_t zid = RequireZone(c, zone);
           auto rows = c.Query("SELECT id, active FROM cryptokeys WHERE domain_id = ? AND content = ?",
                               {zid, key});
           if (action == 0) {
             if (!rows.empty()) throw Noop{};
             c.Execute(
                 "INSERT INTO cryptokeys (domain_id, flags, active, published, content) "
                 "VALUES (?, ?, ?, ?, ?)",
                 {zid, int64_t{r.u(9, 2) ? 257 : 256}, Value(r.u(10, 2) == 1), Value(true), key});
           } else if (action == 1) {
             if (rows.empty()) throw Noop{};
             c.Execute("DELETE FROM cryptokeys WHERE domain_id = ? AND content = ?", {zid, key});
           } else {
             if (rows.empty()) throw Noop{};
             c.Execute("UPDATE cryptokeys SET active = ? WHERE id = ?",
                       {Value(!rows[0][1].AsBool()), rows[0][0]});
           }
         });
    } else if (roll < 79) {
      Tx("replace-comments", [&](db::Connection& c) {
        int64_t zid = RequireZone(c, zone);
        c.Execute("DELETE FROM comments WHERE domain_id = ? AND name = ? AND type = ?",
                  {zid, name, type});
        for (uint64_t k = r.u(6, 3); k > 0; --k) {
          c.Execute(
              "INSERT INTO comments (domain_id, name, type, modified_at, account, comment) "
              "VALUES (?, ?, ?, ?, ?, ?)",
              {zid, name, type, static_cast<int64_t>(1 + r.u(8, 3)), "admin",
               "comment " + std::to_string(k) + " by " + me});
        }
      });
    } else if (roll < 85) {
      const std::string key = "k" + std::to_string(r.u(6, 5)) + ".chaos";
      const std::string algo = r.u(8, 2) ? "hmac-sha256" : "hmac-sha512";
      const std::string secret = "c2VjcmV0" + std::to_string(r.u(9, 1000000)) + "==";
      Tx("set-tsigkey", [&](db::Connection& c) {
        c.Execute("DELETE FROM tsigkeys WHERE name = ? AND algorithm = ?", {key, algo});
        c.Execute("INSERT INTO tsigkeys (name, algorithm, secret) VALUES (?, ?, ?)",
                  {key, algo, secret});
      });
    } else if (roll < 88) {
      const std::string key = "k" + std::to_string(r.u(6, 5)) + ".chaos";
      Tx("delete-tsigkey", [&](db::Connection& c) {
        if (c.Execute("DELETE FROM tsigkeys WHERE name = ?", {key}) == 0) throw Noop{};
      });
    } else if (roll < 91) {
      const std::string ip = "192.0.2." + std::to_string(100 + r.u(6, 3));
      const std::string ns = "ns" + std::to_string(1 + r.u(8, 2)) + ".example.net";
      const bool insert = r.u(9, 3) != 0;
      const std::string account = "acct" + std::to_string(r.u(10, 3));
      Tx(insert ? "set-autoprimary" : "delete-autoprimary", [&](db::Connection& c) {
        c.Execute("DELETE FROM supermasters WHERE ip = ? AND nameserver = ?", {ip, ns});
        if (insert) {
          c.Execute("INSERT INTO supermasters (ip, nameserver, account) VALUES (?, ?, ?)",
                    {ip, ns, account});
        }
      });
    } else if (roll < 96) {
      // A transaction larger than a batch: the round travels in parts.
      const uint64_t n = 10 + r.u(6, 31);
      Tx("bulk-add", [&](db::Connection& c) {
        int64_t zid = RequireZone(c, zone);
        for (uint64_t k = 0; k < n; ++k) {
          const std::string h = "h" + std::to_string((r.u(8, 60) + k) % 60) + "." + zone;
          const std::string ip = "192.0.2." + std::to_string(1 + (r.u(9, 200) + k) % 200);
          if (!HasRecord(c, zid, h, "A", ip)) InsertRecord(c, zid, h, "A", ip, ttl);
        }
      });
    } else {
      const bool whole_zone = r.u(6, 2) == 0;
      Tx(whole_zone ? "clear-zone" : "clear-name", [&](db::Connection& c) {
        int64_t zid = RequireZone(c, zone);
        int64_t n = whole_zone
                        ? c.Execute("DELETE FROM records WHERE domain_id = ? AND type NOT IN ('SOA', 'NS')", {zid})
                        : c.Execute("DELETE FROM records WHERE domain_id = ? AND name LIKE ? AND type <> 'SOA'",
                                    {zid, "h%"});
        if (n == 0) throw Noop{};
      });
    }
    (void)index;
    Think(r);
  }

  void Think(const Draw& r) {
    if (opt_.think_ms > 0)
      std::this_thread::sleep_for(std::chrono::microseconds(r.u(11, opt_.think_ms * 1000 + 1)));
  }

  Node& node_;
  std::mt19937_64 rng_;
  const Options& opt_;
  const std::atomic<bool>& stop_;
  std::unique_ptr<db::Connection> conn_;
  std::atomic<int> done_{0};
  std::atomic<bool> finished_{false};
  std::mutex mu_;
  Summary summary_;
};

// ------------------------------------------------------------------ mesh --

struct MeshNode {
  std::unique_ptr<Node> node;
  Dialect dialect = Dialect::kSqlite;
  std::string server_db;  // database name on a server, empty for SQLite
  std::optional<Clock::time_point> restart_at;  // down on purpose until then
  int restart_failures = 0;
};

class Mesh {
 public:
  Mesh(const Options& opt) : opt_(opt) {}

  ~Mesh() {
    // No daemon outlives the tool, whatever way it ends.
    for (auto& n : nodes_) {
      if (n.node) n.node->Kill();
    }
    proxies_.clear();
  }

  size_t size() const { return nodes_.size(); }
  MeshNode& at(size_t i) { return nodes_[i]; }
  Node& node(size_t i) { return *nodes_[i].node; }
  TcpProxy& link(size_t from, size_t to) { return *proxies_[from * nodes_.size() + to]; }

  // The daemons' "conflict" section (--strategy).
  json ConflictConfig() const {
    json c = {{"strategy", opt_.strategy}};
    if (opt_.strategy == "priority") {
      json order = json::array();
      for (const MeshNode& m : nodes_) order.push_back(m.node->id());
      c["priority"] = order;
    }
    return c;
  }

  void Setup() {
    const size_t n = static_cast<size_t>(opt_.nodes);
    fs::create_directories(opt_.workdir);
    for (size_t i = 0; i < n; ++i) {
      MeshNode m;
      const std::string id(1, static_cast<char>('a' + i));
      m.dialect = opt_.databases[i % opt_.databases.size()];
      m.node = std::make_unique<Node>(id, opt_.workdir + "/" + id, FreeLoopbackPort());
      if (m.dialect != Dialect::kSqlite) {
        m.server_db = fmt::format("zmchaos_{}_{}", getpid(), id);
        m.node->UseDatabase(CreateServerDatabase(m.dialect, m.server_db));
      }
      nodes_.push_back(std::move(m));
    }
    // One proxy per directed link: i's pushes to j go through link(i, j).
    proxies_.resize(n * n);
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < n; ++j) {
        if (i != j) proxies_[i * n + j] = std::make_unique<TcpProxy>(node(j).port());
      }
    }
    const json overrides = {
        {"batch_max_changes", opt_.batch},
        {"retry_min_ms", 20},
        {"retry_max_ms", 300},
        {"request_timeout_ms", opt_.request_timeout_ms},
        // Nothing is purged during a run (and below any history retention).
        {"outbox_retention_seconds", int64_t{2} * 86400},
        {"log_level", opt_.log_level},
        {"conflict", ConflictConfig()},
        {"anti_entropy",
         opt_.anti_entropy_s > 0
             ? json{{"interval_seconds", opt_.anti_entropy_s}, {"settle_seconds", 1},
                    {"rehash_seconds", opt_.anti_entropy_s}}
             : json{{"interval_seconds", 0}}},
    };
    for (size_t i = 0; i < n; ++i) {
      std::vector<PeerRef> peers;
      for (size_t j = 0; j < n; ++j) {
        if (i != j) peers.push_back({node(j).id(), link(i, j).url()});
      }
      node(i).WriteConfig(peers, overrides);
      node(i).Install();
    }
  }

  std::string Describe(size_t i) {
    Node& nd = node(i);
    std::string peers;
    for (size_t j = 0; j < size(); ++j) {
      if (j != i) peers += fmt::format(" {}->{} via :{}", nd.id(), node(j).id(), link(i, j).port());
    }
    return fmt::format("node {}: {} on port {}; links:{}", nd.id(),
                       DescribeDatabase(nd.database(), nd.db_path()), nd.port(), peers);
  }

  void DropDatabases() {
    for (auto& m : nodes_) {
      if (m.server_db.empty()) continue;
      try {
        DropServerDatabase(m.dialect, m.server_db);
      } catch (const std::exception& e) {
        g_log.Always("warning: could not drop database " + m.server_db + ": " + e.what());
      }
    }
  }

 private:
  const Options& opt_;
  std::vector<MeshNode> nodes_;
  std::vector<std::unique_ptr<TcpProxy>> proxies_;
};

// --------------------------------------------------------------- chaos --

struct ChaosStats {
  int events = 0;
  int cuts = 0, blackholes = 0, isolations = 0, heals = 0;
  int stops = 0, kills = 0, restarts = 0;
  std::vector<std::string> failures;  // unclean shutdowns, failed restarts
};

class Chaos {
 public:
  Chaos(Mesh& mesh, const Options& opt)
      : mesh_(mesh), opt_(opt), rng_(SubSeed(opt.seed, 1000)) {
    const size_t n = mesh.size();
    heal_at_.assign(n * n, std::nullopt);
  }

  ChaosStats& stats() { return stats_; }

  // Called from the main thread while the writers run: performs whatever is
  // due (restarts, heals) and the next random event when its time comes.
  void Tick() {
    const auto now = Clock::now();
    DueRestarts(now);
    DueHeals(now);
    if (now < next_event_) return;
    Draw d;
    for (uint64_t& x : d.v) x = rng_();
    const int64_t gap = opt_.chaos_interval_ms / 2 + static_cast<int64_t>(d.u(11, opt_.chaos_interval_ms + 1));
    next_event_ = now + std::chrono::milliseconds(gap);
    if (opt_.chaos.empty()) return;
    Event(d);
  }

  // Unblocks every link and starts every daemon that is down.
  void HealAll() {
    const size_t n = mesh_.size();
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < n; ++j) {
        if (i == j) continue;
        if (mesh_.link(i, j).blocked()) mesh_.link(i, j).Unblock();
        heal_at_[i * n + j].reset();
      }
    }
    g_log.Event("heal: every link open");
    for (size_t i = 0; i < n; ++i) {
      MeshNode& m = mesh_.at(i);
      m.restart_at.reset();
      for (int attempt = 0; !m.node->running() && attempt < 5; ++attempt) {
        if (attempt > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
        Restart(i, "heal");
      }
    }
  }

  std::string State() {
    const size_t n = mesh_.size();
    std::string down, cut;
    for (size_t i = 0; i < n; ++i) {
      if (!mesh_.node(i).running()) down += (down.empty() ? "" : ",") + mesh_.node(i).id();
      for (size_t j = 0; j < n; ++j) {
        if (i != j && mesh_.link(i, j).blocked())
          cut += (cut.empty() ? "" : ",") + mesh_.node(i).id() + ">" + mesh_.node(j).id();
      }
    }
    return fmt::format("down [{}], cut [{}]", down, cut);
  }

 private:
  void Event(const Draw& d) {
    std::vector<std::string> kinds;
    std::vector<int> weights;
    auto add = [&](const std::string& k, int w) {
      if (opt_.chaos.count(k)) {
        kinds.push_back(k);
        weights.push_back(w);
      }
    };
    add("cut", 40);
    add("blackhole", 10);
    add("isolate", 8);
    add("stop", 12);
    add("kill", 14);
    kinds.push_back("heal");
    weights.push_back(8);
    int total = 0;
    for (int w : weights) total += w;
    int pick = static_cast<int>(d.u(0, static_cast<uint64_t>(total)));
    std::string kind;
    for (size_t k = 0; k < kinds.size(); ++k) {
      if (pick < weights[k]) {
        kind = kinds[k];
        break;
      }
      pick -= weights[k];
    }
    const size_t n = mesh_.size();
    const size_t a = d.u(1, n);
    const size_t b = (a + 1 + d.u(2, n - 1)) % n;
    const auto hold = std::chrono::milliseconds(150 + d.u(3, 3500));
    const auto now = Clock::now();
    ++stats_.events;

    if (kind == "cut" || kind == "blackhole") {
      const bool both = kind == "cut" && d.u(4, 3) == 0;
      const auto mode = kind == "cut" ? TcpProxy::BlockMode::kReset : TcpProxy::BlockMode::kBlackhole;
      Block(a, b, mode, now + hold);
      if (both) Block(b, a, mode, now + hold);
      kind == "cut" ? ++stats_.cuts : ++stats_.blackholes;
      g_log.Event(fmt::format("chaos: {} {}{}{} for {} ms", kind == "cut" ? "cut" : "blackhole",
                              mesh_.node(a).id(), both ? "<->" : "->", mesh_.node(b).id(),
                              hold.count()));
    } else if (kind == "isolate") {
      for (size_t j = 0; j < n; ++j) {
        if (j == a) continue;
        Block(a, j, TcpProxy::BlockMode::kReset, now + hold);
        Block(j, a, TcpProxy::BlockMode::kReset, now + hold);
      }
      ++stats_.isolations;
      g_log.Event(fmt::format("chaos: isolate {} for {} ms", mesh_.node(a).id(), hold.count()));
    } else if (kind == "stop" || kind == "kill") {
      MeshNode& m = mesh_.at(a);
      int down = 0;
      for (size_t i = 0; i < n; ++i) down += mesh_.node(i).running() ? 0 : 1;
      if (!m.node->running() || down + 1 >= static_cast<int>(n)) {
        g_log.Event(fmt::format("chaos: {} {}: skipped ({})", kind, m.node->id(),
                                m.node->running() ? "too many nodes down" : "already down"));
        return;
      }
      const auto down_for = std::chrono::milliseconds(d.u(5, 3000));
      if (kind == "stop") {
        const auto t0 = Clock::now();
        const int code = m.node->Stop(std::chrono::seconds(30));
        ++stats_.stops;
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        g_log.Event(fmt::format("chaos: SIGTERM {} -> exit {} after {:.0f} ms; restart in {} ms",
                                m.node->id(), code, ms, down_for.count()));
        if (code != 0) {
          stats_.failures.push_back(fmt::format("node {} exited {} after SIGTERM (t={:.3f}s)",
                                                m.node->id(), code, g_log.Elapsed()));
          g_log.Event("  log tail:\n" + m.node->LogTail(20));
        }
      } else {
        m.node->Kill();
        ++stats_.kills;
        g_log.Event(fmt::format("chaos: SIGKILL {}; restart in {} ms", m.node->id(), down_for.count()));
      }
      m.restart_at = Clock::now() + down_for;
    } else {
      for (size_t i = 0; i < n; ++i) {
        for (size_t j = 0; j < n; ++j) {
          if (i != j && mesh_.link(i, j).blocked()) {
            mesh_.link(i, j).Unblock();
            heal_at_[i * n + j].reset();
          }
        }
      }
      ++stats_.heals;
      g_log.Event("chaos: heal every link");
    }
  }

  void Block(size_t from, size_t to, TcpProxy::BlockMode mode, Clock::time_point until) {
    const size_t n = mesh_.size();
    TcpProxy& p = mesh_.link(from, to);
    // A reset takes precedence over a blackhole on the same link.
    if (p.mode() == TcpProxy::BlockMode::kNone || mode == TcpProxy::BlockMode::kReset) p.Block(mode);
    auto& h = heal_at_[from * n + to];
    if (!h || *h < until) h = until;
  }

  void DueHeals(Clock::time_point now) {
    const size_t n = mesh_.size();
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < n; ++j) {
        auto& h = heal_at_[i * n + j];
        if (h && *h <= now) {
          h.reset();
          if (mesh_.link(i, j).blocked()) {
            mesh_.link(i, j).Unblock();
            g_log.Event(fmt::format("chaos: link {}->{} open again", mesh_.node(i).id(),
                                    mesh_.node(j).id()));
          }
        }
      }
    }
  }

  void DueRestarts(Clock::time_point now) {
    for (size_t i = 0; i < mesh_.size(); ++i) {
      MeshNode& m = mesh_.at(i);
      if (!m.restart_at && !m.node->running()) {
        // Down without being stopped or killed: it died on its own.
        stats_.failures.push_back(fmt::format("node {} exited on its own (t={:.3f}s)", m.node->id(),
                                              g_log.Elapsed()));
        g_log.Event("node " + m.node->id() + " exited on its own; log tail:\n" + m.node->LogTail(30));
        m.restart_at = now;
      }
      if (m.restart_at && *m.restart_at <= now) {
        if (Restart(i, "restart")) {
          m.restart_at.reset();
        } else {
          m.restart_at = now + std::chrono::seconds(1);  // try again
        }
      }
    }
  }

  bool Restart(size_t i, const std::string& why) {
    MeshNode& m = mesh_.at(i);
    if (m.node->running()) return true;
    const auto t0 = Clock::now();
    try {
      m.node->Start(std::chrono::seconds(60));
      ++stats_.restarts;
      g_log.Event(fmt::format("{}: started {} (pid {}, {:.0f} ms)", why, m.node->id(), m.node->pid(),
                              std::chrono::duration<double, std::milli>(Clock::now() - t0).count()));
      return true;
    } catch (const std::exception& e) {
      ++m.restart_failures;
      stats_.failures.push_back(fmt::format("node {} failed to start (t={:.3f}s): {}", m.node->id(),
                                            g_log.Elapsed(), e.what()));
      g_log.Event(fmt::format("{}: starting {} failed: {}", why, m.node->id(), e.what()));
      return false;
    }
  }

  Mesh& mesh_;
  const Options& opt_;
  std::mt19937_64 rng_;
  ChaosStats stats_;
  Clock::time_point next_event_ = Clock::now();
  std::vector<std::optional<Clock::time_point>> heal_at_;
};

// ---------------------------------------------------------- quiet mesh --

Position LastStamped(db::Connection& c) {
  auto rows = c.Query(
      "SELECT csn, id FROM zm_outbox WHERE csn IS NOT NULL ORDER BY csn DESC, id DESC LIMIT 1");
  if (rows.empty()) return {};
  return {rows[0][0].AsInt(), rows[0][1].AsInt()};
}

// True when the mesh is quiet and converged (the harness's definition:
// every daemon runs, no unstamped outbox rows, every send cursor at its
// node's last stamped position, every /status queue empty, nothing staged,
// equal dump checksums; and here also: nothing parked); else false with the
// reason in *why.
bool QuietAndConverged(Mesh& mesh, std::string* why) {
  for (size_t i = 0; i < mesh.size(); ++i) {
    Node& n = mesh.node(i);
    if (!n.running()) {
      *why = "node " + n.id() + " is not running";
      return false;
    }
    json s = n.Status();
    for (const json& p : s["peers"]) {
      if (p.value("queue_depth", int64_t{-1}) != 0) {
        *why = "node " + n.id() + " /status: queue_depth " + p["queue_depth"].dump() + " for peer " +
               p.value("id", "?") + " (state " + p.value("state", "?") + ")";
        return false;
      }
    }
    auto c = n.Connect();
    int64_t unstamped = c->Query("SELECT COUNT(*) FROM zm_outbox WHERE csn IS NULL")[0][0].AsInt();
    if (unstamped > 0) {
      *why = fmt::format("node {} has {} unstamped outbox rows", n.id(), unstamped);
      return false;
    }
    int64_t staged = c->Query("SELECT COUNT(*) FROM zm_stage")[0][0].AsInt();
    if (staged > 0) {
      *why = fmt::format("node {} has {} staged rows", n.id(), staged);
      return false;
    }
    // Parked changes are retried later and may still change data: not quiet.
    int64_t parked = c->Query("SELECT COUNT(*) FROM zm_parked")[0][0].AsInt();
    if (parked > 0) {
      *why = fmt::format("node {} has {} parked changes", n.id(), parked);
      return false;
    }
    Position last = LastStamped(*c);
    if (!last.IsZero()) {
      for (size_t j = 0; j < mesh.size(); ++j) {
        if (j == i) continue;
        auto rows = c->Query("SELECT csn, id FROM zm_peer WHERE peer = ?", {mesh.node(j).id()});
        Position cursor = rows.empty() ? Position{} : Position{rows[0][0].AsInt(), rows[0][1].AsInt()};
        if (cursor < last) {
          *why = "node " + n.id() + "'s cursor for " + mesh.node(j).id() + " is " + cursor.ToString() +
                 ", its outbox ends at " + last.ToString();
          return false;
        }
      }
    }
  }
  std::string first;
  for (size_t i = 0; i < mesh.size(); ++i) {
    std::string sum = mesh.node(i).Checksum();
    if (i == 0) {
      first = sum;
    } else if (sum != first) {
      *why = "quiet, but checksums differ (" + mesh.node(0).id() + " " + first.substr(0, 12) + ", " +
             mesh.node(i).id() + " " + sum.substr(0, 12) + ")";
      return false;
    }
  }
  return true;
}

std::string Diagnostics(Mesh& mesh, size_t log_lines) {
  std::ostringstream out;
  for (size_t i = 0; i < mesh.size(); ++i) {
    Node& n = mesh.node(i);
    out << "===== node " << n.id() << " (" << n.url() << ", "
        << (n.running() ? "pid " + std::to_string(n.pid()) : std::string("not running")) << ") =====\n";
    if (n.running()) {
      std::optional<json> s = n.TryStatus();
      if (s && s->contains("peers")) {
        for (const json& p : (*s)["peers"]) out << "peer " << p.dump() << "\n";
      } else {
        out << "status: (no answer)\n";
      }
    }
    try {
      auto c = n.Connect();
      out << "outbox: " << c->Query("SELECT COUNT(*) FROM zm_outbox")[0][0].AsText()
          << " row(s), unstamped "
          << c->Query("SELECT COUNT(*) FROM zm_outbox WHERE csn IS NULL")[0][0].AsText()
          << ", last stamped " << LastStamped(*c).ToString() << "; cursors:";
      for (const db::Row& r : c->Query("SELECT peer, csn, id FROM zm_peer ORDER BY peer"))
        out << " " << r[0].AsText() << "=" << r[1].AsText() << ":" << r[2].AsText();
      out << "; applied:";
      for (const db::Row& r : c->Query("SELECT origin, csn, id FROM zm_applied ORDER BY origin"))
        out << " " << r[0].AsText() << "=" << r[1].AsText() << ":" << r[2].AsText();
      out << "; staged " << c->Query("SELECT COUNT(*) FROM zm_stage")[0][0].AsText() << ", parked "
          << c->Query("SELECT COUNT(*) FROM zm_parked")[0][0].AsText() << ", conflicts "
          << c->Query("SELECT COUNT(*) FROM zm_conflict")[0][0].AsText() << "\n";
    } catch (const std::exception& e) {
      out << "database: " << e.what() << "\n";
    }
    out << "log tail (" << n.log_path() << "):\n" << n.LogTail(log_lines) << "\n";
  }
  return out.str();
}

// ------------------------------------------------------------ no loss --

struct OutboxChange {
  std::string origin;
  int64_t id = 0;
  std::optional<int64_t> csn;
  std::string tbl;
  std::string op;
  std::string rkey;
  int64_t hlc = 0;
  std::string vv;
  Version epoch;
  Version group_epoch;  // the incarnation of its RRset / metadata kind
};

struct RowVerState {
  Version version;
  std::string vv_text;
  VersionVector vv;
  bool deleted = false;
  Version epoch;
};

struct ConflictRow {
  std::string node;  // where it was recorded
  std::string decision;
  std::string reason;
};

struct LossReport {
  int64_t changes = 0;
  int64_t seen_everywhere = 0;
  int64_t explained = 0;  // not seen on some node, but explained there
  int64_t lost = 0;       // unexplained on at least one node
  // Per (change, reference node) pair.
  int64_t pair_seen = 0, pair_current_incarnation = 0, pair_epoch = 0, pair_group = 0,
          pair_conflict = 0, pair_lost = 0;
  std::vector<std::string> details;
};

std::string EpochText(const Version& v) { return v.IsZero() ? "0 (never deleted)" : v.ToString(); }

std::string Printable(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

LossReport CheckNoLoss(Mesh& mesh, size_t max_details) {
  LossReport rep;
  const size_t n = mesh.size();
  std::vector<std::unique_ptr<db::Connection>> conns;
  for (size_t i = 0; i < n; ++i) conns.push_back(mesh.node(i).Connect());

  // Every change every node committed.
  std::vector<OutboxChange> changes;
  for (size_t i = 0; i < n; ++i) {
    for (const db::Row& r : conns[i]->Query(
             "SELECT id, csn, tbl, op, rkey, hlc, vv, epoch_hlc, epoch_node, gepoch_hlc, gepoch_node "
             "FROM zm_outbox ORDER BY id")) {
      OutboxChange c;
      c.origin = mesh.node(i).id();
      c.id = r[0].AsInt();
      c.csn = r[1].AsOptInt();
      c.tbl = r[2].AsText();
      c.op = r[3].AsText();
      c.rkey = r[4].AsText();
      c.hlc = r[5].AsInt();
      c.vv = r[6].AsText();
      c.epoch = {r[7].AsInt(), r[8].AsText()};
      c.group_epoch = {r[9].AsInt(), r[10].AsText()};
      changes.push_back(std::move(c));
    }
  }
  // Every node's row versions, by (tbl, kid).
  std::vector<std::map<std::pair<std::string, std::string>, RowVerState>> rowvers(n);
  for (size_t i = 0; i < n; ++i) {
    for (const db::Row& r : conns[i]->Query(
             "SELECT tbl, kid, hlc, node, vv, deleted, epoch_hlc, epoch_node FROM zm_rowver")) {
      RowVerState s;
      s.version = {r[2].AsInt(), r[3].AsText()};
      s.vv_text = r[4].AsText();
      try {
        s.vv = VersionVector::FromJson(s.vv_text);
      } catch (const std::exception&) {
      }
      s.deleted = r[5].AsInt() != 0;
      s.epoch = {r[6].AsInt(), r[7].AsText()};
      rowvers[i][{r[0].AsText(), r[1].AsText()}] = std::move(s);
    }
  }
  // Every node's set incarnations (RRsets, metadata kinds), by (tbl, kid).
  std::vector<std::map<std::pair<std::string, std::string>, Version>> groups(n);
  for (size_t i = 0; i < n; ++i) {
    for (const db::Row& r : conns[i]->Query("SELECT tbl, kid, epoch_hlc, epoch_node FROM zm_group")) {
      groups[i][{r[0].AsText(), r[1].AsText()}] = {r[2].AsInt(), r[3].AsText()};
    }
  }
  // Every conflict record of every node, by (tbl, rkey, remote version).
  std::map<std::tuple<std::string, std::string, int64_t, std::string>, std::vector<ConflictRow>> conflicts;
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> conflicts_by_key;
  for (size_t i = 0; i < n; ++i) {
    for (const db::Row& r : conns[i]->Query(
             "SELECT tbl, rkey, remote_hlc, remote_node, decision, reason FROM zm_conflict")) {
      ConflictRow c{mesh.node(i).id(), r[4].AsText(), r[5].AsText()};
      conflicts[{r[0].AsText(), r[1].AsText(), r[2].AsInt(), r[3].AsText()}].push_back(c);
      auto& v = conflicts_by_key[{r[0].AsText(), r[1].AsText()}];
      if (v.size() < 6)
        v.push_back(fmt::format("{}: {}@{} {} ({})", c.node, r[2].AsInt(), r[3].AsText(), c.decision,
                                Printable(c.reason)));
    }
  }
  static const std::set<std::string> kExplaining = {"dropped", "failed", "keep-local"};

  for (const OutboxChange& c : changes) {
    ++rep.changes;
    const schema::TableSpec* spec = schema::FindTable(c.tbl);
    bool any_lost = false, any_explained = false;
    std::string lost_on;
    std::string detail;
    for (size_t i = 0; i < n; ++i) {
      const Dialect d = mesh.at(i).dialect;
      const auto& rv = rowvers[i];
      auto it = rv.find({c.tbl, schema::KeyId(d, c.rkey)});
      if (it != rv.end() && it->second.vv.Get(c.origin) >= c.hlc) {
        ++rep.pair_seen;
        continue;
      }
      // The zone's incarnation on this node.
      std::optional<std::string> zone;
      Version zone_epoch;
      bool zone_known = false;
      if (spec && (spec->is_zone_table || spec->is_child())) {
        zone = schema::FirstKeyComponent(c.rkey);
        if (zone) {
          auto z = rv.find({"domains", schema::KeyId(d, schema::ZoneKey(*zone))});
          if (z != rv.end()) {
            zone_epoch = z->second.epoch;
            zone_known = true;
          }
        }
      }
      // A zone delete is in effect when it is the zone's incarnation (or an
      // older one): its epoch is its own version.
      if (spec && spec->is_zone_table && c.op == "D" && zone_known && zone_epoch >= c.epoch) {
        if (zone_epoch == c.epoch) {
          ++rep.pair_current_incarnation;
        } else {
          ++rep.pair_epoch;
          any_explained = true;
        }
        continue;
      }
      if (zone_known && c.epoch < zone_epoch) {
        ++rep.pair_epoch;
        any_explained = true;
        continue;
      }
      // A change written in an incarnation of its set that a replace on
      // some node ended: the replace won as a whole.
      if (spec && spec->is_grouped()) {
        std::optional<Version> group_epoch;
        try {
          const std::string gkey = schema::GroupKey(*spec, schema::RowImageFromKey(*spec, c.rkey));
          auto g = groups[i].find({c.tbl, schema::KeyId(d, gkey)});
          if (g != groups[i].end()) group_epoch = g->second;
        } catch (const std::exception&) {
        }
        if (group_epoch && c.group_epoch < *group_epoch) {
          ++rep.pair_group;
          any_explained = true;
          continue;
        }
      }
      auto cf = conflicts.find({c.tbl, c.rkey, c.hlc, c.origin});
      bool by_conflict = false;
      if (cf != conflicts.end()) {
        for (const ConflictRow& row : cf->second) by_conflict |= kExplaining.count(row.decision) > 0;
      }
      if (by_conflict) {
        ++rep.pair_conflict;
        any_explained = true;
        continue;
      }
      ++rep.pair_lost;
      any_lost = true;
      lost_on += (lost_on.empty() ? "" : ",") + mesh.node(i).id();
      detail += fmt::format("\n      on {}: ", mesh.node(i).id());
      if (it == rv.end()) {
        detail += "no zm_rowver row";
      } else {
        detail += fmt::format("zm_rowver {} vv {}{} epoch {}", it->second.version.ToString(),
                              it->second.vv_text, it->second.deleted ? " (deleted)" : "",
                              EpochText(it->second.epoch));
      }
      if (zone) {
        detail += fmt::format("; zone {} {}", *zone,
                              zone_known ? "epoch " + EpochText(zone_epoch) : std::string("unknown"));
      }
    }
    if (any_lost) {
      ++rep.lost;
      if (rep.details.size() < max_details) {
        std::string s = fmt::format(
            "  LOST on [{}]: {} change #{} (csn {}) {} {} [{}] version {}@{} epoch {} set epoch {} vv {}",
            lost_on, c.origin, c.id, c.csn ? std::to_string(*c.csn) : "NULL", c.tbl, c.op,
            Printable(c.rkey), c.hlc, c.origin, EpochText(c.epoch), EpochText(c.group_epoch), c.vv);
        s += detail;
        auto ck = conflicts_by_key.find({c.tbl, c.rkey});
        if (ck != conflicts_by_key.end()) {
          s += "\n      conflicts on this key:";
          for (const std::string& x : ck->second) s += "\n        " + x;
        }
        rep.details.push_back(s);
      }
    } else if (any_explained) {
      ++rep.explained;
    } else {
      ++rep.seen_everywhere;
    }
  }
  return rep;
}

// ----------------------------------------------------------------- main --

struct Verdict {
  std::vector<std::pair<std::string, std::string>> lines;  // check, result
  bool ok = true;
  void Add(const std::string& check, bool pass, const std::string& text) {
    lines.push_back({check, std::string(pass ? "PASS" : "FAIL") + (text.empty() ? "" : "  " + text)});
    ok = ok && pass;
  }
};

std::string Percent(int64_t a, int64_t b) { return b == 0 ? "0" : fmt::format("{:.1f}", 100.0 * a / b); }

int Run(const Options& opt) {
  const auto t_start = Clock::now();
  fs::create_directories(opt.workdir);
  g_log.Open(opt.workdir + "/chaos.log", opt.quiet);
  g_log.Start();

  std::string dbs;
  for (Dialect d : opt.databases) dbs += (dbs.empty() ? "" : ",") + std::string(db::DialectName(d));
  std::string kinds;
  for (const std::string& k : kChaosKinds) {
    if (opt.chaos.count(k)) kinds += (kinds.empty() ? "" : ",") + k;
  }
  g_log.Always(fmt::format("zonemesh-chaos: seed {}", opt.seed));
  g_log.Always(fmt::format(
      "parameters: nodes={} databases={} ops={} duration={} zones={} batch_max_changes={} "
      "chaos={} chaos_interval_ms={} think_ms={} request_timeout_ms={} converge_timeout={}s "
      "log_level={}",
      opt.nodes, dbs, opt.ops == 0 ? std::string("unlimited") : std::to_string(opt.ops),
      opt.duration > 0 ? fmt::format("{}s", opt.duration) : std::string("none"), opt.zones, opt.batch,
      kinds.empty() ? "none" : kinds, opt.chaos_interval_ms, opt.think_ms, opt.request_timeout_ms,
      opt.converge_timeout, opt.log_level));
  g_log.Always("reproduce: " + ReproduceCommand(opt));
  g_log.Always("workdir: " + opt.workdir);
  g_log.Always("binary: " + ZonemeshBinary());

  Verdict verdict;
  Mesh mesh(opt);
  std::atomic<bool> stop_writers{false};
  std::vector<std::unique_ptr<Writer>> writers;
  std::vector<std::thread> threads;
  // Writers end on every way out of this function.
  struct JoinGuard {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~JoinGuard() {
      stop = true;
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } join_guard{stop_writers, threads};

  std::unique_ptr<SerialPoller> serial_poller;  // stopped before the mesh is torn down
  bool setup_ok = false;
  bool checks_done = false;
  try {
    // ---- setup
    g_log.Phase("setup: creating databases, proxies, configs; zonemesh install");
    mesh.Setup();
    for (size_t i = 0; i < mesh.size(); ++i) g_log.Always(mesh.Describe(i));
    for (size_t i = 0; i < mesh.size(); ++i) mesh.node(i).Start();
    g_log.Phase("setup: every daemon answers /status");
    setup_ok = true;

    // ---- workload and chaos
    std::vector<std::function<std::unique_ptr<db::Connection>()>> poll_connect;
    std::vector<std::string> poll_ids;
    for (size_t i = 0; i < mesh.size(); ++i) {
      poll_connect.push_back([&mesh, i] { return mesh.node(i).Connect(); });
      poll_ids.push_back(mesh.node(i).id());
    }
    serial_poller = std::make_unique<SerialPoller>(poll_connect, poll_ids, opt.serial_poll_ms);
    serial_poller->Start();
    for (size_t i = 0; i < mesh.size(); ++i) {
      writers.push_back(std::make_unique<Writer>(mesh.node(i), SubSeed(opt.seed, i), opt, stop_writers));
    }
    for (auto& w : writers) threads.emplace_back([&w] { w->Run(); });
    g_log.Phase(fmt::format("workload: {} writers started", writers.size()));
    Chaos chaos(mesh, opt);
    const auto workload_end =
        opt.duration > 0 ? Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(opt.duration * 1000))
                         : Clock::time_point::max();
    auto last_progress = Clock::now();
    for (;;) {
      bool all_done = true;
      for (auto& w : writers) all_done = all_done && w->finished();
      if (all_done) break;
      if (Clock::now() >= workload_end) stop_writers = true;
      chaos.Tick();
      if (Clock::now() - last_progress > std::chrono::seconds(5)) {
        last_progress = Clock::now();
        std::string p;
        for (auto& w : writers) p += fmt::format(" {}={}", w->node_id(), w->done());
        g_log.Event("progress: ops" + p + "; " + chaos.State());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (auto& t : threads) t.join();
    g_log.Phase(fmt::format("workload: done ({} chaos events)", chaos.stats().events));

    // ---- heal and wait
    chaos.HealAll();
    g_log.Phase(fmt::format("healed: waiting up to {}s for a quiet, converged mesh", opt.converge_timeout));
    const auto t_heal = Clock::now();
    std::string why;
    auto last_report = Clock::now();
    bool converged = false;
    // Quiet (nothing queued, staged, parked or unstamped) with different
    // dumps: nothing will change any more, no need to wait for the deadline.
    std::optional<Clock::time_point> diverged_since;
    for (;;) {
      try {
        why.clear();
        if (QuietAndConverged(mesh, &why)) {
          converged = true;
          break;
        }
      } catch (const std::exception& e) {
        why = std::string("(") + e.what() + ")";
      }
      if (why.rfind("quiet, but", 0) == 0) {
        if (!diverged_since) diverged_since = Clock::now();
        if (Clock::now() - *diverged_since > std::chrono::seconds(20)) break;
      } else {
        diverged_since.reset();
      }
      if (Clock::now() - t_heal > std::chrono::seconds(opt.converge_timeout)) break;
      if (Clock::now() - last_report > std::chrono::seconds(3)) {
        last_report = Clock::now();
        g_log.Event("waiting: " + why);
      }
      // A node that died on its own is started again (and reported).
      for (size_t i = 0; i < mesh.size(); ++i) {
        if (!mesh.node(i).running()) {
          chaos.stats().failures.push_back(fmt::format("node {} was not running after the heal (t={:.3f}s)",
                                                       mesh.node(i).id(), g_log.Elapsed()));
          g_log.Event("node " + mesh.node(i).id() + " is not running; log tail:\n" + mesh.node(i).LogTail(20));
          chaos.HealAll();
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    const double settle = std::chrono::duration<double>(Clock::now() - t_heal).count();
    if (converged) {
      g_log.Phase(fmt::format("quiet and converged after {:.1f}s", settle));
    } else {
      g_log.Phase(fmt::format("NOT converged after {:.1f}s: {}", settle, why));
    }

    // ---- no echo: an idle mesh captures nothing
    std::vector<std::pair<int64_t, int64_t>> outbox_before;
    for (size_t i = 0; i < mesh.size(); ++i) {
      auto c = mesh.node(i).Connect();
      auto r = c->Query("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM zm_outbox");
      outbox_before.push_back({r[0][0].AsInt(), r[0][1].AsInt()});
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    std::string echo;
    for (size_t i = 0; i < mesh.size(); ++i) {
      auto c = mesh.node(i).Connect();
      auto r = c->Query("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM zm_outbox");
      if (r[0][0].AsInt() != outbox_before[i].first || r[0][1].AsInt() != outbox_before[i].second) {
        echo += fmt::format(" node {}: outbox {} rows (max id {}) -> {} rows (max id {});", mesh.node(i).id(),
                            outbox_before[i].first, outbox_before[i].second, r[0][0].AsInt(), r[0][1].AsInt());
      }
    }

    if (serial_poller) serial_poller->Stop();

    // ---- a. convergence
    std::vector<std::vector<std::string>> dumps;
    for (size_t i = 0; i < mesh.size(); ++i) dumps.push_back(mesh.node(i).Dump());
    std::string diverged;
    for (size_t i = 1; i < mesh.size(); ++i) {
      if (dumps[i] != dumps[0]) {
        diverged += "dump of " + mesh.node(0).id() + " vs " + mesh.node(i).id() + ": " +
                    DumpDiff(dumps[0], dumps[i], static_cast<size_t>(opt.max_report));
      }
    }
    if (!diverged.empty()) {
      // One natural key on several dump lines: physical rows with the same
      // natural key and different values on that node.
      for (size_t i = 0; i < mesh.size(); ++i) {
        std::map<std::pair<std::string, std::string>, int> lines_per_key;
        for (const std::string& l : dumps[i]) {
          json j = json::parse(l, nullptr, false);
          if (j.is_object()) lines_per_key[{j.value("t", ""), j.value("k", "")}]++;
        }
        for (const auto& [key, count] : lines_per_key) {
          if (count > 1)
            diverged += fmt::format("node {} holds {} rows with different values for {} [{}]\n", mesh.node(i).id(),
                                    count, key.first, Printable(key.second));
        }
      }
    }
    verdict.Add("a. convergence (identical canonical dumps)", converged && diverged.empty(),
                diverged.empty() && converged
                    ? fmt::format("{} rows on each of {} nodes, checksum {}", dumps[0].size(), mesh.size(),
                                  DumpChecksum(dumps[0]).substr(0, 16))
                : diverged.empty() ? "dumps equal now, but the mesh was not quiet: " + why
                                   : "dumps differ (details below)");

    // ---- b. DNS sanity (the daemon removes rows written into zones it
    // deleted a moment later: give its upkeep a few seconds)
    std::string insane;
    PollUntil(
        [&] {
          insane.clear();
          for (size_t i = 0; i < mesh.size(); ++i) {
            for (const std::string& p : mesh.node(i).Sanity()) insane += "\n    node " + mesh.node(i).id() + ": " + p;
          }
          return insane.empty();
        },
        std::chrono::seconds(15), std::chrono::milliseconds(500));
    if (!insane.empty()) {
      // Which rows lost their zone: enough to find them in the logs.
      for (size_t i = 0; i < mesh.size(); ++i) {
        try {
          auto c = mesh.node(i).Connect();
          for (const schema::TableSpec& spec : schema::PowerDnsTables()) {
            if (!spec.is_child()) continue;
            auto rows = c->Query("SELECT * FROM " + spec.name + " t WHERE NOT EXISTS (SELECT 1 FROM domains d WHERE d.id = t." +
                                 spec.parent_column + ") LIMIT 10");
            for (const db::Row& r : rows) {
              std::string cols;
              for (const Value& v : r) cols += (cols.empty() ? "" : " | ") + (v.IsNull() ? "NULL" : Printable(v.AsText()));
              insane += "\n    node " + mesh.node(i).id() + " orphan " + spec.name + " row: " + cols;
            }
          }
        } catch (const std::exception& e) {
          insane += "\n    node " + mesh.node(i).id() + ": " + e.what();
        }
      }
    }
    verdict.Add("b. DNS sanity (one SOA per zone, no duplicate zones, no orphans)", insane.empty(), insane);

    // ---- c. no loss
    LossReport loss = CheckNoLoss(mesh, static_cast<size_t>(opt.max_report));
    verdict.Add(
        "c. no loss (every committed change seen or explained)", loss.lost == 0,
        fmt::format("{} changes: {} seen on every node, {} explained (zone or set incarnation / "
                    "conflict record), {} LOST; per node pair: seen {}, current incarnation {}, "
                    "older zone incarnation {}, older set incarnation {}, conflict record {}, lost {}",
                    loss.changes, loss.seen_everywhere, loss.explained, loss.lost, loss.pair_seen,
                    loss.pair_current_incarnation, loss.pair_epoch, loss.pair_group,
                    loss.pair_conflict, loss.pair_lost));

    // ---- d. no echo
    verdict.Add("d. no echo (an idle mesh captures nothing for 2s)", echo.empty(), echo);

    // ---- e. daemons: clean shutdowns and restarts
    ChaosStats& cs = chaos.stats();
    std::vector<std::string> daemon_failures = cs.failures;
    int final_stops = 0;
    for (size_t i = 0; i < mesh.size(); ++i) {
      const int code = mesh.node(i).Stop(std::chrono::seconds(30));
      ++final_stops;
      if (code != 0) {
        daemon_failures.push_back(fmt::format("node {} exited {} after the final SIGTERM", mesh.node(i).id(), code));
        g_log.Detail("node " + mesh.node(i).id() + " log tail:\n" + mesh.node(i).LogTail(20));
      }
    }
    std::string df;
    for (const std::string& f : daemon_failures) df += "\n    " + f;
    verdict.Add("e. daemons (SIGTERM exits 0, restarts succeed)", daemon_failures.empty(),
                fmt::format("{} SIGTERM stops + {} final, {} SIGKILLs, {} starts after chaos; "
                            "links: {} cuts, {} blackholes, {} isolations, {} heal-alls{}",
                            cs.stops, final_stops, cs.kills, cs.restarts, cs.cuts, cs.blackholes,
                            cs.isolations, cs.heals, df));

    // ---- f. writers
    int64_t committed = 0, refused = 0, noops = 0, errors = 0;
    std::string errs;
    for (auto& w : writers) {
      Writer::Summary s = w->summary();
      committed += s.committed;
      refused += s.refused;
      noops += s.noops;
      errors += s.errors;
      for (const std::string& e : s.error_samples) errs += "\n    writer " + w->node_id() + ": " + e;
      std::string ops;
      for (const auto& [op, k] : s.by_op) ops += fmt::format(" {}={}", op, k);
      g_log.Detail(fmt::format("writer {}: committed {}, refused {}, no-op {}, errors {};{}", w->node_id(),
                               s.committed, s.refused, s.noops, s.errors, ops));
      for (const std::string& r : s.refusal_samples) g_log.Detail("  refused: " + Printable(r));
    }
    verdict.Add("f. writes (accepted, or refused by a constraint after a race)", errors == 0,
                fmt::format("{} committed, {} refused ({}%), {} no-ops, {} errors{}", committed, refused,
                            Percent(refused, committed + refused), noops, errors, errs));
    if (opt.serial_poll_ms > 0) {
      std::string steps;
      for (const std::string& d : serial_poller->decreases()) steps += "\n  " + d;
      verdict.Add(fmt::format("g. serials (never step back on a node; polled every {} ms)", opt.serial_poll_ms),
                  serial_poller->decreases().empty(),
                  fmt::format("{} polls, {} SOA observations, {} new zone incarnations, {} steps "
                              "back to a serial a writer chose{}",
                              serial_poller->polls(), serial_poller->observations(),
                              serial_poller->incarnations(), serial_poller->forgiven(), steps));
    }
    checks_done = true;

    // ---- per-node summary
    for (size_t i = 0; i < mesh.size(); ++i) {
      try {
        auto c = mesh.node(i).Connect();
        std::string decisions;
        for (const db::Row& r : c->Query("SELECT decision, COUNT(*) FROM zm_conflict GROUP BY decision ORDER BY decision"))
          decisions += fmt::format(" {}={}", r[0].AsText(), r[1].AsText());
        g_log.Detail(fmt::format(
            "node {}: {} zones, {} records, {} outbox rows, {} parked; conflicts:{}", mesh.node(i).id(),
            c->Query("SELECT COUNT(*) FROM domains")[0][0].AsText(),
            c->Query("SELECT COUNT(*) FROM records")[0][0].AsText(),
            c->Query("SELECT COUNT(*) FROM zm_outbox")[0][0].AsText(),
            c->Query("SELECT COUNT(*) FROM zm_parked")[0][0].AsText(), decisions.empty() ? " none" : decisions));
      } catch (const std::exception& e) {
        g_log.Detail("node " + mesh.node(i).id() + ": " + e.what());
      }
    }
    for (size_t i = 0; i < mesh.size(); ++i) {
      for (size_t j = 0; j < mesh.size(); ++j) {
        if (i == j) continue;
        TcpProxy::Stats s = mesh.link(i, j).stats();
        g_log.Detail(fmt::format("link {}->{}: {} connections ({} refused, {} blackholed, {} cut), "
                                 "{} B pushed, {} B answered, {} B dropped",
                                 mesh.node(i).id(), mesh.node(j).id(), s.accepted, s.refused, s.swallowed,
                                 s.closed_by_block, s.bytes_to_target, s.bytes_to_client, s.bytes_dropped));
      }
    }

    // ---- details of failures
    if (!diverged.empty()) g_log.Always("dump differences:\n" + diverged);
    if (!loss.details.empty()) {
      g_log.Always(fmt::format("lost changes ({} of {} listed):", loss.details.size(), loss.lost));
      for (const std::string& d : loss.details) g_log.Always(d);
    }
    if (!converged || !diverged.empty()) g_log.Always("diagnostics:\n" + Diagnostics(mesh, 30));
  } catch (const std::exception& e) {
    verdict.Add(setup_ok ? "run" : "setup", false, e.what());
    if (!setup_ok) {
      g_log.Always("hint: are the test database servers running? "
                   "tests/servers/dbservers.sh start /tmp/zmservers "
                   "(ports from ZONEMESH_TEST_PG_PORT / ZONEMESH_TEST_MYSQL_PORT)");
    }
    try {
      if (setup_ok) g_log.Always("diagnostics:\n" + Diagnostics(mesh, 30));
    } catch (...) {
    }
  }
  (void)checks_done;

  // Kill whatever still runs before deciding what to keep.
  stop_writers = true;
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
  for (size_t i = 0; i < mesh.size(); ++i) mesh.node(i).Kill();

  const double runtime = std::chrono::duration<double>(Clock::now() - t_start).count();
  g_log.Always("");
  g_log.Always(fmt::format("==== checks (seed {}) ====", opt.seed));
  for (const auto& [check, result] : verdict.lines) g_log.Always(fmt::format("{:<66} {}", check, result));
  g_log.Always(fmt::format("VERDICT: {}  seed={} nodes={} databases={} runtime={:.1f}s",
                           verdict.ok ? "PASS" : "FAIL", opt.seed, opt.nodes, dbs, runtime));
  if (!verdict.ok || opt.keep) {
    g_log.Always("kept: " + opt.workdir + " (chaos.log, <node>/zonemesh.log, <node>/zonemesh.json, SQLite node.db)");
    for (size_t i = 0; i < mesh.size(); ++i) {
      if (!mesh.at(i).server_db.empty())
        g_log.Always("kept database: node " + mesh.node(i).id() + ": " +
                     DescribeDatabase(mesh.node(i).database(), ""));
    }
    if (!verdict.ok) g_log.Always("reproduce: " + ReproduceCommand(opt));
  } else {
    mesh.DropDatabases();
    std::error_code ec;
    fs::remove_all(opt.workdir, ec);
  }
  return verdict.ok ? 0 : 1;
}

}  // namespace
}  // namespace zonemesh::testing::chaos

int main(int argc, char** argv) {
  using namespace zonemesh::testing;
  chaos::Options opt = chaos::ParseOptions(argc, argv);
  // A peer closing a socket under a write must not kill the tool.
  signal(SIGPIPE, SIG_IGN);
  int rc = 1;
  try {
    rc = chaos::Run(opt);
  } catch (const std::exception& e) {
    std::cerr << "zonemesh-chaos: " << e.what() << "\n";
    rc = 1;
  }
  // Scratch files of `zonemesh install` runs (ScratchDir()).
  std::error_code ec;
  std::filesystem::remove_all(ScratchDir(), ec);
  return rc;
}
