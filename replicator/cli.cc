#include "replicator/cli.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <optional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "db/open.h"
#include "replicator/config.h"
#include "replicator/conflicts.h"
#include "replicator/auth.h"
#include "replicator/daemon.h"
#include "replicator/digest.h"
#include "replicator/dump.h"
#include "replicator/http.h"
#include "replicator/installer.h"
#include "replicator/outbox.h"
#include "replicator/snapshot.h"
#include "replicator/status.h"
#include "replicator/wire.h"

namespace zonemesh {

using nlohmann::json;

namespace {

const char* kMainHelp = R"(zonemesh: multi-master replication for PowerDNS SQL databases

Usage: zonemesh <command> [options]

Commands:
  install     add zonemesh's tables and capture triggers to a PowerDNS database
  uninstall   remove exactly what install added (PowerDNS data stays)
  run         run the replication daemon in the foreground
  status      show this node's replication status
  dump        print the canonical dump of the replicated data
  conflicts   list conflicts; resolve the ones parked for an operator
  join        load a snapshot from a peer (a new node, or one that needs a resync)
  verify      compare this node's data with its peers', zone by zone
  version     print the version

Run `zonemesh <command> --help` for a command's options.
Exit codes: 0 success, 1 failure, 2 bad arguments or configuration.
)";

const std::map<std::string, std::string> kCommandHelp = {
    {"install", R"(Usage: zonemesh install --config FILE [--create-schema] [--print-sql]

Adds zonemesh's tables (zm_*) and capture triggers to the database named in
FILE. Idempotent: running it again updates the triggers and keeps all state.
PowerDNS's own tables are never altered.

  --config FILE     the node's configuration file (required)
  --create-schema   first create the stock PowerDNS tables that are missing
  --print-sql       print the statements install would run, run nothing

Refuses a database without the PowerDNS tables (unless --create-schema), a
PowerDNS table lacking a column zonemesh replicates, and a database installed
for another node_id.
)"},
    {"uninstall", R"(Usage: zonemesh uninstall --config FILE [--print-sql]

Removes zonemesh's triggers, routines and zm_* tables from the database named
in FILE. PowerDNS's tables and data stay. Changes not yet sent to peers are
lost; stop the daemon first.

  --config FILE     the node's configuration file (required)
  --print-sql       print the statements uninstall would run, run nothing
)"},
    {"run", R"(Usage: zonemesh run --config FILE

Runs the replication daemon in the foreground, logging to stderr. Stops
cleanly on SIGTERM or SIGINT.

  --config FILE     the node's configuration file (required)
)"},
    {"status", R"(Usage: zonemesh status --config FILE [--json]

Shows the local node's status: per peer whether it is connected, its queue
depth and lag, the last error; per origin what was applied; conflicts.
Asks the running daemon (GET /status on the config's status_listen address,
or its listen address when there is none); when the daemon is not running,
reads queue depths from the database.

  --config FILE     the node's configuration file (required)
  --json            print the raw JSON
)"},
    {"dump", R"(Usage: zonemesh dump --config FILE [--checksum] [--check]

Prints every replicated row by natural key, one JSON line per row, sorted,
with values normalized across databases; a row stored more than once shows
its number of copies. Two nodes hold the same data when their dumps (or
checksums) are equal.

  --config FILE     the node's configuration file (required)
  --checksum        print only the SHA-256 of the dump
  --check           also report DNS sanity problems (zones without exactly
                    one SOA, duplicate zones, rows without a zone) and rows
                    stored more than once; exit 1 when there are any
)"},
    {"conflicts", R"(Usage: zonemesh conflicts --config FILE [--pending] [--json] [--limit N]
       zonemesh conflicts resolve ID --take local|remote --config FILE

Lists the conflicts this node recorded, newest first: table, natural key,
both row images with their versions, the strategy, its decision (take-remote,
keep-local, merge, parked, dropped, failed), the reason and when it happened.

  --pending         only changes parked by the "manual" strategy, unresolved
  --json            print JSON
  --limit N         at most N conflicts (default 100)

`resolve ID --take local|remote` settles a parked conflict: the local row as
it is now, or the parked incoming change, becomes a new change of this node
that has seen both sides, so it wins on every node.
)"},
    {"join", R"(Usage: zonemesh join --config FILE --from PEER_ID [--discard-local]

Loads a consistent snapshot of the replicated data from peer PEER_ID (one of
the config's peers) and merges it into this node's database by row version,
then records the peer's positions so that, when the daemon starts, every
peer's stream continues exactly after the snapshot. Memory stays bounded by
a page of rows, whatever the data size. Stop the daemon first.

A daemon starting on an empty database does this by itself.

  --config FILE     the node's configuration file (required)
  --from PEER_ID    the peer to copy from (required)
  --discard-local   empty this node's PowerDNS tables and replication state
                    first: for a node marked "needs-resync" (its unsent
                    local changes are lost)
)"},
    {"verify", R"(Usage: zonemesh verify --config FILE [--peer PEER_ID] [--zone ZONE]

Compares this node's replicated data with each peer's (or PEER_ID's), zone
by zone: SHA-256 over each zone's canonical dump (`zonemesh dump`), read in
one snapshot on each node. Prints every zone that differs or exists on one
side only; with --zone, the rows of that zone that differ ("-" here only,
"+" on the peer only). The peers are asked over their `listen` address,
signed like every peer request (the rows include DNSSEC keys and TSIG
secrets). Changes still in flight show as differences: look at the queues
in `zonemesh status`, or run it again.

  --config FILE     the node's configuration file (required)
  --peer PEER_ID    ask only this peer
  --zone ZONE       also list the differing rows of ZONE

Exit codes: 0 the same data as every peer asked, 1 differences or a peer
that could not be asked, 2 bad arguments or configuration.
)"},
    {"version", "Usage: zonemesh version\n\nPrints the version.\n"},
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Args {
  std::string command;
  std::string config;
  std::set<std::string> flags;
  std::map<std::string, std::string> options;  // --limit N, --take X
  std::vector<std::string> positional;
};

// Parses `command [positional...] [--config F] [flags] [--opt value]`.
Args ParseArgs(const std::vector<std::string>& args, const std::set<std::string>& allowed_flags,
               const std::set<std::string>& allowed_options = {}) {
  Args a;
  a.command = args[0];
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& s = args[i];
    if (s == "--config" || s == "-c") {
      if (i + 1 >= args.size()) throw UsageError(s + " needs a file name");
      a.config = args[++i];
    } else if (s.rfind("--config=", 0) == 0) {
      a.config = s.substr(9);
    } else if (allowed_flags.count(s)) {
      a.flags.insert(s);
    } else if (allowed_options.count(s)) {
      if (i + 1 >= args.size()) throw UsageError(s + " needs a value");
      a.options[s] = args[++i];
    } else if (s.rfind("-", 0) == 0) {
      throw UsageError("unknown option " + s + " for `zonemesh " + a.command + "`");
    } else {
      a.positional.push_back(s);
    }
  }
  if (a.config.empty()) throw UsageError("`zonemesh " + a.command + "` needs --config FILE");
  return a;
}

void SetupLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("zonemesh");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(level));
}

int Install(const Args& a) {
  Config cfg = LoadConfig(a.config);
  SetupLogging(cfg.log_level);
  if (a.flags.count("--print-sql")) {
    for (const std::string& s : InstallStatements(cfg.database.dialect, cfg.node_id)) {
      std::cout << s << ";\n\n";
    }
    return kExitOk;
  }
  db::DatabaseConfig dbc = cfg.database;
  dbc.create_if_missing = a.flags.count("--create-schema") > 0;
  auto conn = db::Open(dbc);
  zonemesh::Install(*conn, cfg.node_id, a.flags.count("--create-schema") > 0);
  std::cout << "zonemesh installed in " << conn->Describe() << " for node " << cfg.node_id << "\n";
  return kExitOk;
}

int Uninstall(const Args& a) {
  Config cfg = LoadConfig(a.config);
  if (a.flags.count("--print-sql")) {
    for (const std::string& s : UninstallStatements(cfg.database.dialect)) std::cout << s << ";\n";
    return kExitOk;
  }
  auto conn = db::Open(cfg.database);
  zonemesh::Uninstall(*conn);
  std::cout << "zonemesh removed from " << conn->Describe() << "\n";
  return kExitOk;
}

int Run(const Args& a) {
  Config cfg = LoadConfig(a.config);
  SetupLogging(cfg.log_level);
  Daemon daemon(std::move(cfg));
  return daemon.Run();
}

std::string Pad(const std::string& s, size_t n) { return s.size() >= n ? s + " " : s + std::string(n - s.size(), ' '); }

void PrintStatus(const json& s) {
  std::cout << "node " << s.value("node_id", "?") << " (zonemesh " << s.value("version", "?") << ")";
  if (s.contains("uptime_seconds")) std::cout << ", up " << static_cast<int64_t>(s["uptime_seconds"].get<double>()) << " s";
  std::cout << "\n";
  if (s.contains("database")) {
    const json& d = s["database"];
    std::cout << "database " << d.value("target", "?") << ": "
              << (d.value("ok", false) ? "ok" : "ERROR " + (d["error"].is_string() ? d["error"].get<std::string>() : std::string()))
              << "\n";
  }
  std::cout << "\n" << Pad("PEER", 12) << Pad("STATE", 14) << Pad("CONNECTED", 10) << Pad("QUEUE", 9)
            << Pad("LAG(s)", 9) << "LAST ERROR\n";
  for (const json& p : s["peers"]) {
    char lag[32];
    std::snprintf(lag, sizeof lag, "%.3f", p.value("lag_seconds", 0.0));
    std::cout << Pad(p.value("id", "?"), 12) << Pad(p.value("state", "?"), 14)
              << Pad(p.value("connected", false) ? "yes" : "no", 10)
              << Pad(std::to_string(p.value("queue_depth", int64_t{0})), 9) << Pad(lag, 9)
              << (p["last_error"].is_string() ? p["last_error"].get<std::string>() : "-") << "\n";
  }
  if (s.contains("origins") && !s["origins"].empty()) {
    std::cout << "\n" << Pad("ORIGIN", 12) << Pad("HEARD(s)", 10) << Pad("BEHIND", 8)
              << Pad("APPLIED", 14) << Pad("CHANGES", 10) << Pad("DUPS", 8) << Pad("CONFLICTS", 11)
              << "LAST APPLIED\n";
    for (const json& o : s["origins"]) {
      char heard[32] = "never";
      if (o.contains("last_heard_seconds") && o["last_heard_seconds"].is_number()) {
        std::snprintf(heard, sizeof heard, "%.1f", o["last_heard_seconds"].get<double>());
      }
      std::string heard_col = heard;
      if (o.value("silent", false)) heard_col += " SILENT";
      std::cout << Pad(o.value("id", "?"), 12) << Pad(heard_col, 10)
                << Pad(std::to_string(o.value("behind_changes", int64_t{0})), 8)
                << Pad(o.value("applied", ""), 14)
                << Pad(std::to_string(o.value("changes_applied", int64_t{0})), 10)
                << Pad(std::to_string(o.value("duplicates_skipped", int64_t{0})), 8)
                << Pad(std::to_string(o.value("conflicts", int64_t{0})), 11)
                << (o["last_applied_at"].is_string() ? o["last_applied_at"].get<std::string>() : "-") << "\n";
    }
  }
  if (s.contains("conflicts_total")) {
    std::cout << "\nconflicts recorded: " << s["conflicts_total"] << ", changes parked: "
              << s.value("parked_changes", int64_t{0}) << "\n";
  }
  if (s.contains("anti_entropy") && s["anti_entropy"].contains("peers")) {
    const json& ae = s["anti_entropy"];
    std::cout << "\nanti-entropy every " << ae.value("interval_seconds", int64_t{0}) << " s";
    if (ae.value("interval_seconds", int64_t{0}) == 0) std::cout << " (off)";
    std::cout << "\n";
    for (auto it = ae["peers"].begin(); it != ae["peers"].end(); ++it) {
      const json& p = it.value();
      std::cout << "  " << it.key() << ": " << p.value("comparisons", int64_t{0}) << " comparison(s), "
                << p.value("rows_repaired", int64_t{0}) << " row(s) repaired";
      if (p["last_error"].is_string()) std::cout << ", failing: " << p["last_error"].get<std::string>();
      std::cout << "\n";
      for (const json& z : p.value("divergent_zones", json::array())) {
        std::cout << "    DIFFERS " << (z.value("zone", "").empty() ? "(tables without zones)" : z.value("zone", ""))
                  << " since " << z.value("since", "?") << ": " << z.value("rows", int64_t{0}) << " row(s), e.g. "
                  << z.value("example", "") << "\n";
      }
    }
  }
}

int Status(const Args& a) {
  Config cfg = LoadConfig(a.config);
  Endpoint target = cfg.status_listen ? *cfg.status_listen : cfg.listen;
  if (target.host == "0.0.0.0") target.host = "127.0.0.1";
  if (target.host == "::") target.host = "::1";
  json s;
  try {
    // The listen address serves HTTPS when tls is on; status_listen never.
    const bool https = !cfg.status_listen && cfg.tls.enabled();
    HttpClient client(target, std::chrono::milliseconds(3000), 1 << 20, https ? &cfg.tls : nullptr);
    HttpClient::Response r = client.Request("GET", "/status", "");
    if (r.status != 200) throw HttpError("HTTP " + std::to_string(r.status));
    s = json::parse(r.body);
  } catch (const std::exception& e) {
    // No daemon: what the database alone can tell.
    std::cerr << "zonemesh: the daemon does not answer at " << target.ToString() << " (" << e.what()
              << "); reading the database\n";
    auto conn = db::Open(cfg.database);
    RequireInstalled(*conn, cfg.node_id);
    Outbox outbox(*conn, cfg.node_id);
    auto cursors = outbox.LoadCursors();
    s = {{"node_id", cfg.node_id}, {"version", ZONEMESH_VERSION}, {"daemon", "not running"},
         {"database", {{"target", conn->Describe()}, {"ok", true}, {"error", nullptr}}}};
    json peers = json::array();
    for (const PeerConfig& p : cfg.peers) {
      Position c = cursors.count(p.id) ? cursors[p.id] : Position{};
      const Outbox::Queue q = outbox.QueueAfter(c);
      peers.push_back({{"id", p.id},
                       {"url", p.url},
                       {"connected", false},
                       {"state", "daemon-stopped"},
                       {"queue_depth", q.depth},
                       {"lag_seconds", q.oldest_hlc ? (NowMicros() - *q.oldest_hlc) / 1e6 : 0.0},
                       {"acked", c.ToString()},
                       {"last_error", nullptr}});
    }
    s["peers"] = peers;
    s["conflicts_total"] = conn->Query("SELECT COUNT(*) FROM zm_conflict")[0][0].AsInt();
    s["parked_changes"] = conn->Query("SELECT COUNT(*) FROM zm_parked")[0][0].AsInt();
  }
  if (a.flags.count("--json")) {
    std::cout << s.dump(2) << "\n";
  } else {
    PrintStatus(s);
  }
  return kExitOk;
}

int Dump(const Args& a) {
  Config cfg = LoadConfig(a.config);
  auto conn = db::Open(cfg.database);
  std::vector<std::string> lines = CanonicalDump(*conn);
  if (a.flags.count("--checksum")) {
    std::cout << DumpChecksum(lines) << "\n";
  } else {
    for (const std::string& l : lines) std::cout << l << "\n";
  }
  if (a.flags.count("--check")) {
    auto problems = SanityProblems(*conn);
    for (const std::string& p : problems) std::cerr << "sanity: " << p << "\n";
    auto copies = CopyProblems(lines);
    for (const std::string& p : copies) std::cerr << "copies: " << p << "\n";
    if (!problems.empty() || !copies.empty()) return kExitFailure;
  }
  return kExitOk;
}

int Join(const Args& a) {
  Config cfg = LoadConfig(a.config);
  SetupLogging(cfg.log_level);
  auto from = a.options.find("--from");
  if (from == a.options.end()) throw UsageError("join needs --from PEER_ID");
  const PeerConfig* peer = nullptr;
  for (const PeerConfig& p : cfg.peers) {
    if (p.id == from->second) peer = &p;
  }
  if (!peer) throw UsageError("\"" + from->second + "\" is not one of the config's peers");
  auto lock_conn = db::Open(cfg.database);
  RequireInstalled(*lock_conn, cfg.node_id);
  if (!lock_conn->TryAdvisoryLock("zonemesh-daemon")) {
    std::cerr << "zonemesh join: a zonemesh daemon is running on " << lock_conn->Describe()
              << "; stop it first\n";
    return kExitFailure;
  }
  conflict::Policy policy(cfg.conflict.strategy, cfg.conflict.tables,
                          conflict::StrategyOptions{cfg.conflict.priority, cfg.conflict.plugin});
  auto conn = db::Open(cfg.database);
  conn->SetApplying(true);
  JoinOptions jo{cfg.node_id, peer->id, MeshFingerprint(policy), cfg.auth.secret, peer->endpoint,
                 peer->base_path, cfg.request_timeout_ms, a.flags.count("--discard-local") > 0,
                 peer->scheme == "https" ? &cfg.tls : nullptr};
  JoinStats st = JoinFromPeer(jo, *conn, policy);
  std::cout << "joined from " << peer->id << ": " << st.rows << " rows and " << st.tombstones
            << " tombstones in " << st.pages << " pages; " << peer->id << "'s stream continues after "
            << st.position.ToString() << "\n";
  return kExitOk;
}

int Verify(const Args& a) {
  Config cfg = LoadConfig(a.config);
  SetupLogging("warning");
  std::vector<const PeerConfig*> peers;
  auto only = a.options.find("--peer");
  for (const PeerConfig& p : cfg.peers) {
    if (only == a.options.end() || p.id == only->second) peers.push_back(&p);
  }
  if (only != a.options.end() && peers.empty()) {
    throw UsageError("\"" + only->second + "\" is not one of the config's peers");
  }
  if (peers.empty()) throw UsageError("the config has no peers to compare with");
  std::optional<std::string> zone;
  if (auto z = a.options.find("--zone"); z != a.options.end()) zone = z->second;

  auto conn = db::Open(cfg.database);
  RequireInstalled(*conn, cfg.node_id);
  conn->BeginReadOnlySnapshot();
  const std::vector<std::string> dump = CanonicalDump(*conn);
  conn->Rollback();
  const std::map<std::string, ZoneDigest> here = ZoneDigests(dump);
  auto name = [](const std::string& z) { return z.empty() ? std::string("(tables without zones)") : z; };

  conflict::Policy policy(cfg.conflict.strategy, cfg.conflict.tables,
                          conflict::StrategyOptions{cfg.conflict.priority, cfg.conflict.plugin});
  const std::string fingerprint = MeshFingerprint(policy);
  bool differ = false;
  for (const PeerConfig* peer : peers) {
    HttpClient client(peer->endpoint, std::chrono::milliseconds(cfg.request_timeout_ms), 1LL << 30,
                      peer->scheme == "https" ? &cfg.tls : nullptr);
    auto ask = [&](const std::optional<std::string>& z) {
      json body{{"v", kProtocolVersion}, {"origin", cfg.node_id}, {"target", peer->id},
                {"fingerprint", fingerprint}};
      if (z) body["zone"] = *z;
      return PostToPeer(client, cfg.auth.enabled() ? cfg.auth.secret : "", peer->base_path, peer->id,
                        "/v1/digest", body);
    };
    std::map<std::string, ZoneDigest> there;
    try {
      there = DigestsFromJson(ask(std::nullopt));
    } catch (const std::exception& e) {
      std::cout << peer->id << ": cannot compare: " << e.what() << "\n";
      differ = true;
      continue;
    }
    std::set<std::string> zones;
    for (const auto& [z, d] : here) zones.insert(z);
    for (const auto& [z, d] : there) zones.insert(z);
    int differing = 0;
    int64_t rows = 0;
    for (const std::string& z : zones) {
      auto h = here.find(z);
      auto t = there.find(z);
      if (h != here.end()) rows += h->second.rows;
      if (h != here.end() && t != there.end() && h->second.sha256 == t->second.sha256) continue;
      ++differing;
      std::cout << peer->id << ": " << name(z) << ": ";
      if (h == here.end()) {
        std::cout << "only on " << peer->id << " (" << t->second.rows << " rows)\n";
      } else if (t == there.end()) {
        std::cout << "only here (" << h->second.rows << " rows)\n";
      } else {
        std::cout << "differs: " << h->second.rows << " rows here, " << t->second.rows << " on "
                  << peer->id << "\n";
      }
    }
    if (differing == 0) {
      std::cout << peer->id << ": the same data (" << here.size() << " zone groups, " << rows
                << " rows)\n";
    }
    differ = differ || differing > 0;
    if (!zone) continue;
    auto zh = here.find(*zone);
    auto zt = there.find(*zone);
    if (zh != here.end() && zt != there.end() && zh->second.sha256 == zt->second.sha256) continue;
    std::vector<std::string> mine = LinesOfZone(dump, *zone), theirs;
    try {
      json answer = ask(zone);
      if (!answer.contains("lines") || !answer["lines"].is_array()) throw std::runtime_error("no \"lines\" in the answer");
      for (const json& l : answer["lines"]) {
        if (l.is_string()) theirs.push_back(l.get<std::string>());
      }
    } catch (const std::exception& e) {
      std::cout << peer->id << ": cannot list " << *zone << ": " << e.what() << "\n";
      continue;
    }
    std::sort(mine.begin(), mine.end());
    std::sort(theirs.begin(), theirs.end());
    std::vector<std::string> only_here, only_there;
    std::set_difference(mine.begin(), mine.end(), theirs.begin(), theirs.end(), std::back_inserter(only_here));
    std::set_difference(theirs.begin(), theirs.end(), mine.begin(), mine.end(), std::back_inserter(only_there));
    for (const std::string& l : only_here) std::cout << "- " << l << "\n";
    for (const std::string& l : only_there) std::cout << "+ " << l << "\n";
  }
  return differ ? kExitFailure : kExitOk;
}

int Conflicts(const Args& a) {
  Config cfg = LoadConfig(a.config);
  if (!a.positional.empty() && a.positional[0] == "resolve") {
    if (a.positional.size() != 2) throw UsageError("conflicts resolve takes one conflict ID");
    int64_t id = 0;
    try {
      size_t used = 0;
      id = std::stoll(a.positional[1], &used);
      if (used != a.positional[1].size()) throw std::invalid_argument("");
    } catch (const std::exception&) {
      throw UsageError("conflict ID must be a number, not \"" + a.positional[1] + "\"");
    }
    auto take = a.options.find("--take");
    if (take == a.options.end() || (take->second != "local" && take->second != "remote"))
      throw UsageError("conflicts resolve needs --take local or --take remote");
    auto conn = db::Open(cfg.database);
    RequireInstalled(*conn, cfg.node_id);
    try {
      ResolveConflict(*conn, cfg.node_id, id, take->second == "remote");
    } catch (const ResolveError& e) {
      std::cerr << "zonemesh conflicts: " << e.what() << "\n";
      return kExitFailure;
    }
    std::cout << "conflict " << id << " resolved: took " << take->second
              << "; the decision replicates to every node\n";
    return kExitOk;
  }
  if (!a.positional.empty()) throw UsageError("unexpected argument \"" + a.positional[0] + "\"");
  if (a.options.count("--take")) throw UsageError("--take goes with `conflicts resolve ID`");
  int limit = 100;
  if (a.options.count("--limit")) {
    try {
      limit = std::stoi(a.options.at("--limit"));
    } catch (const std::exception&) {
      limit = -1;
    }
    if (limit < 1) throw UsageError("--limit needs a positive number");
  }
  auto conn = db::Open(cfg.database);
  RequireInstalled(*conn, cfg.node_id);
  auto list = ListConflicts(*conn, a.flags.count("--pending") > 0, limit);
  if (a.flags.count("--json")) {
    json out = json::array();
    for (const auto& c : list) out.push_back(c.ToJson());
    std::cout << JsonText(out) << "\n";
    return kExitOk;
  }
  if (list.empty()) {
    std::cout << (a.flags.count("--pending") ? "no conflicts wait for an operator\n" : "no conflicts recorded\n");
    return kExitOk;
  }
  for (const auto& c : list) {
    std::cout << "#" << c.id << "  " << FormatTime(c.created_at) << "  " << c.table << " [" << c.key
              << "]\n    from " << c.origin << ", " << c.strategy << ": " << c.decision;
    if (c.resolved_at) std::cout << " (resolved: " << c.resolution << ")";
    std::cout << "\n    " << c.reason << "\n";
    if (c.local_image.is_object())
      std::cout << "    local  " << (c.local_hlc ? std::to_string(*c.local_hlc) + "@" + *c.local_node : "-")
                << "  " << JsonText(c.local_image.value("row", json(nullptr))) << "\n";
    std::cout << "    remote " << c.remote_hlc << "@" << c.remote_node << "  "
              << c.remote_image.value("op", std::string("?")) << " "
              << JsonText(c.remote_image.value("row", json(nullptr))) << "\n";
  }
  return kExitOk;
}

}  // namespace

int RunCli(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::cout << kMainHelp;
    return args.empty() ? kExitUsage : kExitOk;
  }
  const std::string& cmd = args[0];
  if (cmd == "version" || cmd == "--version") {
    std::cout << "zonemesh " << ZONEMESH_VERSION << "\n";
    return kExitOk;
  }
  auto help = kCommandHelp.find(cmd);
  if (help == kCommandHelp.end()) {
    std::cerr << "zonemesh: unknown command \"" << cmd << "\"\n\n" << kMainHelp;
    return kExitUsage;
  }
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::cout << help->second;
      return kExitOk;
    }
  }
  try {
    auto parse = [&](const std::set<std::string>& flags) {
      Args a = ParseArgs(args, flags);
      if (!a.positional.empty()) throw UsageError("unexpected argument \"" + a.positional[0] + "\"");
      return a;
    };
    if (cmd == "install") return Install(parse({"--create-schema", "--print-sql"}));
    if (cmd == "uninstall") return Uninstall(parse({"--print-sql"}));
    if (cmd == "run") return Run(parse({}));
    if (cmd == "status") return Status(parse({"--json"}));
    if (cmd == "dump") return Dump(parse({"--checksum", "--check"}));
    if (cmd == "join") {
      Args a = ParseArgs(args, {"--discard-local"}, {"--from"});
      if (!a.positional.empty()) throw UsageError("unexpected argument \"" + a.positional[0] + "\"");
      return Join(a);
    }
    if (cmd == "verify") {
      Args a = ParseArgs(args, {}, {"--peer", "--zone"});
      if (!a.positional.empty()) throw UsageError("unexpected argument \"" + a.positional[0] + "\"");
      return Verify(a);
    }
    if (cmd == "conflicts") return Conflicts(ParseArgs(args, {"--pending", "--json"}, {"--limit", "--take"}));
  } catch (const UsageError& e) {
    std::cerr << "zonemesh: " << e.what() << "\n\n" << help->second;
    return kExitUsage;
  } catch (const ConfigError& e) {
    std::cerr << "zonemesh: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "zonemesh " << cmd << ": " << e.what() << "\n";
    return kExitFailure;
  }
  return kExitUsage;
}

}  // namespace zonemesh
