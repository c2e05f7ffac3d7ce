#include "replicator/config.h"

#include <boost/asio/ip/address.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "conflict/strategy.h"
#include "schema/spec.h"

namespace zonemesh {

using nlohmann::json;

std::string Endpoint::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Endpoint ParseEndpoint(const std::string& text) {
  Endpoint ep;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw std::invalid_argument("expected [address]:port");
    ep.host = text.substr(1, close - 1);
    if (ep.host.empty()) throw std::invalid_argument("expected [address]:port");
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) throw std::invalid_argument("expected host:port");
    ep.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument("port must be a number from 1 to 65535");
  int p = std::stoi(port);
  if (p < 1 || p > 65535) throw std::invalid_argument("port must be a number from 1 to 65535");
  ep.port = static_cast<uint16_t>(p);
  return ep;
}

namespace {

// Walks a JSON object, remembering which keys were consumed, so that
// leftovers can be reported as unknown. Every error names the full key path.
class Section {
 public:
  Section(const json& j, std::string path, const std::string& file)
      : j_(j), path_(std::move(path)), file_(file) {
    if (!j_.is_object()) Fail(path_.empty() ? "the top level" : path_, "must be an object");
  }

  [[noreturn]] void Fail(const std::string& key, const std::string& what) const {
    throw ConfigError("config " + file_ + ": '" + key + "' " + what);
  }
  std::string Key(const std::string& k) const { return path_.empty() ? k : path_ + "." + k; }

  bool Has(const std::string& k) const { return j_.contains(k); }

  const json& Get(const std::string& k) {
    seen_.insert(k);
    return j_.at(k);
  }

  std::string String(const std::string& k, bool required, const std::string& def = "") {
    if (!Has(k)) {
      if (required) Fail(Key(k), "is missing");
      return def;
    }
    const json& v = Get(k);
    if (!v.is_string()) Fail(Key(k), "must be a string");
    return v.get<std::string>();
  }

  int64_t Int(const std::string& k, int64_t def, int64_t min, int64_t max) {
    if (!Has(k)) return def;
    const json& v = Get(k);
    if (!v.is_number_integer()) Fail(Key(k), "must be an integer");
    int64_t x = v.get<int64_t>();
    if (x < min || x > max)
      Fail(Key(k), "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return x;
  }

  void RejectUnknown() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!seen_.count(it.key())) Fail(Key(it.key()), "is not a known setting");
    }
  }

  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }

 private:
  const json& j_;
  std::string path_;
  const std::string& file_;
  std::set<std::string> seen_;
};

db::DatabaseConfig ParseDatabase(Section& top, const std::string& base_dir) {
  if (!top.Has("database")) top.Fail("database", "is missing");
  Section s(top.Get("database"), "database", top.file());
  db::DatabaseConfig d;
  std::string type = s.String("type", true);
  if (type == "sqlite") {
    d.dialect = db::Dialect::kSqlite;
    std::string path = s.String("path", true);
    if (path.empty()) s.Fail("database.path", "must not be empty");
    std::filesystem::path p(path);
    if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
    d.path = p.lexically_normal().string();
    d.busy_timeout_ms = static_cast<int>(s.Int("busy_timeout_ms", d.busy_timeout_ms, 0, 600000));
    d.yield_to_readers = true;  // the database is PowerDNS's (docs/operations.md)
  } else if (type == "postgresql") {
    d.dialect = db::Dialect::kPostgres;
    d.conninfo = s.String("conninfo", true);
  } else if (type == "mysql") {
    d.dialect = db::Dialect::kMysql;
    d.database = s.String("database", true);
    d.user = s.String("user", false, d.user);
    d.password = s.String("password", false, "");
    d.socket = s.String("socket", false, "");
    if (!d.socket.empty() && (s.Has("host") || s.Has("port")))
      s.Fail("database.socket", "cannot be combined with host/port");
    d.host = s.String("host", false, d.host);
    d.port = static_cast<int>(s.Int("port", d.port, 1, 65535));
  } else {
    s.Fail("database.type", "must be \"sqlite\", \"postgresql\" or \"mysql\", not \"" + type + "\"");
  }
  s.RejectUnknown();
  return d;
}

PeerConfig ParsePeer(const json& j, size_t index, const std::string& file) {
  Section s(j, "peers[" + std::to_string(index) + "]", file);
  PeerConfig p;
  p.id = s.String("id", true);
  if (!IsValidNodeId(p.id)) s.Fail(s.Key("id"), "is not a valid node id: \"" + p.id + "\"");
  p.url = s.String("url", true);
  static const std::regex re(R"(^(https?)://(\[[0-9A-Fa-f:.]+\]|[^/:\[\]]+):([0-9]{1,5})(/.*)?$)");
  std::smatch m;
  if (!std::regex_match(p.url, m, re))
    s.Fail(s.Key("url"), "must look like http://host:port, not \"" + p.url + "\"");
  p.scheme = m[1];
  try {
    p.endpoint = ParseEndpoint(std::string(m[2]) + ":" + std::string(m[3]));
  } catch (const std::invalid_argument& e) {
    s.Fail(s.Key("url"), e.what());
  }
  p.base_path = m[4];
  while (!p.base_path.empty() && p.base_path.back() == '/') p.base_path.pop_back();
  s.RejectUnknown();
  return p;
}

ConflictConfig ParseConflict(Section& top, const std::string& base_dir) {
  ConflictConfig c;
  if (!top.Has("conflict")) return c;
  Section s(top.Get("conflict"), "conflict", top.file());
  c.strategy = s.String("strategy", false, c.strategy);
  if (!conflict::IsKnownStrategy(c.strategy))
    s.Fail("conflict.strategy", "names an unknown strategy \"" + c.strategy +
                                    "\" (known: " + conflict::KnownStrategyNames() + ")");
  if (s.Has("tables")) {
    const json& t = s.Get("tables");
    if (!t.is_object()) s.Fail("conflict.tables", "must be an object");
    for (auto it = t.begin(); it != t.end(); ++it) {
      std::string key = "conflict.tables." + it.key();
      if (!schema::FindTable(it.key())) s.Fail(key, "is not a replicated table");
      if (!it.value().is_string()) s.Fail(key, "must be a string");
      std::string name = it.value().get<std::string>();
      if (!conflict::IsKnownStrategy(name))
        s.Fail(key, "names an unknown strategy \"" + name + "\" (known: " +
                        conflict::KnownStrategyNames() + ")");
      c.tables[it.key()] = name;
    }
  }
  std::set<std::string> used = {c.strategy};
  for (const auto& [table, name] : c.tables) used.insert(name);

  if (s.Has("priority")) {
    const json& p = s.Get("priority");
    if (!p.is_array() || p.empty()) s.Fail("conflict.priority", "must be a non-empty array of node ids");
    std::set<std::string> seen;
    for (size_t i = 0; i < p.size(); ++i) {
      std::string key = "conflict.priority[" + std::to_string(i) + "]";
      if (!p[i].is_string() || !IsValidNodeId(p[i].get<std::string>())) s.Fail(key, "must be a node id");
      if (!seen.insert(p[i].get<std::string>()).second) s.Fail(key, "repeats a node id");
      c.priority.push_back(p[i].get<std::string>());
    }
  }
  if (used.count("priority") && c.priority.empty())
    s.Fail("conflict.priority", "is missing: the \"priority\" strategy needs the node order");

  c.retention_seconds =
      s.Int("retention_seconds", c.retention_seconds, 60, int64_t{10} * 365 * 86400);
  if (s.Has("plugin")) {
    std::filesystem::path p(s.String("plugin", true));
    if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
    c.plugin = p.lexically_normal().string();
  }
  if (used.count("custom")) {
    if (c.plugin.empty())
      s.Fail("conflict.plugin", "is missing: the \"custom\" strategy needs a plug-in library");
    try {
      conflict::MakePlugin(c.plugin);
    } catch (const std::exception& e) {
      s.Fail("conflict.plugin", std::string("cannot be used: ") + e.what());
    }
  }
  s.RejectUnknown();
  return c;
}

}  // namespace

Config ParseConfig(const std::string& json_text, const std::string& base_dir,
                   const std::string& file) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {  // parse errors, and numbers out of range
    throw ConfigError("config " + file + ": not valid JSON: " + e.what());
  }
  Section s(j, "", file);
  Config c;
  c.file = file;

  c.node_id = s.String("node_id", true);
  if (!IsValidNodeId(c.node_id))
    s.Fail("node_id", "must match [A-Za-z0-9][A-Za-z0-9._-]* (at most 63 characters), not \"" +
                          c.node_id + "\"");

  std::string listen = s.String("listen", true);
  try {
    c.listen = ParseEndpoint(listen);
  } catch (const std::invalid_argument& e) {
    s.Fail("listen", std::string(e.what()) + ", got \"" + listen + "\"");
  }
  boost::system::error_code ec;
  boost::asio::ip::make_address(c.listen.host, ec);  // also used below
  if (ec) s.Fail("listen", "must be an IP address and port (e.g. 127.0.0.1:8301), got \"" + listen + "\"");

  if (s.Has("status_listen")) {
    std::string sl = s.String("status_listen", true);
    try {
      c.status_listen = ParseEndpoint(sl);
    } catch (const std::invalid_argument& e) {
      s.Fail("status_listen", std::string(e.what()) + ", got \"" + sl + "\"");
    }
    boost::asio::ip::make_address(c.status_listen->host, ec);
    if (ec) s.Fail("status_listen", "must be an IP address and port, got \"" + sl + "\"");
    if (c.status_listen->host == c.listen.host && c.status_listen->port == c.listen.port)
      s.Fail("status_listen", "must differ from listen");
  }

  if (s.Has("auth")) {
    Section a(s.Get("auth"), "auth", file);
    if (a.Has("secret") == a.Has("secret_file"))
      a.Fail("auth", "needs exactly one of \"secret\" and \"secret_file\"");
    if (a.Has("secret")) {
      c.auth.secret = a.String("secret", true);
    } else {
      std::filesystem::path p(a.String("secret_file", true));
      if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
      std::ifstream in(p);
      std::error_code fec;
      if (!in || !std::filesystem::is_regular_file(p, fec))
        a.Fail("auth.secret_file", "cannot be read: " + p.string());
      std::stringstream ss;
      ss << in.rdbuf();
      c.auth.secret = ss.str();
      while (!c.auth.secret.empty() && (c.auth.secret.back() == '\n' || c.auth.secret.back() == '\r' ||
                                        c.auth.secret.back() == ' '))
        c.auth.secret.pop_back();
    }
    if (c.auth.secret.size() < 16)
      a.Fail(a.Has("secret") ? "auth.secret" : "auth.secret_file",
             "must hold at least 16 characters (a long random string)");
    c.auth.max_clock_skew_seconds =
        static_cast<int>(a.Int("max_clock_skew_seconds", c.auth.max_clock_skew_seconds, 1, 86400));
    a.RejectUnknown();
  }

  if (s.Has("powerdns")) {
    Section p(s.Get("powerdns"), "powerdns", file);
    c.powerdns.api_url = p.String("api_url", true);
    static const std::regex re(R"(^http://(\[[0-9A-Fa-f:.]+\]|[^/:\[\]]+):([0-9]{1,5})/?$)");
    std::smatch m;
    if (!std::regex_match(c.powerdns.api_url, m, re))
      p.Fail("powerdns.api_url", "must look like http://127.0.0.1:8081, not \"" + c.powerdns.api_url + "\"");
    try {
      c.powerdns.api_endpoint = ParseEndpoint(std::string(m[1]) + ":" + std::string(m[2]));
    } catch (const std::invalid_argument& e) {
      p.Fail("powerdns.api_url", e.what());
    }
    if (p.Has("api_key") == p.Has("api_key_file"))
      p.Fail("powerdns", "needs exactly one of \"api_key\" and \"api_key_file\"");
    if (p.Has("api_key")) {
      c.powerdns.api_key = p.String("api_key", true);
    } else {
      std::filesystem::path kp(p.String("api_key_file", true));
      if (kp.is_relative()) kp = std::filesystem::path(base_dir) / kp;
      std::ifstream in(kp);
      if (!in) p.Fail("powerdns.api_key_file", "cannot be read: " + kp.string());
      std::getline(in, c.powerdns.api_key);
    }
    if (c.powerdns.api_key.empty()) p.Fail("powerdns.api_key", "must not be empty");
    c.powerdns.server_id = p.String("server_id", false, c.powerdns.server_id);
    if (p.Has("notify")) {
      const json& n = p.Get("notify");
      if (!n.is_boolean()) p.Fail("powerdns.notify", "must be true or false");
      c.powerdns.notify = n.get<bool>();
    }
    p.RejectUnknown();
  }

  if (s.Has("tls")) {
    Section t(s.Get("tls"), "tls", file);
    auto path = [&](const char* key, bool required) {
      std::string v = t.String(key, required);
      if (v.empty()) return v;
      std::filesystem::path p(v);
      if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
      std::error_code fec;
      if (!std::filesystem::is_regular_file(p, fec))
        t.Fail(std::string("tls.") + key, "cannot be read: " + p.string());
      return p.lexically_normal().string();
    };
    c.tls.cert = path("cert", true);
    c.tls.key = path("key", true);
    c.tls.ca = path("ca", false);
    if (t.Has("require_client_cert")) {
      const json& v = t.Get("require_client_cert");
      if (!v.is_boolean()) t.Fail("tls.require_client_cert", "must be true or false");
      c.tls.require_client_cert = v.get<bool>();
    }
    if (c.tls.require_client_cert && c.tls.ca.empty())
      t.Fail("tls.ca", "is needed to verify client certificates (require_client_cert)");
    t.RejectUnknown();
  }

  c.database = ParseDatabase(s, base_dir);

  if (s.Has("peers")) {
    const json& peers = s.Get("peers");
    if (!peers.is_array()) s.Fail("peers", "must be an array");
    std::set<std::string> ids;
    for (size_t i = 0; i < peers.size(); ++i) {
      PeerConfig p = ParsePeer(peers[i], i, file);
      if (p.id == c.node_id)
        s.Fail("peers[" + std::to_string(i) + "].id", "is this node's own id");
      if (p.scheme == "https" && !c.tls.enabled())
        s.Fail("peers[" + std::to_string(i) + "].url", "uses https, but no \"tls\" section is configured");
      if (!ids.insert(p.id).second)
        s.Fail("peers[" + std::to_string(i) + "].id", "repeats peer \"" + p.id + "\"");
      c.peers.push_back(std::move(p));
    }
  }

  c.conflict = ParseConflict(s, base_dir);

  c.batch_max_changes = static_cast<int>(s.Int("batch_max_changes", c.batch_max_changes, 1, 100000));
  c.batch_max_bytes = s.Int("batch_max_bytes", c.batch_max_bytes, 4096, int64_t{1} << 30);
  c.max_request_bytes = s.Int("max_request_bytes", c.max_request_bytes, 4096, int64_t{1} << 31);
  if (c.max_request_bytes < c.batch_max_bytes)
    s.Fail("max_request_bytes", "must be at least batch_max_bytes");
  c.max_connections = static_cast<int>(s.Int("max_connections", c.max_connections, 4, 100000));
  c.poll_interval_ms = static_cast<int>(s.Int("poll_interval_ms", c.poll_interval_ms, 1, 60000));
  c.retry_min_ms = static_cast<int>(s.Int("retry_min_ms", c.retry_min_ms, 1, 3600000));
  c.retry_max_ms = static_cast<int>(s.Int("retry_max_ms", c.retry_max_ms, 1, 3600000));
  if (c.retry_max_ms < c.retry_min_ms) s.Fail("retry_max_ms", "must be at least retry_min_ms");
  c.request_timeout_ms =
      static_cast<int>(s.Int("request_timeout_ms", c.request_timeout_ms, 100, 3600000));
  c.heartbeat_interval_ms =
      static_cast<int>(s.Int("heartbeat_interval_ms", c.heartbeat_interval_ms, 100, 600000));
  c.link_timeout_ms = static_cast<int>(s.Int("link_timeout_ms", c.link_timeout_ms, 200, 3600000));
  if (c.link_timeout_ms < 2 * c.heartbeat_interval_ms)
    s.Fail("link_timeout_ms", "must be at least twice heartbeat_interval_ms");
  c.outbox_retention_seconds =
      s.Int("outbox_retention_seconds", c.outbox_retention_seconds, 0, int64_t{10} * 365 * 86400);
  if (s.Has("health")) {
    Section h(s.Get("health"), "health", file);
    c.health_max_lag_seconds = static_cast<double>(h.Int("max_lag_seconds", 60, 1, 30LL * 86400));
    c.health_max_lagging_peers = static_cast<int>(h.Int("max_lagging_peers", 0, 0, 1000));
    h.RejectUnknown();
  }
  if (s.Has("anti_entropy")) {
    Section a(s.Get("anti_entropy"), "anti_entropy", file);
    c.anti_entropy.interval_seconds = a.Int("interval_seconds", c.anti_entropy.interval_seconds, 0, 86400);
    c.anti_entropy.settle_seconds = a.Int("settle_seconds", c.anti_entropy.settle_seconds, 0, 86400);
    c.anti_entropy.rehash_seconds = a.Int("rehash_seconds", c.anti_entropy.rehash_seconds, 1, 7 * 86400);
    a.RejectUnknown();
  }
  c.history_retention_seconds =
      s.Int("history_retention_seconds", c.history_retention_seconds, 10, int64_t{10} * 365 * 86400);
  if (c.history_retention_seconds < c.outbox_retention_seconds)
    s.Fail("history_retention_seconds", "must be at least outbox_retention_seconds");
  if (s.Has("initial_join")) {
    const json& v = s.Get("initial_join");
    if (!v.is_boolean()) s.Fail("initial_join", "must be true or false");
    c.initial_join = v.get<bool>();
  }
  c.log_level = s.String("log_level", false, c.log_level);
  static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error"};
  if (!levels.count(c.log_level))
    s.Fail("log_level", "must be one of trace, debug, info, warn, error");

  s.RejectUnknown();
  return c;
}

Config LoadConfig(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw ConfigError("config " + path + ": cannot be read (" +
                      (std::filesystem::exists(path, ec) ? "not a regular file" : "no such file") + ")");
  }
  std::ifstream in(path);
  if (!in) throw ConfigError("config " + path + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  std::filesystem::path p = std::filesystem::absolute(path);
  return ParseConfig(ss.str(), p.parent_path().string(), path);
}

}  // namespace zonemesh
