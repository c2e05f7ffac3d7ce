#include "replicator/zone_clock.h"

#include "replicator/table_sql.h"
#include "schema/serial.h"
#include "schema/sql_dialect.h"

namespace zonemesh {

using nlohmann::json;

std::optional<int64_t> ZoneClock::Value() const {
  if (!base) return std::nullopt;
  int64_t v = *base;
  for (const auto& [origin, n] : explicit_n) v += n;
  for (const auto& [origin, n] : implicit_n) v += n;
  return v;
}

json ZoneClock::ToJson() const {
  return json{{"zone", zone},
              {"epoch", json::array({epoch.hlc, epoch.node})},
              {"base", base ? json(*base) : json(nullptr)},
              {"e", explicit_n},
              {"i", implicit_n}};
}

ZoneClock ZoneClock::FromJson(const json& j) {
  auto bad = [](const std::string& what) { throw WireError("zone clock: " + what); };
  if (!j.is_object()) bad("not an object");
  ZoneClock c;
  if (!j.contains("zone") || !j["zone"].is_string() || j["zone"].get_ref<const std::string&>().empty() ||
      j["zone"].get_ref<const std::string&>().size() > 255)
    bad("\"zone\" must be a zone name");
  c.zone = j["zone"].get<std::string>();
  const json& e = j.value("epoch", json());
  if (!e.is_array() || e.size() != 2 || !e[0].is_number_integer() || !e[1].is_string())
    bad("\"epoch\" must be [hlc, node]");
  c.epoch = {e[0].get<int64_t>(), e[1].get<std::string>()};
  const json& b = j.value("base", json());
  if (b.is_number_integer()) {
    c.base = b.get<int64_t>();
  } else if (!b.is_null()) {
    bad("\"base\" must be an integer or null");
  }
  for (const char* field : {"e", "i"}) {
    const json& m = j.value(field, json::object());
    if (!m.is_object() || m.size() > 1000) bad(std::string("\"") + field + "\" must be an object");
    auto& out = field[0] == 'e' ? c.explicit_n : c.implicit_n;
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (!schema::IsValidNodeId(it.key()) || !it.value().is_number_integer() ||
          it.value().get<int64_t>() < 0)
        bad(std::string("\"") + field + "\" must map node ids to counts");
      out[it.key()] = it.value().get<int64_t>();
    }
  }
  return c;
}

std::string ZoneClocks::CountMax() const {
  return schema::SqlDialect(conn_.dialect())
      .UpsertMax("zm_serial", {"zone", "origin", "kind", "n"}, {"zone", "origin", "kind"}, "n");
}

bool ZoneClocks::Claim(const std::string& zone, const schema::Version& epoch) {
  schema::SqlDialect d(conn_.dialect());
  auto rows = ClaimRow(
      conn_,
      {d.InsertIgnore("zm_zone", {"zone", "epoch_hlc", "epoch_node", "base"}, {"zone"}),
       {zone, epoch.hlc, epoch.node, db::Value()}},
      {"SELECT epoch_hlc, epoch_node FROM zm_zone WHERE zone = ?" + d.ForUpdate(), {zone}});
  const schema::Version stored{rows.at(0)[0].AsInt(), rows.at(0)[1].AsText()};
  if (stored == epoch) return true;
  if (epoch < stored) return false;
  conn_.Execute("DELETE FROM zm_serial WHERE zone = ?", {zone});
  conn_.Execute("UPDATE zm_zone SET base = NULL, epoch_hlc = ?, epoch_node = ? WHERE zone = ?",
                {epoch.hlc, epoch.node, zone});
  return true;
}

void ZoneClocks::MergeExplicit(const std::string& zone, const schema::Version& epoch,
                               const std::string& origin, const SerialClock& clock) {
  if (!Claim(zone, epoch)) return;
  conn_.Execute("UPDATE zm_zone SET base = ? WHERE zone = ? AND (base IS NULL OR base < ?)",
                {clock.base, zone, clock.base});
  conn_.Execute(CountMax(), {zone, origin, "E", clock.count});
}

void ZoneClocks::AddImplicit(const std::string& zone, const schema::Version& epoch,
                             const std::string& origin) {
  if (!Claim(zone, epoch)) return;
  conn_.Execute(schema::SqlDialect(conn_.dialect())
                    .UpsertAdd("zm_serial", {"zone", "origin", "kind", "n"}, {"zone", "origin", "kind"}, "n"),
                {zone, origin, "I", int64_t{1}});
}

void ZoneClocks::Merge(const ZoneClock& clock) {
  if (!Claim(clock.zone, clock.epoch)) return;
  if (clock.base) {
    conn_.Execute("UPDATE zm_zone SET base = ? WHERE zone = ? AND (base IS NULL OR base < ?)",
                  {*clock.base, clock.zone, *clock.base});
  }
  const std::string sql = CountMax();
  for (const auto& [origin, n] : clock.explicit_n) conn_.Execute(sql, {clock.zone, origin, "E", n});
  for (const auto& [origin, n] : clock.implicit_n) conn_.Execute(sql, {clock.zone, origin, "I", n});
}

std::optional<ZoneClock> ZoneClocks::Load(const std::string& zone) {
  auto rows = conn_.Query("SELECT epoch_hlc, epoch_node, base FROM zm_zone WHERE zone = ?", {zone});
  if (rows.empty()) return std::nullopt;
  ZoneClock c;
  c.zone = zone;
  c.epoch = {rows[0][0].AsInt(), rows[0][1].AsText()};
  c.base = rows[0][2].AsOptInt();
  for (const db::Row& r : conn_.Query("SELECT origin, kind, n FROM zm_serial WHERE zone = ?", {zone})) {
    (r[1].AsText() == "E" ? c.explicit_n : c.implicit_n)[r[0].AsText()] = r[2].AsInt();
  }
  return c;
}

std::vector<ZoneClock> ZoneClocks::LoadPage(const std::string& after, int limit) {
  std::vector<ZoneClock> out;
  for (const db::Row& r : conn_.Query("SELECT zone FROM zm_zone WHERE zone > ? ORDER BY zone LIMIT " +
                                          std::to_string(limit),
                                      {after})) {
    if (auto c = Load(r[0].AsText())) out.push_back(std::move(*c));
  }
  return out;
}

std::vector<std::string> ZoneClocks::Zones() {
  std::vector<std::string> out;
  for (const db::Row& r : conn_.Query("SELECT zone FROM zm_zone")) out.push_back(r[0].AsText());
  return out;
}

bool ZoneClocks::Publish(const std::string& zone) {
  // A local writer's SOA write (whose trigger moves the clock and writes
  // its serial into the row) may commit between this read of the row and
  // the update below; under READ COMMITTED the update would then put the
  // older, lower serial back. So the update applies only to the content
  // read, and a row changed meanwhile is read again with the clock, which
  // now holds that writer's move. No locking read: on InnoDB it would lock
  // every record of the zone it scans, and the applier waits for no lock.
  constexpr int kAttempts = 5;
  bool changed = false;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const std::vector<db::Row> soa = conn_.Query(
        "SELECT r.id, r.content FROM records r JOIN domains d ON d.id = r.domain_id "
        "WHERE d.name = ? AND r.type = 'SOA'",
        {zone});
    std::optional<ZoneClock> clock = Load(zone);
    if (!clock) return changed;
    std::optional<int64_t> value = clock->Value();
    if (!value) return changed;
    const uint32_t served = schema::ServedSerial(*value);
    bool raced = false;
    for (const db::Row& r : soa) {
      if (r[1].IsNull()) continue;
      const std::string content = r[1].AsText();
      std::optional<uint32_t> serial = schema::SoaSerial(content);
      if (!serial || *serial == served) continue;
      if (conn_.Execute("UPDATE records SET content = ? WHERE id = ? AND content = ?",
                        {schema::WithSoaSerial(content, served), r[0], content}) > 0) {
        changed = true;
      } else {
        raced = true;
      }
    }
    if (!raced) return changed;
  }
  return changed;  // still racing: the next round publishes again
}

void ZoneClocks::Forget(const std::string& zone) {
  conn_.Execute("DELETE FROM zm_serial WHERE zone = ?", {zone});
  conn_.Execute("DELETE FROM zm_zone WHERE zone = ?", {zone});
}

}  // namespace zonemesh
