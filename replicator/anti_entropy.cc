#include "replicator/anti_entropy.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "replicator/row_states.h"
#include "replicator/now.h"
#include "replicator/table_sql.h"
#include "schema/key.h"

namespace zonemesh {

using nlohmann::json;

namespace {

// 64 bits of SHA-256, never 0 (0 stands for "empty").
uint64_t Hash64(const std::string& data) {
  const uint64_t h = std::stoull(schema::Sha256Hex(data).substr(0, 16), nullptr, 16);
  return h ? h : 1;
}

uint64_t HashOfHashes(const std::vector<uint64_t>& hashes) {
  std::string all;
  bool any = false;
  for (uint64_t h : hashes) {
    all += HashText(h) + "\n";
    any = any || h != 0;
  }
  return any ? Hash64(all) : 0;
}

std::vector<uint64_t> HashesFromJson(const json& j, size_t n, const char* what) {
  if (!j.is_array() || j.size() != n) {
    throw std::invalid_argument(std::string(what) + " must be an array of " + std::to_string(n) + " hashes");
  }
  std::vector<uint64_t> out;
  for (const json& h : j) {
    if (!h.is_string()) throw std::invalid_argument(std::string(what) + " must hold hash strings");
    out.push_back(HashFromText(h.get<std::string>()));
  }
  return out;
}

// Integers in [0, limit) from a request array of at most `max` elements.
std::vector<int> IndexesFromJson(const json& j, int limit, size_t max, const char* what) {
  if (!j.is_array() || j.empty() || j.size() > max) {
    throw std::invalid_argument(std::string("\"") + what + "\" must be an array of 1 to " +
                                std::to_string(max) + " indexes");
  }
  std::vector<int> out;
  for (const json& i : j) {
    if (!i.is_number_integer() || i.get<int64_t>() < 0 || i.get<int64_t>() >= limit) {
      throw std::invalid_argument(std::string("\"") + what + "\" holds indexes from 0 to " +
                                  std::to_string(limit - 1));
    }
    out.push_back(i.get<int>());
  }
  return out;
}

std::string ZoneOf(const json& request) {
  if (!request.contains("zone") || !request["zone"].is_string() ||
      request["zone"].get<std::string>().size() > 255) {
    throw std::invalid_argument("\"zone\" must be a zone name (\"\" for the tables without zones)");
  }
  return request["zone"].get<std::string>();
}

// How a row state compares: whether the row exists, and its image without
// an SOA's serial.
std::string ShownText(const Change* c) {
  if (!c || c->op != 'U') return "";
  return JsonText(RowImageToJson(*c->spec, *ComparableImage(*c->spec, c->row)));
}

size_t SpecIndex(const schema::TableSpec* spec) {
  const auto& specs = schema::PowerDnsTables();
  for (size_t i = 0; i < specs.size(); ++i) {
    if (&specs[i] == spec) return i;
  }
  return specs.size();
}

}  // namespace

int LeafOf(const std::string& table, const std::string& key) {
  return static_cast<int>(std::stoul(schema::Sha256Hex(table + "\n" + key).substr(0, 3), nullptr, 16));
}

std::string HashText(uint64_t h) {
  if (h == 0) return "";
  static const char* hex = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[i] = hex[h & 0xf];
  return out;
}

uint64_t HashFromText(const std::string& text) {
  if (text.empty()) return 0;
  if (text.size() != 16 || text.find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw std::invalid_argument("a hash is 16 lowercase hex digits or \"\"");
  }
  return std::stoull(text, nullptr, 16);
}

std::vector<uint64_t> ZoneTree::LeavesOfGroup(int group) const {
  std::vector<uint64_t> out(kGroupLeaves, 0);
  auto it = std::lower_bound(leaves.begin(), leaves.end(), std::make_pair(group * kGroupLeaves, uint64_t{0}));
  for (; it != leaves.end() && it->first < (group + 1) * kGroupLeaves; ++it) {
    out[it->first - group * kGroupLeaves] = it->second;
  }
  return out;
}

ZoneTree BuildZoneTree(const std::vector<DumpLine>& lines) {
  std::map<int, std::string> by_leaf;
  for (const DumpLine& l : lines) by_leaf[LeafOf(l.table, l.key)] += l.text + "\n";
  ZoneTree t;
  t.rows = static_cast<int64_t>(lines.size());
  t.groups.assign(kTreeGroups, 0);
  for (const auto& [leaf, text] : by_leaf) t.leaves.emplace_back(leaf, Hash64(text));
  for (int g = 0; g < kTreeGroups; ++g) t.groups[g] = HashOfHashes(t.LeavesOfGroup(g));
  t.root = HashOfHashes(t.groups);
  return t;
}

std::vector<Change> RowStatesOfLeaves(db::Connection& conn, const std::string& zone,
                                      const std::set<int>& leaves) {
  std::vector<Change> out;
  for (const schema::TableSpec& spec : schema::PowerDnsTables()) {
    const bool zoned = spec.is_zone_table || spec.is_child();
    if (zoned == zone.empty()) continue;
    const TableSql sql(conn.dialect(), spec);
    std::vector<db::Row> data;
    for (db::Row& r : zoned ? conn.Query(sql.SelectOfZone(), {zone}) : conn.Query(sql.SelectAll())) {
      const schema::RowImage image = sql.ImageOf(r, spec.is_child() ? r[0].AsOptText() : std::nullopt);
      if (leaves.count(LeafOf(spec.name, schema::EncodeKey(spec, image)))) data.push_back(std::move(r));
    }
    for (Change& c : VersionedRows(conn, spec, data, 0, 1)) out.push_back(std::move(c));
  }
  const std::string where = zone.empty() ? "zone IS NULL AND tbl <> 'domains'" : "zone = ?";
  db::Params params;
  if (!zone.empty()) params.push_back(zone);
  for (const db::Row& r : conn.Query(std::string("SELECT ") + kTombstoneColumns +
                                         " FROM zm_rowver WHERE deleted = 1 AND hlc > 0 AND " + where,
                                     params)) {
    if (!leaves.count(LeafOf(r[0].AsText(), r[2].AsText()))) continue;
    Change c;
    if (TombstoneOf(r, &c)) out.push_back(std::move(c));
  }
  return out;
}

AntiEntropy::AntiEntropy(ConnectionFactory open, int64_t settle_micros, int64_t rehash_micros)
    : open_(std::move(open)),
      settle_micros_(settle_micros),
      rehash_micros_(rehash_micros),
      min_rebuild_micros_(std::max<int64_t>(settle_micros, 1000000)) {}

void AntiEntropy::ZonesChanged(const std::set<std::string>& zones) {
  std::lock_guard<std::mutex> lock(mu_);
  dirty_.insert(zones.begin(), zones.end());
}

int64_t AntiEntropy::TreesBuilt() {
  std::lock_guard<std::mutex> lock(mu_);
  return trees_built_;
}

std::map<std::string, std::shared_ptr<const ZoneTree>> AntiEntropy::Trees() {
  std::lock_guard<std::mutex> build(build_mu_);
  std::set<std::string> dirty;
  {
    // Taken before the snapshot starts: a zone marked later is built again
    // next time, whether or not this snapshot saw its change.
    std::lock_guard<std::mutex> lock(mu_);
    dirty.swap(dirty_);
  }
  const int64_t now = NowMicros();
  std::map<std::string, std::shared_ptr<const ZoneTree>> out;
  int64_t built = 0;
  std::unique_ptr<db::Connection> conn;
  std::vector<std::string> zones{""};
  try {
    conn = open_();
    conn->BeginReadOnlySnapshot();
    for (const db::Row& r : conn->Query("SELECT name FROM domains")) zones.push_back(r[0].AsText());
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_.insert(dirty.begin(), dirty.end());  // still to be built
    throw;
  }
  for (const std::string& zone : zones) {
    std::shared_ptr<const ZoneTree> tree;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = cache_.find(zone);
      if (it != cache_.end()) {
        const int64_t age = now - built_at_[zone];
        if (dirty.count(zone) && age < min_rebuild_micros_ && age < rehash_micros_) {
          // Changed again since a recent build: its differences are in
          // flight for settle_seconds anyway (a busy zone is not hashed on
          // every comparison); built again once they are not.
          dirty_.insert(zone);
          tree = it->second;
        } else if (!dirty.count(zone) && age < rehash_micros_) {
          tree = it->second;
        }
      }
    }
    if (!tree) {
      try {
        tree = std::make_shared<const ZoneTree>(BuildZoneTree(ZoneDumpLines(*conn, zone)));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        dirty_.insert(dirty.begin(), dirty.end());  // still to be built
        throw;
      }
      ++built;
    }
    out[zone] = tree;
  }
  conn->Rollback();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (!out.count(it->first)) {
      built_at_.erase(it->first);
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [zone, tree] : out) {
    if (cache_[zone] != tree) {
      cache_[zone] = tree;
      built_at_[zone] = now;
    }
  }
  trees_built_ += built;
  return out;
}

std::shared_ptr<const ZoneTree> AntiEntropy::TreeOf(const std::string& zone) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(zone);
    if (it != cache_.end()) {
      const int64_t age = NowMicros() - built_at_[zone];
      if (age < rehash_micros_ && (!dirty_.count(zone) || age < min_rebuild_micros_)) return it->second;
    }
  }
  auto trees = Trees();
  auto it = trees.find(zone);
  return it == trees.end() ? nullptr : it->second;
}

json AntiEntropy::Serve(const json& request) {
  const std::string kind = request.value("tree", "");
  if (kind == "roots") {
    json zones = json::object();
    for (const auto& [zone, tree] : Trees()) {
      if (tree->rows > 0) zones[zone] = json{{"rows", tree->rows}, {"root", HashText(tree->root)}};
    }
    return json{{"zones", std::move(zones)}};
  }
  if (kind == "groups") {
    auto tree = TreeOf(ZoneOf(request));
    json groups = json::array();
    for (int g = 0; g < kTreeGroups; ++g) groups.push_back(HashText(tree ? tree->groups[g] : 0));
    return json{{"groups", std::move(groups)}};
  }
  if (kind == "leaves") {
    const std::string zone = ZoneOf(request);
    const std::vector<int> groups =
        IndexesFromJson(request.value("groups", json()), kTreeGroups, kTreeGroups, "groups");
    auto tree = TreeOf(zone);
    json out = json::array();
    for (int g : groups) {
      json hashes = json::array();
      for (uint64_t h : tree ? tree->LeavesOfGroup(g) : std::vector<uint64_t>(kGroupLeaves, 0)) {
        hashes.push_back(HashText(h));
      }
      out.push_back(std::move(hashes));
    }
    return json{{"leaves", std::move(out)}};
  }
  if (kind == "rows") {
    const std::string zone = ZoneOf(request);
    const std::vector<int> leaves =
        IndexesFromJson(request.value("leaves", json()), kTreeLeaves, kLeavesPerRequest, "leaves");
    auto conn = open_();
    conn->BeginReadOnlySnapshot();
    json rows = json::array();
    for (const Change& c : RowStatesOfLeaves(*conn, zone, std::set<int>(leaves.begin(), leaves.end()))) {
      rows.push_back(ChangeToJson(c));
    }
    json clock = nullptr;
    if (!zone.empty()) {
      if (auto z = ZoneClocks(*conn).Load(zone)) clock = z->ToJson();
    }
    conn->Rollback();
    return json{{"rows", std::move(rows)}, {"clock", std::move(clock)}};
  }
  throw std::invalid_argument("\"tree\" must be \"roots\", \"groups\", \"leaves\" or \"rows\"");
}

PeerComparison AntiEntropy::CompareWith(const Ask& ask, const RepairFn& repair) {
  PeerComparison stats;
  auto asked = [&](const json& request) {
    json answer = ask(request);
    stats.requests++;
    stats.bytes_received += static_cast<int64_t>(answer.dump().size());
    return answer;
  };
  const json roots = asked(json{{"tree", "roots"}});
  if (!roots.contains("zones") || !roots["zones"].is_object()) {
    throw std::runtime_error("the peer's tree roots are not {\"zones\": {...}}");
  }
  std::map<std::string, uint64_t> there;
  for (auto it = roots["zones"].begin(); it != roots["zones"].end(); ++it) {
    if (!it.value().is_object() || !it.value().contains("root") || !it.value()["root"].is_string()) {
      throw std::runtime_error("the peer's tree root of zone \"" + it.key() + "\" is malformed");
    }
    there[it.key()] = HashFromText(it.value()["root"].get<std::string>());
  }
  const auto here = Trees();
  std::set<std::string> zones;
  for (const auto& [z, t] : here) {
    if (t->rows > 0) zones.insert(z);
  }
  for (const auto& [z, h] : there) zones.insert(z);
  const ZoneTree empty = BuildZoneTree({});
  for (const std::string& zone : zones) {
    stats.zones++;
    auto h = here.find(zone);
    const ZoneTree& local = h == here.end() ? empty : *h->second;
    auto t = there.find(zone);
    if (local.root == (t == there.end() ? 0 : t->second)) continue;
    stats.differing.push_back(CompareZone(zone, local, asked, repair));
  }
  return stats;
}

ZoneComparison AntiEntropy::CompareZone(const std::string& zone, const ZoneTree& local, const Ask& ask,
                                        const RepairFn& repair) {
  ZoneComparison out;
  out.zone = zone;
  const std::vector<uint64_t> groups =
      HashesFromJson(ask(json{{"tree", "groups"}, {"zone", zone}}).value("groups", json()), kTreeGroups,
                     "the peer's groups");
  json differing_groups = json::array();
  for (int g = 0; g < kTreeGroups; ++g) {
    if (groups[g] != local.groups[g]) differing_groups.push_back(g);
  }
  if (differing_groups.empty()) return out;  // changed between the two requests
  const json leaves_answer = ask(json{{"tree", "leaves"}, {"zone", zone}, {"groups", differing_groups}});
  const json& leaf_lists = leaves_answer.value("leaves", json());
  if (!leaf_lists.is_array() || leaf_lists.size() != differing_groups.size()) {
    throw std::runtime_error("the peer's leaves of zone \"" + zone + "\" are malformed");
  }
  std::vector<int> differing_leaves;
  for (size_t i = 0; i < differing_groups.size(); ++i) {
    const int g = differing_groups[i].get<int>();
    const std::vector<uint64_t> theirs = HashesFromJson(leaf_lists[i], kGroupLeaves, "the peer's leaves");
    const std::vector<uint64_t> ours = local.LeavesOfGroup(g);
    for (int l = 0; l < kGroupLeaves; ++l) {
      if (theirs[l] != ours[l]) differing_leaves.push_back(g * kGroupLeaves + l);
    }
  }

  const int64_t settled_before = NowMicros() - settle_micros_;
  std::vector<Change> merge, force;
  std::optional<ZoneClock> their_clock, our_clock;
  auto conn = open_();  // one read snapshot per chunk, on one connection
  for (size_t i = 0; i < differing_leaves.size(); i += kLeavesPerRequest) {
    const size_t n = std::min(kLeavesPerRequest, differing_leaves.size() - i);
    const std::vector<int> chunk(differing_leaves.begin() + i, differing_leaves.begin() + i + n);
    const json answer = ask(json{{"tree", "rows"}, {"zone", zone}, {"leaves", chunk}});
    if (!answer.contains("rows") || !answer["rows"].is_array()) {
      throw std::runtime_error("the peer's rows of zone \"" + zone + "\" are malformed");
    }
    using Key = std::pair<std::string, std::string>;
    std::map<Key, Change> theirs, ours;
    for (const json& j : answer["rows"]) {
      Change c = ChangeFromJson(j, /*snapshot_row=*/true);
      theirs.emplace(Key{c.spec->name, c.key}, std::move(c));
    }
    if (answer.contains("clock") && !answer["clock"].is_null()) their_clock = ZoneClock::FromJson(answer["clock"]);

    conn->BeginReadOnlySnapshot();
    for (Change& c : RowStatesOfLeaves(*conn, zone, std::set<int>(chunk.begin(), chunk.end()))) {
      ours.emplace(Key{c.spec->name, c.key}, std::move(c));
    }
    if (!zone.empty()) {
      our_clock = ZoneClocks(*conn).Load(zone);
    }
    // The zone's incarnation here, and each set's: a peer's state of an
    // older one is a leftover there (or in flight), never taken; a row of
    // an older one missing here ended with it.
    schema::Version zone_epoch;
    if (!zone.empty()) {
      auto e = conn->Query("SELECT epoch_hlc, epoch_node FROM zm_rowver WHERE tbl = 'domains' AND kid = ?",
                           {schema::KeyId(conn->dialect(), schema::ZoneKey(zone))});
      if (!e.empty()) zone_epoch = {e[0][0].AsInt(), e[0][1].AsText()};
    }
    std::map<std::pair<std::string, std::string>, schema::Version> group_epochs;
    auto group_epoch = [&](const Change& c) {
      const std::string gkey = schema::GroupKey(*c.spec, c.row);
      auto it = group_epochs.find({c.spec->name, gkey});
      if (it != group_epochs.end()) return it->second;
      schema::Version v;
      auto g = conn->Query("SELECT epoch_hlc, epoch_node FROM zm_group WHERE tbl = ? AND kid = ?",
                           {c.spec->name, schema::KeyId(conn->dialect(), gkey)});
      if (!g.empty()) v = {g[0][0].AsInt(), g[0][1].AsText()};
      return group_epochs[{c.spec->name, gkey}] = v;
    };
    auto ended_here = [&](const Change& c, const schema::Version& epoch, const schema::Version& gepoch) {
      if (c.spec->is_child() && epoch < zone_epoch) return true;
      return c.spec->is_grouped() && gepoch < group_epoch(c);
    };
    std::set<Key> keys;
    for (const auto& [k, c] : theirs) keys.insert(k);
    for (const auto& [k, c] : ours) keys.insert(k);
    for (const Key& k : keys) {
      auto ti = theirs.find(k);
      auto oi = ours.find(k);
      const Change* r = ti == theirs.end() ? nullptr : &ti->second;
      const Change* l = oi == ours.end() ? nullptr : &oi->second;
      const bool r_exists = r && r->op == 'U';
      const bool l_exists = l && l->op == 'U';
      const std::string r_text = ShownText(r), l_text = ShownText(l);
      if (r_exists == l_exists && r_text == l_text) continue;  // the same row
      const int64_t newest = std::max(r ? r->version.hlc : 0, l ? l->version.hlc : 0);
      if (newest > settled_before) {
        out.in_flight++;  // replication may still be carrying it
        continue;
      }
      out.differing++;
      if (out.example.empty()) {
        out.example = k.first + " [" + k.second + "]: " + (l_exists ? "here" : "not here") + ", " +
                      (r_exists ? "there" : "not there");
      }
      if (!r) continue;  // the peer takes ours when it compares
      if (ended_here(*r, r->epoch, r->group_epoch)) continue;  // the peer is behind (or holds a leftover)
      schema::Version ours_version = l ? l->version : schema::Version{};
      if (!l && r_exists) {
        // A version record whose row went missing is a state of the same
        // version, deleted behind zonemesh's back, unless the row's zone or
        // set incarnation ended here (which removes rows, not records).
        auto v = conn->Query(
            "SELECT hlc, node, epoch_hlc, epoch_node, gepoch_hlc, gepoch_node FROM zm_rowver "
            "WHERE tbl = ? AND kid = ? AND deleted = 0",
            {k.first, schema::KeyId(conn->dialect(), k.second)});
        if (!v.empty()) {
          const schema::Version epoch{v[0][2].AsInt(), v[0][3].AsText()};
          const schema::Version gepoch{v[0][4].AsInt(), v[0][5].AsText()};
          if (ended_here(*r, epoch, gepoch)) continue;
          ours_version = {v[0][0].AsInt(), v[0][1].AsText()};
        }
      }
      if (!r->version.IsZero() && ours_version == r->version) {
        // The same version, another value: the same choice on both sides.
        if (r_exists && (!l_exists || r_text > l_text)) force.push_back(*r);
      } else {
        merge.push_back(*r);
      }
    }
    conn->Rollback();
    if (out.in_flight > 0 && out.differing == 0) {
      // Everything that differs so far is in flight (a large transaction
      // still being applied, say): the rest of the zone is left for the
      // next comparison rather than pulled only to be skipped.
      break;
    }
  }
  // Zones first, so that their rows find them.
  auto by_spec = [](const Change& a, const Change& b) { return SpecIndex(a.spec) < SpecIndex(b.spec); };
  std::stable_sort(merge.begin(), merge.end(), by_spec);
  std::stable_sort(force.begin(), force.end(), by_spec);
  if (!merge.empty() || !force.empty()) {
    // With the peer's clock: the rows taken show the peer's serials.
    out.repaired = repair(merge, force, their_clock).applied;
  } else if (out.differing == 0 && out.in_flight == 0 && their_clock && our_clock &&
             their_clock->epoch == our_clock->epoch && their_clock->Value() != our_clock->Value()) {
    // Rows equal but for the SOA serial: the zone clocks of one incarnation
    // differ (a repair counted on one side). Clocks merge component by
    // component by maximum, so both sides end equal and neither goes back.
    out.serial_only = true;
    repair({}, {}, their_clock);
  }
  return out;
}

}  // namespace zonemesh
