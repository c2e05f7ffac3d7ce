#include "db/postgresql/postgresql_connection.h"

#include <strings.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <pqxx/connection>
#include <pqxx/except>
#include <pqxx/nontransaction>
#include <pqxx/result>

#include "db/session_flag.h"

namespace zonemesh::db {
namespace {

// Column type OIDs (pg_type.h) that map to integer and boolean Values.
constexpr pqxx::oid kBoolOid = 16;
constexpr pqxx::oid kInt8Oid = 20;
constexpr pqxx::oid kInt2Oid = 21;
constexpr pqxx::oid kInt4Oid = 23;

Error::Kind KindOfSqlstate(const std::string& state) {
  if (state == "40001" || state == "40P01" || state == "55P03" || state == "57014") {
    return Error::Kind::kTransient;
  }
  if (state.rfind("23", 0) == 0) return Error::Kind::kConstraint;
  if (state.rfind("08", 0) == 0 || state == "57P01" || state == "57P02" || state == "57P03") {
    return Error::Kind::kConnection;
  }
  return Error::Kind::kOther;
}

// libpqxx throws serialization failures and deadlocks as transaction_rollback
// subclasses, which carry no SQLSTATE, and SQLSTATE class 08 as
// broken_connection. in_doubt_error means the connection broke during COMMIT.
Error::Kind KindOf(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) ||
      dynamic_cast<const pqxx::in_doubt_error*>(&e)) {
    return Error::Kind::kConnection;
  }
  if (dynamic_cast<const pqxx::serialization_failure*>(&e) ||
      dynamic_cast<const pqxx::deadlock_detected*>(&e)) {
    return Error::Kind::kTransient;
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    return KindOfSqlstate(sql->sqlstate());
  }
  return Error::Kind::kOther;
}

// libpq messages span lines ("ERROR: ...\nDETAIL: ...\n"); log lines do not.
std::string OneLine(std::string_view msg) {
  std::string out;
  bool newline = false;
  for (char c : msg) {
    if (c == '\n') {
      newline = true;
    } else if (newline && (c == ' ' || c == '\t')) {
      continue;
    } else {
      if (newline) out += ' ';
      newline = false;
      out += c;
    }
  }
  return out;
}

bool IsIdentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '$' || static_cast<unsigned char>(c) >= 0x80;
}

// If a string literal, quoted identifier, dollar-quoted body or comment starts
// at sql[i], returns the index just past its end (sql.size() when it is not
// terminated); otherwise returns i.
size_t SkipQuoted(std::string_view sql, size_t i) {
  const size_t n = sql.size();
  const char c = sql[i];
  if (c == '\'' || c == '"') {
    // A doubled quote stands for itself; E'...' strings also escape with '\'.
    const bool backslash = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                           (i == 1 || !IsIdentChar(sql[i - 2]));
    for (size_t j = i + 1; j < n; ++j) {
      if (backslash && sql[j] == '\\') {
        ++j;
      } else if (sql[j] == c) {
        if (j + 1 < n && sql[j + 1] == c) {
          ++j;
        } else {
          return j + 1;
        }
      }
    }
    return n;
  }
  if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
    size_t eol = sql.find('\n', i);
    return eol == std::string_view::npos ? n : eol + 1;
  }
  if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
    int depth = 0;  // block comments nest in PostgreSQL
    for (size_t j = i; j + 1 < n; ++j) {
      if (sql[j] == '/' && sql[j + 1] == '*') {
        ++depth;
        ++j;
      } else if (sql[j] == '*' && sql[j + 1] == '/') {
        ++j;
        if (--depth == 0) return j + 1;
      }
    }
    return n;
  }
  // $tag$...$tag$; a '$' inside an identifier or before a digit ($1) is none.
  if (c == '$' && (i == 0 || !IsIdentChar(sql[i - 1]))) {
    size_t j = i + 1;
    if (j < n && !(sql[j] >= '0' && sql[j] <= '9')) {
      while (j < n && sql[j] != '$' && IsIdentChar(sql[j])) ++j;
    }
    if (j < n && sql[j] == '$') {
      const std::string_view tag = sql.substr(i, j + 1 - i);
      const size_t close = sql.find(tag, j + 1);
      return close == std::string_view::npos ? n : close + tag.size();
    }
  }
  return i;
}

struct Rewritten {
  std::string sql;
  int params = 0;
};

// Rewrites `?` placeholders to $1..$n, leaving alone any '?' inside literals,
// quoted identifiers, dollar-quoted bodies and comments. (So the jsonb `?`
// operators cannot be written in this dialect; use jsonb_exists() instead.)
Rewritten RewritePlaceholders(std::string_view sql) {
  Rewritten out;
  out.sql.reserve(sql.size() + 16);
  for (size_t i = 0; i < sql.size();) {
    if (sql[i] == '?') {
      out.sql += '$' + std::to_string(++out.params);
      ++i;
      continue;
    }
    size_t end = SkipQuoted(sql, i);
    if (end == i) ++end;
    out.sql.append(sql.substr(i, end - i));
    i = end;
  }
  return out;
}

// Keyword form: "host=h password=x" or "password = 'x y'". Stops with "..." at
// anything it cannot parse, so a malformed string never shows its password.
std::string MaskKeywordPassword(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  std::string out;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    if (space(s[i])) {
      out += s[i++];
      continue;
    }
    const size_t key_begin = i;
    while (i < n && s[i] != '=' && !space(s[i])) ++i;
    const std::string_view key = s.substr(key_begin, i - key_begin);
    out.append(key);
    while (i < n && space(s[i])) ++i;
    if (i == n || s[i] != '=') return out + "...";
    out += '=';
    ++i;
    while (i < n && space(s[i])) ++i;
    const size_t value_begin = i;
    if (i < n && s[i] == '\'') {
      for (++i; i < n && s[i] != '\''; ++i) {
        if (s[i] == '\\') ++i;
      }
      if (i >= n) return out + "...";
      ++i;
    } else {
      for (; i < n && !space(s[i]); ++i) {
        if (s[i] == '\\') ++i;
      }
      i = std::min(i, n);
    }
    out.append(key == "password" ? "***" : s.substr(value_begin, i - value_begin));
  }
  return out;
}

// URI form: postgresql://user:secret@host/db?password=secret&...
std::string MaskUriPassword(std::string_view uri) {
  std::string out(uri);
  const size_t query = out.find('?');
  if (query != std::string::npos) {
    for (size_t p = query + 1; p < out.size();) {
      size_t end = out.find('&', p);
      if (end == std::string::npos) end = out.size();
      constexpr std::string_view kKey = "password=";
      if (out.compare(p, kKey.size(), kKey) == 0) {
        out.replace(p + kKey.size(), end - p - kKey.size(), "***");
        end = p + kKey.size() + 3;
      }
      p = end + 1;
    }
  }
  const size_t auth = out.find("://") + 3;
  const size_t auth_end = std::min(out.find_first_of("/?", auth), out.size());
  const size_t at = out.rfind('@', auth_end - 1);
  if (at != std::string::npos && at >= auth) {
    const size_t colon = out.find(':', auth);
    if (colon < at) out.replace(colon + 1, at - colon - 1, "***");
  }
  return out;
}

// The connection string with every password value replaced by "***".
std::string MaskPassword(std::string_view conninfo) {
  if (conninfo.rfind("postgresql://", 0) == 0 || conninfo.rfind("postgres://", 0) == 0) {
    return MaskUriPassword(conninfo);
  }
  return MaskKeywordPassword(conninfo);
}

Value ToValue(const pqxx::field& f, pqxx::oid type) {
  if (f.is_null()) return Value();
  switch (type) {
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid: {
      int64_t v = 0;
      std::from_chars(f.c_str(), f.c_str() + f.size(), v);
      return Value(v);
    }
    case kBoolOid:
      return Value(f.c_str()[0] == 't');
    default:
      return Value(std::string(f.c_str(), f.size()));
  }
}

std::vector<Row> ToRows(const pqxx::result& r) {
  const pqxx::row_size_type columns = r.columns();
  std::vector<pqxx::oid> types(columns);
  for (pqxx::row_size_type c = 0; c < columns; ++c) types[c] = r.column_type(c);
  std::vector<Row> rows;
  rows.reserve(r.size());
  for (const pqxx::row& pr : r) {
    Row row;
    row.reserve(columns);
    for (pqxx::row_size_type c = 0; c < columns; ++c) row.push_back(ToValue(pr[c], types[c]));
    rows.push_back(std::move(row));
  }
  return rows;
}

// Every statement runs in its own pqxx::nontransaction; explicit transactions
// are plain BEGIN/COMMIT/ROLLBACK statements, as in the SQLite driver. Two
// reasons not to use libpqxx's transaction classes: their BEGIN silently
// reconnects after a lost connection, which would drop the session state
// (applying flag, LISTEN, time zone), and their commit() reports success when
// the server answers COMMIT with ROLLBACK because an earlier statement failed.
class PostgresConnection final : public Connection {
 public:
  // Connects; throws whatever libpqxx throws when it cannot.
  PostgresConnection(const std::string& conninfo, std::string target)
      : conn_(conninfo), target_(std::move(target)) {}

  Dialect dialect() const override { return Dialect::kPostgres; }
  std::string Describe() const override { return target_; }

  void ExecuteDdl(const std::string& sql) override {
    Run(sql, [&] {
      pqxx::nontransaction tx(conn_);
      tx.exec(sql);
    });
    // A successful ROLLBACK TO SAVEPOINT undoes the failed statement: the
    // transaction is usable again (a failure before the savepoint would have
    // made this statement fail too).
    if (tx_failed_ && sql.size() >= 11 && strncasecmp(sql.c_str(), "ROLLBACK TO", 11) == 0) {
      tx_failed_ = false;
    }
  }

  int64_t Execute(const std::string& sql, const Params& params) override {
    return static_cast<int64_t>(ExecPrepared(sql, params).affected_rows());
  }

  std::vector<Row> Query(const std::string& sql, const Params& params) override {
    return ToRows(ExecPrepared(sql, params));
  }

  void Begin() override { BeginWith("BEGIN ISOLATION LEVEL READ COMMITTED"); }
  void BeginSnapshot() override { BeginWith("BEGIN ISOLATION LEVEL REPEATABLE READ"); }
  void BeginReadOnlySnapshot() override {
    BeginWith("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  }

  // PostgreSQL aborts the whole transaction at the first failed statement and
  // then answers COMMIT with a silent ROLLBACK; that is reported as an error.
  void Commit() override {
    if (!in_tx_) throw Error(Error::Kind::kOther, Describe() + ": no transaction is active");
    in_tx_ = false;  // COMMIT ends the transaction whether it succeeds or not
    if (tx_failed_ && conn_.is_open()) {
      ExecuteDdl("ROLLBACK");
      throw Error(Error::Kind::kOther,
                  Describe() + ": a statement of this transaction failed; rolled back");
    }
    ExecuteDdl("COMMIT");
  }

  void Rollback() noexcept override {
    if (!in_tx_) return;
    in_tx_ = false;
    try {
      ExecuteDdl("ROLLBACK");
    } catch (...) {
      // The server rolls back by itself when the connection is gone.
    }
  }

  bool InTransaction() const override { return in_tx_; }

  // A session-level SET, undone only if the transaction it runs in rolls back;
  // call it outside transactions.
  void SetApplying(bool on) override {
    ExecuteDdl(on ? std::string("SET ") + kPostgresApplyingSetting + " = 'on'"
                  : std::string("RESET ") + kPostgresApplyingSetting);
    // The applier finds PowerDNS rows by natural key. A generic plan made
    // while a table was small (a fresh node catching up) keeps scanning it
    // as it grows; planning each execution picks the (name, type) index.
    ExecuteDdl(on ? "SET plan_cache_mode = force_custom_plan" : "RESET plan_cache_mode");
  }

  void SetLockWaitLimit(std::chrono::milliseconds limit) override {
    // lock_timeout 0 would mean "no limit": a millisecond is the least.
    ExecuteDdl("SET lock_timeout = '" + std::to_string(std::max<int64_t>(1, limit.count())) + "ms'");
  }

  void ListenForChanges() override {
    ExecuteDdl(std::string("LISTEN ") + kPostgresNotifyChannel);
  }

  // Notifications reach the session only between transactions, so this waits
  // in vain inside one.
  bool WaitForChange(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    return Run("(waiting for notifications)", [&] {
      for (;;) {
        // Rounded up: poll() counts whole milliseconds, and 0 does not wait.
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        const long ms = std::max<long>(0, static_cast<long>(left.count()));
        // Consumes notifications already received before waiting for more.
        if (conn_.await_notification(ms / 1000, ms % 1000 * 1000) > 0) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
      }
    });
  }

  bool TableExists(const std::string& table) override {
    return !Query("SELECT 1 FROM pg_catalog.pg_class c WHERE c.relname = ? "
                  "AND c.relkind IN ('r', 'p') AND pg_catalog.pg_table_is_visible(c.oid)",
                  {table})
                .empty();
  }

  bool Ping() noexcept override {
    try {
      Query("SELECT 1", {});
      return true;
    } catch (...) {
      return false;
    }
  }

  int64_t LastInsertId() override { return Query("SELECT lastval()", {})[0][0].AsInt(); }

  // Session-level advisory locks are per database and end with the session.
  bool TryAdvisoryLock(const std::string& name) override {
    return Query("SELECT pg_try_advisory_lock(hashtext(?))", {name})[0][0].AsBool();
  }

 private:
  struct Prepared {
    std::string name;
    int params;
  };

  static std::string Abbrev(const std::string& sql) {
    return sql.size() > 200 ? sql.substr(0, 200) + "..." : sql;
  }

  // Runs `op`, which talks to the server, and rethrows any failure as
  // db::Error naming `sql`. A lost connection stays lost: libpqxx would
  // reconnect on the next call and silently drop the session state, so no
  // call reaches it after that; the caller opens a new connection.
  template <typename Op>
  auto Run(const std::string& sql, Op op) -> decltype(op()) {
    if (!conn_.is_open()) {
      throw Error(Error::Kind::kConnection,
                  Describe() + ": connection lost in: " + Abbrev(sql));
    }
    try {
      return op();
    } catch (const std::exception& e) {
      if (in_tx_) tx_failed_ = true;
      const bool lost = !conn_.is_open();
      throw Error(lost ? Error::Kind::kConnection : KindOf(e),
                  Describe() + (lost ? ": connection lost: " : ": ") + OneLine(e.what()) +
                      " in: " + Abbrev(sql));
    }
  }

  void BeginWith(const std::string& sql) {
    if (in_tx_) {
      throw Error(Error::Kind::kOther,
                  Describe() + ": a transaction is already active in: " + sql);
    }
    ExecuteDdl(sql);
    in_tx_ = true;
    tx_failed_ = false;
  }

  // Prepares `sql` on first use (as zm_s1, zm_s2, ...), binds `params` as text
  // and runs it. The server infers each parameter's type from its context.
  pqxx::result ExecPrepared(const std::string& sql, const Params& params) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      Rewritten r = RewritePlaceholders(sql);
      Prepared p{"zm_s" + std::to_string(cache_.size() + 1), r.params};
      conn_.prepare(p.name, r.sql);  // sent to the server on first execution
      it = cache_.emplace(sql, std::move(p)).first;
    }
    const Prepared& st = it->second;
    if (st.params != static_cast<int>(params.size())) {
      throw Error(Error::Kind::kOther, Describe() + ": statement takes " +
                                           std::to_string(st.params) + " parameters, got " +
                                           std::to_string(params.size()) + " in: " + Abbrev(sql));
    }
    // Booleans bind as 1/0, which PostgreSQL accepts for both boolean and
    // integer columns (t/f would fail for integers).
    std::vector<std::string> numbers;
    numbers.reserve(params.size());  // keeps the c_str() pointers below valid
    std::vector<const char*> args;
    args.reserve(params.size());
    for (const Value& v : params) {
      if (v.IsNull()) {
        args.push_back(nullptr);
      } else if (v.IsInt()) {
        args.push_back(numbers.emplace_back(std::to_string(v.integer())).c_str());
      } else if (v.IsBool()) {
        args.push_back(v.boolean() ? "1" : "0");
      } else {
        args.push_back(v.text().c_str());
      }
    }
    return Run(sql, [&] {
      pqxx::nontransaction tx(conn_);
      return tx.exec_prepared(st.name, pqxx::prepare::make_dynamic_params(args));
    });
  }

  pqxx::connection conn_;
  std::string target_;
  std::unordered_map<std::string, Prepared> cache_;
  bool in_tx_ = false;
  // A statement failed inside the current transaction, which the server has
  // therefore aborted.
  bool tx_failed_ = false;
};

}  // namespace

std::unique_ptr<Connection> OpenPostgres(const DatabaseConfig& config) {
  const std::string target = "postgresql:" + MaskPassword(config.conninfo);
  std::unique_ptr<PostgresConnection> conn;
  try {
    conn = std::make_unique<PostgresConnection>(config.conninfo, target);
  } catch (const std::exception& e) {
    throw Error(Error::Kind::kConnection, target + ": cannot connect: " + OneLine(e.what()));
  }
  try {
    conn->ExecuteDdl(
        "SET TIME ZONE 'UTC'; SET client_encoding = 'UTF8'; "
        "SET default_transaction_isolation = 'read committed'");
  } catch (const Error& e) {
    throw Error(Error::Kind::kConnection, e.what());
  }
  return conn;
}

}  // namespace zonemesh::db
