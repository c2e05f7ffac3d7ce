#include "replicator/row_states.h"

#include <spdlog/spdlog.h>

#include <map>
#include <set>
#include <stdexcept>

#include "replicator/applier.h"
#include "replicator/table_sql.h"
#include "schema/key.h"

namespace zonemesh {

namespace {

std::string Marks(size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += i ? ", ?" : "?";
  return out;
}

}  // namespace

std::vector<Change> VersionedRows(db::Connection& c, const schema::TableSpec& spec,
                                  const std::vector<db::Row>& data, size_t zone_column,
                                  size_t first_column) {
  const TableSql sql(c.dialect(), spec);
  // Images and keys, then their versions in one query per 500.
  std::vector<Change> changes;
  std::set<std::string> zones;
  for (const db::Row& r : data) {
    Change ch;
    ch.spec = &spec;
    ch.op = 'U';
    const std::optional<std::string> zone = spec.is_child() ? r[zone_column].AsOptText() : std::nullopt;
    if (spec.is_child()) {
      if (!zone) continue;  // a row without a zone does not travel
      zones.insert(*zone);
    }
    ch.row = sql.ImageOf(r, zone, first_column);
    if (schema::IsLocalRow(spec, ch.row)) continue;  // node-local (CATALOG-HASH)
    ch.key = schema::EncodeKey(spec, ch.row);
    changes.push_back(std::move(ch));
  }
  std::map<std::string, db::Row> versions;
  for (size_t i = 0; i < changes.size(); i += 500) {
    db::Params p{spec.name};
    size_t n = std::min<size_t>(500, changes.size() - i);
    for (size_t k = 0; k < n; ++k) p.push_back(schema::KeyId(c.dialect(), changes[i + k].key));
    for (db::Row& v : c.Query("SELECT kid, hlc, node, vv, epoch_hlc, epoch_node, gepoch_hlc, "
                              "gepoch_node, siblings FROM zm_rowver WHERE tbl = ? AND kid IN (" +
                                  Marks(n) + ")",
                              p)) {
      versions[v[0].AsText()] = std::move(v);
    }
  }
  // Rows never versioned belong to their zone's current incarnation.
  std::map<std::string, schema::Version> zone_epochs;
  for (const std::string& z : zones) {
    auto e = c.Query("SELECT epoch_hlc, epoch_node FROM zm_rowver WHERE tbl = 'domains' AND kid = ?",
                     {schema::KeyId(c.dialect(), schema::ZoneKey(z))});
    zone_epochs[z] = e.empty() ? schema::Version{} : schema::Version{e[0][0].AsInt(), e[0][1].AsText()};
  }
  for (Change& ch : changes) {
    auto v = versions.find(schema::KeyId(c.dialect(), ch.key));
    if (v != versions.end() && v->second[1].AsInt() > 0) {
      ch.version = {v->second[1].AsInt(), v->second[2].AsText()};
      ch.vv = schema::VersionVector::FromJson(v->second[3].AsText());
      ch.epoch = {v->second[4].AsInt(), v->second[5].AsText()};
      ch.group_epoch = {v->second[6].AsInt(), v->second[7].AsText()};
      if (!v->second[8].IsNull()) ch.siblings = SiblingsAsChanges(ch, v->second[8].AsText());
    } else if (ch.row.zone) {
      ch.epoch = zone_epochs[*ch.row.zone];
    }
  }
  return changes;
}

bool TombstoneOf(const db::Row& r, Change* out) {
  const schema::TableSpec* spec = schema::FindTable(r[0].AsText());
  if (!spec) return false;
  Change ch;
  ch.spec = spec;
  ch.op = 'D';
  ch.key = r[2].AsText();
  try {
    ch.row = schema::RowImageFromKey(*spec, ch.key);
  } catch (const std::invalid_argument& e) {
    spdlog::warn("tombstone {} [{}] skipped: {}", spec->name, ch.key, e.what());
    return false;
  }
  ch.version = {r[3].AsInt(), r[4].AsText()};
  ch.vv = schema::VersionVector::FromJson(r[5].AsText());
  ch.epoch = {r[6].AsInt(), r[7].AsText()};
  if (spec->is_grouped()) ch.group_epoch = {r[8].AsInt(), r[9].AsText()};
  if (!r[10].IsNull()) ch.siblings = SiblingsAsChanges(ch, r[10].AsText());
  *out = std::move(ch);
  return true;
}

}  // namespace zonemesh
