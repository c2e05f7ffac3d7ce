#include "replicator/wire.h"

#include "schema/serial.h"


namespace zonemesh {

using nlohmann::json;
using schema::IsValidNodeId;
using schema::ColumnType;

namespace {

json ValueToJson(const db::Value& v) {
  if (v.IsNull()) return nullptr;
  if (v.IsBool()) return v.boolean();
  if (v.IsInt()) return v.integer();
  return v.text();
}

json VersionToJson(const schema::Version& v) { return json::array({v.hlc, v.node}); }

[[noreturn]] void Bad(const std::string& what) { throw WireError(what); }

// True for a JSON integer that fits int64 (large unsigned ones do not).
bool IsInt64(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX);
  return v.is_number_integer();
}

const json& Field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) Bad(std::string("missing field \"") + name + "\"");
  return *it;
}

int64_t IntField(const json& j, const char* name, int64_t min) {
  const json& v = Field(j, name);
  if (!IsInt64(v)) Bad(std::string("field \"") + name + "\" must be a 64-bit integer");
  int64_t x = v.get<int64_t>();
  if (x < min) Bad(std::string("field \"") + name + "\" is out of range");
  return x;
}

std::string StringField(const json& j, const char* name) {
  const json& v = Field(j, name);
  if (!v.is_string()) Bad(std::string("field \"") + name + "\" must be a string");
  return v.get<std::string>();
}

Position PositionFrom(const json& v, const char* name) {
  if (!v.is_array() || v.size() != 2 || !IsInt64(v[0]) || !IsInt64(v[1]))
    Bad(std::string("field \"") + name + "\" must be [csn, id]");
  Position p{v[0].get<int64_t>(), v[1].get<int64_t>()};
  if (p.csn < 0 || p.id < 0) Bad(std::string("field \"") + name + "\" is out of range");
  return p;
}

schema::Version VersionFrom(const json& v, const char* name) {
  if (!v.is_array() || v.size() != 2 || !IsInt64(v[0]) || !v[1].is_string())
    Bad(std::string("field \"") + name + "\" must be [hlc, node]");
  schema::Version out{v[0].get<int64_t>(), v[1].get<std::string>()};
  if (out.hlc < 0) Bad(std::string("field \"") + name + "\" has a negative clock");
  if (!out.node.empty() && !IsValidNodeId(out.node))
    Bad(std::string("field \"") + name + "\" has an invalid node id");
  return out;
}

db::Value StrictValue(const json& v, const schema::Column& c) {
  if (v.is_null()) return db::Value();
  switch (c.type) {
    case ColumnType::kText:
    case ColumnType::kInet:
      if (!v.is_string()) Bad("column " + c.name + " must be a string or null");
      if (v.get_ref<const std::string&>().size() > kMaxValueBytes)
        Bad("column " + c.name + " is longer than " + std::to_string(kMaxValueBytes) + " bytes");
      return db::Value(v.get<std::string>());
    case ColumnType::kInt:
      if (!IsInt64(v)) Bad("column " + c.name + " must be a 64-bit integer or null");
      return db::Value(v.get<int64_t>());
    case ColumnType::kBool:
      if (!v.is_boolean()) Bad("column " + c.name + " must be a boolean or null");
      return db::Value(v.get<bool>());
  }
  return db::Value();
}

db::Value LenientValue(const json& v, const schema::Column& c, std::vector<std::string>* problems) {
  if (v.is_null()) return db::Value();
  auto fail = [&]() {
    if (problems) problems->push_back("column " + c.name + " holds " + v.dump() +
                                      ", not a " + std::string(schema::ColumnTypeName(c.type)));
    return db::Value();
  };
  switch (c.type) {
    case ColumnType::kText:
    case ColumnType::kInet:
      if (v.is_string()) return db::Value(v.get<std::string>());
      if (v.is_number_integer()) return db::Value(std::to_string(v.get<int64_t>()));
      if (v.is_number()) return db::Value(v.dump());
      if (v.is_boolean()) return db::Value(v.get<bool>() ? "1" : "0");
      return fail();
    case ColumnType::kInt:
      if (v.is_number_integer()) return db::Value(v.get<int64_t>());
      if (v.is_number_float()) {
        double d = v.get<double>();
        if (d != static_cast<double>(static_cast<int64_t>(d))) return fail();
        return db::Value(static_cast<int64_t>(d));
      }
      if (v.is_boolean()) return db::Value(int64_t{v.get<bool>() ? 1 : 0});
      if (v.is_string()) {
        try {
          return db::Value(db::Value(v.get<std::string>()).AsInt());
        } catch (const std::invalid_argument&) {
          return fail();
        }
      }
      return fail();
    case ColumnType::kBool:
      if (v.is_boolean()) return db::Value(v.get<bool>());
      if (v.is_number()) return db::Value(v.get<double>() != 0);
      if (v.is_string()) {
        try {
          return db::Value(db::Value(v.get<std::string>()).AsBool());
        } catch (const std::invalid_argument&) {
          return fail();
        }
      }
      return fail();
  }
  return fail();
}

}  // namespace

json ChangeToJson(const Change& c) {
  json values = json::array();
  for (const db::Value& v : c.row.values) values.push_back(ValueToJson(v));
  json vv = json::object();
  for (const auto& [node, hlc] : c.vv.entries()) vv[node] = hlc;
  json j{{"p", json::array({c.pos.csn, c.pos.id})},
         {"t", c.spec->name},
         {"o", std::string(1, c.op)},
         {"k", c.key},
         {"z", c.row.zone ? json(*c.row.zone) : json(nullptr)},
         {"v", std::move(values)},
         {"h", VersionToJson(c.version)},
         {"vv", std::move(vv)},
         {"e", VersionToJson(c.epoch)},
         {"g", VersionToJson(c.group_epoch)},
         {"s", c.session}};
  if (c.serial) j["sc"] = json::array({c.serial->base, c.serial->count});
  if (!c.siblings.empty()) {
    json sib = json::array();
    for (const Change& s : c.siblings) {
      json values = json::array();
      if (s.op == 'U') {
        for (const db::Value& v : s.row.values) values.push_back(ValueToJson(v));
      }
      json svv = json::object();
      for (const auto& [node, hlc] : s.vv.entries()) svv[node] = hlc;
      sib.push_back(json{{"o", std::string(1, s.op)},
                         {"h", VersionToJson(s.version)},
                         {"vv", std::move(svv)},
                         {"v", s.op == 'U' ? std::move(values) : json(nullptr)}});
    }
    j["sib"] = std::move(sib);
  }
  return j;
}

Change ChangeFromJson(const json& j, bool snapshot_row) {
  if (!j.is_object()) Bad("a change must be an object");
  Change c;
  if (!snapshot_row) {
    c.pos = PositionFrom(Field(j, "p"), "p");
    if (c.pos.csn < 1 || c.pos.id < 1) Bad("field \"p\" must be positive");
  }
  std::string table = StringField(j, "t");
  c.spec = schema::FindTable(table);
  if (!c.spec) Bad("unknown table \"" + table + "\"");
  std::string op = StringField(j, "o");
  if (op != "U" && op != "D") Bad("field \"o\" must be \"U\" or \"D\"");
  c.op = op[0];

  const json& z = Field(j, "z");
  if (c.spec->is_child()) {
    if (!z.is_string() || z.get_ref<const std::string&>().empty())
      Bad("table " + table + " needs its zone name in \"z\"");
    if (z.get_ref<const std::string&>().size() > 255) Bad("zone name longer than 255 bytes");
    c.row.zone = z.get<std::string>();
  } else if (!z.is_null()) {
    Bad("table " + table + " has no parent zone, \"z\" must be null");
  }

  const json& v = Field(j, "v");
  if (!v.is_array()) Bad("field \"v\" must be an array");
  if (v.size() != c.spec->columns.size()) {
    Bad("table " + table + " has " + std::to_string(c.spec->columns.size()) +
        " replicated columns, change carries " + std::to_string(v.size()));
  }
  for (size_t i = 0; i < v.size(); ++i) c.row.values.push_back(StrictValue(v[i], c.spec->columns[i]));

  c.version = VersionFrom(Field(j, "h"), "h");
  const bool unversioned = snapshot_row && c.version.IsZero();
  if (!unversioned && (c.version.hlc < 1 || c.version.node.empty()))
    Bad("field \"h\" must be a real version");
  const json& vv = Field(j, "vv");
  if (!vv.is_object() || vv.size() > 1000) Bad("field \"vv\" must be an object of node: hlc");
  for (auto it = vv.begin(); it != vv.end(); ++it) {
    if (!IsValidNodeId(it.key()) || !IsInt64(it.value()) || it.value().get<int64_t>() < 0)
      Bad("field \"vv\" must be an object of node: hlc");
    c.vv.Set(it.key(), it.value().get<int64_t>());
  }
  if (!unversioned && c.vv.Get(c.version.node) != c.version.hlc)
    Bad("field \"vv\" does not contain the change's own version");
  c.epoch = VersionFrom(Field(j, "e"), "e");
  if (c.spec->is_zone_table && c.op == 'D' && c.epoch != c.version)
    Bad("a zone delete must start the incarnation named by its own version");
  c.group_epoch = VersionFrom(Field(j, "g"), "g");
  if (!c.spec->is_grouped() && !c.group_epoch.IsZero())
    Bad("table " + table + " has no row groups, \"g\" must be [0, \"\"]");
  c.session = IntField(j, "s", 0);
  if (auto sc = j.find("sc"); sc != j.end() && !sc->is_null()) {
    if (!sc->is_array() || sc->size() != 2 || !IsInt64((*sc)[0]) || !IsInt64((*sc)[1]))
      Bad("field \"sc\" must be [base, count]");
    c.serial = SerialClock{(*sc)[0].get<int64_t>(), (*sc)[1].get<int64_t>()};
    if (c.serial->count < 1 || c.op != 'U' || !IsSoaRow(*c.spec, c.row))
      Bad("field \"sc\" belongs to SOA upserts, with a count of at least 1");
  }

  if (schema::IsLocalRow(*c.spec, c.row)) Bad("table " + table + " row is node-local and never travels");
  c.key = StringField(j, "k");
  std::string expected = schema::EncodeKey(*c.spec, c.row);
  if (c.key != expected) Bad("key \"" + c.key + "\" does not match the row (expected \"" + expected + "\")");

  if (auto sib = j.find("sib"); sib != j.end() && !sib->is_null()) {
    if (!snapshot_row) Bad("field \"sib\" belongs to snapshot rows");
    if (!sib->is_array() || sib->size() < 2 || sib->size() > kMaxSiblings) {
      Bad("field \"sib\" must be an array of 2 to " + std::to_string(kMaxSiblings) +
          " concurrent states");
    }
    for (const json& sj : *sib) {
      if (!sj.is_object()) Bad("a state in \"sib\" must be an object");
      // Each state is a change of this row: its fields are checked as one.
      json as_change = j;
      as_change.erase("sib");
      as_change.erase("sc");
      as_change["o"] = Field(sj, "o");
      as_change["h"] = Field(sj, "h");
      as_change["vv"] = Field(sj, "vv");
      const json& sv = Field(sj, "v");
      if (as_change["o"] == "U") {
        as_change["v"] = sv;
      } else if (!sv.is_null()) {
        Bad("a deleted state in \"sib\" carries no values");
      }
      Change s = ChangeFromJson(as_change, /*snapshot_row=*/true);
      if (s.version.IsZero()) Bad("a state in \"sib\" needs a real version");
      if (s.key != c.key) Bad("a state in \"sib\" is of another row");
      s.serial.reset();
      c.siblings.push_back(std::move(s));
    }
  }
  return c;
}

std::string EncodeBatch(const Batch& b) {
  json changes = json::array();
  for (const Change& c : b.changes) changes.push_back(ChangeToJson(c));
  json j{{"v", kProtocolVersion},
         {"origin", b.origin},
         {"target", b.target},
         {"fingerprint", b.fingerprint},
         {"after", json::array({b.after.csn, b.after.id})},
         {"complete", b.round_complete},
         {"changes", std::move(changes)}};
  return JsonText(j);
}

Batch DecodeBatch(std::string_view body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // parse errors, and numbers out of range
    Bad(std::string("body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) Bad("body must be a JSON object");
  Batch b;
  int64_t v = IntField(j, "v", 0);
  if (v != kProtocolVersion)
    Bad("protocol version " + std::to_string(v) + " is not supported (this node speaks " +
        std::to_string(kProtocolVersion) + ")");
  b.origin = StringField(j, "origin");
  if (!IsValidNodeId(b.origin)) Bad("field \"origin\" is not a valid node id");
  b.target = StringField(j, "target");
  b.fingerprint = StringField(j, "fingerprint");
  b.after = PositionFrom(Field(j, "after"), "after");
  const json& complete = Field(j, "complete");
  if (!complete.is_boolean()) Bad("field \"complete\" must be a boolean");
  b.round_complete = complete.get<bool>();
  const json& changes = Field(j, "changes");
  if (!changes.is_array()) Bad("field \"changes\" must be an array");
  Position prev = b.after;
  for (size_t i = 0; i < changes.size(); ++i) {
    try {
      Change c = ChangeFromJson(changes[i]);
      if (c.pos <= prev) Bad("positions must increase, " + c.pos.ToString() + " follows " + prev.ToString());
      if (c.version.node != b.origin)
        Bad("change written by \"" + c.version.node + "\" pushed by \"" + b.origin + "\"");
      prev = c.pos;
      b.changes.push_back(std::move(c));
    } catch (const WireError& e) {
      throw WireError("change " + std::to_string(i) + ": " + e.what());
    }
  }
  return b;
}

schema::RowImage RowImageFromPayload(const schema::TableSpec& spec, const json& payload,
                                     std::vector<std::string>* problems) {
  schema::RowImage row;
  if (!payload.is_object()) {
    if (problems) problems->push_back("payload is not an object");
    row.values.resize(spec.columns.size());
    return row;
  }
  if (spec.is_child()) {
    auto it = payload.find(schema::kZoneField);
    if (it != payload.end() && it->is_string()) row.zone = it->get<std::string>();
  }
  for (const schema::Column& c : spec.columns) {
    auto it = payload.find(c.name);
    row.values.push_back(it == payload.end() ? db::Value() : LenientValue(*it, c, problems));
  }
  return row;
}

json RowImageToJson(const schema::TableSpec& spec, const schema::RowImage& row) {
  json j = json::object();
  if (spec.is_child()) j[std::string(schema::kZoneField)] = row.zone ? json(*row.zone) : json(nullptr);
  for (size_t i = 0; i < spec.columns.size() && i < row.values.size(); ++i) {
    j[spec.columns[i].name] = ValueToJson(row.values[i]);
  }
  return j;
}

std::string JsonText(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool SanitizeUtf8(std::string* text) {
  std::string out;
  out.reserve(text->size());
  bool replaced = false;
  const auto* p = reinterpret_cast<const unsigned char*>(text->data());
  const size_t n = text->size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xc0) == 0x80;
    if (ok && len > 1) {
      // Reject overlong forms, surrogates and code points past U+10FFFF.
      uint32_t cp = c & (0xff >> (len + 1));
      for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3f);
      static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    }
    if (ok) {
      out.append(text->data() + i, len);
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      replaced = true;
      ++i;
    }
  }
  if (replaced) *text = std::move(out);
  return replaced;
}

}  // namespace zonemesh
