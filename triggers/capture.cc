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

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
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
  std::string SingletonTest() const {
    std::vector<std::string> lits;
    for (const std::string& v : spec_.singleton->values) lits.push_back(d_.Literal(v));
    return d_.Upper(Col(spec_.singleton->when_column)) + " IN (" + Join(lits, ", ") + ")";
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
      const Column* c = spec_.FindColumn(k);
      std::string text = d_.ToText(Col(k), c->type);
      if (spec_.singleton && spec_.singleton->column == k) {
        text = "CASE WHEN " + SingletonTest() + " THEN NULL ELSE " + text + " END";
      }
      parts.push_back(d_.KeyComponent(text));
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
      if (spec_.singleton && spec_.singleton->column == k) {
        eq = "(CASE WHEN " + SingletonTest() + " THEN TRUE ELSE " + eq + " END)";
      }
      conds.push_back(eq);
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

// ---------------------------------------------------------------- SQLite --
//
// SQLite triggers have no variables or procedures, so each capture is two
// set-based statements: INSERT INTO zm_outbox ... SELECT computes key,
// version, version vector and epoch in one pass; the zm_rowver upsert then copies the
// version from the outbox row just inserted (last_insert_rowid() is scoped
// to the trigger). Both statements carry the same guard.

std::string SqliteApplyingGuard() {
  return "(SELECT cache_size FROM pragma_cache_size) <> " +
         std::to_string(db::kSqliteApplyingCacheSize);
}

std::vector<std::string> SqliteCapture(const SqlDialect& d, const TableSpec& spec,
                                       const RowExprs& r, char op, const std::string& node,
                                       const std::string& extra_guard) {
  const std::string tbl = d.Literal(spec.name);
  const std::string now = d.NowMicros();
  const std::string new_hlc = "max(" + now + ", COALESCE(rv.clock, 0) + 1)";
  const std::string new_vv =
      "json_set(COALESCE(rv.vv, '{}'), '$.\"" + node + "\"', " + new_hlc + ")";

  std::vector<std::string> guard;
  if (spec.is_child()) guard.push_back(r.ZoneLookup() + " IS NOT NULL");
  if (op == 'D') guard.push_back("NOT " + r.OtherRowWithSameKey());
  if (!extra_guard.empty()) guard.push_back(extra_guard);
  if (guard.empty()) guard.push_back("1");
  const std::string guard_sql = Join(guard, " AND ");

  std::string epoch_hlc = "0", epoch_node = "''";
  std::string joins = " LEFT JOIN zm_rowver rv ON rv.tbl = " + tbl + " AND rv.kid = c.k";
  if (spec.is_child()) {
    joins += " LEFT JOIN zm_rowver ze ON ze.tbl = 'domains' AND ze.kid = " +
             d.KeyComponent("c.z");
    epoch_hlc = "COALESCE(ze.epoch_hlc, 0)";
    epoch_node = "COALESCE(ze.epoch_node, '')";
  } else if (spec.is_zone_table && op == 'D') {
    epoch_hlc = new_hlc;  // a zone delete starts a new incarnation
    epoch_node = d.Literal(node);
  } else if (spec.is_zone_table) {
    epoch_hlc = "COALESCE(rv.epoch_hlc, 0)";
    epoch_node = "COALESCE(rv.epoch_node, '')";
  }

  std::string outbox =
      "INSERT INTO zm_outbox(tbl, op, rkey, payload, hlc, vv, epoch_hlc, epoch_node) SELECT " +
      tbl + ", '" + op + "', c.k, " + r.Payload("c.z") + ", " + new_hlc + ", " + new_vv + ", " +
      epoch_hlc + ", " + epoch_node + " FROM (SELECT c0.z AS z, " +
      r.Key("c0.z") + " AS k FROM (SELECT " + r.ZoneLookup() + " AS z) AS c0) AS c" + joins +
      " WHERE " + guard_sql + ";";

  std::string zone_of_payload = "NULL";
  if (spec.is_child()) zone_of_payload = "json_extract(o.payload, '$.zone')";
  if (spec.is_zone_table) zone_of_payload = "json_extract(o.payload, '$.name')";
  std::string rowver =
      "INSERT INTO zm_rowver(tbl, kid, rkey, hlc, node, clock, vv, deleted, zone, epoch_hlc, "
      "epoch_node) SELECT o.tbl, o.rkey, o.rkey, o.hlc, " +
      d.Literal(node) + ", o.hlc, o.vv, " + (op == 'D' ? "1" : "0") + ", " + zone_of_payload +
      ", o.epoch_hlc, o.epoch_node FROM zm_outbox o WHERE o.id = last_insert_rowid() AND "
      "o.tbl = " +
      tbl + " AND o.op = '" + op + "' AND o.csn IS NULL AND " + guard_sql +
      " ON CONFLICT(tbl, kid) DO UPDATE SET hlc = excluded.hlc, node = excluded.node, "
      "clock = excluded.clock, vv = excluded.vv, deleted = excluded.deleted, "
      "zone = excluded.zone, epoch_hlc = excluded.epoch_hlc, epoch_node = excluded.epoch_node;";
  return {outbox, rowver};
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

// ------------------------------------------------------------ PostgreSQL --

// The version bookkeeping is one upsert on zm_rowver: a new key starts at
// (now, {node: now}); an existing one moves to max(now, clock + 1) with this
// node's vector entry set. No locking read of a key that may not exist yet,
// so concurrent writers of different rows never wait for each other.
std::string PostgresSharedFunction() {
  SqlDialect d(Dialect::kPostgres);
  // SECURITY DEFINER: PowerDNS's role needs no rights on zonemesh's tables;
  // the search path is pinned to the one install ran with.
  return R"SQL(CREATE OR REPLACE FUNCTION zm_record_change(p_tbl text, p_op text, p_key text,
    p_payload text, p_zone text, p_node text, p_kind integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $zm$
DECLARE
  v_now bigint := )SQL" +
         d.NowMicros() + R"SQL(;
  v_hlc bigint; v_vv text; v_eh bigint := 0; v_en text := '';
BEGIN
  IF p_kind = 2 THEN
    -- The zone's incarnation; FOR SHARE orders us with an applier deleting it.
    SELECT epoch_hlc, epoch_node INTO v_eh, v_en FROM zm_rowver
      WHERE tbl = 'domains' AND kid = )SQL" +
         d.KeyId(d.KeyComponent("p_zone")) + R"SQL( FOR SHARE;
    v_eh := COALESCE(v_eh, 0);
    v_en := COALESCE(v_en, '');
  ELSIF p_kind = 1 AND p_op = 'D' THEN
    v_eh := v_now;  -- a zone delete starts a new incarnation
    v_en := p_node;
  END IF;
  INSERT INTO zm_rowver AS r (tbl, kid, rkey, hlc, node, clock, vv, deleted, zone, epoch_hlc,
                              epoch_node)
    VALUES (p_tbl, )SQL" +
         d.KeyId("p_key") + R"SQL(, p_key, v_now, p_node, v_now,
            json_build_object(p_node, v_now)::text, CASE WHEN p_op = 'D' THEN 1 ELSE 0 END,
            p_zone, v_eh, v_en)
    ON CONFLICT (tbl, kid) DO UPDATE SET
      epoch_hlc = CASE WHEN p_kind = 1 AND p_op = 'D' THEN GREATEST(EXCLUDED.hlc, r.clock + 1)
                       WHEN p_kind = 1 THEN r.epoch_hlc ELSE EXCLUDED.epoch_hlc END,
      epoch_node = CASE WHEN p_kind = 1 AND p_op <> 'D' THEN r.epoch_node
                        ELSE EXCLUDED.epoch_node END,
      vv = jsonb_set(r.vv::jsonb, ARRAY[p_node], to_jsonb(GREATEST(EXCLUDED.hlc, r.clock + 1)))::text,
      hlc = GREATEST(EXCLUDED.hlc, r.clock + 1),
      clock = GREATEST(EXCLUDED.hlc, r.clock + 1),
      node = EXCLUDED.node, deleted = EXCLUDED.deleted, zone = EXCLUDED.zone,
      rkey = EXCLUDED.rkey
    RETURNING hlc, vv, epoch_hlc, epoch_node INTO v_hlc, v_vv, v_eh, v_en;
  INSERT INTO zm_outbox (tbl, op, rkey, payload, hlc, vv, epoch_hlc, epoch_node)
    VALUES (p_tbl, p_op, p_key, p_payload, v_hlc, v_vv, v_eh, v_en);
  PERFORM pg_notify(')SQL" +
         std::string(db::kPostgresNotifyChannel) + R"SQL(', '');
END
$zm$)SQL";
}

std::vector<std::string> PostgresTriggers(const TableSpec& spec, const std::string& node) {
  SqlDialect d(Dialect::kPostgres);
  RowExprs nw(d, spec, "NEW"), old(d, spec, "OLD");
  const std::string fn = "zm_capture_" + spec.name;
  const std::string kind = std::to_string(TableKind(spec));
  const std::string call_tail = ", " + d.Literal(node) + ", " + kind + ");";
  const std::string tbl = d.Literal(spec.name);
  const std::string zone_guard_old = spec.is_child() ? "o_zone IS NOT NULL" : "TRUE";
  const std::string zone_guard_new = spec.is_child() ? "v_zone IS NOT NULL" : "TRUE";

  std::string f = "CREATE OR REPLACE FUNCTION " + fn +
                  "() RETURNS trigger LANGUAGE plpgsql AS $zm$\n"
                  "DECLARE\n  v_zone text; o_zone text; v_key text; o_key text;\n"
                  "BEGIN\n"
                  "  IF current_setting('" +
                  std::string(db::kPostgresApplyingSetting) +
                  "', true) = 'on' THEN RETURN NULL; END IF;\n"
                  "  IF TG_OP <> 'INSERT' THEN\n"
                  "    o_zone := " +
                  old.ZoneLookup() + ";\n    IF " + zone_guard_old + " THEN o_key := " +
                  old.Key("o_zone") +
                  "; END IF;\n"
                  "  END IF;\n"
                  "  IF TG_OP <> 'DELETE' THEN\n"
                  "    v_zone := " +
                  nw.ZoneLookup() + ";\n    IF " + zone_guard_new + " THEN v_key := " +
                  nw.Key("v_zone") +
                  "; END IF;\n"
                  "  END IF;\n"
                  "  IF o_key IS NOT NULL AND (TG_OP = 'DELETE' OR o_key IS DISTINCT FROM v_key) THEN\n"
                  "    IF NOT " +
                  old.OtherRowWithSameKey() +
                  " THEN\n"
                  "      PERFORM zm_record_change(" +
                  tbl + ", 'D', o_key, (" + old.Payload("o_zone") + ")::text, o_zone" +
                  call_tail +
                  "\n    END IF;\n  END IF;\n"
                  "  IF v_key IS NOT NULL THEN\n"
                  "    PERFORM zm_record_change(" +
                  tbl + ", 'U', v_key, (" + nw.Payload("v_zone") + ")::text, v_zone" +
                  call_tail +
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
  return out;
}

// ----------------------------------------------------------------- MySQL --

// Same bookkeeping as PostgreSQL. Under InnoDB's REPEATABLE READ (the
// default for PowerDNS's sessions) a locking read of a missing key takes a
// gap lock that blocks other writers' inserts, so there is none: the row's
// version is one INSERT ... ON DUPLICATE KEY UPDATE, and the zone's
// incarnation is read without a lock. (MariaDB turns a procedure variable
// inside JSON_OBJECT into a JSON string; "+ 0" keeps it a number.)
std::string MysqlSharedProcedure() {
  SqlDialect d(Dialect::kMysql);
  return R"SQL(CREATE PROCEDURE zm_record_change(IN p_tbl VARCHAR(64), IN p_op CHAR(1),
    IN p_key LONGTEXT, IN p_payload LONGTEXT, IN p_zone VARCHAR(255), IN p_node VARCHAR(64),
    IN p_kind INT)
BEGIN
  DECLARE v_kid CHAR(64) DEFAULT )SQL" +
         d.KeyId("p_key") + R"SQL(;
  DECLARE v_now BIGINT DEFAULT )SQL" +
         d.NowMicros() + R"SQL(;
  DECLARE v_path VARCHAR(80) DEFAULT CONCAT('$."', p_node, '"');
  DECLARE v_hlc BIGINT DEFAULT 0;
  DECLARE v_vv LONGTEXT DEFAULT NULL;
  DECLARE v_eh BIGINT DEFAULT 0;
  DECLARE v_en VARCHAR(64) DEFAULT '';
  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;
  IF p_kind = 2 THEN
    SELECT epoch_hlc, epoch_node INTO v_eh, v_en FROM zm_rowver
      WHERE tbl = 'domains' AND kid = )SQL" +
         d.KeyId(d.KeyComponent("p_zone")) + R"SQL(;
  ELSEIF p_kind = 1 AND p_op = 'D' THEN
    SET v_eh = v_now;
    SET v_en = p_node;
  END IF;
  INSERT INTO zm_rowver (tbl, kid, rkey, hlc, node, clock, vv, deleted, zone, epoch_hlc,
                         epoch_node)
    VALUES (p_tbl, v_kid, p_key, v_now, p_node, v_now, JSON_OBJECT(p_node, v_now + 0),
            IF(p_op = 'D', 1, 0), p_zone, v_eh, v_en)
    ON DUPLICATE KEY UPDATE
      epoch_hlc = IF(p_kind = 1 AND p_op = 'D', GREATEST(VALUES(hlc), clock + 1),
                     IF(p_kind = 1, epoch_hlc, VALUES(epoch_hlc))),
      epoch_node = IF(p_kind = 1 AND p_op <> 'D', epoch_node, VALUES(epoch_node)),
      vv = JSON_SET(vv, v_path, GREATEST(VALUES(hlc), clock + 1)),
      hlc = GREATEST(VALUES(hlc), clock + 1),
      clock = hlc,
      node = VALUES(node), deleted = VALUES(deleted), zone = VALUES(zone), rkey = VALUES(rkey);
  SELECT hlc, vv, epoch_hlc, epoch_node INTO v_hlc, v_vv, v_eh, v_en
    FROM zm_rowver WHERE tbl = p_tbl AND kid = v_kid;
  INSERT INTO zm_outbox (tbl, op, rkey, payload, hlc, vv, epoch_hlc, epoch_node)
    VALUES (p_tbl, p_op, p_key, p_payload, v_hlc, v_vv, v_eh, v_en);
END)SQL";
}

std::vector<std::string> MysqlTriggers(const TableSpec& spec, const std::string& node) {
  SqlDialect d(Dialect::kMysql);
  RowExprs nw(d, spec, "NEW"), old(d, spec, "OLD");
  const std::string kind = std::to_string(TableKind(spec));
  const std::string call_tail = ", " + d.Literal(node) + ", " + kind + ");";
  const std::string tbl = d.Literal(spec.name);
  const std::string applying = std::string(db::kMysqlApplyingVariable) + " IS NULL";
  const std::string decl =
      "  DECLARE v_zone VARCHAR(255) CHARACTER SET utf8mb4 DEFAULT NULL;\n"
      "  DECLARE o_zone VARCHAR(255) CHARACTER SET utf8mb4 DEFAULT NULL;\n"
      "  DECLARE v_key LONGTEXT CHARACTER SET utf8mb4 DEFAULT NULL;\n"
      "  DECLARE o_key LONGTEXT CHARACTER SET utf8mb4 DEFAULT NULL;\n";
  const std::string zone_guard_old = spec.is_child() ? "o_zone IS NOT NULL" : "TRUE";
  const std::string zone_guard_new = spec.is_child() ? "v_zone IS NOT NULL" : "TRUE";
  const std::string set_old = "    SET o_zone = " + old.ZoneLookup() + ";\n    IF " +
                              zone_guard_old + " THEN SET o_key = " + old.Key("o_zone") +
                              "; END IF;\n";
  const std::string set_new = "    SET v_zone = " + nw.ZoneLookup() + ";\n    IF " +
                              zone_guard_new + " THEN SET v_key = " + nw.Key("v_zone") +
                              "; END IF;\n";
  const std::string call_del = "      CALL zm_record_change(" + tbl + ", 'D', o_key, " +
                               old.Payload("o_zone") + ", o_zone" + call_tail + "\n";
  const std::string call_upd = "      CALL zm_record_change(" + tbl + ", 'U', v_key, " +
                               nw.Payload("v_zone") + ", v_zone" + call_tail + "\n";

  std::vector<std::string> out;
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
      return {PostgresSharedFunction()};
    case Dialect::kMysql:
      return {"DROP PROCEDURE IF EXISTS zm_record_change", MysqlSharedProcedure()};
  }
  return {};
}

std::vector<std::string> DropSharedRoutineDdl(db::Dialect dialect) {
  switch (dialect) {
    case Dialect::kSqlite:
      return {};
    case Dialect::kPostgres:
      return {"DROP FUNCTION IF EXISTS zm_record_change(text, text, text, text, text, text, "
              "integer)"};
    case Dialect::kMysql:
      return {"DROP PROCEDURE IF EXISTS zm_record_change"};
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
  }
  return out;
}

std::vector<std::string> CaptureTriggerNames(const TableSpec& spec) {
  return {TriggerName(spec, "ai"), TriggerName(spec, "au"), TriggerName(spec, "ad")};
}

}  // namespace zonemesh::triggers
