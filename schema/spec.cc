#include "schema/spec.h"

#include <algorithm>
#include <stdexcept>

namespace zonemesh::schema {

std::string_view ColumnTypeName(ColumnType t) {
  switch (t) {
    case ColumnType::kText:
      return "text";
    case ColumnType::kInt:
      return "int";
    case ColumnType::kBool:
      return "bool";
    case ColumnType::kInet:
      return "inet";
  }
  return "?";
}

size_t TableSpec::ColumnIndex(std::string_view column) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].name == column) return i;
  }
  throw std::logic_error("table " + name + " has no column " + std::string(column));
}

const Column* TableSpec::FindColumn(std::string_view column) const {
  for (const Column& c : columns) {
    if (c.name == column) return &c;
  }
  return nullptr;
}

bool SingletonRule::Drops(std::string_view column) const {
  return std::find(columns.begin(), columns.end(), column) != columns.end();
}

bool TableSpec::IsKeyColumn(std::string_view column) const {
  return std::find(key.begin(), key.end(), column) != key.end();
}

namespace {

using T = ColumnType;

std::vector<TableSpec> BuildPowerDnsTables() {
  std::vector<TableSpec> specs;

  specs.push_back(TableSpec{
      .name = "domains",
      .id_column = "id",
      .parent_column = "",
      .is_zone_table = true,
      .key = {"name"},
      .columns = {{"name", T::kText},
                  {"master", T::kText},
                  {"type", T::kText},
                  {"account", T::kText},
                  {"options", T::kText},
                  {"catalog", T::kText}},
      .local_columns = {"notified_serial", "last_check"},
      .singleton = std::nullopt,
      .group = {},
      .local_rows = std::nullopt,
  });

  // One logical row per (zone, name, type, content, prio): two SRV or MX
  // records that differ only in the separate prio column (as zone2sql and
  // plain SQL write them) are two records. SOA, CNAME and DNAME are
  // single-valued, so two nodes editing a SOA never leave two SOA rows.
  // ordername and auth (rectify's output) travel like any value. An RRset
  // (name, type) is replaced as a whole.
  specs.push_back(TableSpec{
      .name = "records",
      .id_column = "id",
      .parent_column = "domain_id",
      .is_zone_table = false,
      .key = {std::string(kZoneField), "name", "type", "content", "prio"},
      .columns = {{"name", T::kText},
                  {"type", T::kText},
                  {"content", T::kText},
                  {"ttl", T::kInt},
                  {"prio", T::kInt},
                  {"disabled", T::kBool},
                  {"ordername", T::kText},
                  {"auth", T::kBool}},
      .local_columns = {},
      .singleton = SingletonRule{{"content", "prio"}, "type", {"SOA", "CNAME", "DNAME"}},
      .group = {"name", "type"},
      .local_rows = std::nullopt,
  });

  // Metadata kinds that hold one value per zone; other kinds (ALSO-NOTIFY,
  // ALLOW-AXFR-FROM, TSIG-ALLOW-AXFR, X-...) are sets keyed by content,
  // replaced as a whole by PowerDNS's setDomainMetadata. CATALOG-HASH is
  // PowerDNS's hash over the member zones' local ids: node-local.
  specs.push_back(TableSpec{
      .name = "domainmetadata",
      .id_column = "id",
      .parent_column = "domain_id",
      .is_zone_table = false,
      .key = {std::string(kZoneField), "kind", "content"},
      .columns = {{"kind", T::kText}, {"content", T::kText}},
      .local_columns = {},
      .singleton =
          SingletonRule{{"content"},
                        "kind",
                        {"API-RECTIFY", "AXFR-MASTER-TSIG", "AXFR-SOURCE", "ENABLE-LUA-RECORDS",
                         "FORWARD-DNSUPDATE", "GSS-ACCEPTOR-PRINCIPAL", "IXFR",
                         "LUA-AXFR-SCRIPT", "NOTIFY-DNSUPDATE", "NSEC3NARROW", "NSEC3PARAM",
                         "PRESIGNED", "PUBLISH-CDNSKEY", "PUBLISH-CDS", "SIGNALING-ZONE",
                         "SLAVE-RENOTIFY", "SOA-EDIT", "SOA-EDIT-API", "SOA-EDIT-DNSUPDATE"}},
      .group = {"kind"},
      .local_rows = LocalRowRule{"kind", {"CATALOG-HASH"}},
  });

  specs.push_back(TableSpec{
      .name = "cryptokeys",
      .id_column = "id",
      .parent_column = "domain_id",
      .is_zone_table = false,
      .key = {std::string(kZoneField), "content"},
      .columns = {{"content", T::kText},
                  {"flags", T::kInt},
                  {"active", T::kBool},
                  {"published", T::kBool}},
      .local_columns = {},
      .singleton = std::nullopt,
      .group = {},
      .local_rows = std::nullopt,
  });

  // Comments have no natural identity short of all their columns; the
  // comments of an RRset are replaced as a whole (the HTTP API does).
  specs.push_back(TableSpec{
      .name = "comments",
      .id_column = "id",
      .parent_column = "domain_id",
      .is_zone_table = false,
      .key = {std::string(kZoneField), "name", "type", "modified_at", "account", "comment"},
      .columns = {{"name", T::kText},
                  {"type", T::kText},
                  {"modified_at", T::kInt},
                  {"account", T::kText},
                  {"comment", T::kText}},
      .local_columns = {},
      .singleton = std::nullopt,
      .group = {"name", "type"},
      .local_rows = std::nullopt,
  });

  specs.push_back(TableSpec{
      .name = "tsigkeys",
      .id_column = "id",
      .parent_column = "",
      .is_zone_table = false,
      .key = {"name", "algorithm"},
      .columns = {{"name", T::kText}, {"algorithm", T::kText}, {"secret", T::kText}},
      .local_columns = {},
      .singleton = std::nullopt,
      .group = {},
      .local_rows = std::nullopt,
  });

  specs.push_back(TableSpec{
      .name = "supermasters",
      .id_column = "",
      .parent_column = "",
      .is_zone_table = false,
      .key = {"ip", "nameserver"},
      .columns = {{"ip", T::kInet}, {"nameserver", T::kText}, {"account", T::kText}},
      .local_columns = {},
      .singleton = std::nullopt,
      .group = {},
      .local_rows = std::nullopt,
  });
  return specs;
}

}  // namespace

const std::vector<TableSpec>& PowerDnsTables() {
  static const std::vector<TableSpec> specs = BuildPowerDnsTables();
  return specs;
}

const TableSpec* FindTable(std::string_view name) {
  for (const TableSpec& s : PowerDnsTables()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string DescribeSpecs(const std::vector<TableSpec>& specs) {
  std::string out;
  for (const TableSpec& s : specs) {
    out += "table " + s.name + " parent=" + s.parent_column +
           " zone_table=" + (s.is_zone_table ? "1" : "0") + " key=";
    for (const std::string& k : s.key) out += k + ",";
    out += " columns=";
    for (const Column& c : s.columns) out += c.name + ":" + std::string(ColumnTypeName(c.type)) + ",";
    out += " local=";
    for (const std::string& c : s.local_columns) out += c + ",";
    if (s.singleton) {
      out += " singleton=";
      for (const std::string& c : s.singleton->columns) out += c + ",";
      out += " when " + s.singleton->when_column + " in ";
      for (const std::string& v : s.singleton->values) out += v + ",";
    }
    if (s.is_grouped()) {
      out += " group=";
      for (const std::string& c : s.group) out += c + ",";
    }
    if (s.local_rows) {
      out += " local_rows=" + s.local_rows->column + " in ";
      for (const std::string& v : s.local_rows->values) out += v + ",";
    }
    out += "\n";
  }
  return out;
}

}  // namespace zonemesh::schema
