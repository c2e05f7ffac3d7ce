#include "triggers/capture.h"

#include "db/session_flag.h"
#include "schema/sql_dialect.h"

namespace zonemesh::triggers {
namespace {

using db::Dialect;
using schema::Column;
using schema::ColumnType;
using schema::kZoneField;
using schema::SqlDialect;
using schema::TableSpec;

// 0: plain table, 1: the zones table, 2: a zone child. The shared routines
// take this to pick the incarnation (epoch) rule.
int TableKind(const TableSpec& spec) {
  if (spec.is_zone_table) return 1;
  if (spec.is_child()) return 2;
  return 0;
}

// The table whose SOA rows carry a zone's serial.
bool HoldsSoa(const TableSpec& spec) { return spec.name == "records"; }

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

std::string In(const SqlDialect& d, const std::string& expr, const std::vector<std::string>& values) {
  std::vector<std::string> lits;
  for (const std::string& v : values) lits.push_back(d.Literal(v));
  return d.Upper(expr) + " IN (" + Join(lits, ", ") + ")";
}

// Builds the SQL expressions over one row image (NEW or OLD) of a table.
class RowExprs {
 public:
  RowExprs(const SqlDialect& d, const TableSpec& spec, std::string row)
      : d_(d), spec_(spec), row_(std::move(row)) {}

  std::string Col(const std::string& c) const { return row_ + "." + c; }

  // The zone name of this row: a subquery for children, the row's own name
  // for domains, NULL otherwise.
  std::string ZoneLookup() const {
    if (spec_.is_child()) {
      std::string name = d_.dialect() == Dialect::kMysql ? "CONVERT(name USING utf8mb4)" : "name";
      return "(SELECT " + name + " FROM domains WHERE id = " + Col(spec_.parent_column) + ")";
    }
    if (spec_.is_zone_table) return d_.ToText(Col("name"), ColumnType::kText);
    return "NULL";
  }

  // Upper-cased singleton test, e.g. UPPER(NEW.type) IN ('SOA', ...).
  std::string SingletonTest() const { return In(d_, Col(spec_.singleton->when_column), spec_.singleton->values); }

  // True for rows that never travel (spec.local_rows); "FALSE" without a rule.
  std::string LocalRowTest() const {
    if (!spec_.local_rows) return "(1 = 0)";
    return "(" + Col(spec_.local_rows->column) + " IS NOT NULL AND " +
           In(d_, Col(spec_.local_rows->column), spec_.local_rows->values) + ")";
  }

  // True for an SOA row of the records table.
  std::string SoaTest() const {
    if (!HoldsSoa(spec_)) return "(1 = 0)";
    return "(" + Col("type") + " IS NOT NULL AND " + d_.Upper(Col("type")) + " = 'SOA')";
  }

  // The canonical key string, with `zone` the zone-name expression.
  std::string Key(const std::string& zone) const {
    std::vector<std::string> parts;
    for (const std::string& k : spec_.key) {
      if (!parts.empty()) parts.push_back("'|'");
      if (k == kZoneField) {
        parts.push_back(d_.KeyComponent(d_.ToText(zone, ColumnType::kText)));
        continue;
      }
      std::string text = d_.ToText(Col(k), spec_.FindColumn(k)->type);
      if (spec_.singleton && spec_.singleton->Drops(k)) {
        text = "CASE WHEN " + SingletonTest() + " THEN NULL ELSE " + text + " END";
      }
      parts.push_back(d_.KeyComponent(text));
    }
    return d_.Concat(parts);
  }

  // The key of the row's group (schema::GroupKey), NULL for tables without.
  std::string GroupKey(const std::string& zone) const {
    if (!spec_.is_grouped()) return "NULL";
    std::vector<std::string> parts = {d_.KeyComponent(d_.ToText(zone, ColumnType::kText))};
    for (const std::string& g : spec_.group) {
      parts.push_back("'|'");
      parts.push_back(d_.KeyComponent(d_.ToText(Col(g), spec_.FindColumn(g)->type)));
    }
    return d_.Concat(parts);
  }

  // The row image as a JSON object (zone name instead of the parent id).
  // A zone's payload also carries its node-local id, never shipped: after
  // a zone delete the daemon looks for rows written into it meanwhile.
  std::string Payload(const std::string& zone) const {
    std::vector<std::pair<std::string, std::string>> fields;
    if (spec_.is_child()) fields.emplace_back(std::string(kZoneField), zone);
    if (spec_.is_zone_table) fields.emplace_back("local_id", Col(spec_.id_column));
    for (const Column& c : spec_.columns) {
      fields.emplace_back(c.name, d_.PayloadValue(Col(c.name), c.type));
    }
    return d_.JsonObject(fields);
  }

  // EXISTS(another physical row with this row's natural key). Used after a
  // delete: the logical row lives on while a duplicate remains. The first
  // non-zone key column is compared with plain equality so that the lookup
  // can use PowerDNS's (name, type) indexes.
  std::string OtherRowWithSameKey() const {
    std::vector<std::string> conds;
    if (spec_.is_child()) conds.push_back("x." + spec_.parent_column + " = " + Col(spec_.parent_column));
    bool first = true;
    for (const std::string& k : spec_.key) {
      if (k == kZoneField) continue;
      std::string eq = Equal("x." + k, Col(k), spec_.FindColumn(k)->type, first);
      first = false;
      if (spec_.singleton && spec_.singleton->Drops(k)) {
        eq = "(CASE WHEN " + SingletonTest() + " THEN TRUE ELSE " + eq + " END)";
      }
      conds.push_back(eq);
    }
    return "EXISTS (SELECT 1 FROM " + spec_.name + " x WHERE " + Join(conds, " AND ") + ")";
  }

  // EXISTS(a row of this row's group): after a delete, FALSE means the
  // delete emptied the group (an RRset, a metadata kind).
  std::string GroupRemains() const {
    std::vector<std::string> conds;
    if (spec_.is_child()) conds.push_back("x." + spec_.parent_column + " = " + Col(spec_.parent_column));
    bool first = true;
    for (const std::string& g : spec_.group) {
      conds.push_back(Equal("x." + g, Col(g), spec_.FindColumn(g)->type, first));
      first = false;
    }
    return "EXISTS (SELECT 1 FROM " + spec_.name + " x WHERE " + Join(conds, " AND ") + ")";
  }

 private:
  std::string Equal(const std::string& a, const std::string& b, ColumnType type,
                    bool plain) const {
    std::string eq = plain ? "(" + a + " = " + b + ")" : d_.NullSafeEq(a, b);
    if (d_.dialect() == Dialect::kMysql && type == ColumnType::kText) {
      // MySQL's default collations ignore case and trailing spaces.
      eq = "(" + eq + " AND (" + a + " IS NULL OR BINARY " + a + " = BINARY " + b + "))";
    }
    return eq;
  }

  const SqlDialect& d_;
  const TableSpec& spec_;
  std::string row_;
};

// NOT (every shipped and parent column unchanged): updates of node-local
// columns (notified_serial, last_check) produce no event.
std::string ChangedCondition(const SqlDialect& d, const TableSpec& spec) {
  std::vector<std::string> same;
  auto add = [&](const std::string& c, ColumnType t) {
    std::string a = "OLD." + c, b = "NEW." + c;
    if (d.dialect() == Dialect::kMysql && t == ColumnType::kText) {
      a = "BINARY " + a;
      b = "BINARY " + b;
    }
    same.push_back(d.NullSafeEq(a, b));
  };
  if (spec.is_child()) add(spec.parent_column, ColumnType::kInt);
  for (const Column& c : spec.columns) add(c.name, c.type);
  return "NOT (" + Join(same, " AND ") + ")";
}

std::string TriggerName(const TableSpec& spec, const char* suffix) {
  return "zm_" + spec.name + "_" + suffix;
}

// ------------------------------------------------------- serial clock --
//
// An SOA write moves the zone's serial clock (schema/serial.h): the shared
// arithmetic, as SQL over the clock's base, its count sum and the written
// serial. Each dialect binds these names to its own variables or subqueries.

struct ClockExprs {
  std::string base;       // zm_zone.base, NULL when the zone has no clock
  std::string sum;        // SUM(zm_serial.n) of the zone
  std::string written;    // the serial of the new SOA content (not NULL)
  std::string unchanged;  // TRUE when an UPDATE left the serial as it was
};

// The clock value the write moves the zone to.
std::string TargetExpr(const ClockExprs& c) {
  const std::string cur = "(" + c.base + " + " + c.sum + ")";
  const std::string ahead = "(((" + c.written + " - (" + cur + " % 4294967296)) % 4294967296 + "
                            "4294967296) % 4294967296)";
  return "(CASE WHEN " + c.base + " IS NULL THEN " + c.written + " WHEN " + c.unchanged +
         " THEN " + cur + " + 1 WHEN " + ahead + " > 0 AND " + ahead + " < 2147483648 THEN " +
         cur + " + " + ahead + " ELSE " + cur + " + 1 END)";
}

// ---------------------------------------------------------------- SQLite --
//
// SQLite triggers have no variables or procedures, so each capture is a few
// set-based statements: activating a pending group replace, INSERT INTO
// zm_outbox ... SELECT computing key, version, vector, epochs and the serial
// clock in one pass, the zm_rowver upsert copying the version from that
// outbox row (last_insert_rowid() is scoped to the trigger), and for a
// delete that emptied its group the pending replace. All carry one guard.

std::string SqliteApplyingGuard() {
  return "(SELECT cache_size FROM pragma_cache_size) <> " +
         std::to_string(db::kSqliteApplyingCacheSize);
}

std::vector<std::string> SqliteCapture(const SqlDialect& d, const TableSpec& spec,
                                       const RowExprs& r, char op, const std::string& node,
                                       const std::string& extra_guard) {
  const std::string tbl = d.Literal(spec.name);
  const std::string self = d.Literal(node);
  const std::string now = d.NowMicros();
  const std::string new_hlc = "max(" + now + ", COALESCE(rv.clock, 0) + 1)";
  const std::string new_vv =
      "json_set(COALESCE(rv.vv, '{}'), '$.\"" + node + "\"', " + new_hlc + ")";
  const std::string zone = r.ZoneLookup();

  std::vector<std::string> guard = {"NOT " + r.LocalRowTest()};
  if (spec.is_child()) guard.push_back(zone + " IS NOT NULL");
  if (op == 'D') guard.push_back("NOT " + r.OtherRowWithSameKey());
  if (!extra_guard.empty()) guard.push_back(extra_guard);
  const std::string guard_sql = Join(guard, " AND ");

  std::vector<std::string> out;
  const std::string gkid = r.GroupKey(zone);
  const std::string group_row =
      "zm_group.tbl = " + tbl + " AND zm_group.kid = " + gkid;
  if (spec.is_grouped() && op == 'U') {
    // A group emptied earlier in this commit round (its delete not stamped
    // yet) and filled again: the replace starts the next incarnation.
    out.push_back("UPDATE zm_group SET epoch_hlc = max((SELECT o.hlc FROM zm_outbox o WHERE o.id = "
                  "zm_group.pending_id), epoch_hlc + 1), epoch_node = " +
                  self + ", pending_id = NULL WHERE " + group_row +
                  " AND pending_id IS NOT NULL AND EXISTS (SELECT 1 FROM zm_outbox o WHERE o.id = "
                  "zm_group.pending_id AND o.csn IS NULL) AND " +
                  guard_sql + ";");
    // A pending replace whose delete was stamped is over.
    out.push_back("UPDATE zm_group SET pending_id = NULL WHERE " + group_row +
                  " AND pending_id IS NOT NULL AND " + guard_sql + ";");
  }

  std::string epoch_hlc = "0", epoch_node = "''";
  std::string joins = " LEFT JOIN zm_rowver rv ON rv.tbl = " + tbl + " AND rv.kid = c.k";
  if (spec.is_child()) {
    joins += " LEFT JOIN zm_rowver ze ON ze.tbl = 'domains' AND ze.kid = " +
             d.KeyComponent("c.z");
    epoch_hlc = "COALESCE(ze.epoch_hlc, 0)";
    epoch_node = "COALESCE(ze.epoch_node, '')";
  } else if (spec.is_zone_table && op == 'D') {
    epoch_hlc = new_hlc;  // a zone delete starts a new incarnation
    epoch_node = self;
  } else if (spec.is_zone_table) {
    epoch_hlc = "COALESCE(rv.epoch_hlc, 0)";
    epoch_node = "COALESCE(rv.epoch_node, '')";
  }
  std::string gepoch_hlc = "0", gepoch_node = "''";
  if (spec.is_grouped()) {
    joins += " LEFT JOIN zm_group g ON g.tbl = " + tbl + " AND g.kid = c.g";
    gepoch_hlc = "COALESCE(g.epoch_hlc, 0)";
    gepoch_node = "COALESCE(g.epoch_node, '')";
    if (op == 'D') {
      // A delete belongs to the incarnation of the row it deleted.
      const std::string versioned = "rv.hlc > 0 AND rv.deleted = 0";
      gepoch_hlc = "(CASE WHEN " + versioned + " THEN rv.gepoch_hlc ELSE " + gepoch_hlc + " END)";
      gepoch_node = "(CASE WHEN " + versioned + " THEN rv.gepoch_node ELSE " + gepoch_node + " END)";
    }
  }
  std::string serial_base = "NULL", serial_count = "NULL";
  if (HoldsSoa(spec) && op == 'U') {
    serial_base = "(CASE WHEN " + r.SoaTest() +
                  " THEN (SELECT base FROM zm_zone WHERE zone = c.z) END)";
    serial_count = "(CASE WHEN " + r.SoaTest() + " THEN (SELECT n FROM zm_serial WHERE zone = c.z " +
                   "AND origin = " + self + " AND kind = 'E') END)";
  }

  out.push_back(
      "INSERT INTO zm_outbox(tbl, op, rkey, payload, hlc, vv, epoch_hlc, epoch_node, sess, "
      "gepoch_hlc, gepoch_node, serial_base, serial_count) SELECT " +
      tbl + ", '" + op + "', c.k, " + r.Payload("c.z") + ", " + new_hlc + ", " + new_vv + ", " +
      epoch_hlc + ", " + epoch_node + ", 0, " + gepoch_hlc + ", " + gepoch_node + ", " +
      serial_base + ", " + serial_count + " FROM (SELECT c0.z AS z, " + r.Key("c0.z") + " AS k, " +
      r.GroupKey("c0.z") + " AS g FROM (SELECT " + zone + " AS z) AS c0) AS c" + joins +
      " WHERE " + guard_sql + ";");

  std::string zone_of_payload = "NULL";
  if (spec.is_child()) zone_of_payload = "json_extract(o.payload, '$.zone')";
  if (spec.is_zone_table) zone_of_payload = "json_extract(o.payload, '$.name')";
  out.push_back(
      "INSERT INTO zm_rowver(tbl, kid, rkey, hlc, node, clock, vv, deleted, zone, epoch_hlc, "
      "epoch_node, gepoch_hlc, gepoch_node, siblings) SELECT o.tbl, o.rkey, o.rkey, o.hlc, " +
      self + ", o.hlc, o.vv, " + (op == 'D' ? "1" : "0") + ", " + zone_of_payload +
      ", o.epoch_hlc, o.epoch_node, o.gepoch_hlc, o.gepoch_node, NULL FROM zm_outbox o WHERE o.id "
      "= last_insert_rowid() AND o.tbl = " +
      tbl + " AND o.op = '" + op + "' AND o.csn IS NULL AND " + guard_sql +
      " ON CONFLICT(tbl, kid) DO UPDATE SET hlc = excluded.hlc, node = excluded.node, "
      "clock = excluded.clock, vv = excluded.vv, deleted = excluded.deleted, "
      "zone = excluded.zone, epoch_hlc = excluded.epoch_hlc, epoch_node = excluded.epoch_node, "
      "gepoch_hlc = excluded.gepoch_hlc, gepoch_node = excluded.gepoch_node, siblings = NULL;");

  if (spec.is_zone_table && op == 'D') {
    // The zone's groups start again with its next incarnation.
    out.push_back("DELETE FROM zm_group WHERE zone = " + d.ToText(r.Col("name"), ColumnType::kText) +
                  " AND " + guard_sql + ";");
  }
  if (spec.is_grouped() && op == 'D') {
    // The delete emptied its group: a replace if the group is filled again
    // before this delete is stamped.
    out.push_back(
        "INSERT INTO zm_group(tbl, kid, rkey, zone, epoch_hlc, epoch_node, pending_id) SELECT " +
        tbl + ", c.g, c.g, c.z, 0, '', (SELECT MAX(id) FROM zm_outbox) FROM (SELECT c0.z AS z, " +
        r.GroupKey("c0.z") + " AS g FROM (SELECT " + zone + " AS z) AS c0) AS c WHERE " +
        guard_sql + " AND NOT " + r.GroupRemains() +
        " ON CONFLICT(tbl, kid) DO UPDATE SET pending_id = excluded.pending_id;");
  }
  return out;
}

std::vector<std::string> SqliteTriggers(const TableSpec& spec, const std::string& node) {
  SqlDialect d(Dialect::kSqlite);
  RowExprs nw(d, spec, "NEW"), old(d, spec, "OLD");
  std::vector<std::string> out;

  auto body = [](const std::vector<std::string>& stmts) { return Join(stmts, "\n  "); };

  auto ins = SqliteCapture(d, spec, nw, 'U', node, "");
  out.push_back("CREATE TRIGGER " + TriggerName(spec, "ai") + " AFTER INSERT ON " + spec.name +
                " WHEN " + SqliteApplyingGuard() + "\nBEGIN\n  " + body(ins) + "\nEND");

  // An update that changes the natural key is the old key's delete and the
  // new key's upsert.
  std::string key_changed =
      old.Key(old.ZoneLookup()) + " IS NOT " + nw.Key(nw.ZoneLookup());
  auto upd = SqliteCapture(d, spec, old, 'D', node, key_changed);
  auto upd2 = SqliteCapture(d, spec, nw, 'U', node, "");
  upd.insert(upd.end(), upd2.begin(), upd2.end());
  out.push_back("CREATE TRIGGER " + TriggerName(spec, "au") + " AFTER UPDATE ON " + spec.name +
                " WHEN " + SqliteApplyingGuard() + " AND " + ChangedCondition(d, spec) +
                "\nBEGIN\n  " + body(upd) + "\nEND");

  auto del = SqliteCapture(d, spec, old, 'D', node, "");
  out.push_back("CREATE TRIGGER " + TriggerName(spec, "ad") + " AFTER DELETE ON " + spec.name +
                " WHEN " + SqliteApplyingGuard() + "\nBEGIN\n  " + body(del) + "\nEND");
  return out;
}

// SQLite cannot change NEW in a trigger: the SOA write is moved on the zone's
// serial clock after the fact, and the row rewritten with the clock's serial
// (an UPDATE the capture triggers record). The serial triggers are created
// after the capture triggers, so SQLite, which fires the newest first, moves
// the clock before the write is recorded with it.
std::vector<std::string> SqliteSerialTriggers(const std::string& node) {
  SqlDialect d(Dialect::kSqlite);
  const std::string self = d.Literal(node);
  const std::string zone = "(SELECT name FROM domains WHERE id = NEW.domain_id)";
  const std::string zone_epoch =
      "(SELECT epoch_hlc FROM zm_rowver WHERE tbl = 'domains' AND kid = " + d.KeyComponent(zone) + ")";
  const std::string zone_epoch_node =
      "(SELECT epoch_node FROM zm_rowver WHERE tbl = 'domains' AND kid = " + d.KeyComponent(zone) + ")";
  const std::string sum = "COALESCE((SELECT SUM(n) FROM zm_serial WHERE zone = " + zone + "), 0)";
  const std::string base = "(SELECT base FROM zm_zone WHERE zone = " + zone + ")";
  const std::string written = d.SoaSerial("NEW.content");
  const std::string served = "((" + base + " + " + sum + ") % 4294967296)";

  auto body = [&](const std::string& unchanged) {
    ClockExprs c{"base", sum, written, unchanged};
    return std::vector<std::string>{
        "INSERT INTO zm_zone(zone, epoch_hlc, epoch_node, base) SELECT " + zone + ", COALESCE(" +
            zone_epoch + ", 0), COALESCE(" + zone_epoch_node +
            ", ''), NULL ON CONFLICT(zone) DO NOTHING;",
        // A clock of an earlier incarnation of the zone is void.
        "DELETE FROM zm_serial WHERE zone = " + zone +
            " AND EXISTS (SELECT 1 FROM zm_zone z WHERE z.zone = " + zone +
            " AND (z.epoch_hlc IS NOT COALESCE(" + zone_epoch + ", 0) OR z.epoch_node IS NOT "
            "COALESCE(" +
            zone_epoch_node + ", '')));",
        "UPDATE zm_zone SET base = NULL, epoch_hlc = COALESCE(" + zone_epoch +
            ", 0), epoch_node = COALESCE(" + zone_epoch_node + ", '') WHERE zone = " + zone +
            " AND (epoch_hlc IS NOT COALESCE(" + zone_epoch + ", 0) OR epoch_node IS NOT COALESCE(" +
            zone_epoch_node + ", ''));",
        "UPDATE zm_zone SET base = max(COALESCE(base, " + TargetExpr(c) + " - " + sum + " - 1), " +
            TargetExpr(c) + " - " + sum + " - 1) WHERE zone = " + zone + ";",
        "INSERT INTO zm_serial(zone, origin, kind, n) VALUES (" + zone + ", " + self +
            ", 'E', 1) ON CONFLICT(zone, origin, kind) DO UPDATE SET n = n + 1;",
        "UPDATE records SET content = " + d.WithSoaSerial("NEW.content", served) +
            " WHERE id = NEW.id AND content IS NOT " + d.WithSoaSerial("NEW.content", served) + ";"};
  };
  const std::string when = "WHEN " + SqliteApplyingGuard() +
                           " AND NEW.type IS NOT NULL AND UPPER(NEW.type) = 'SOA' AND " + zone +
                           " IS NOT NULL AND " + written + " IS NOT NULL";
  // The rewrite above: only the serial moved, to the clock's serial.
  const std::string own_rewrite =
      "(" + d.WithSoaSerial("OLD.content", d.SoaSerial("NEW.content")) +
      " IS NEW.content AND OLD.ttl IS NEW.ttl AND OLD.prio IS NEW.prio AND OLD.disabled IS "
      "NEW.disabled AND OLD.ordername IS NEW.ordername AND OLD.auth IS NEW.auth AND OLD.name IS "
      "NEW.name AND OLD.domain_id IS NEW.domain_id AND " +
      d.SoaSerial("OLD.content") + " IS NOT " + written + " AND " + written + " = " + served + ")";
  std::vector<std::string> out;
  out.push_back("CREATE TRIGGER zm_records_soa_ai AFTER INSERT ON records " + when + "\nBEGIN\n  " +
                Join(body("0"), "\n  ") + "\nEND");
  const std::string unchanged = "(" + d.SoaSerial("OLD.content") + " IS " + written + ")";
  out.push_back("CREATE TRIGGER zm_records_soa_au AFTER UPDATE ON records " + when + " AND " +
                ChangedCondition(d, *schema::FindTable("records")) + " AND NOT " + own_rewrite +
                "\nBEGIN\n  " + Join(body(unchanged), "\n  ") + "\nEND");
  return out;
}

// ------------------------------------------------------------ PostgreSQL --

// The version bookkeeping is one upsert on zm_rowver: a new key starts at
// (now, {node: now}); an existing one moves to max(now, clock + 1) with this
// node's vector entry set. No locking read of a key that may not exist yet,
// so concurrent writers of different rows never wait for each other, and
// the zone's and group's incarnations are read without locks: the only
// locks a writer takes are its own rows' (the applier never waits for them).
std::string PostgresSharedFunction() {
  SqlDialect d(Dialect::kPostgres);
  // SECURITY DEFINER: PowerDNS's role needs no rights on zonemesh's tables;
  // the search path is pinned to the one install ran with.
  return R"SQL(CREATE OR REPLACE FUNCTION zm_record_change(p_tbl text, p_op text, p_key text,
    p_payload text, p_zone text, p_node text, p_kind integer, p_gkey text, p_emptied boolean,
    p_soa boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $zm$
DECLARE
  v_now bigint := )SQL" +
         d.NowMicros() + R"SQL(;
  v_hlc bigint; v_vv text; v_eh bigint := 0; v_en text := '';
  v_gh bigint := 0; v_gn text := ''; v_pid bigint; v_phlc bigint; v_id bigint;
  v_sb bigint; v_sc bigint;
BEGIN
  IF p_kind = 2 THEN
    SELECT epoch_hlc, epoch_node INTO v_eh, v_en FROM zm_rowver
      WHERE tbl = 'domains' AND kid = )SQL" +
         d.KeyId(d.KeyComponent("p_zone")) + R"SQL(;
    v_eh := COALESCE(v_eh, 0);
    v_en := COALESCE(v_en, '');
  ELSIF p_kind = 1 AND p_op = 'D' THEN
    v_eh := v_now;  -- a zone delete starts a new incarnation
    v_en := p_node;
  END IF;
  IF p_gkey IS NOT NULL THEN
    SELECT epoch_hlc, epoch_node, pending_id INTO v_gh, v_gn, v_pid FROM zm_group
      WHERE tbl = p_tbl AND kid = )SQL" +
         d.KeyId("p_gkey") + R"SQL(;
    v_gh := COALESCE(v_gh, 0);
    v_gn := COALESCE(v_gn, '');
    IF p_op = 'U' AND v_pid IS NOT NULL THEN
      -- Emptied earlier in this commit round and filled again: a replace.
      SELECT hlc INTO v_phlc FROM zm_outbox WHERE id = v_pid AND csn IS NULL;
      IF v_phlc IS NOT NULL THEN
        v_gh := GREATEST(v_phlc, v_gh + 1);
        v_gn := p_node;
      END IF;
      UPDATE zm_group SET epoch_hlc = v_gh, epoch_node = v_gn, pending_id = NULL
        WHERE tbl = p_tbl AND kid = )SQL" +
         d.KeyId("p_gkey") + R"SQL(;
    END IF;
  END IF;
  INSERT INTO zm_rowver AS r (tbl, kid, rkey, hlc, node, clock, vv, deleted, zone, epoch_hlc,
                              epoch_node, gepoch_hlc, gepoch_node, siblings)
    VALUES (p_tbl, )SQL" +
         d.KeyId("p_key") + R"SQL(, p_key, v_now, p_node, v_now,
            json_build_object(p_node, v_now)::text, CASE WHEN p_op = 'D' THEN 1 ELSE 0 END,
            p_zone, v_eh, v_en, v_gh, v_gn, NULL)
    ON CONFLICT (tbl, kid) DO UPDATE SET
      epoch_hlc = CASE WHEN p_kind = 1 AND p_op = 'D' THEN GREATEST(EXCLUDED.hlc, r.clock + 1)
                       WHEN p_kind = 1 THEN r.epoch_hlc ELSE EXCLUDED.epoch_hlc END,
      epoch_node = CASE WHEN p_kind = 1 AND p_op <> 'D' THEN r.epoch_node
                        ELSE EXCLUDED.epoch_node END,
      vv = jsonb_set(r.vv::jsonb, ARRAY[p_node], to_jsonb(GREATEST(EXCLUDED.hlc, r.clock + 1)))::text,
      hlc = GREATEST(EXCLUDED.hlc, r.clock + 1),
      clock = GREATEST(EXCLUDED.hlc, r.clock + 1),
      node = EXCLUDED.node, deleted = EXCLUDED.deleted, zone = EXCLUDED.zone,
      rkey = EXCLUDED.rkey,
      -- A delete belongs to the incarnation of the row it deleted.
      gepoch_hlc = CASE WHEN p_op = 'D' AND r.hlc > 0 AND r.deleted = 0 THEN r.gepoch_hlc
                        ELSE EXCLUDED.gepoch_hlc END,
      gepoch_node = CASE WHEN p_op = 'D' AND r.hlc > 0 AND r.deleted = 0 THEN r.gepoch_node
                         ELSE EXCLUDED.gepoch_node END,
      siblings = NULL
    RETURNING hlc, vv, epoch_hlc, epoch_node, gepoch_hlc, gepoch_node
      INTO v_hlc, v_vv, v_eh, v_en, v_gh, v_gn;
  IF p_soa AND p_op = 'U' THEN
    SELECT base INTO v_sb FROM zm_zone WHERE zone = p_zone;
    SELECT n INTO v_sc FROM zm_serial WHERE zone = p_zone AND origin = p_node AND kind = 'E';
  END IF;
  INSERT INTO zm_outbox (tbl, op, rkey, payload, hlc, vv, epoch_hlc, epoch_node, sess, gepoch_hlc,
                         gepoch_node, serial_base, serial_count)
    VALUES (p_tbl, p_op, p_key, p_payload, v_hlc, v_vv, v_eh, v_en, pg_backend_pid(), v_gh, v_gn,
            v_sb, v_sc)
    RETURNING id INTO v_id;
  IF p_op = 'D' AND p_emptied THEN
    INSERT INTO zm_group (tbl, kid, rkey, zone, epoch_hlc, epoch_node, pending_id)
      VALUES (p_tbl, )SQL" +
         d.KeyId("p_gkey") + R"SQL(, p_gkey, p_zone, 0, '', v_id)
      ON CONFLICT (tbl, kid) DO UPDATE SET pending_id = EXCLUDED.pending_id;
  ELSIF p_kind = 1 AND p_op = 'D' THEN
    -- The zone's groups start again with its next incarnation.
    DELETE FROM zm_group WHERE zone = p_zone;
  END IF;
  PERFORM pg_notify(')SQL" +
         std::string(db::kPostgresNotifyChannel) + R"SQL(', '');
END
$zm$)SQL";
}

// An SOA write moves the zone's serial clock and the row is written with the
// clock's serial. The zone's clock row is locked: writers of one zone's SOA
// serialize on it (they already do on the SOA row).
std::string PostgresSerialFunction(const std::string& node) {
  SqlDialect d(Dialect::kPostgres);
  ClockExprs c{"v_base", "v_sum", "v_written", "v_unchanged"};
  return R"SQL(CREATE OR REPLACE FUNCTION zm_records_soa() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $zm$
DECLARE
  v_zone text; v_eh bigint; v_en text; v_base bigint; v_zh bigint; v_zn text;
  v_sum bigint; v_written bigint; v_unchanged boolean := false; v_target bigint;
BEGIN
  IF current_setting(')SQL" +
         std::string(db::kPostgresApplyingSetting) + R"SQL(', true) = 'on' THEN RETURN NEW; END IF;
  IF TG_OP = 'UPDATE' AND NOT )SQL" +
         ChangedCondition(d, *schema::FindTable("records")) + R"SQL( THEN RETURN NEW; END IF;
  v_written := )SQL" +
         d.SoaSerial("NEW.content") + R"SQL(;
  IF v_written IS NULL THEN RETURN NEW; END IF;
  SELECT name INTO v_zone FROM domains WHERE id = NEW.domain_id;
  IF v_zone IS NULL THEN RETURN NEW; END IF;
  IF TG_OP = 'UPDATE' THEN
    v_unchanged := )SQL" +
         d.SoaSerial("OLD.content") + R"SQL( IS NOT DISTINCT FROM v_written;
  END IF;
  SELECT epoch_hlc, epoch_node INTO v_eh, v_en FROM zm_rowver
    WHERE tbl = 'domains' AND kid = )SQL" +
         d.KeyId(d.KeyComponent("v_zone")) + R"SQL(;
  v_eh := COALESCE(v_eh, 0);
  v_en := COALESCE(v_en, '');
  INSERT INTO zm_zone (zone, epoch_hlc, epoch_node, base) VALUES (v_zone, v_eh, v_en, NULL)
    ON CONFLICT (zone) DO NOTHING;
  SELECT base, epoch_hlc, epoch_node INTO v_base, v_zh, v_zn FROM zm_zone WHERE zone = v_zone
    FOR UPDATE;
  IF v_zh <> v_eh OR v_zn <> v_en THEN
    -- The clock of an earlier incarnation of the zone is void.
    DELETE FROM zm_serial WHERE zone = v_zone;
    UPDATE zm_zone SET base = NULL, epoch_hlc = v_eh, epoch_node = v_en WHERE zone = v_zone;
    v_base := NULL;
  END IF;
  SELECT COALESCE(SUM(n), 0) INTO v_sum FROM zm_serial WHERE zone = v_zone;
  v_target := )SQL" +
         TargetExpr(c) + R"SQL(;
  UPDATE zm_zone SET base = GREATEST(COALESCE(base, v_target - v_sum - 1), v_target - v_sum - 1)
    WHERE zone = v_zone;
  INSERT INTO zm_serial (zone, origin, kind, n) VALUES (v_zone, )SQL" +
         d.Literal(node) + R"SQL(, 'E', 1)
    ON CONFLICT (zone, origin, kind) DO UPDATE SET n = zm_serial.n + 1;
  NEW.content := )SQL" +
         d.WithSoaSerial("NEW.content", "v_target % 4294967296") + R"SQL(;
  RETURN NEW;
END
$zm$)SQL";
}

std::vector<std::string> PostgresTriggers(const TableSpec& spec, const std::string& node) {
  SqlDialect d(Dialect::kPostgres);
  RowExprs nw(d, spec, "NEW"), old(d, spec, "OLD");
  const std::string fn = "zm_capture_" + spec.name;
  const std::string kind = std::to_string(TableKind(spec));
  const std::string tbl = d.Literal(spec.name);
  const std::string self = d.Literal(node);
  const std::string zone_guard_old = spec.is_child() ? "o_zone IS NOT NULL" : "TRUE";
  const std::string zone_guard_new = spec.is_child() ? "v_zone IS NOT NULL" : "TRUE";
  auto call = [&](const char* op, const std::string& key, const RowExprs& r, const std::string& z,
                  const std::string& emptied) {
    return "PERFORM zm_record_change(" + tbl + ", '" + op + "', " + key + ", (" + r.Payload(z) +
           ")::text, " + z + ", " + self + ", " + kind + ", " + r.GroupKey(z) + ", " + emptied +
           ", " + r.SoaTest() + ");";
  };
  const std::string emptied = spec.is_grouped() ? "NOT " + old.GroupRemains() : "FALSE";

  std::string f = "CREATE OR REPLACE FUNCTION " + fn +
                  "() RETURNS trigger LANGUAGE plpgsql AS $zm$\n"
                  "DECLARE\n  v_zone text; o_zone text; v_key text; o_key text;\n"
                  "BEGIN\n"
                  "  IF current_setting('" +
                  std::string(db::kPostgresApplyingSetting) +
                  "', true) = 'on' THEN RETURN NULL; END IF;\n"
                  "  IF TG_OP <> 'INSERT' AND NOT " +
                  old.LocalRowTest() + " THEN\n    o_zone := " + old.ZoneLookup() + ";\n    IF " +
                  zone_guard_old + " THEN o_key := " + old.Key("o_zone") +
                  "; END IF;\n"
                  "  END IF;\n"
                  "  IF TG_OP <> 'DELETE' AND NOT " +
                  nw.LocalRowTest() + " THEN\n    v_zone := " + nw.ZoneLookup() + ";\n    IF " +
                  zone_guard_new + " THEN v_key := " + nw.Key("v_zone") +
                  "; END IF;\n"
                  "  END IF;\n"
                  "  IF o_key IS NOT NULL AND (TG_OP = 'DELETE' OR o_key IS DISTINCT FROM v_key) THEN\n"
                  "    IF NOT " +
                  old.OtherRowWithSameKey() + " THEN\n      " +
                  call("D", "o_key", old, "o_zone", emptied) +
                  "\n    END IF;\n  END IF;\n"
                  "  IF v_key IS NOT NULL THEN\n    " +
                  call("U", "v_key", nw, "v_zone", "FALSE") +
                  "\n  END IF;\n"
                  "  RETURN NULL;\n"
                  "END\n$zm$";

  std::vector<std::string> out = {f};
  for (auto [suffix, event, when] :
       {std::tuple<const char*, const char*, std::string>{"ai", "INSERT", ""},
        {"au", "UPDATE", " WHEN (" + ChangedCondition(d, spec) + ")"},
        {"ad", "DELETE", ""}}) {
    out.push_back("CREATE TRIGGER " + TriggerName(spec, suffix) + " AFTER " + event + " ON " +
                  spec.name + " FOR EACH ROW" + when + " EXECUTE FUNCTION " + fn + "()");
  }
  if (HoldsSoa(spec)) {
    out.push_back(PostgresSerialFunction(node));
    out.push_back("CREATE TRIGGER zm_records_soa BEFORE INSERT OR UPDATE ON records FOR EACH ROW "
                  "WHEN (NEW.type IS NOT NULL AND UPPER(NEW.type) = 'SOA') EXECUTE FUNCTION "
                  "zm_records_soa()");
  }
  return out;
}

// ----------------------------------------------------------------- MySQL --

// Same bookkeeping as PostgreSQL. Under InnoDB's REPEATABLE READ (the
// default for PowerDNS's sessions) a locking read of a missing key takes a
// gap lock that blocks other writers' inserts, so there is none: the row's
// version is one INSERT ... ON DUPLICATE KEY UPDATE, and the zone's and the
// group's incarnations are read without a lock. (MariaDB turns a procedure
// variable inside JSON_OBJECT into a JSON string; "+ 0" keeps it a number.)
std::string MysqlSharedProcedure() {
  SqlDialect d(Dialect::kMysql);
  return R"SQL(CREATE PROCEDURE zm_record_change(IN p_tbl VARCHAR(64), IN p_op CHAR(1),
    IN p_key LONGTEXT, IN p_payload LONGTEXT, IN p_zone VARCHAR(255), IN p_node VARCHAR(64),
    IN p_kind INT, IN p_gkey LONGTEXT, IN p_emptied INT, IN p_soa INT)
BEGIN
  DECLARE v_kid CHAR(64) DEFAULT )SQL" +
         d.KeyId("p_key") + R"SQL(;
  DECLARE v_gkid CHAR(64) DEFAULT )SQL" +
         d.KeyId("p_gkey") + R"SQL(;
  DECLARE v_now BIGINT DEFAULT )SQL" +
         d.NowMicros() + R"SQL(;
  DECLARE v_path VARCHAR(80) DEFAULT CONCAT('$."', p_node, '"');
  DECLARE v_hlc BIGINT DEFAULT 0;
  DECLARE v_vv LONGTEXT DEFAULT NULL;
  DECLARE v_eh BIGINT DEFAULT 0;
  DECLARE v_en VARCHAR(64) DEFAULT '';
  DECLARE v_gh BIGINT DEFAULT 0;
  DECLARE v_gn VARCHAR(64) DEFAULT '';
  DECLARE v_pid BIGINT DEFAULT NULL;
  DECLARE v_phlc BIGINT DEFAULT NULL;
  DECLARE v_id BIGINT DEFAULT NULL;
  DECLARE v_sb BIGINT DEFAULT NULL;
  DECLARE v_sc BIGINT DEFAULT NULL;
  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;
  IF p_kind = 2 THEN
    SELECT epoch_hlc, epoch_node INTO v_eh, v_en FROM zm_rowver
      WHERE tbl = 'domains' AND kid = )SQL" +
         d.KeyId(d.KeyComponent("p_zone")) + R"SQL(;
  ELSEIF p_kind = 1 AND p_op = 'D' THEN
    SET v_eh = v_now;
    SET v_en = p_node;
  END IF;
  IF p_gkey IS NOT NULL THEN
    SELECT epoch_hlc, epoch_node, pending_id INTO v_gh, v_gn, v_pid FROM zm_group
      WHERE tbl = p_tbl AND kid = v_gkid;
    IF p_op = 'U' AND v_pid IS NOT NULL THEN
      -- Emptied earlier in this commit round and filled again: a replace.
      SELECT hlc INTO v_phlc FROM zm_outbox WHERE id = v_pid AND csn IS NULL;
      IF v_phlc IS NOT NULL THEN
        SET v_gh = GREATEST(v_phlc, v_gh + 1);
        SET v_gn = p_node;
      END IF;
      UPDATE zm_group SET epoch_hlc = v_gh, epoch_node = v_gn, pending_id = NULL
        WHERE tbl = p_tbl AND kid = v_gkid;
    END IF;
  END IF;
  INSERT INTO zm_rowver (tbl, kid, rkey, hlc, node, clock, vv, deleted, zone, epoch_hlc,
                         epoch_node, gepoch_hlc, gepoch_node, siblings)
    VALUES (p_tbl, v_kid, p_key, v_now, p_node, v_now, JSON_OBJECT(p_node, v_now + 0),
            IF(p_op = 'D', 1, 0), p_zone, v_eh, v_en, v_gh, v_gn, NULL)
    ON DUPLICATE KEY UPDATE
      -- A delete belongs to the incarnation of the row it deleted (read
      -- here, current, not from the transaction's snapshot as zm_group
      -- was). First: later assignments see the columns already assigned.
      gepoch_hlc = IF(p_op = 'D' AND hlc > 0 AND deleted = 0, gepoch_hlc, VALUES(gepoch_hlc)),
      gepoch_node = IF(p_op = 'D' AND hlc > 0 AND deleted = 0, gepoch_node, VALUES(gepoch_node)),
      epoch_hlc = IF(p_kind = 1 AND p_op = 'D', GREATEST(VALUES(hlc), clock + 1),
                     IF(p_kind = 1, epoch_hlc, VALUES(epoch_hlc))),
      epoch_node = IF(p_kind = 1 AND p_op <> 'D', epoch_node, VALUES(epoch_node)),
      vv = JSON_SET(vv, v_path, GREATEST(VALUES(hlc), clock + 1)),
      hlc = GREATEST(VALUES(hlc), clock + 1),
      clock = hlc,
      node = VALUES(node), deleted = VALUES(deleted), zone = VALUES(zone), rkey = VALUES(rkey),
      siblings = NULL;
  SELECT hlc, vv, epoch_hlc, epoch_node, gepoch_hlc, gepoch_node
    INTO v_hlc, v_vv, v_eh, v_en, v_gh, v_gn
    FROM zm_rowver WHERE tbl = p_tbl AND kid = v_kid;
  IF p_soa = 1 AND p_op = 'U' THEN
    SELECT base INTO v_sb FROM zm_zone WHERE zone = p_zone;
    SELECT n INTO v_sc FROM zm_serial WHERE zone = p_zone AND origin = p_node AND kind = 'E';
  END IF;
  INSERT INTO zm_outbox (tbl, op, rkey, payload, hlc, vv, epoch_hlc, epoch_node, sess, gepoch_hlc,
                         gepoch_node, serial_base, serial_count)
    VALUES (p_tbl, p_op, p_key, p_payload, v_hlc, v_vv, v_eh, v_en, CONNECTION_ID(), v_gh, v_gn,
            v_sb, v_sc);
  SET v_id = LAST_INSERT_ID();
  IF p_op = 'D' AND p_emptied = 1 THEN
    INSERT INTO zm_group (tbl, kid, rkey, zone, epoch_hlc, epoch_node, pending_id)
      VALUES (p_tbl, v_gkid, p_gkey, p_zone, 0, '', v_id)
      ON DUPLICATE KEY UPDATE pending_id = VALUES(pending_id);
  ELSEIF p_kind = 1 AND p_op = 'D' THEN
    -- The zone's groups start again with its next incarnation.
    DELETE FROM zm_group WHERE zone = p_zone;
  END IF;
END)SQL";
}

// The SOA write moves the zone's serial clock; returns the content with the
// clock's serial. The zone's clock row is locked by the upsert (a row lock
// on an existing key, no gap lock).
std::string MysqlSerialProcedure() {
  SqlDialect d(Dialect::kMysql);
  ClockExprs c{"v_base", "v_sum", "v_written", "p_unchanged"};
  return R"SQL(CREATE PROCEDURE zm_soa_serial(IN p_domain_id BIGINT, IN p_content LONGTEXT,
    IN p_unchanged INT, IN p_node VARCHAR(64), OUT o_content LONGTEXT)
BEGIN
  DECLARE v_zone VARCHAR(255) CHARACTER SET utf8mb4 DEFAULT NULL;
  DECLARE v_eh BIGINT DEFAULT 0;
  DECLARE v_en VARCHAR(64) DEFAULT '';
  DECLARE v_base BIGINT DEFAULT NULL;
  DECLARE v_zh BIGINT DEFAULT 0;
  DECLARE v_zn VARCHAR(64) DEFAULT '';
  DECLARE v_sum BIGINT DEFAULT 0;
  DECLARE v_written BIGINT DEFAULT NULL;
  DECLARE v_target BIGINT DEFAULT NULL;
  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;
  SET o_content = p_content;
  SET v_written = )SQL" +
         d.SoaSerial("p_content") + R"SQL(;
  SELECT CONVERT(name USING utf8mb4) INTO v_zone FROM domains WHERE id = p_domain_id;
  IF v_written IS NOT NULL AND v_zone IS NOT NULL THEN
    SELECT epoch_hlc, epoch_node INTO v_eh, v_en FROM zm_rowver
      WHERE tbl = 'domains' AND kid = )SQL" +
         d.KeyId(d.KeyComponent("v_zone")) + R"SQL(;
    INSERT INTO zm_zone (zone, epoch_hlc, epoch_node, base) VALUES (v_zone, v_eh, v_en, NULL)
      ON DUPLICATE KEY UPDATE zone = zone;
    SELECT base, epoch_hlc, epoch_node INTO v_base, v_zh, v_zn FROM zm_zone WHERE zone = v_zone
      FOR UPDATE;
    IF v_zh <> v_eh OR v_zn <> v_en THEN
      DELETE FROM zm_serial WHERE zone = v_zone;
      UPDATE zm_zone SET base = NULL, epoch_hlc = v_eh, epoch_node = v_en WHERE zone = v_zone;
      SET v_base = NULL;
    END IF;
    SELECT COALESCE(SUM(n), 0) INTO v_sum FROM zm_serial WHERE zone = v_zone;
    SET v_target = )SQL" +
         TargetExpr(c) + R"SQL(;
    UPDATE zm_zone SET base = GREATEST(COALESCE(base, v_target - v_sum - 1), v_target - v_sum - 1)
      WHERE zone = v_zone;
    INSERT INTO zm_serial (zone, origin, kind, n) VALUES (v_zone, p_node, 'E', 1)
      ON DUPLICATE KEY UPDATE n = n + 1;
    SET o_content = )SQL" +
         d.WithSoaSerial("p_content", "v_target % 4294967296") + R"SQL(;
  END IF;
END)SQL";
}

std::vector<std::string> MysqlTriggers(const TableSpec& spec, const std::string& node) {
  SqlDialect d(Dialect::kMysql);
  RowExprs nw(d, spec, "NEW"), old(d, spec, "OLD");
  const std::string kind = std::to_string(TableKind(spec));
  const std::string tbl = d.Literal(spec.name);
  const std::string self = d.Literal(node);
  const std::string applying = std::string(db::kMysqlApplyingVariable) + " IS NULL";
  const std::string decl =
      "  DECLARE v_zone VARCHAR(255) CHARACTER SET utf8mb4 DEFAULT NULL;\n"
      "  DECLARE o_zone VARCHAR(255) CHARACTER SET utf8mb4 DEFAULT NULL;\n"
      "  DECLARE v_key LONGTEXT CHARACTER SET utf8mb4 DEFAULT NULL;\n"
      "  DECLARE o_key LONGTEXT CHARACTER SET utf8mb4 DEFAULT NULL;\n";
  const std::string zone_guard_old = spec.is_child() ? "o_zone IS NOT NULL" : "TRUE";
  const std::string zone_guard_new = spec.is_child() ? "v_zone IS NOT NULL" : "TRUE";
  const std::string set_old = "    IF NOT " + old.LocalRowTest() + " THEN\n      SET o_zone = " +
                              old.ZoneLookup() + ";\n      IF " + zone_guard_old +
                              " THEN SET o_key = " + old.Key("o_zone") + "; END IF;\n    END IF;\n";
  const std::string set_new = "    IF NOT " + nw.LocalRowTest() + " THEN\n      SET v_zone = " +
                              nw.ZoneLookup() + ";\n      IF " + zone_guard_new +
                              " THEN SET v_key = " + nw.Key("v_zone") + "; END IF;\n    END IF;\n";
  auto call = [&](const char* op, const std::string& key, const RowExprs& r, const std::string& z,
                  const std::string& emptied) {
    return "      CALL zm_record_change(" + tbl + ", '" + op + "', " + key + ", " + r.Payload(z) +
           ", " + z + ", " + self + ", " + kind + ", " + r.GroupKey(z) + ", " + emptied + ", " +
           r.SoaTest() + ");\n";
  };
  const std::string emptied = spec.is_grouped() ? "NOT " + old.GroupRemains() : "0";
  const std::string call_del = call("D", "o_key", old, "o_zone", emptied);
  const std::string call_upd = call("U", "v_key", nw, "v_zone", "0");

  std::vector<std::string> out;
  if (HoldsSoa(spec)) {
    // Before the capture triggers: BEFORE triggers may change NEW.
    const std::string soa = "NEW.type IS NOT NULL AND UPPER(NEW.type) = 'SOA'";
    out.push_back("CREATE TRIGGER zm_records_soa_bi BEFORE INSERT ON records FOR EACH ROW\nBEGIN\n"
                  "  DECLARE v_content LONGTEXT DEFAULT NULL;\n  IF " +
                  applying + " AND " + soa + " THEN\n    CALL zm_soa_serial(NEW.domain_id, NEW.content, 0, " +
                  self + ", v_content);\n    SET NEW.content = v_content;\n  END IF;\nEND");
    out.push_back("CREATE TRIGGER zm_records_soa_bu BEFORE UPDATE ON records FOR EACH ROW\nBEGIN\n"
                  "  DECLARE v_content LONGTEXT DEFAULT NULL;\n  IF " +
                  applying + " AND " + soa + " AND " + ChangedCondition(d, spec) +
                  " THEN\n    CALL zm_soa_serial(NEW.domain_id, NEW.content, " +
                  d.SoaSerial("OLD.content") + " <=> " + d.SoaSerial("NEW.content") + ", " + self +
                  ", v_content);\n    SET NEW.content = v_content;\n  END IF;\nEND");
  }
  out.push_back("CREATE TRIGGER " + TriggerName(spec, "ai") + " AFTER INSERT ON " + spec.name +
                " FOR EACH ROW\nBEGIN\n" + decl + "  IF " + applying + " THEN\n" + set_new +
                "    IF v_key IS NOT NULL THEN\n" + call_upd + "    END IF;\n  END IF;\nEND");
  out.push_back("CREATE TRIGGER " + TriggerName(spec, "au") + " AFTER UPDATE ON " + spec.name +
                " FOR EACH ROW\nBEGIN\n" + decl + "  IF " + applying + " AND " +
                ChangedCondition(d, spec) + " THEN\n" + set_old + set_new +
                "    IF o_key IS NOT NULL AND NOT (BINARY o_key <=> BINARY v_key) AND NOT " +
                old.OtherRowWithSameKey() + " THEN\n" + call_del + "    END IF;\n" +
                "    IF v_key IS NOT NULL THEN\n" + call_upd + "    END IF;\n  END IF;\nEND");
  out.push_back("CREATE TRIGGER " + TriggerName(spec, "ad") + " AFTER DELETE ON " + spec.name +
                " FOR EACH ROW\nBEGIN\n" + decl + "  IF " + applying + " THEN\n" + set_old +
                "    IF o_key IS NOT NULL AND NOT " + old.OtherRowWithSameKey() + " THEN\n" +
                call_del + "    END IF;\n  END IF;\nEND");
  return out;
}

}  // namespace

std::vector<std::string> SharedRoutineDdl(db::Dialect dialect) {
  switch (dialect) {
    case Dialect::kSqlite:
      return {};
    case Dialect::kPostgres:
      // The signature changed with schema version 2: drop the old one.
      return {"DROP FUNCTION IF EXISTS zm_record_change(text, text, text, text, text, text, integer)",
              PostgresSharedFunction()};
    case Dialect::kMysql:
      return {"DROP PROCEDURE IF EXISTS zm_record_change", MysqlSharedProcedure(),
              "DROP PROCEDURE IF EXISTS zm_soa_serial", MysqlSerialProcedure()};
  }
  return {};
}

std::vector<std::string> DropSharedRoutineDdl(db::Dialect dialect) {
  switch (dialect) {
    case Dialect::kSqlite:
      return {};
    case Dialect::kPostgres:
      return {"DROP FUNCTION IF EXISTS zm_record_change(text, text, text, text, text, text, "
              "integer, text, boolean, boolean)",
              "DROP FUNCTION IF EXISTS zm_record_change(text, text, text, text, text, text, "
              "integer)"};
    case Dialect::kMysql:
      return {"DROP PROCEDURE IF EXISTS zm_record_change", "DROP PROCEDURE IF EXISTS zm_soa_serial"};
  }
  return {};
}

std::vector<std::string> CaptureTriggerDdl(db::Dialect dialect, const TableSpec& spec,
                                           const std::string& node_id) {
  std::vector<std::string> out = DropCaptureTriggerDdl(dialect, spec);
  std::vector<std::string> create;
  switch (dialect) {
    case Dialect::kSqlite:
      create = SqliteTriggers(spec, node_id);
      if (HoldsSoa(spec)) {
        for (std::string& s : SqliteSerialTriggers(node_id)) create.push_back(std::move(s));
      }
      break;
    case Dialect::kPostgres:
      create = PostgresTriggers(spec, node_id);
      break;
    case Dialect::kMysql:
      create = MysqlTriggers(spec, node_id);
      break;
  }
  out.insert(out.end(), create.begin(), create.end());
  return out;
}

std::vector<std::string> DropCaptureTriggerDdl(db::Dialect dialect, const TableSpec& spec) {
  std::vector<std::string> out;
  for (const std::string& name : CaptureTriggerNames(spec)) {
    if (dialect == Dialect::kPostgres) {
      // ON <table> is required; the table always exists when this runs.
      out.push_back("DROP TRIGGER IF EXISTS " + name + " ON " + spec.name);
    } else {
      out.push_back("DROP TRIGGER IF EXISTS " + name);
    }
  }
  if (dialect == Dialect::kPostgres) {
    out.push_back("DROP FUNCTION IF EXISTS zm_capture_" + spec.name + "()");
    if (HoldsSoa(spec)) out.push_back("DROP FUNCTION IF EXISTS zm_records_soa()");
  }
  return out;
}

std::vector<std::string> CaptureTriggerNames(const TableSpec& spec) {
  std::vector<std::string> out = {TriggerName(spec, "ai"), TriggerName(spec, "au"),
                                  TriggerName(spec, "ad")};
  if (HoldsSoa(spec)) {
    // PostgreSQL: one BEFORE trigger; MySQL: one per event; SQLite: AFTER
    // triggers that rewrite the row.
    for (const char* n : {"zm_records_soa", "zm_records_soa_bi", "zm_records_soa_bu",
                          "zm_records_soa_ai", "zm_records_soa_au"}) {
      out.push_back(n);
    }
  }
  return out;
}

}  // namespace zonemesh::triggers
