// Natural keys (schema/key.h) for every PowerDNS table spec (schema/spec.h):
// the component encoding, which columns make up each table's key, the
// singleton rule, parent translation (children carry their zone's name), and
// KeyId. The last suite checks, on a real SQLite database with zonemesh
// installed, that the key the capture trigger computes in SQL is exactly
// schema::EncodeKey of the row image it captured.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "db/connection.h"
#include "db/open.h"
#include "replicator/installer.h"
#include "replicator/wire.h"
#include "schema/key.h"
#include "schema/spec.h"
#include "tests/support/test_db.h"

namespace zonemesh {
namespace {

using db::Value;
using schema::EncodeKey;
using schema::EncodeKeyComponent;
using schema::RowImage;
using schema::TableSpec;

const TableSpec& Spec(const std::string& table) {
  const TableSpec* spec = schema::FindTable(table);
  if (!spec) throw std::logic_error("no spec for " + table);
  return *spec;
}

// A row image of `table` with the named columns set and every other shipped
// column NULL. `zone` is the parent zone's name for zone children.
RowImage Row(const std::string& table, std::optional<std::string> zone,
             const std::map<std::string, Value>& values) {
  const TableSpec& spec = Spec(table);
  RowImage row;
  row.zone = std::move(zone);
  row.values.resize(spec.columns.size());
  for (const auto& [column, value] : values) row.values[spec.ColumnIndex(column)] = value;
  return row;
}

RowImage Record(const std::string& zone, const std::string& name, const std::string& type,
                const std::string& content, int64_t ttl = 3600) {
  return Row("records", zone,
             {{"name", name}, {"type", type}, {"content", content}, {"ttl", ttl},
              {"prio", int64_t{0}}, {"disabled", false}, {"auth", true}});
}

RowImage Metadata(const std::string& zone, const std::string& kind, const std::string& content) {
  return Row("domainmetadata", zone, {{"kind", kind}, {"content", content}});
}

// Splits on unescaped '|' (every '|' in a key separates components, since
// '|' inside a component is escaped).
std::vector<std::string> SplitKey(const std::string& key) {
  std::vector<std::string> parts(1);
  for (char c : key) {
    if (c == '|') {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  return parts;
}

// ------------------------------------------------------ component encoding --

TEST(EncodeKeyComponentTest, PlainTextIsUnchanged) {
  EXPECT_EQ(EncodeKeyComponent(std::string("www.example.com.")), "www.example.com.");
  EXPECT_EQ(EncodeKeyComponent(std::string("")), "");
}

TEST(EncodeKeyComponentTest, EscapesPercentAndBar) {
  EXPECT_EQ(EncodeKeyComponent(std::string("%")), "%25");
  EXPECT_EQ(EncodeKeyComponent(std::string("|")), "%7C");
  EXPECT_EQ(EncodeKeyComponent(std::string("a|b%c")), "a%7Cb%25c");
  // Already-escaped looking text is escaped again, not passed through.
  EXPECT_EQ(EncodeKeyComponent(std::string("%7C")), "%257C");
}

TEST(EncodeKeyComponentTest, NullIsPercentN) {
  EXPECT_EQ(EncodeKeyComponent(std::nullopt), "%N");
  EXPECT_NE(EncodeKeyComponent(std::nullopt), EncodeKeyComponent(std::string("%N")));
  EXPECT_EQ(EncodeKeyComponent(std::string("%N")), "%25N");
}

TEST(EncodeKeyComponentTest, NonAsciiBytesPassThrough) {
  const std::string utf8 = "gr\xc3\xbc\xc3\x9f\x65 \xe6\x97\xa5\xe6\x9c\xac";
  EXPECT_EQ(EncodeKeyComponent(utf8), utf8);
}

// tsigkeys is keyed by two plain text columns: a convenient two-component key.
std::string TwoComponentKey(const std::optional<std::string>& a,
                            const std::optional<std::string>& b) {
  return EncodeKey(Spec("tsigkeys"), Row("tsigkeys", std::nullopt,
                                         {{"name", Value(a)}, {"algorithm", Value(b)}}));
}

TEST(EncodeKeyTest, BarInsideAComponentDoesNotShiftTheBoundary) {
  EXPECT_NE(TwoComponentKey("a|b", "c"), TwoComponentKey("a", "b|c"));
  EXPECT_EQ(SplitKey(TwoComponentKey("a|b", "c")).size(), 2u);
}

TEST(EncodeKeyTest, NullAndTheTextPercentNDiffer) {
  EXPECT_NE(TwoComponentKey(std::nullopt, "x"), TwoComponentKey("%N", "x"));
  EXPECT_NE(TwoComponentKey("x", std::nullopt), TwoComponentKey("x", "%N"));
  EXPECT_NE(TwoComponentKey(std::nullopt, "x"), TwoComponentKey("", "x"));
}

TEST(EncodeKeyTest, DistinctComponentListsNeverCollide) {
  // Every pair over a set of awkward components, including escapes of each
  // other: the encoding must stay injective.
  const std::vector<std::optional<std::string>> parts = {
      std::nullopt, "", "a", "|", "%", "%N", "%25", "%7C", "a|b", "b|c", "a%", "%|", "||", "N"};
  std::map<std::string, std::pair<std::optional<std::string>, std::optional<std::string>>> seen;
  for (const auto& a : parts) {
    for (const auto& b : parts) {
      std::string key = TwoComponentKey(a, b);
      auto [it, inserted] = seen.emplace(key, std::make_pair(a, b));
      EXPECT_TRUE(inserted) << "key \"" << key << "\" produced twice";
      EXPECT_EQ(SplitKey(key).size(), 2u) << key;
    }
  }
  EXPECT_EQ(seen.size(), parts.size() * parts.size());
}

TEST(EncodeKeyTest, RejectsARowImageOfTheWrongWidth) {
  RowImage row;
  row.values = {Value("only-one")};
  EXPECT_THROW(EncodeKey(Spec("records"), row), std::logic_error);
}

// ------------------------------------------------------------------ domains --

TEST(DomainsKeyTest, IsTheZoneNameAlone) {
  RowImage a = Row("domains", std::nullopt,
                   {{"name", "example.com"}, {"type", "NATIVE"}, {"account", "alice"}});
  RowImage b = Row("domains", std::nullopt,
                   {{"name", "example.com"}, {"type", "MASTER"}, {"master", "192.0.2.1"}});
  EXPECT_EQ(EncodeKey(Spec("domains"), a), "example.com");
  EXPECT_EQ(EncodeKey(Spec("domains"), a), EncodeKey(Spec("domains"), b));
  RowImage other = Row("domains", std::nullopt, {{"name", "example.net"}, {"type", "NATIVE"}});
  EXPECT_NE(EncodeKey(Spec("domains"), a), EncodeKey(Spec("domains"), other));
}

TEST(DomainsKeyTest, ZoneKeyEqualsTheDomainsRowKey) {
  for (const std::string zone : {"example.com", "odd%zone|x.example", "%N", ""}) {
    RowImage row = Row("domains", std::nullopt, {{"name", zone}, {"type", "NATIVE"}});
    EXPECT_EQ(schema::ZoneKey(zone), EncodeKey(Spec("domains"), row)) << zone;
  }
}

TEST(DomainsKeyTest, LocalColumnsAreNotShipped) {
  const TableSpec& spec = Spec("domains");
  EXPECT_TRUE(spec.is_zone_table);
  EXPECT_EQ(spec.FindColumn("notified_serial"), nullptr);
  EXPECT_EQ(spec.FindColumn("last_check"), nullptr);
  EXPECT_EQ(spec.FindColumn("id"), nullptr);
}

// ------------------------------------------------------------------ records --

TEST(RecordsKeyTest, IsZoneNameTypeContentPrio) {
  RowImage r = Record("example.com", "www.example.com", "A", "192.0.2.1");
  EXPECT_EQ(EncodeKey(Spec("records"), r), "example.com|www.example.com|A|192.0.2.1|0");
}

// Two SRV or MX records that differ only in the separate prio column (as
// zone2sql and plain SQL write them) are two records, not one.
TEST(RecordsKeyTest, PrioTellsTwoRecordsOfAnRRsetApart) {
  RowImage a = Record("example.com", "_sip._tcp.example.com", "SRV", "0 5060 sip.example.com.");
  RowImage b = a;
  a.values[Spec("records").ColumnIndex("prio")] = Value(int64_t{10});
  b.values[Spec("records").ColumnIndex("prio")] = Value(int64_t{20});
  EXPECT_NE(EncodeKey(Spec("records"), a), EncodeKey(Spec("records"), b));
  EXPECT_EQ(EncodeKey(Spec("records"), a),
            "example.com|_sip._tcp.example.com|SRV|0 5060 sip.example.com.|10");
  // A NULL prio is a component like any other.
  RowImage n = a;
  n.values[Spec("records").ColumnIndex("prio")] = Value();
  EXPECT_EQ(SplitKey(EncodeKey(Spec("records"), n)).back(), "%N");
}

TEST(RecordsKeyTest, AnRRsetIsItsZoneNameAndType) {
  RowImage a = Record("example.com", "www.example.com", "A", "192.0.2.1");
  RowImage b = Record("example.com", "www.example.com", "A", "192.0.2.2", 60);
  EXPECT_EQ(schema::GroupKey(Spec("records"), a), "example.com|www.example.com|A");
  EXPECT_EQ(schema::GroupKey(Spec("records"), a), schema::GroupKey(Spec("records"), b));
  EXPECT_NE(schema::GroupKey(Spec("records"), a),
            schema::GroupKey(Spec("records"), Record("example.com", "www.example.com", "AAAA", "::1")));
  EXPECT_EQ(schema::GroupKey(Spec("domainmetadata"), Metadata("example.com", "ALSO-NOTIFY", "x")),
            "example.com|ALSO-NOTIFY");
  EXPECT_FALSE(Spec("cryptokeys").is_grouped());
}

TEST(RecordsKeyTest, CatalogHashIsANodeLocalRow) {
  EXPECT_TRUE(schema::IsLocalRow(Spec("domainmetadata"), Metadata("cat.test", "CATALOG-HASH", "x")));
  EXPECT_TRUE(schema::IsLocalRow(Spec("domainmetadata"), Metadata("cat.test", "catalog-hash", "x")));
  EXPECT_FALSE(schema::IsLocalRow(Spec("domainmetadata"), Metadata("cat.test", "ALSO-NOTIFY", "x")));
  EXPECT_FALSE(schema::IsLocalRow(Spec("records"), Record("cat.test", "cat.test", "SOA", "x")));
}

TEST(RecordsKeyTest, ValueColumnsAreNotPartOfTheKey) {
  RowImage a = Record("example.com", "www.example.com", "A", "192.0.2.1", 60);
  RowImage b = Record("example.com", "www.example.com", "A", "192.0.2.1", 86400);
  b.values[Spec("records").ColumnIndex("disabled")] = Value(true);
  b.values[Spec("records").ColumnIndex("ordername")] = Value("www");
  EXPECT_EQ(EncodeKey(Spec("records"), a), EncodeKey(Spec("records"), b));
}

TEST(RecordsKeyTest, TwoARowsWithDifferentContentHaveDifferentKeys) {
  EXPECT_NE(EncodeKey(Spec("records"), Record("example.com", "www.example.com", "A", "192.0.2.1")),
            EncodeKey(Spec("records"), Record("example.com", "www.example.com", "A", "192.0.2.2")));
}

TEST(RecordsKeyTest, TwoSoaRowsWithDifferentContentShareOneKey) {
  RowImage a = Record("example.com", "example.com", "SOA", "ns1. h. 1 10800 3600 604800 3600");
  RowImage b = Record("example.com", "example.com", "SOA", "ns2. h. 2 10800 3600 604800 3600");
  EXPECT_EQ(EncodeKey(Spec("records"), a), EncodeKey(Spec("records"), b));
  EXPECT_EQ(EncodeKey(Spec("records"), a), "example.com|example.com|SOA|%N|%N");
  EXPECT_TRUE(schema::SingletonApplies(Spec("records"), a));
}

TEST(RecordsKeyTest, CnameAndDnameAreSingleValuedToo) {
  for (const std::string type : {"CNAME", "DNAME"}) {
    RowImage a = Record("example.com", "alias.example.com", type, "a.example.net.");
    RowImage b = Record("example.com", "alias.example.com", type, "b.example.net.");
    EXPECT_EQ(EncodeKey(Spec("records"), a), EncodeKey(Spec("records"), b)) << type;
    // Neither content nor prio is part of a single-valued type's key.
    auto components = schema::KeyComponents(Spec("records"), a);
    EXPECT_EQ(components[3], std::nullopt) << type;
    EXPECT_EQ(components[4], std::nullopt) << type;
  }
}

TEST(RecordsKeyTest, SingletonTestIgnoresCaseOfTheType) {
  RowImage lower = Record("example.com", "example.com", "soa", "ns1. h. 1 2 3 4 5");
  RowImage lower2 = Record("example.com", "example.com", "soa", "ns9. h. 9 2 3 4 5");
  RowImage mixed = Record("example.com", "alias.example.com", "CName", "x.example.net.");
  EXPECT_TRUE(schema::SingletonApplies(Spec("records"), lower));
  EXPECT_TRUE(schema::SingletonApplies(Spec("records"), mixed));
  EXPECT_EQ(EncodeKey(Spec("records"), lower), EncodeKey(Spec("records"), lower2));
  // The type itself stays in the key as written.
  EXPECT_EQ(EncodeKey(Spec("records"), lower), "example.com|example.com|soa|%N|%N");
}

TEST(RecordsKeyTest, OtherTypesAndNullTypeKeepTheirContent) {
  for (const std::string type : {"TXT", "MX", "NS", "SOA ", "XSOA"}) {
    RowImage r = Record("example.com", "example.com", type, "payload");
    EXPECT_FALSE(schema::SingletonApplies(Spec("records"), r)) << type;
    EXPECT_EQ(SplitKey(EncodeKey(Spec("records"), r))[3], "payload") << type;
  }
  RowImage null_type = Row("records", "example.com", {{"name", "x.example.com"}, {"content", "c"}});
  EXPECT_FALSE(schema::SingletonApplies(Spec("records"), null_type));
  EXPECT_EQ(EncodeKey(Spec("records"), null_type), "example.com|x.example.com|%N|c|%N");
}

TEST(RecordsKeyTest, ContentWithBarAndPercentIsEscaped) {
  RowImage r = Record("example.com", "example.com", "TXT", "\"v=spf1 a|b 100%\"");
  std::string key = EncodeKey(Spec("records"), r);
  EXPECT_EQ(key, "example.com|example.com|TXT|\"v=spf1 a%7Cb 100%25\"|0");
  EXPECT_EQ(SplitKey(key).size(), 5u);
}

// ------------------------------------------------------- parent translation --

TEST(ParentTranslationTest, ChildrenTravelWithTheZoneNameNotTheDomainId) {
  for (const TableSpec& spec : schema::PowerDnsTables()) {
    if (!spec.is_child()) continue;
    EXPECT_EQ(spec.parent_column, "domain_id") << spec.name;
    EXPECT_EQ(spec.FindColumn("domain_id"), nullptr) << spec.name << " ships domain_id";
    ASSERT_FALSE(spec.key.empty());
    EXPECT_EQ(spec.key.front(), schema::kZoneField) << spec.name;
  }
}

TEST(ParentTranslationTest, ChildKeysBeginWithTheZoneName) {
  struct Case {
    std::string table;
    RowImage row;
  };
  const std::string zone = "sub.example.org";
  std::vector<Case> cases = {
      {"records", Record(zone, "www.sub.example.org", "A", "192.0.2.7")},
      {"domainmetadata", Metadata(zone, "ALSO-NOTIFY", "192.0.2.53")},
      {"cryptokeys", Row("cryptokeys", zone, {{"content", "k"}, {"flags", int64_t{257}}})},
      {"comments", Row("comments", zone,
                       {{"name", "www"}, {"type", "A"}, {"modified_at", int64_t{1}},
                        {"comment", "c"}})},
  };
  for (const Case& c : cases) {
    std::string key = EncodeKey(Spec(c.table), c.row);
    EXPECT_EQ(SplitKey(key).front(), zone) << c.table << ": " << key;
  }
}

TEST(ParentTranslationTest, SameRecordInTwoZonesHasTwoKeys) {
  EXPECT_NE(EncodeKey(Spec("records"), Record("a.example", "x.a.example", "A", "192.0.2.1")),
            EncodeKey(Spec("records"), Record("b.example", "x.a.example", "A", "192.0.2.1")));
}

TEST(ParentTranslationTest, ZoneNameIsEscapedLikeAnyComponent) {
  RowImage r = Record("odd|zone%", "www", "A", "192.0.2.1");
  std::string key = EncodeKey(Spec("records"), r);
  EXPECT_EQ(SplitKey(key).front(), "odd%7Czone%25");
  EXPECT_EQ(SplitKey(key).size(), 5u);
}

TEST(ParentTranslationTest, MissingZoneIsANullComponent) {
  RowImage r = Record("x", "www", "A", "192.0.2.1");
  r.zone.reset();
  EXPECT_EQ(SplitKey(EncodeKey(Spec("records"), r)).front(), "%N");
}

// ----------------------------------------------------------- domainmetadata --

TEST(DomainMetadataKeyTest, SingleValuedKindIsKeyedWithoutContent) {
  RowImage a = Metadata("example.com", "SOA-EDIT-API", "DEFAULT");
  RowImage b = Metadata("example.com", "SOA-EDIT-API", "INCREASE");
  EXPECT_EQ(EncodeKey(Spec("domainmetadata"), a), EncodeKey(Spec("domainmetadata"), b));
  EXPECT_EQ(EncodeKey(Spec("domainmetadata"), a), "example.com|SOA-EDIT-API|%N");
}

TEST(DomainMetadataKeyTest, SingleValuedKindIgnoresCase) {
  RowImage a = Metadata("example.com", "soa-edit-api", "DEFAULT");
  EXPECT_TRUE(schema::SingletonApplies(Spec("domainmetadata"), a));
  EXPECT_EQ(EncodeKey(Spec("domainmetadata"), a), "example.com|soa-edit-api|%N");
}

TEST(DomainMetadataKeyTest, MultiValuedKindIsKeyedWithContent) {
  RowImage a = Metadata("example.com", "ALSO-NOTIFY", "192.0.2.53");
  RowImage b = Metadata("example.com", "ALSO-NOTIFY", "192.0.2.54");
  EXPECT_FALSE(schema::SingletonApplies(Spec("domainmetadata"), a));
  EXPECT_NE(EncodeKey(Spec("domainmetadata"), a), EncodeKey(Spec("domainmetadata"), b));
  EXPECT_EQ(EncodeKey(Spec("domainmetadata"), a), "example.com|ALSO-NOTIFY|192.0.2.53");
}

// --------------------------------------------------------------- cryptokeys --

TEST(CryptokeysKeyTest, IsZoneAndContent) {
  RowImage a = Row("cryptokeys", "example.com",
                   {{"content", "Private-key-format: v1.2"}, {"flags", int64_t{257}},
                    {"active", true}, {"published", true}});
  RowImage b = a;
  b.values[Spec("cryptokeys").ColumnIndex("active")] = Value(false);
  b.values[Spec("cryptokeys").ColumnIndex("flags")] = Value(int64_t{256});
  EXPECT_EQ(EncodeKey(Spec("cryptokeys"), a), "example.com|Private-key-format: v1.2");
  EXPECT_EQ(EncodeKey(Spec("cryptokeys"), a), EncodeKey(Spec("cryptokeys"), b));
}

// ----------------------------------------------------------------- comments --

RowImage Comment(int64_t modified_at, std::optional<std::string> account, std::string text) {
  return Row("comments", "example.com",
             {{"name", "www.example.com"}, {"type", "A"}, {"modified_at", modified_at},
              {"account", Value(account)}, {"comment", text}});
}

TEST(CommentsKeyTest, IsEveryColumnWithModifiedAtAsDecimal) {
  EXPECT_EQ(EncodeKey(Spec("comments"), Comment(1700000000, "admin", "moved to new host")),
            "example.com|www.example.com|A|1700000000|admin|moved to new host");
  EXPECT_EQ(EncodeKey(Spec("comments"), Comment(-5, std::nullopt, "x")),
            "example.com|www.example.com|A|-5|%N|x");
}

TEST(CommentsKeyTest, AnyColumnChangesTheKey) {
  std::set<std::string> keys = {
      EncodeKey(Spec("comments"), Comment(1700000000, "admin", "a")),
      EncodeKey(Spec("comments"), Comment(1700000001, "admin", "a")),
      EncodeKey(Spec("comments"), Comment(1700000000, "root", "a")),
      EncodeKey(Spec("comments"), Comment(1700000000, std::nullopt, "a")),
      EncodeKey(Spec("comments"), Comment(1700000000, "admin", "b")),
  };
  EXPECT_EQ(keys.size(), 5u);
}

// ------------------------------------------------- tsigkeys, supermasters --

TEST(TsigkeysKeyTest, IsNameAndAlgorithmNotTheSecret) {
  RowImage a = Row("tsigkeys", std::nullopt,
                   {{"name", "xfr-key"}, {"algorithm", "hmac-sha256"}, {"secret", "c2VjcmV0"}});
  RowImage b = a;
  b.values[Spec("tsigkeys").ColumnIndex("secret")] = Value("b3RoZXI=");
  RowImage c = a;
  c.values[Spec("tsigkeys").ColumnIndex("algorithm")] = Value("hmac-sha512");
  EXPECT_EQ(EncodeKey(Spec("tsigkeys"), a), "xfr-key|hmac-sha256");
  EXPECT_EQ(EncodeKey(Spec("tsigkeys"), a), EncodeKey(Spec("tsigkeys"), b));
  EXPECT_NE(EncodeKey(Spec("tsigkeys"), a), EncodeKey(Spec("tsigkeys"), c));
}

TEST(SupermastersKeyTest, IsIpAndNameserverNotTheAccount) {
  RowImage a = Row("supermasters", std::nullopt,
                   {{"ip", "192.0.2.10"}, {"nameserver", "ns.example.net"}, {"account", "a"}});
  RowImage b = a;
  b.values[Spec("supermasters").ColumnIndex("account")] = Value("b");
  EXPECT_EQ(EncodeKey(Spec("supermasters"), a), "192.0.2.10|ns.example.net");
  EXPECT_EQ(EncodeKey(Spec("supermasters"), a), EncodeKey(Spec("supermasters"), b));
  EXPECT_FALSE(Spec("supermasters").is_child());
  EXPECT_FALSE(Spec("tsigkeys").is_child());
}

// -------------------------------------------------------------------- KeyId --

TEST(KeyIdTest, IsTheKeyItselfOnSqlite) {
  const std::string key = "example.com|www.example.com|TXT|" + std::string(70000, 'x');
  EXPECT_EQ(schema::KeyId(db::Dialect::kSqlite, key), key);
}

bool IsLowerHex(const std::string& s) {
  return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

TEST(KeyIdTest, IsAHexSha256OnPostgresAndMysql) {
  const std::string key = "example.com|www.example.com|A|192.0.2.1";
  for (db::Dialect d : {db::Dialect::kPostgres, db::Dialect::kMysql}) {
    std::string id = schema::KeyId(d, key);
    EXPECT_EQ(id.size(), 64u);
    EXPECT_TRUE(IsLowerHex(id)) << id;
    EXPECT_EQ(id, schema::Sha256Hex(key));
  }
  EXPECT_EQ(schema::KeyId(db::Dialect::kPostgres, key), schema::KeyId(db::Dialect::kMysql, key));
  EXPECT_NE(schema::KeyId(db::Dialect::kPostgres, key),
            schema::KeyId(db::Dialect::kPostgres, key + "x"));
  EXPECT_EQ(schema::KeyId(db::Dialect::kMysql, std::string(70000, 'y')).size(), 64u);
}

TEST(KeyIdTest, Sha256MatchesTheStandardTestVectors) {
  // FIPS 180-2 examples; the databases' SHA2()/sha256() compute the same.
  EXPECT_EQ(schema::Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(schema::Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// ----------------------------------------- SQLite capture triggers agree --

class SqliteTriggerKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_ = testing::FreshDatabase(db::Dialect::kSqlite, "key_trigger");
    conn_ = db::Open(cfg_);
    Install(*conn_, "ns1", /*create_schema=*/true);
  }

  int64_t ZoneId(const std::string& name) {
    return conn_->Query("SELECT id FROM domains WHERE name = ?", {name})[0][0].AsInt();
  }

  struct Captured {
    int64_t id;
    std::string table;
    std::string op;
    std::string rkey;
    RowImage row;
    std::vector<std::string> problems;
  };

  std::vector<Captured> Outbox() {
    std::vector<Captured> out;
    for (const db::Row& r :
         conn_->Query("SELECT id, tbl, op, rkey, payload FROM zm_outbox ORDER BY id")) {
      Captured c;
      c.id = r[0].AsInt();
      c.table = r[1].AsText();
      c.op = r[2].AsText();
      c.rkey = r[3].AsText();
      const TableSpec* spec = schema::FindTable(c.table);
      if (!spec) throw std::logic_error("outbox row for unknown table " + c.table);
      c.row = RowImageFromPayload(*spec, nlohmann::json::parse(r[4].AsText()), &c.problems);
      out.push_back(std::move(c));
    }
    return out;
  }

  const Captured* Find(const std::vector<Captured>& all, const std::string& table,
                       const std::string& op, const std::string& column,
                       const std::string& value) {
    for (const Captured& c : all) {
      if (c.table != table || c.op != op) continue;
      const Value& v = c.row.values[Spec(table).ColumnIndex(column)];
      if (!v.IsNull() && v.AsText() == value) return &c;
    }
    return nullptr;
  }

  db::DatabaseConfig cfg_;
  std::unique_ptr<db::Connection> conn_;
};

const std::string kSoaContent = "ns1.example.com. hostmaster.example.com. 1 10800 3600 604800 3600";
const std::string kOddZone = "odd%zone|x.example";
const std::string kTxtContent = "\"v=spf1 a|b ~all 100%\"";
const std::string kUtf8Comment =
    "Gr\xc3\xbc\xc3\x9f\x65 \xe2\x80\x93 \xe6\x97\xa5\xe6\x9c\xac | 100% \xf0\x9f\x98\x80";

TEST_F(SqliteTriggerKeyTest, CapturedKeyEqualsEncodeKeyOfCapturedRowForEveryTable) {
  db::Connection& c = *conn_;
  c.Execute("INSERT INTO domains (name, type) VALUES (?, ?)", {"example.com", "NATIVE"});
  c.Execute(
      "INSERT INTO domains (name, master, type, account, options, catalog) "
      "VALUES (?, ?, ?, ?, ?, ?)",
      {kOddZone, "192.0.2.1", "SLAVE", "acct", "{\"k\":1}", "catalog.example"});
  const int64_t ex = ZoneId("example.com");
  const int64_t odd = ZoneId(kOddZone);

  const std::string rec =
      "INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, ordername, auth) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
  c.Execute(rec, {ex, "example.com", "soa", kSoaContent, 3600, 0, 0, Value(), 1});
  c.Execute(rec, {ex, "www.example.com", "A", "192.0.2.1", 300, 0, 0, "www", 1});
  c.Execute(rec, {ex, "www.example.com", "A", "192.0.2.2", 300, 0, 1, "www", 0});
  c.Execute(rec, {ex, "example.com", "TXT", kTxtContent, 60, Value(), 0, Value(), 1});
  c.Execute(rec, {ex, "alias.example.com", "CNAME", "www.example.com.", 60, 0, 0, Value(), 1});
  c.Execute(rec, {ex, "null.example.com", "TXT", Value(), Value(), Value(), 0, Value(), 1});
  c.Execute(rec, {odd, "a|b%c." + kOddZone, "MX", "10 mail|%.example.", 60, 10, 0, Value(), 1});

  const std::string meta = "INSERT INTO domainmetadata (domain_id, kind, content) VALUES (?, ?, ?)";
  c.Execute(meta, {ex, "SOA-EDIT-API", "DEFAULT"});
  c.Execute(meta, {ex, "ALSO-NOTIFY", "192.0.2.53"});
  c.Execute(meta, {ex, "ALSO-NOTIFY", "192.0.2.54"});
  c.Execute(meta, {ex, "soa-edit", "INCEPTION-EPOCH"});

  c.Execute(
      "INSERT INTO cryptokeys (domain_id, flags, active, published, content) "
      "VALUES (?, ?, ?, ?, ?)",
      {ex, 257, 1, 1, "Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)|%"});
  c.Execute(
      "INSERT INTO comments (domain_id, name, type, modified_at, account, comment) "
      "VALUES (?, ?, ?, ?, ?, ?)",
      {ex, "www.example.com", "A", int64_t{1700000000}, "admin", kUtf8Comment});
  c.Execute(
      "INSERT INTO comments (domain_id, name, type, modified_at, account, comment) "
      "VALUES (?, ?, ?, ?, ?, ?)",
      {odd, kOddZone, "SOA", int64_t{0}, Value(), "plain"});
  c.Execute("INSERT INTO tsigkeys (name, algorithm, secret) VALUES (?, ?, ?)",
            {"xfr|key", "hmac-sha256", "c2VjcmV0"});
  c.Execute("INSERT INTO supermasters (ip, nameserver, account) VALUES (?, ?, ?)",
            {"192.0.2.10", "ns.example.net", "acct"});

  // An update that changes a key (the old key's delete + the new key's
  // upsert), an in-place SOA edit, and a delete.
  c.Execute("UPDATE records SET content = ? WHERE domain_id = ? AND content = ?",
            {"192.0.2.3", ex, "192.0.2.2"});
  c.Execute("UPDATE records SET content = ? WHERE domain_id = ? AND type = 'soa'",
            {"ns2.example.com. hostmaster.example.com. 2 10800 3600 604800 3600", ex});
  c.Execute("DELETE FROM domainmetadata WHERE kind = ? AND content = ?",
            {"ALSO-NOTIFY", "192.0.2.54"});

  std::vector<Captured> all = Outbox();
  std::set<std::string> tables_seen;
  for (const Captured& cap : all) {
    SCOPED_TRACE("outbox id " + std::to_string(cap.id) + " " + cap.table + " " + cap.op);
    EXPECT_TRUE(cap.problems.empty()) << cap.problems.front();
    EXPECT_EQ(cap.rkey, EncodeKey(Spec(cap.table), cap.row));
    tables_seen.insert(cap.table);
  }
  for (const TableSpec& spec : schema::PowerDnsTables()) {
    EXPECT_TRUE(tables_seen.count(spec.name)) << "nothing captured for " << spec.name;
  }

  // 2 domains, 7 records, 4 metadata, 1 cryptokey, 2 comments, 1 tsigkey,
  // 1 supermaster; then D+U, U, D.
  EXPECT_EQ(all.size(), 18u + 4u);

  // The escapes really happened in SQL, and the zone travelled by name.
  const Captured* txt = Find(all, "records", "U", "content", kTxtContent);
  ASSERT_NE(txt, nullptr);
  EXPECT_EQ(txt->row.zone, std::optional<std::string>("example.com"));
  EXPECT_EQ(txt->rkey, "example.com|example.com|TXT|\"v=spf1 a%7Cb ~all 100%25\"|%N");

  const Captured* mx = Find(all, "records", "U", "type", "MX");
  ASSERT_NE(mx, nullptr);
  EXPECT_EQ(mx->row.zone, std::optional<std::string>(kOddZone));
  EXPECT_EQ(SplitKey(mx->rkey).front(), "odd%25zone%7Cx.example");

  const Captured* comment = Find(all, "comments", "U", "account", "admin");
  ASSERT_NE(comment, nullptr);
  EXPECT_EQ(comment->row.values[Spec("comments").ColumnIndex("comment")], Value(kUtf8Comment));
  EXPECT_EQ(comment->rkey, "example.com|www.example.com|A|1700000000|admin|" +
                               EncodeKeyComponent(kUtf8Comment));

  // The singleton rule in SQL: both SOA images and the lower-case kind
  // are keyed without content.
  std::vector<const Captured*> soa;
  for (const Captured& cap : all) {
    if (cap.table == "records" && !cap.row.values[1].IsNull() && cap.row.values[1].AsText() == "soa")
      soa.push_back(&cap);
  }
  ASSERT_EQ(soa.size(), 2u) << "the in-place SOA edit must be one upsert, no delete";
  EXPECT_EQ(soa[0]->op, "U");
  EXPECT_EQ(soa[1]->op, "U");
  EXPECT_EQ(soa[0]->rkey, "example.com|example.com|soa|%N|%N");
  EXPECT_EQ(soa[1]->rkey, soa[0]->rkey);

  const Captured* soa_edit = Find(all, "domainmetadata", "U", "kind", "soa-edit");
  ASSERT_NE(soa_edit, nullptr);
  EXPECT_EQ(soa_edit->rkey, "example.com|soa-edit|%N");

  // The key-changing update: the old key is deleted, the new one upserted.
  const Captured* old_a = Find(all, "records", "D", "content", "192.0.2.2");
  const Captured* new_a = Find(all, "records", "U", "content", "192.0.2.3");
  ASSERT_NE(old_a, nullptr);
  ASSERT_NE(new_a, nullptr);
  EXPECT_EQ(old_a->rkey, "example.com|www.example.com|A|192.0.2.2|0");
  EXPECT_EQ(new_a->rkey, "example.com|www.example.com|A|192.0.2.3|0");

  const Captured* gone = Find(all, "domainmetadata", "D", "content", "192.0.2.54");
  ASSERT_NE(gone, nullptr);
  EXPECT_EQ(gone->rkey, "example.com|ALSO-NOTIFY|192.0.2.54");
}

TEST_F(SqliteTriggerKeyTest, CapturedBooleansAndIntegersReadBackTyped) {
  conn_->Execute("INSERT INTO domains (name, type) VALUES (?, ?)", {"example.com", "NATIVE"});
  conn_->Execute(
      "INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      {ZoneId("example.com"), "www.example.com", "A", "192.0.2.1", 300, 5, 1, 0});
  std::vector<Captured> all = Outbox();
  const Captured* a = Find(all, "records", "U", "content", "192.0.2.1");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->problems.empty());
  const TableSpec& spec = Spec("records");
  EXPECT_EQ(a->row.values[spec.ColumnIndex("ttl")], Value(int64_t{300}));
  EXPECT_EQ(a->row.values[spec.ColumnIndex("prio")], Value(int64_t{5}));
  EXPECT_EQ(a->row.values[spec.ColumnIndex("disabled")], Value(true));
  EXPECT_EQ(a->row.values[spec.ColumnIndex("auth")], Value(false));
  EXPECT_TRUE(a->row.values[spec.ColumnIndex("ordername")].IsNull());
}

TEST(FirstKeyComponent, DecodesTheZoneOfAKey) {
  EXPECT_EQ(schema::FirstKeyComponent("example.com|www.example.com|A|192.0.2.1"),
            std::optional<std::string>("example.com"));
  EXPECT_EQ(schema::FirstKeyComponent(schema::EncodeKeyComponent("odd%zone|x.example") + "|rest"),
            std::optional<std::string>("odd%zone|x.example"));
  EXPECT_EQ(schema::FirstKeyComponent("example.com"), std::optional<std::string>("example.com"));
  EXPECT_EQ(schema::FirstKeyComponent("%N|x"), std::nullopt);
}

}  // namespace
}  // namespace zonemesh
